"""The outbox: every text the app starts is committed as an outbound Message before anything
calls Twilio, and the worker (outbox_worker.py) sends it.

`texts_enqueue()` takes any number of (our number, their number) pairs and costs the same few
statements for one or a thousand: the refusals known up front (a blocked Caller, a number
marked undeliverable, a pair opted out) are decided with set-based queries and recorded as
`canceled` rows with the reason; the rest become `pending` rows (`scheduled` with a send-at);
a tick of the worker is enqueued once the rows are committed. A single text staff send
pauses the bot's replies in its conversation for HANDOFF_PAUSE, in the same transaction. Texts
in the recipient's quiet hours are held, and not recorded, unless forced; a broadcast's or a
scheduled text waits for the end of them instead (its send-at moved to the recipient's
morning). `text_enqueue()` is the one-text form, which raises instead of recording a refusal,
for staff and commands that wait for an answer; `text_cancel()` cancels a text that has not
gone yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from conversations.broadcast_rows import broadcast_rows_insert, conversations_insert
from conversations.models import Broadcast, Conversation, Message
from conversations.pairs import in_pair_transaction, outbound_accepted
from conversations.phone import number_of
from conversations.quiet_hours import quiet_hours_end, quiet_hours_refusal
from conversations.refusals import Refusal, sending_refusals
from conversations.segments import segments_of
from conversations.tasks import outbox_wake

Status = Message.Status
# Rows per INSERT, and numbers per `IN (...)`: under SQLite's 999 variables of old versions.
BATCH = 500


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
    broadcast: Broadcast | None = None,
) -> Enqueued:
    """Commit one outbound text per (our number, their number) pair, to be sent by the worker.

    An empty number of ours means TWILIO_FROM_NUMBER; with neither, the Messaging Service
    sends and the row waits under the service's SID until Twilio names the sender.

    Quiet hours: a text staff send now is held (unless forced); a broadcast's or a scheduled
    one waits for the end of them, by the recipient's clock (its send-at moved).
    A new `broadcast` is saved in the same transaction as its rows, with the refusals counted
    on it instead of recorded as rows.
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
    defer = send_at is not None or broadcast is not None
    wanted: dict[tuple[str, str], datetime | None] = {}  # Each pair once, in the order given.
    now = timezone.now()
    for our, their in pairs:
        if force:
            wanted[our or default, their] = send_at
        elif defer:
            wanted[our or default, their] = quiet_hours_end(their, send_at or now) or send_at
        elif held := quiet_hours_refusal(their):
            result.held.append((their, held))
        else:
            wanted[our or default, their] = send_at
    if wanted or broadcast is not None:
        work = partial(_rows_commit, wanted, body, sent_by, priority, through_service, broadcast, result)
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
    wanted: dict[tuple[str, str], datetime | None],
    body: str,
    sent_by: User | None,
    priority: int,
    through_service: bool,
    broadcast: Broadcast | None,
    result: Enqueued,
) -> None:
    pairs = list(wanted)
    refusals = sending_refusals(pairs, through_service=through_service) if pairs else {}
    segments = segments_of(body).count
    if broadcast is not None:
        _broadcast_save(broadcast, refusals.values(), sendable=len(pairs) - len(refusals))
        groups: dict[tuple[str, datetime | None], list[str]] = {}
        for pair in pairs:
            if pair not in refusals:
                groups.setdefault((pair[0], wanted[pair]), []).append(pair[1])
        conversations_insert(
            [(their, our, number_of(their) or "") for our, their in pairs if (our, their) not in refusals]
        )
        inserted = broadcast_rows_insert(
            groups,
            body=body,
            segments=segments,
            sent_by=sent_by,
            priority=priority,
            broadcast=broadcast,
            batch=BATCH,
        )
        if inserted:
            _wake_for([send_at for _, send_at in groups])
        return
    conversation_ids = _conversations_of(pairs)
    rows = []
    for pair in pairs:
        refused, send_at = refusals.get(pair), wanted[pair]
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
    created = Message.objects.bulk_create(rows, batch_size=BATCH)
    result.messages = [message for message in created if message.status != Status.CANCELED]
    if sent_by is not None:
        _handoff([message for message in result.messages if message.send_at is None])
    if result.messages:
        _wake_for([message.send_at for message in result.messages])


def _handoff(messages: list[Message]) -> None:
    """Staff step in from the moment they press Send, not once Twilio has the text: a customer's
    text meanwhile must not get the bot's reply (SPEC 5). A broadcast hands over nothing, nor
    does a text scheduled for later: staff are not in the conversation yet."""
    if messages and settings.HANDOFF_PAUSE > 0:
        paused_until = timezone.now() + timedelta(seconds=settings.HANDOFF_PAUSE)
        paused = {message.conversation_id for message in messages}
        Conversation.objects.filter(pk__in=paused).update(bot_paused_until=paused_until)


def _wake_for(times: list[datetime | None]) -> None:
    """A tick once these rows are committed, or at the earliest time one of them may go."""
    outbox_wake(None if None in times else min(t for t in times if t is not None))


def _broadcast_save(broadcast: Broadcast, refusals: Iterable[Refusal], *, sendable: int) -> None:
    broadcast.refusals_count(refusal.kind for refusal in refusals)
    if not sendable:
        broadcast.status = Broadcast.Status.COMPLETED  # Nobody to text: nothing to wait for.
    broadcast.save()


def _conversations_of(pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Each pair's conversation id, the missing ones created: a few statements per BATCH pairs."""
    Conversation.objects.bulk_create(
        [
            Conversation(sender=their, recipient=our, sender_number=number_of(their) or "")
            for our, their in pairs
        ],
        ignore_conflicts=True,
        batch_size=BATCH,
    )
    ids: dict[tuple[str, str], int] = {}
    by_ours: dict[str, list[str]] = {}
    for our, their in pairs:
        by_ours.setdefault(our, []).append(their)
    for our, theirs in by_ours.items():
        for start in range(0, len(theirs), BATCH):  # SQLite's limit of variables in a statement.
            found = Conversation.objects.filter(recipient=our, sender__in=theirs[start : start + BATCH])
            ids.update({(our, their): pk for their, pk in found.values_list("sender", "pk")})
    return ids


def text_cancel(message_id: int, *, by: User | None = None) -> Message:
    """Cancel an outbound text that has not gone yet (pending or scheduled), saying by whom;
    SendError for one that is not waiting (sent, being sent, or no such text)."""
    who = f" by {by.get_username()}" if by is not None else ""
    reason = f"Canceled{who} on {timezone.localtime():%Y-%m-%d %H:%M}."
    waiting = Message.objects.filter(
        pk=message_id, direction=Message.Direction.OUTBOUND, status__in=Message.READY
    )
    if not in_pair_transaction(partial(waiting.update, status=Status.CANCELED, error=reason)):
        message = Message.objects.filter(pk=message_id, direction=Message.Direction.OUTBOUND).first()
        if message is None:
            raise SendError(f"There is no outbound text {message_id}.")
        raise SendError(
            f"Text {message_id} is {message.get_status_display().lower()}: it can no longer be canceled."
        )
    return Message.objects.get(pk=message_id)


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
