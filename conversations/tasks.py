"""The outbox's task, on Django's Tasks API: a tick that sends what may go now.

A tick holds no state: the rows are the truth, so a tick lost, run twice, or left RUNNING by a
killed worker (django-tasks-db never runs such a task again) loses and doubles nothing. What
wakes the worker:

- new rows: `outbox_wake()` in the transaction that commits them enqueues a tick on commit;
- later work (a scheduled text, a retry's backoff): the tick that finds it enqueues one for
  then (`run_after`);
- a backlog the running ticks cannot send at the pace: a tick that finds its sender's slot
  already free (nobody keeps up) enqueues one helper tick (`outbox_help()`), unless a helper
  is waiting already: one that no idle process took says every process is busy, and more would
  only pile up in the queue; a tick out of time with texts to go enqueues its own successor
  (`outbox_successor()`), so their number holds;
- a killed tick, a lost task: while texts wait, each tick first enqueues its successor
  OUTBOX_POLL seconds on, so the chain outlives it, and a restarted worker finds that task.

OutboxWake keeps the time of the earliest tick known to be enqueued, so wakes in a burst (a
thousand rows, or ticks back to back) enqueue one task, not one each, and the time of the
helper that waits, if one does.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import task

from conversations.metrics import outbox_ticked
from conversations.models import Message, OutboxWake
from conversations.pairs import in_pair_transaction

logger = logging.getLogger(__name__)

# A tick wanted this close after one already enqueued is that one.
SAME_TICK = timedelta(seconds=1)
# A tick this long past its time was lost (or its worker is down): another is enqueued.
LOST_AFTER = timedelta(seconds=30)


@task()
def outbox_tick(helper: bool = False) -> int:
    """Send every text that may go now (for a while at most); return how many were tried."""
    from conversations.outbox_worker import outbox_drain  # The worker's side only.

    outbox_ticked()
    in_pair_transaction(partial(_tick_begin, helper))
    return outbox_drain()


def _tick_begin(helper: bool) -> None:
    now = timezone.now()
    if helper:  # A process was free for it: the next tick behind the pace may ask for another.
        OutboxWake.objects.filter(pk=1).update(helper_at=None)
    # This tick is the one that was due: texts committed from now on need one of their own.
    OutboxWake.objects.filter(pk=1, wake_at__lte=now + SAME_TICK).update(wake_at=None)
    successor = now + timedelta(seconds=settings.OUTBOX_POLL)
    # Texts to send by then, or in flight: the successor first, so that the chain outlives a
    # tick killed while sending them. (A text due later has a tick of its own at its time.)
    if Message.objects.ready(successor).union(Message.objects.sending()).exists():
        outbox_wake(successor)


def outbox_wake(at: datetime | None = None) -> None:
    """Make sure a tick runs at `at` (now by default), once the current transaction commits.

    Nothing is enqueued when a tick is already due by then and has not begun; one due later is
    replaced, and so is one long past its time (lost, or its worker gone).
    """
    now = timezone.now()
    at = max(at or now, now)
    lost = Q(wake_at__lt=now - LOST_AFTER)
    stale_or_later = Q(wake_at__isnull=True) | lost | Q(wake_at__gt=at + SAME_TICK)
    woken = OutboxWake.objects.filter(pk=1).filter(stale_or_later).update(wake_at=at)
    if not woken and not OutboxWake.objects.filter(pk=1).exists():
        OutboxWake.objects.bulk_create([OutboxWake(pk=1, wake_at=at)], ignore_conflicts=True)
        woken = 1
    if woken:
        transaction.on_commit(lambda: _enqueue(at))


def _enqueue(at: datetime, helper: bool = False) -> None:
    later = at if at > timezone.now() + SAME_TICK else None
    try:
        outbox_tick.using(run_after=later).enqueue(helper=helper)
    except Exception:
        # The rows are committed and the request must not fail for it: the next wake, or a
        # tick already in the chain, sends them.
        logger.exception("outbox: could not enqueue a tick")


def outbox_help() -> bool:
    """One more tick now, beside those running, once the current transaction commits: for a
    backlog that the ticks running cannot send at the sender's pace (each waits for Twilio's
    answer before its next text). An idle worker process takes it. None while another helper
    waits (unless that one was lost): return whether one was enqueued."""
    now = timezone.now()
    free = Q(helper_at__isnull=True) | Q(helper_at__lt=now - LOST_AFTER)
    if not OutboxWake.objects.filter(pk=1).filter(free).update(helper_at=now):
        return False
    transaction.on_commit(lambda: _enqueue(now, helper=True))
    return True


def outbox_successor() -> None:
    """A tick now that goes on where this one stops (out of time with texts to go), once the
    current transaction commits: one for one, so the number of ticks sending holds."""
    transaction.on_commit(lambda: _enqueue(timezone.now()))


def outbox_rouse() -> None:
    """A tick now, whatever OutboxWake says: for a worker (re)starting, so that texts waiting
    since it stopped go at once, on any backend."""

    def work() -> None:
        OutboxWake.objects.filter(pk=1).update(wake_at=None)
        outbox_wake()

    in_pair_transaction(work)
