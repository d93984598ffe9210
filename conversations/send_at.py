"""A send-at time as a person writes it (commands, the admin's forms): ISO 8601, read in
TIME_ZONE unless it carries an offset, and never in the past."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


class SendAtError(ValueError):
    """The time cannot be a send-at time; the message says why."""


def send_at_of(value: str, *, now: datetime | None = None) -> datetime:
    """`2026-12-24T09:00` (TIME_ZONE), `2026-12-24T09:00+01:00` or `…Z`: an aware datetime."""
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SendAtError(
            f"{value!r} is not a date and time in ISO 8601, like 2026-12-24T09:00 "
            "(in TIME_ZONE) or 2026-12-24T09:00+01:00."
        ) from None
    if timezone.is_naive(at):
        at = timezone.make_aware(at, timezone.get_default_timezone())
    now = now or timezone.now()
    if at <= now:
        shown = timezone.localtime(now)
        raise SendAtError(f"{value} is in the past: it is {shown:%Y-%m-%d %H:%M %Z} now.")
    return at
