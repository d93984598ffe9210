"""What staff and commands do with a broadcast: create it, pause, resume and cancel it; and what
the worker tells it: started, completed.

Creation goes through the outbox like every text (texts_enqueue): the recipients deduplicated
by number however written, the refusals (blocked, opted out, undeliverable) counted on the
Broadcast instead of recorded as rows, the rows created in bulk in the Broadcast's transaction.
Pause and cancel act on the next claim: the worker claims only rows of a running broadcast
(MessageQuerySet.ready()), so at most the text it is sending goes out after either.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Case, CharField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from conversations.models import Broadcast, Caller, Message
from conversations.outbox import texts_enqueue
from conversations.pairs import in_pair_transaction
from conversations.phone import number_of
from conversations.refusals import sending_refusals
from conversations.tasks import outbox_wake

Status = Broadcast.Status
LIVE = (Status.SCHEDULED, Status.SENDING, Status.PAUSED)  # Not yet completed or canceled.


def broadcast_create(
    *,
    body: str,
    their_numbers: Iterable[str] | None = None,
    callers: QuerySet[Caller] | None = None,
    sent_by: User | None = None,
    send_at: datetime | None = None,
    our_number: str = "",
) -> Broadcast:
    """A broadcast of `body` to the numbers, or to the callers (blocked ones are counted as
    such), from our number (empty: TWILIO_FROM_NUMBER or the Messaging Service); committed
    with one text per recipient. Raises outbox.SendError when no sender is configured."""
    if callers is not None:
        their_numbers = caller_numbers(callers)
    broadcast = Broadcast(body=body, sent_by=sent_by, send_at=send_at)
    texts_enqueue(
        pairs=[(our_number, number) for number in _recipients(broadcast, their_numbers or ())],
        body=body,
        sent_by=sent_by,
        send_at=send_at,
        priority=Message.Priority.BULK,
        broadcast=broadcast,
    )
    return broadcast


def broadcast_preview(*, their_numbers: Iterable[str], our_number: str = "") -> Broadcast:
    """An unsaved Broadcast with the counts broadcast_create() would give it, for staff to
    confirm: two queries per 500 numbers, nothing written."""
    preview = Broadcast()
    ours = our_number or settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID
    pairs = [(ours, their) for their in _recipients(preview, their_numbers)]
    refusals = sending_refusals(pairs, through_service=bool(settings.TWILIO_MESSAGING_SERVICE_SID))
    preview.refusals_count(refusal.kind for refusal in refusals.values())
    return preview


def caller_numbers(callers: QuerySet[Caller]) -> list[str]:
    """The callers' numbers as stored (E.164 text): read as PhoneNumbers, each would be parsed
    once more, which costs a broadcast to thousands more than all its statements."""
    stored = ExpressionWrapper(F("phone_number"), output_field=CharField())
    return list(callers.annotate(stored_number=stored).values_list("stored_number", flat=True))


def _recipients(broadcast: Broadcast, their_numbers: Iterable[str]) -> list[str]:
    """Each E.164 number once, in the order given; the broadcast counts what it was given, the
    duplicates, and what is no phone number at all (undeliverable: no text can reach it)."""
    recipients: dict[str, None] = {}
    for their in their_numbers:
        broadcast.selected += 1
        number = number_of(their)
        if number is None:
            broadcast.undeliverable += 1
        elif number in recipients:
            broadcast.duplicates += 1
        else:
            recipients[number] = None
    return list(recipients)


def broadcast_pause(broadcast: Broadcast) -> bool:
    """Stop claiming its texts (the one being sent, if any, goes); False if it is not running."""
    paused = Broadcast.objects.filter(pk=broadcast.pk, status__in=Broadcast.RUNNING).update(
        status=Status.PAUSED
    )
    broadcast.refresh_from_db(fields=["status"])
    return bool(paused)


def broadcast_resume(broadcast: Broadcast) -> bool:
    """Go on where it paused, and wake the worker; False if it was not paused."""

    def work() -> int:
        running = Case(
            When(started_at__isnull=True, then=Value(Status.SCHEDULED)), default=Value(Status.SENDING)
        )
        resumed = Broadcast.objects.filter(pk=broadcast.pk, status=Status.PAUSED).update(status=running)
        if resumed:
            outbox_wake()  # The tick wakes itself again for its texts due later.
        return resumed

    resumed = in_pair_transaction(work)
    broadcast.refresh_from_db(fields=["status"])
    return bool(resumed)


def broadcast_cancel(broadcast: Broadcast, *, by: User | None = None) -> int:
    """Cancel it and each of its texts still waiting, with the reason; those sent (or being
    sent) stay as they are. Returns how many texts were canceled."""
    at = timezone.localtime()
    who = f" by {by.get_username()}" if by is not None else ""
    reason = f"The broadcast was canceled{who} on {at:%Y-%m-%d %H:%M}."

    def work() -> int:
        Broadcast.objects.filter(pk=broadcast.pk, status__in=LIVE).update(status=Status.CANCELED)
        waiting = Message.objects.filter(broadcast=broadcast.pk, status__in=Message.READY)
        return waiting.update(status=Message.Status.CANCELED, error=reason[:200])

    canceled = in_pair_transaction(work)
    broadcast.refresh_from_db(fields=["status"])
    return canceled


def broadcast_started(broadcast_id: int, now: datetime) -> None:
    """The worker claimed one of its texts: the first one makes it `sending`."""
    Broadcast.objects.filter(pk=broadcast_id, status=Status.SCHEDULED).update(
        status=Status.SENDING, started_at=now
    )


def broadcasts_complete() -> int:
    """Running broadcasts with no text left waiting (or being sent by the worker) are
    `completed`; return how many. Twilio's own `sending` (its SID known) is past the outbox."""
    in_outbox = Q(status__in=Message.READY) | Q(status=Message.Status.SENDING, sid__isnull=True)
    waiting = Message.objects.filter(in_outbox, broadcast=OuterRef("pk"))
    return (
        Broadcast.objects.filter(status__in=Broadcast.RUNNING)
        .exclude(Exists(waiting))
        .update(status=Status.COMPLETED)
    )
