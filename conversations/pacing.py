"""Pacing: one sender's texts never leave faster than SMS_SEND_RATE segments a second.

Each sender (our number, or the Messaging Service) has a SenderPace row saying when its next
segment may leave. A worker reserves a slot under that row's lock, in the transaction that
claims the text (on SQLite the app's writer lock already serializes it), so every worker
process on every host keeps the one pace.

Every worker sending for the sender queues for that row lock, held from the reservation until
the claim commits: the reservation is one UPDATE ... RETURNING, the claim's last statement, so
the lock is held for that statement and the COMMIT. (Read, then saved through the ORM, with the
claim's own UPDATE after it, it was held for four round trips.)

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
from django.db import DEFAULT_DB_ALIAS, connections

from conversations.models import SenderPace

# How far ahead a slot may be reserved: a worker holds a claimed text this long at most before
# its POST, time enough for the other workers' POSTs in flight at a fast rate.
PACE_AHEAD = 1.0

_TABLE = SenderPace._meta.db_table
# The slot: the sender's next free time, or now if it was free before. The WHERE leaves the row
# alone when that slot is further off than PACE_AHEAD. SET reads the row's old values on both
# databases, so a slot that was free is the one whose new next_at is now + step exactly.
_RESERVE = f"""
    UPDATE {_TABLE} SET next_at = {{greatest}}(next_at, %(now)s) + %(step)s
    WHERE sender = %(sender)s AND next_at - %(now)s <= %(ahead)s
    RETURNING next_at"""
_RESERVE_SQL = {
    "postgresql": _RESERVE.format(greatest="GREATEST"),
    "sqlite": _RESERVE.format(greatest="MAX"),  # SQLite's MAX() of two values is scalar.
}
_NEXT_AT = f"SELECT next_at FROM {_TABLE} WHERE sender = %(sender)s"


@dataclass(frozen=True)
class Slot:
    at: float  # time.time() when the text may leave
    late: bool = False  # The sender's slot was free before it was asked for: no one keeps up.


def pace_reserve(sender: str, segments: int) -> Slot | float:
    """Reserve the sender's next slot for a text of `segments` segments, at most PACE_AHEAD
    seconds from now; or, when the next free slot is further off, reserve nothing and return
    the seconds until it is within reach. Call it last in the transaction that claims the text."""
    db = connections[DEFAULT_DB_ALIAS]
    step = max(segments, 1) / settings.SMS_SEND_RATE
    now = time.time()
    params = {"now": now, "step": step, "sender": sender, "ahead": PACE_AHEAD}
    with db.cursor() as cursor:
        cursor.execute(_RESERVE_SQL[db.vendor], params)
        reserved = cursor.fetchone()
        if reserved is None:
            cursor.execute(_NEXT_AT, params)
            found = cursor.fetchone()
            if found is not None:
                # Another worker may have moved it meanwhile: only ever a pause before trying again.
                return max(found[0] - now - PACE_AHEAD, 0.0)
            SenderPace.objects.bulk_create([SenderPace(sender=sender)], ignore_conflicts=True)
            cursor.execute(_RESERVE_SQL[db.vendor], params)
            reserved = cursor.fetchone()
    next_at = reserved[0]
    if next_at <= now + step:  # The same sum as the database's: the slot was free, it is now.
        return Slot(now, late=True)
    return Slot(next_at - step)
