"""The indexes the dashboard's aggregates read (dashboard.py), kept here so that models.py stays
short. Each query of the page reads one of them, never the whole table."""

from __future__ import annotations

from django.db.models import Index, Q
from django.db.models.functions import Trim, Upper
from django.db.models.lookups import In

from conversations.texts import OPT_IN_WORDS

# FAILED statuses: a text that reached nobody through Twilio's fault or the carrier's.
FAILED = ("failed", "undelivered")
# A text whose body Twilio reads as an opt-in keyword ("start", " YES "): dashboard.opt_ins().
OPT_IN: In = In(Upper(Trim("body")), sorted(OPT_IN_WORDS))

MESSAGE_INDEXES = [
    # Covering: the texts per day by direction, status and outcome are counted from the index
    # alone. It serves created_at's own ranges too (the Messages list's default order).
    Index(fields=["created_at", "direction", "status", "outcome"], name="message_created_at_kind"),
    # The few inbound texts that are opt-ins: their body is no column of the index above.
    Index(fields=["created_at"], name="message_opt_ins", condition=Q(OPT_IN, direction="inbound")),
    # The failures by error code: the error text without reading the rows.
    Index(fields=["created_at", "error"], name="message_failures", condition=Q(status__in=FAILED)),
]
# The conversations staff have paused the bot in: few, and all that needs_reply() looks at.
CONVERSATION_PAUSED = Index(
    fields=["bot_paused_until"], name="conversation_paused", condition=Q(bot_paused_until__isnull=False)
)
