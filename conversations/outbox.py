"""The outbox: every text the app starts is committed as an outbound Message before anything
calls Twilio, and the worker (outbox_worker.py) sends it.

`texts_enqueue()` takes any number of (our number, their number) pairs and costs the same few
statements for one or a thousand: the refusals known up front (a blocked Caller, a number
marked undeliverable, a pair opted out) are decided with set-based queries and recorded as
`canceled` rows with the reason; the rest become `pending` rows (`scheduled` with a send-at);
a tick of the worker is enqueued once the rows are committed. A text staff send (sent_by)
pauses the bot's replies in its conversation for HANDOFF_PAUSE, in the same transaction. Texts in the recipient's quiet
hours are held, and not recorded, unless forced. `text_enqueue()` is the one-text form, which
raises instead of recording a refusal, for staff and commands that wait for an answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.pairs import in_pair_transaction, outbound_accepted
from conversations.phone import number_of
from conversations.quiet_hours import quiet_hours_refusal
from conversations.refusals import sending_refusals
from conversations.segments import segments_of
from conversations.tasks import outbox_wake

Status = Message.Status


class SendError(Exception):
    """The text will not go out; the message says why, in words staff can act on."""


class QuietHoursError(SendError):
    """The recipient's local time is in QUIET_HOURS: the text may go later, or be forced."""


@dataclass
class Enqueued:
    """What became of each recipient: a row the worker will send, refused, or held."""

    messages: list[Message] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (their number, why), recorded
    held: list[tuple[str, str]] = field(default_factory=list)  # (their number, why), not recorded


def texts_enqueue(
    *,
    pairs: Sequence[tuple[str, str]],
    body: str,
    sent_by: User | None = None,
    force: bool = False,
    priority: int = Message.Priority.BULK,
    send_at: datetime | None = None,
) -> Enqueued:
    """Commit one outbound text per (our number, their number) pair, to be sent by the worker.

    An empty number of ours means TWILIO_FROM_NUMBER; with neither, the Messaging Service
    sends and the row waits under the service's SID until Twilio names the sender.
    """
    through_service = bool(settings.TWILIO_MESSAGING_SERVICE_SID)
    default = settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID
    if not default and not all(our for our, _ in pairs):
        raise SendError(
            "Give the number to send from, or set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID."
        )
    if settings.SMS_BACKEND == "twilio" and not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
        raise SendError(
            "Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send texts (or SMS_BACKEND=console)."
        )
    result = Enqueued()
    wanted: dict[tuple[str, str], None] = {}  # Each pair once, in the order given.
    for our, their in pairs:
        if not force and (held := quiet_hours_refusal(their)):
            result.held.append((their, held))
        else:
            wanted[our or default, their] = None
    if wanted:
        work = partial(_rows_commit, list(wanted), body, sent_by, priority, send_at, through_service, result)
        in_pair_transaction(work)
    return result


def text_enqueue(
    *,
    our_number: str = "",
    their_number: str,
    body: str,
    sent_by: User | None = None,
    force: bool = False,
    send_at: datetime | None = None,
) -> Message:
    """One text that a person waits for: it goes ahead of bulk; a refusal is raised (and recorded)."""
    result = texts_enqueue(
        pairs=[(our_number, their_number)],
        body=body,
        sent_by=sent_by,
        force=force,
        priority=Message.Priority.PERSON,
        send_at=send_at,
    )
    if result.held:
        raise QuietHoursError(result.held[0][1])
    if result.refused:
        raise SendError(result.refused[0][1])
    return result.messages[0]


def _rows_commit(
    pairs: list[tuple[str, str]],
    body: str,
    sent_by: User | None,
    priority: int,
    send_at: datetime | None,
    through_service: bool,
    result: Enqueued,
) -> None:
    refusals = sending_refusals(pairs, through_service=through_service)
    Conversation.objects.bulk_create(
        [
            Conversation(sender=their, recipient=our, sender_number=number_of(their) or "")
            for our, their in pairs
        ],
        ignore_conflicts=True,
    )
    ours, theirs = {our for our, _ in pairs}, {their for _, their in pairs}
    found = Conversation.objects.filter(recipient__in=ours, sender__in=theirs).values_list(
        "sender", "recipient", "pk"
    )
    conversation_ids = {(our, their): pk for their, our, pk in found}
    segments = segments_of(body).count
    rows = []
    for pair in pairs:
        refused = refusals.get(pair)
        rows.append(
            Message(
                conversation_id=conversation_ids[pair],
                direction=Message.Direction.OUTBOUND,
                body=body,
                status=Status.CANCELED if refused else (Status.SCHEDULED if send_at else Status.PENDING),
                error=(refused or "")[:200],
                num_segments=segments,
                sent_by=sent_by,
                priority=priority,
                send_at=send_at,
            )
        )
        if refused:
            result.refused.append((pair[1], refused))
    result.messages = [
        message for message in Message.objects.bulk_create(rows) if message.status != Status.CANCELED
    ]
    if sent_by is not None and settings.HANDOFF_PAUSE > 0 and result.messages:
        # Staff have stepped in from the moment they press Send, not once Twilio has the text:
        # a customer's text meanwhile must not get the bot's reply (SPEC 5). Refused ones don't.
        paused_until = timezone.now() + timedelta(seconds=settings.HANDOFF_PAUSE)
        paused = {message.conversation_id for message in result.messages}
        Conversation.objects.filter(pk__in=paused).update(bot_paused_until=paused_until)
    if result.messages:
        outbox_wake(send_at)  # A tick once these rows are committed (or at their time).


def outbox_report(outbox_id: str, *, sid: str, status: str) -> None:
    """A status callback names its row (?outbox=ID): fill in the SID and status of a text whose
    answer the worker never got (`unknown`) or has yet to commit (`sending`)."""
    in_flight = (Status.SENDING, Status.UNKNOWN)
    rows = Message.objects.filter(
        direction=Message.Direction.OUTBOUND, sid__isnull=True, status__in=in_flight
    )
    message = (
        rows.filter(pk=int(outbox_id)).select_related("conversation").first() if outbox_id.isdigit() else None
    )
    if message is None or Message.objects.filter(sid=sid).exists():
        return
    if message.status == Status.UNKNOWN and status not in Message.NOT_SENT:
        # Twilio had it after all: the pair's window opens as for any accepted text.
        outbound_accepted(message, sid=sid, status=status)
    else:
        rows.filter(pk=message.pk).update(sid=sid, status=status)
