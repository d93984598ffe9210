"""A broadcast: one text to many recipients, one outbound Message each, that staff can watch,
pause, resume and cancel.

The rows are the truth: progress() counts its messages by status, so the page is right after
any restart. The operations that create and control a broadcast are in broadcast_control.py
(they go through the outbox, which imports these models).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Count, Sum


class Broadcast(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"  # Waiting for the worker (or for its send-at time).
        SENDING = "sending"  # The worker has claimed its first text.
        PAUSED = "paused"
        COMPLETED = "completed"  # No text of it is left waiting.
        CANCELED = "canceled"

    # Statuses whose texts the worker may claim.
    RUNNING = (Status.SCHEDULED, Status.SENDING)

    body = models.TextField()
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The staff member who created it (empty: a command).",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SCHEDULED)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When its first text was claimed.")
    send_at = models.DateTimeField(null=True, blank=True, help_text="Not sent before (empty: at once).")
    # Counted once, at creation: who was asked for, and why some of them get no text.
    selected = models.PositiveIntegerField(default=0, help_text="Recipients asked for.")
    duplicates = models.PositiveIntegerField(default=0, help_text="The same number given again.")
    blocked = models.PositiveIntegerField(default=0, help_text="Blocked callers.")
    opted_out = models.PositiveIntegerField(default=0, help_text="Replied STOP.")
    undeliverable = models.PositiveIntegerField(
        default=0, help_text="Marked undeliverable, or not a phone number."
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = [("send_broadcast", "Can create, pause, resume and cancel broadcasts")]

    def __str__(self) -> str:
        return f"Broadcast {self.pk}: {self.body[:40]}"

    @property
    def excluded(self) -> int:
        return self.duplicates + self.blocked + self.opted_out + self.undeliverable

    @property
    def to_text(self) -> int:
        """Recipients that get a text: the selected less the excluded."""
        return self.selected - self.excluded

    def refusals_count(self, kinds: Iterable[str]) -> None:
        """Count the recipients refused up front by the kind of refusal (refusals.Refusal.kind)."""
        counts = Counter(kinds)
        self.blocked += counts["blocked"]
        self.opted_out += counts["opted_out"]
        self.undeliverable += counts["undeliverable"]

    def counts_label(self) -> str:
        """ "1,000 selected, 987 will be texted: 9 opted out, 3 undeliverable, 1 duplicate"."""
        parts = [
            f"{count:,} {label}"
            for count, label in (
                (self.opted_out, "opted out"),
                (self.blocked, "blocked"),
                (self.undeliverable, "undeliverable"),
                (self.duplicates, "duplicate" if self.duplicates == 1 else "duplicates"),
            )
            if count
        ]
        head = f"{self.selected:,} selected, {self.to_text:,} will be texted"
        return f"{head}: {', '.join(parts)}" if parts else head

    def progress(self) -> Progress:
        """Its texts counted by status (one query), what is done, and the time left."""
        return Progress.of_rows(self.messages.values("status").annotate(**Progress.ROW))


@dataclass(frozen=True)
class Progress:
    GROUPS = ("pending", "sending", "sent", "delivered", "failed", "canceled", "unknown")

    # What each row of a broadcast's texts grouped by status counts: of_rows() reads them.
    ROW = {"n": Count("pk"), "segments": Sum("num_segments")}

    counts: dict[str, int]  # By GROUPS.
    segments_left: int  # Of the texts still pending or scheduled.

    @classmethod
    def of_rows(cls, rows: Iterable[dict[str, Any]]) -> Progress:
        """The progress of one broadcast's texts counted by status (a status and ROW per row)."""
        from conversations.models import Message  # models.py imports this module.

        counts = dict.fromkeys(cls.GROUPS, 0)
        segments_left = 0
        for row in rows:
            counts[STATUS_GROUP.get(row["status"], "sent")] += row["n"]
            if row["status"] in Message.READY:
                segments_left += row["segments"] or row["n"]
        return cls(counts=counts, segments_left=segments_left)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        return self.counts["pending"] + self.counts["sending"]

    @property
    def done(self) -> float:
        """The fraction of its texts the worker has finished with (1.0 for none)."""
        return 1.0 if not self.total else (self.total - self.waiting) / self.total

    @property
    def eta(self) -> timedelta:
        """The time left at SMS_SEND_RATE segments a second (one sender; not counting send-at)."""
        return timedelta(seconds=round(self.segments_left / settings.SMS_SEND_RATE))


# A message's status, as a broadcast's progress counts it.
STATUS_GROUP = {
    "pending": "pending",
    "scheduled": "pending",
    "sending": "sending",
    "accepted": "sent",
    "queued": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "canceled",
    "unknown": "unknown",
}
