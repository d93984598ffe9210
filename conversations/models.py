from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery, Value

# validate_printable is also what migration 0004 names as conversations.models'.
from conversations.broadcasts import Broadcast
from conversations.callers import Caller
from conversations.daily_counts import DailyCount  # noqa: F401
from conversations.indexes import CONVERSATION_PAUSED, MESSAGE_INDEXES, one_of
from conversations.names import search_key, validate_printable  # noqa: F401
from conversations.outbox_rows import OUTBOX_WAITING, OutboxWake, SenderPace  # noqa: F401
from conversations.phone import number_of, number_search


class ConversationQuerySet(models.QuerySet):
    def for_pair(self, sender: str, recipient: str) -> ConversationQuerySet:
        return self.filter(sender=sender, recipient=recipient)

    def matching(self, search: str) -> ConversationQuerySet:
        """What staff mean by a search: the sender's number however they write it, or its
        Caller's name in any case and accents, on any channel (by sender_number)."""
        named = Caller.objects.filter(name_search__contains=search_key(search)).values("phone_number")
        return self.filter(Q(sender_number__in=named) | Q(sender__contains=number_search(search)))

    def with_caller(self) -> ConversationQuerySet:
        """Annotate the name and blocked flag of the Caller of sender_number (None: unknown)."""
        callers = Caller.objects.filter(phone_number=OuterRef("sender_number")).order_by()
        return self.annotate(
            caller_name=Subquery(callers.values("name")[:1]),
            caller_blocked=Subquery(callers.values("blocked")[:1]),
        )

    def with_message_seen(self, sid: str | None) -> ConversationQuerySet:
        """Annotate whether a text with this MessageSid has been recorded already."""
        seen = Exists(Message.objects.filter(sid=sid)) if sid else Value(False)
        return self.annotate(message_seen=seen)

    def bot_paused(self, now: datetime) -> ConversationQuerySet:
        """Conversations staff have taken over: the bot answers none of their texts for now."""
        return self.filter(bot_paused_until__gt=now)

    def needs_reply(self, now: datetime) -> ConversationQuerySet:
        """Taken over by staff, and the customer texted last: someone owes them an answer."""
        # A staff text that never went out answers nobody.
        answers = Message.objects.exclude(direction=Message.Direction.OUTBOUND, status__in=Message.NOT_SENT)
        latest = answers.filter(conversation=OuterRef("pk")).order_by("-created_at", "-pk")
        return (
            self.bot_paused(now)
            .alias(latest_direction=Subquery(latest.values("direction")[:1]))
            .filter(latest_direction=Message.Direction.INBOUND)
        )

    def locked_for_text(
        self, sender: str, recipient: str, *, sid: str | None, now: datetime
    ) -> Conversation | None:
        """The pair's row and session locked, with_caller(), with_message_seen() and window_data,
        in one statement written in SQL (pair_sql.py); None without a row or a session."""
        from conversations import pair_sql  # It builds its SQL from these models.

        return pair_sql.fetch_locked(self.db, sender, recipient, sid=sid, now=now)


