"""Quiet hours: no text the app starts reaches someone at night, by their own clock.

QUIET_HOURS (`21:00-08:00`; empty: off) is a plain string in the settings, read here where
it is used; `manage.py check` refuses a malformed one (conversations.E004). It is read in the
recipient's local time, from their number's region (phonenumbers' time-zone data). A number
whose region spans several zones (most of the US and Canada share +1 without a way to tell
them apart for some area codes, Russia has eleven), or none, is read in the site's TIME_ZONE:
one zone the operator chose, rather than a guess among several. Replies to inbound texts
never come here: they answer a text someone just sent.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from phonenumbers import timezone as number_zones

HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
UNKNOWN_ZONE = "Etc/Unknown"


@dataclasses.dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def cover(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # Across midnight.


def configured() -> QuietHours | None:
    """The QUIET_HOURS setting, read; None when texts never wait."""
    return quiet_hours_of(settings.QUIET_HOURS)


@functools.lru_cache(maxsize=16)  # Read once per value, not once per text sent.
def quiet_hours_of(value: str) -> QuietHours | None:
    """QUIET_HOURS read: `HH:MM-HH:MM` on a 24-hour clock, or empty for none."""
    if not value.strip():
        return None
    match = HOURS.match(value)
    problem = f"QUIET_HOURS must be two times on a 24-hour clock, like 21:00-08:00, not {value!r}"
    if match is None:
        raise ImproperlyConfigured(problem + ".")
    hours = [int(part) for part in match.groups()]
    if hours[0] > 23 or hours[2] > 23 or hours[1] > 59 or hours[3] > 59:
        raise ImproperlyConfigured(problem + ".")
    quiet = QuietHours(time(hours[0], hours[1]), time(hours[2], hours[3]))
    if quiet.start == quiet.end:
        raise ImproperlyConfigured(problem + ": it starts and ends at the same time.")
    return quiet


def zone_of(number: str) -> ZoneInfo:
    """The recipient's time zone: their number's, when it has exactly one; else the site's."""
    return _zone_of(number, settings.TIME_ZONE)


@functools.lru_cache(maxsize=65_536)  # Hundreds of µs a number; a broadcast's list is texted again.
def _zone_of(number: str, site_zone: str) -> ZoneInfo:
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        zones = ()
    if len(zones) == 1 and zones[0] != UNKNOWN_ZONE:
        try:
            return ZoneInfo(zones[0])
        except ZoneInfoNotFoundError:
            pass  # A zone the system's tz database does not have yet.
    return ZoneInfo(site_zone)


def quiet_hours_refusal(their_number: str, *, now: datetime | None = None) -> str | None:
    """Why a text to this number must wait, or None when it may go now."""
    quiet = configured()
    if quiet is None:
        return None
    zone = zone_of(their_number)
    local = (now or timezone.now()).astimezone(zone)
    if not quiet.cover(local.time()):
        return None
    return (
        f"Quiet hours ({quiet}) for {their_number}: it is {local:%H:%M} there ({zone.key}); "
        f"it may go after {quiet.end:%H:%M}."
    )


def quiet_hours_end(their_number: str, at: datetime) -> datetime | None:
    """When a text due at `at` may go instead, by the recipient's clock: the end of the quiet
    hours it falls in; None when it falls in none (or QUIET_HOURS is off)."""
    quiet = configured()
    if quiet is None:
        return None
    zone = zone_of(their_number)
    local = at.astimezone(zone)
    if not quiet.cover(local.time()):
        return None
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:  # Quiet hours across midnight, in their evening: tomorrow morning.
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return end
