"""The dashboard's numbers: a fixed few aggregate queries, each on an index of indexes.py,
never a query per day. What they read grows with the texts of two days, not with the table:
the days before yesterday are counted once and kept (daily_counts.py).

Days are TIME_ZONE's: a text at 23:30 local time counts on that day, whatever UTC says.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Case, Count, DateField, QuerySet, Value, When
from django.utils import timezone

from conversations.broadcasts import Progress
from conversations.daily_counts import COUNTED, DailyCount
from conversations.indexes import FAILED, FAILED_TERM, OPT_IN_TERMS
from conversations.metrics import outbox_backlog
from conversations.models import Broadcast, Conversation, Message
from conversations.refusals import TWILIO_ERRORS

DAYS = 30  # The daily charts' span, today included.
OUTCOME_DAYS = 7  # The outcomes' and failures' span, today included.
# Days counted live on each view (yesterday and today): a status Twilio reports late still
# changes them. The days before are counted once (DailyCount).
LIVE_DAYS = 2
# How the records name a Twilio error: "Twilio error 30003: ..." (status callbacks) and
# "Twilio refused the text: ... (Twilio error 21610)" (refusals); refusals.twilio_error().
ERROR_CODE = re.compile(r"Twilio error (\d+)")
# Broadcasts not finished: the worker sends them, or staff paused them.
LIVE_BROADCASTS = (Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING, Broadcast.Status.PAUSED)
BROADCASTS_SHOWN = 10


@dataclass
class Day:
    day: date
    inbound: int = 0
    outbound: int = 0
    failed: int = 0  # Outbound, failed or undelivered.
    opt_outs: int = 0  # Inbound STOPs (Message.Outcome.OPTED_OUT).
    opt_ins: int = 0  # Inbound START, UNSTOP, YES (texts.OPT_IN_WORDS).


@dataclass(frozen=True)
class Failure:
    code: int | None  # None: the record names no Twilio code (the worker gave up, say).
    words: str
    count: int


@dataclass
class Texts:
    """The texts of the last DAYS per day, and the outbound ones of the last OUTCOME_DAYS."""

    days: list[Day]
    outcomes: dict[str, int] = field(default_factory=dict)  # By status, most first.
    failures: list[Failure] = field(default_factory=list)  # By code, most first.
    since: datetime = field(default_factory=timezone.now)  # The start of the outcomes' days.


@dataclass(frozen=True)
class Backlog:
    waiting: int  # Texts the worker may send now and has not.
    oldest: timedelta | None  # How long the oldest of them has been due.


def period_start(now: datetime, days: int) -> datetime:
    """The local midnight that starts the `days` days ending today (today included)."""
    first = timezone.localdate(now) - timedelta(days=days - 1)
    return midnight(first)


def midnight(day: date) -> datetime:
    """The start of a local day (TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def texts(now: datetime) -> Texts:
    """Four queries: the days before yesterday as counted once (DailyCount), yesterday's and
    today's texts by kind, the opt-ins per day, the failures by error."""
    start, week = period_start(now, DAYS), period_start(now, OUTCOME_DAYS)
    live = period_start(now, LIVE_DAYS)
    days = {start.date() + timedelta(days=n): Day(start.date() + timedelta(days=n)) for n in range(DAYS)}
    outcomes: Counter[str] = Counter()
    for on, direction, status, outcome, n in [*counted_days(start, live), *texts_per_day(live)]:
        day = days[on]
        if direction == Message.Direction.INBOUND:
            day.inbound += n
            day.opt_outs += n if outcome == Message.Outcome.OPTED_OUT else 0
            continue
        day.outbound += n
        day.failed += n if status in FAILED else 0
        if on >= week.date():
            outcomes[status] += n
    for on, n in opt_ins_per_day(start):
        days[on].opt_ins += n
    failures = failures_by_code(failures_by_error(week))
    return Texts(list(days.values()), dict(outcomes.most_common()), failures, week)


Row = tuple[date, str, str, str, int]  # A local day, direction, status, outcome, and a count.


def counted_days(start: datetime, until: datetime) -> list[Row]:
    """The texts of the local days from `start` to `until` by kind, as DailyCount keeps them;
    the days not counted yet are counted now, in one query, and kept."""
    zone = timezone.get_current_timezone_name()
    first, last = start.date(), until.date()
    kept = DailyCount.objects.filter(time_zone=zone, day__gte=first, day__lt=last)
    rows: list[Row] = list(kept.values_list("day", "direction", "status", "outcome", "n"))
    counted = {row[0] for row in rows if row[1] == COUNTED}
    missing = {first + timedelta(days=n) for n in range((last - first).days)} - counted
    if missing:
        since = midnight(min(missing))
        new = [row for row in texts_per_day(since, until) if row[0] in missing]
        markers = [(day, COUNTED, "", "", 0) for day in missing]
        DailyCount.objects.bulk_create(
            [
                DailyCount(time_zone=zone, day=d, direction=w, status=s, outcome=o, n=n)
                for d, w, s, o, n in new + markers
            ],
            ignore_conflicts=True,  # Another request counted them meanwhile: the same counts.
        )
        rows += new
    return [row for row in rows if row[1] != COUNTED]


# The queries, each on its index (indexes.py). COUNT(*), not COUNT(id): the id is in none of
# them, and counting it would read every row.


def texts_per_day(start: datetime, until: datetime | None = None) -> QuerySet[Message, Row]:
    """(local day, direction, status, outcome, count): from the covering index alone."""
    texts = Message.objects.filter(created_at__gte=start)
    texts = texts.filter(created_at__lt=until) if until is not None else texts
    return _per_day(texts, start, until, "direction", "status", "outcome")


def opt_ins_per_day(start: datetime) -> QuerySet[Message, tuple[Any, ...]]:
    """(local day, count) of the inbound opt-in keywords: their partial index."""
    return _per_day(Message.objects.filter(*OPT_IN_TERMS, created_at__gte=start), start, None)


def failures_by_error(since: datetime) -> QuerySet[Message, tuple[Any, ...]]:
    """(error, count) of the failed and undelivered texts: their partial index."""
    failed = Message.objects.filter(FAILED_TERM, created_at__gte=since)
    return failed.values_list("error").annotate(n=Count("*")).order_by()


def _per_day(
    messages: QuerySet[Message], start: datetime, until: datetime | None, *columns: str
) -> QuerySet[Message, tuple[Any, ...]]:
    """(local day, *columns, count) of texts from `start` (a local midnight) to `until`."""
    last = (until - timedelta(days=1)).date() if until is not None else timezone.localdate()
    day = local_day(start.date(), last)
    return messages.annotate(day=day).values_list("day", *columns).annotate(n=Count("*")).order_by()


def local_day(first: date, last: date) -> Case:
    """The local day of created_at, for a text from first's midnight to last's end. The database
    compares the time with each day's midnight, computed here (DST and all), rather than
    convert each text's time to TIME_ZONE as TruncDate does, which SQLite does by calling
    Python for each text: at 5M texts, the page took 0.78 s on SQLite with TruncDate and 0.2 s
    with this (PostgreSQL: 0.10 s and 0.09 s; docs/benchmarks.md)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    whens = [When(created_at__gte=midnight(day), then=Value(day)) for day in reversed(days[1:])]
    return Case(*whens, default=Value(first), output_field=DateField())


def failures_by_code(rows: Iterable[tuple[str, int]]) -> list[Failure]:
    """(error, count) rows summed by the Twilio code their text names, with Twilio's words."""
    counts: Counter[int | None] = Counter()
    words: dict[int | None, str] = defaultdict(str)
    for error, n in rows:
        found = ERROR_CODE.search(error)
        code = int(found[1]) if found else None
        counts[code] += n
        if code is not None and not words[code]:
            words[code] = TWILIO_ERRORS.get(code) or _words_in(error)
    # Most first; of equal counts, by code, and the texts that name none last.
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0] is None, item[0] or 0))
    return [
        Failure(code, words[code] if code is not None else "No Twilio error code (see each text)", n)
        for code, n in ordered
    ]