class Conversation(models.Model):
    sender = models.CharField(max_length=64, help_text="Twilio's From: the texting party.")
    recipient = models.CharField(max_length=64, help_text="Twilio's To: our number.")
    # Set once, when the pair's first text creates the row: whatever channel or form the
    # sender's address has, its Caller is found by this (phone.number_of()).
    sender_number = models.CharField(
        max_length=16, blank=True, default="", help_text="The sender's E.164 number; empty for sender IDs."
    )
    session = models.OneToOneField(
        Session,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conversation",
        help_text="The session of the current window; its expiry ends the window.",
    )
    window_count = models.PositiveIntegerField(default=0)
    lifetime_count = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField(null=True, blank=True)
    first_activity = models.DateTimeField(auto_now_add=True)
    last_activity = models.DateTimeField(null=True, blank=True)
    opted_out = models.BooleanField(default=False)
    # Staff took over: the bot answers nothing until then (read with the locked row, so the
    # pause costs a text no statement of its own).
    bot_paused_until = models.DateTimeField(null=True, blank=True)
    undeliverable_reason = models.CharField(
        max_length=200, blank=True, help_text="Why Twilio cannot deliver to this number (empty: it can)."
    )
    undeliverable_since = models.DateTimeField(null=True, blank=True)

    # Annotations (with_caller(), with_message_seen(), locked_for_text()): not columns.
    caller_name: str | None
    caller_blocked: bool
    message_seen: bool
    window_data: str | None  # The live window's session data; None: the window has ended.

    # What a text changes on its conversation, written by the text's one UPDATE (pair_sql.py).
    TEXT_CHANGES = (
        "session",
        "window_count",
        "lifetime_count",
        "window_started_at",
        "last_activity",
        "opted_out",
    )

    objects = ConversationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender", "recipient"], name="one_conversation_per_pair")
        ]
        indexes = [
            models.Index(fields=["-last_activity"], name="conversation_last_activity"),
            models.Index(fields=["sender_number"], name="conversation_sender_number"),
            CONVERSATION_PAUSED,
        ]

    def __str__(self) -> str:
        return f"{self.sender} → {self.recipient}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.sender_number:
            self.sender_number = number_of(self.sender) or ""
        super().save(*args, **kwargs)

    def bot_paused(self, now: datetime) -> bool:
        """Staff have the conversation: the bot's replies are not sent until the pause ends."""
        return self.bot_paused_until is not None and self.bot_paused_until > now

    def window_live(self, now: datetime) -> bool:
        """The pair's window is open: its session expires after now, so a text continues it."""
        session = self.session if self.session_id is not None else None  # No query for no session.
        return session is not None and session.expire_date > now


class MessageQuerySet(models.QuerySet):
    def advance_status(self, status: str, error: str = "") -> int:
        """Move the messages to a status later than theirs; return how many moved."""
        rank = Message.STATUS_ORDER.get(status)
        if rank is None:
            return 0
        earlier = [name for name, order in Message.STATUS_ORDER.items() if order < rank]
        return self.filter(status__in=earlier).update(status=status, error=error)

    def ready(self, now: datetime) -> MessageQuerySet:
        """Texts the worker may send now: pending or scheduled, their time has come, and not of a
        paused or canceled broadcast."""
        running = Q(broadcast__isnull=True) | Q(broadcast__status__in=Broadcast.RUNNING)
        due = Q(send_at__isnull=True) | Q(send_at__lte=now)
        return self.in_outbox().filter(due, running, status__in=Message.READY)

    def due_later(self, now: datetime) -> MessageQuerySet:
        """Texts the worker is to send after now: scheduled, or backing off after a 429."""
        return self.in_outbox().filter(status__in=Message.READY, send_at__gt=now)

    def sending(self) -> MessageQuerySet:
        """Texts a worker has claimed and not heard back from Twilio about."""
        return self.in_outbox().filter(status=Message.Status.SENDING)

    def in_outbox(self) -> MessageQuerySet:
        """Texts the worker has not finished with, read on the outbox's partial indexes. SQLite
        uses one only for a WHERE with its very terms, written out (indexes.Constant): without
        them it reads every text, inside the writer lock for some of these queries."""
        return self.filter(one_of("status", OUTBOX_WAITING))

    def from_twilio(self, sender: str) -> MessageQuerySet:
        """Texts Twilio delivered from this sender's number, by SMS or WhatsApp: a real customer's."""
        number = number_of(sender)
        real = self.filter(direction=Message.Direction.INBOUND, simulated=False)
        if number is None:
            return real.filter(conversation__sender=sender)
        return real.filter(conversation__sender_number=number)


