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

from django.contrib.auth.models import User
from django.db.models import Case, CharField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from conversations.models import Broadcast, Caller, Message
from conversations.outbox import texts_enqueue
from conversations.pairs import in_pair_transaction
from conversations.phone import number_of
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
        # As stored (E.164 text): read as PhoneNumbers, each would be parsed once more.
        stored = ExpressionWrapper(F("phone_number"), output_field=CharField())
        their_numbers = list(callers.annotate(stored_number=stored).values_list("stored_number", flat=True))
    broadcast = Broadcast(body=body, sent_by=sent_by, send_at=send_at)
    recipients: dict[str, None] = {}  # By E.164 number, in the order given.
    for their in their_numbers or ():
        broadcast.selected += 1
        number = number_of(their)
        if number is None:
            broadcast.undeliverable += 1  # Not a phone number: no text can reach it.
        elif number in recipients:
            broadcast.duplicates += 1
        else:
            recipients[number] = None
    texts_enqueue(
        pairs=[(our_number, number) for number in recipients],
        body=body,
        sent_by=sent_by,
        send_at=send_at,
        priority=Message.Priority.BULK,
        broadcast=broadcast,
    )
    return broadcast


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