def _words_in(error: str) -> str:
    """Twilio's words as the record keeps them, for a code TWILIO_ERRORS does not know."""
    _, _, after = error.partition(": ")
    return re.sub(r"\s*\(Twilio error \d+\)$", "", after).strip()


def needing_reply(now: datetime) -> int:
    """Conversations taken over by staff whose customer texted last (the paused ones' index)."""
    return Conversation.objects.needs_reply(now).count()


def live_broadcasts() -> list[tuple[Broadcast, Progress]]:
    """Broadcasts not finished, oldest first, each with its progress: two queries for all."""
    live = Broadcast.objects.filter(status__in=LIVE_BROADCASTS).order_by("created_at", "pk")
    broadcasts = list(live[:BROADCASTS_SHOWN])
    if not broadcasts:
        return []
    rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    counted = Message.objects.filter(broadcast__in=broadcasts).values("broadcast", "status")
    for row in counted.annotate(**Progress.ROW).order_by():
        rows[row["broadcast"]].append(row)
    return [(broadcast, Progress.of_rows(rows[broadcast.pk])) for broadcast in broadcasts]


def backlog(now: datetime) -> Backlog:
    """The outbox's texts due and not sent: how many, and how long the oldest has been due
    (the same query as /metrics' sms_outbox_pending and its oldest age)."""
    pending, oldest = outbox_backlog(now)
    return Backlog(pending, now - oldest if oldest else None)