class Message(models.Model):
    class Direction(models.TextChoices):
        INBOUND = "inbound"
        OUTBOUND = "outbound"

    class Status(models.TextChoices):
        """An inbound text is received; an outbound one goes through our outbox (scheduled,
        pending, sending, unknown) and then Twilio's own statuses."""

        RECEIVED = "received"
        SCHEDULED = "scheduled"
        PENDING = "pending"
        SENDING = "sending"
        ACCEPTED = "accepted"
        QUEUED = "queued"
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        PARTIALLY_DELIVERED = "partially_delivered", "Partially delivered"
        UNDELIVERED = "undelivered"
        FAILED = "failed"
        CANCELED = "canceled"
        UNKNOWN = "unknown", "Unknown (may have been sent)"

    class Outcome(models.TextChoices):
        """What the app decided about an inbound text, kept so that no page works it out again."""

        COUNTED = "counted"
        PAUSED = "paused", "Counted, bot paused (staff have the conversation)"
        BLOCKED = "blocked", "Blocked caller"
        OPTED_OUT = "opted_out", "Opted out (STOP)"
        IGNORED_OPTED_OUT = "ignored_opted_out", "Ignored while opted out"
        HELP = "help", "HELP (Twilio answers)"

    class Priority(models.IntegerChoices):  # The worker sends a person's text ahead of bulk.
        BULK = 0
        PERSON = 10, "Staff text (goes ahead of bulk)"

    READY = (Status.PENDING, Status.SCHEDULED)  # What the outbox's worker may claim.
    NOT_SENT = (Status.FAILED, Status.UNDELIVERED, Status.CANCELED)  # Reached nobody.

    # Twilio's statuses of an outbound text, in the order they can happen. Callbacks may
    # arrive out of order, so a status never replaces a later one (any replaces `unknown`).
    STATUS_ORDER = {
        "": 0,
        Status.PENDING: 0,
        Status.UNKNOWN: 0,
        Status.ACCEPTED: 1,
        Status.SCHEDULED: 1,
        Status.QUEUED: 2,
        Status.SENDING: 3,
        Status.SENT: 4,
        Status.DELIVERED: 5,
        Status.UNDELIVERED: 5,
        Status.FAILED: 5,
        Status.CANCELED: 5,
        Status.PARTIALLY_DELIVERED: 5,
        Status.READ: 6,
    }

    # No index of its own: "message_history" below starts with this column and serves it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    direction = models.CharField(max_length=8, choices=Direction.choices)
    sid = models.CharField(
        "MessageSid", max_length=64, null=True, blank=True, unique=True, help_text="Twilio's MessageSid."
    )
    body = models.TextField(blank=True)
    media_urls = models.JSONField(default=list, blank=True)
    reply = models.TextField(blank=True, help_text="What the app answered (empty: no reply).")
    status = models.CharField(max_length=20, blank=True, choices=Status.choices)
    # Empty for outbound texts, and for inbound ones recorded before outcomes were kept
    # whose outcome could not be known afterwards.
    outcome = models.CharField(max_length=20, blank=True, default="", choices=Outcome.choices)
    error = models.CharField(max_length=200, blank=True, help_text="Why Twilio did not deliver it.")
    num_segments = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="How many SMS segments Twilio counted (inbound: NumSegments)."
    )
    simulated = models.BooleanField(
        default=False, help_text="Sent from the simulator or `manage.py sms`, not by Twilio."
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The staff member who sent this outbound text.",
    )
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="Not sent before (scheduled, or a retry)."
    )
    # PROTECT: a deleted broadcast would leave its waiting texts to go out with nothing left to
    # pause or cancel them. Its messages may be deleted (pruned) first; then it may go.
    broadcast = models.ForeignKey(
        Broadcast, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    priority = models.PositiveSmallIntegerField(default=0, db_default=0, choices=Priority.choices)
    attempts = models.PositiveSmallIntegerField(
        default=0, db_default=0, help_text="Times the worker has tried to send it."
    )
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worker last began to send it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        permissions = [
            ("use_simulator", "Can text the app from the SMS simulator"),
            ("redact_message", "Can redact a message's body"),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_history"),
            *MESSAGE_INDEXES,  # The dashboard's, message_created_at_kind serving created_at's own.
            # Small: only the rows waiting in the outbox are in them. The worker claims the
            # first in its order (priority, then age), found without sorting the backlog for
            # each text; texts due later are found by their time.
            models.Index(
                fields=["-priority", "id"],
                name="message_outbox_order",
                condition=Q(status__in=OUTBOX_WAITING),
            ),
            models.Index(fields=["send_at"], name="message_outbox", condition=Q(status__in=OUTBOX_WAITING)),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.sid or self.pk}"

    @property
    def media(self) -> list[tuple[str, bool]]:
        """Each media URL with whether it may be a link: only http(s), never javascript: and kin."""
        return [(url, url.lower().startswith(("http://", "https://"))) for url in self.media_urls]
