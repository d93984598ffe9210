"""The indexes the dashboard's aggregates read (dashboard.py), kept here so that models.py stays
short. Each query of the page reads one of them, never the whole table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Expression, F, Index, Q, Value
from django.db.models.functions import Trim, Upper
from django.db.models.lookups import Exact, In

from conversations.texts import OPT_IN_WORDS

# FAILED statuses: a text that reached nobody through Twilio's fault or the carrier's.
FAILED = ("failed", "undelivered")
# A text whose body Twilio reads as an opt-in keyword ("start", " YES ").
OPT_IN_BODY = Upper(Trim("body"))

MESSAGE_INDEXES = [
    # Covering: the texts per day by direction, status and outcome are counted from the index
    # alone. It serves created_at's own ranges too (the Messages list's default order).
    Index(fields=["created_at", "direction", "status", "outcome"], name="message_created_at_kind"),
    # The few inbound texts that are opt-ins: their body is no column of the index above.
    Index(
        fields=["created_at"],
        name="message_opt_ins",
        condition=Q(In(OPT_IN_BODY, sorted(OPT_IN_WORDS)), direction="inbound"),
    ),
    # The failures by error code: the error text without reading the rows.
    Index(fields=["created_at", "error"], name="message_failures", condition=Q(status__in=FAILED)),
]
# The conversations staff have paused the bot in: few, and all that needs_reply() looks at.
CONVERSATION_PAUSED = Index(
    fields=["bot_paused_until"], name="conversation_paused", condition=Q(bot_paused_until__isnull=False)
)


class Constant(Value):
    """A text written into the statement, not bound to it. SQLite uses a partial index only for
    a query whose WHERE has the index's terms, constants included, and a bound value is not
    known when it plans; so the queries state these terms with the index's constants (the
    dashboard's, and MessageQuerySet.ready() the outbox's)."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        return literal(str(self.value)), []


def literal(value: str) -> str:
    """A text as an SQL literal, for terms written into a statement (Constant, outbox_sql.py)."""
    return "'" + value.replace("'", "''") + "'"


def one_of(expression: Expression | str, values: Iterable[str]) -> In:
    """`expression IN (values)`, the values written into the SQL (Constant)."""
    return In(F(expression) if isinstance(expression, str) else expression, [Constant(v) for v in values])


def equals(column: str, value: str) -> Exact:
    return Exact(F(column), Constant(value))


# The terms of the partial indexes above, as the dashboard's queries state them.
FAILED_TERM = one_of("status", FAILED)
OPT_IN_TERMS = (one_of(OPT_IN_BODY, sorted(OPT_IN_WORDS)), equals("direction", "inbound"))
