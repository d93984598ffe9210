"""Pacing: one sender's texts never leave faster than SMS_SEND_RATE segments a second.

Each sender (our number, or the Messaging Service) has a SenderPace row saying when its next
segment may leave. A worker reserves a slot under that row's lock, in the transaction that
claims the text (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the app's writer lock already
serializes it), so every worker process on every host keeps the one pace. A sender idle for a
while starts again from now: unused seconds are never saved up into a burst.
"""

from __future__ import annotations

import time

from django.conf import settings

from conversations.models import SenderPace


def pace_reserve(sender: str, segments: int) -> float:
    """Reserve the sender's next slot for a text of `segments` segments and return 0; or, when
    the slot is not free yet, reserve nothing and return the seconds until it is. Call it in
    the transaction that claims the text."""
    pace = SenderPace.objects.select_for_update().filter(sender=sender).first()
    if pace is None:
        SenderPace.objects.bulk_create([SenderPace(sender=sender)], ignore_conflicts=True)
        pace = SenderPace.objects.select_for_update().get(sender=sender)
    now = time.time()
    if pace.next_at > now:
        return pace.next_at - now
    pace.next_at = now + max(segments, 1) / settings.SMS_SEND_RATE
    pace.save(update_fields=["next_at"])
    return 0.0
