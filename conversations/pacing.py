"""Pacing: one sender's texts never leave faster than SMS_SEND_RATE segments a second.

Each sender (our number, or the Messaging Service) has a SenderPace row saying when its next
segment may leave. A worker reserves a slot under that row's lock, in the transaction that
claims the text (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the app's writer lock already
serializes it), so every worker process on every host keeps the one pace.

A slot may be reserved a little ahead (PACE_AHEAD): the worker claims the text, waits for the
slot outside any transaction, and POSTs then. Slots follow each other 1/SMS_SEND_RATE apart
while texts wait, so the rate is held exactly, whatever time the claims take, and no worker
polls the lock for a slot that is not free yet. A sender idle for a while starts again from
now: unused seconds are never saved up into a burst.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings

from conversations.models import SenderPace

# How far ahead a slot may be reserved: a worker holds a claimed text this long at most before
# its POST, time enough for the other workers' POSTs in flight at a fast rate.
PACE_AHEAD = 1.0


@dataclass(frozen=True)
class Slot:
    at: float  # time.time() when the text may leave
    late: bool = False  # The sender's slot was free before it was asked for: no one keeps up.


def pace_reserve(sender: str, segments: int) -> Slot | float:
    """Reserve the sender's next slot for a text of `segments` segments, at most PACE_AHEAD
    seconds from now; or, when the next free slot is further off, reserve nothing and return
    the seconds until it is within reach. Call it in the transaction that claims the text."""
    pace = SenderPace.objects.select_for_update().filter(sender=sender).first()
    if pace is None:
        SenderPace.objects.bulk_create([SenderPace(sender=sender)], ignore_conflicts=True)
        pace = SenderPace.objects.select_for_update().get(sender=sender)
    now = time.time()
    start = max(pace.next_at, now)
    if start - now > PACE_AHEAD:
        return start - now - PACE_AHEAD
    late = pace.next_at < now
    pace.next_at = start + max(segments, 1) / settings.SMS_SEND_RATE
    pace.save(update_fields=["next_at"])
    return Slot(start, late)
