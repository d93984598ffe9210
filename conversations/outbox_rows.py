"""The outbox's bookkeeping: each sender's pace, and when the worker is next woken.

Both are rows, not process state, so that every worker process and host shares them: a pace
reserved under the row's lock is a pace all of them keep.
"""

from __future__ import annotations

from django.db import models

# Outbound statuses of texts the worker has not finished with (the outbox's partial index).
OUTBOX_WAITING = ("pending", "scheduled", "sending")


class SenderPace(models.Model):
    """When the next segment from one sender (our number, or the Messaging Service) may leave."""

    sender = models.CharField(max_length=64, unique=True)
    # Seconds since the epoch (time.time()): wall-clock time that every host shares, and that
    # tests which fake Django's clock do not stop.
    next_at = models.FloatField(default=0.0)

    def __str__(self) -> str:
        return self.sender


class OutboxWake(models.Model):
    """One row: the time of the earliest tick known to be enqueued, and when a helper tick was
    enqueued that no worker has begun yet, so that ticks are not piled up."""

    wake_at = models.DateTimeField(null=True, blank=True)
    helper_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"next tick at {self.wake_at}"
