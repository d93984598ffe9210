"""The outbox's bookkeeping: each sender's pace, and when the worker is next woken.

Both are rows, not process state, so that every worker process and host shares them: a pace
reserved under the row's lock is a pace all of them keep.
"""

from __future__ import annotations

from django.db import models
from django.db.models.expressions import RawSQL

# Outbound statuses of texts the worker has not finished with (the outbox's partial index).
OUTBOX_WAITING = ("pending", "scheduled", "sending")


def in_outbox_index(table: str) -> RawSQL:
    """The outbox's partial index's condition, as a filter with its values written out: SQLite
    uses a partial index only for a query whose WHERE has its very terms, and a bound parameter
    is not the same term as a literal (with status__in alone, SQLite reads every message to find
    the few waiting; PostgreSQL does not mind)."""
    statuses = ", ".join(f"'{status}'" for status in OUTBOX_WAITING)
    return RawSQL(f'"{table}"."status" IN ({statuses})', [], output_field=models.BooleanField())


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
