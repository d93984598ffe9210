"""The texts of past days, counted once: what the dashboard reads instead of every text.

Counting a month of texts costs a scan of every one of them (2.5 million at 5 million texts
over 60 days: over a second on PostgreSQL). A day that is over changes no more, except for a
late status report, so each local day before yesterday is counted once by the first
dashboard that needs it (dashboard.py) and kept here; only yesterday and today are counted
live. A day is kept per TIME_ZONE, whose midnight bounds it.
"""

from __future__ import annotations

from django.db import models

# A day's marker row (direction ""): the day has been counted, even when it had no texts.
COUNTED = ""


class DailyCount(models.Model):
    time_zone = models.CharField(max_length=64)
    day = models.DateField()
    direction = models.CharField(max_length=8, blank=True)  # COUNTED: the day's marker row.
    status = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    n = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["time_zone", "day", "direction", "status", "outcome"], name="one_daily_count_per_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.direction or 'counted'} {self.status} {self.outcome}: {self.n}"
