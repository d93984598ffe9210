"""The app's metrics for Prometheus, and what /metrics answers.

Every process counts what it does: gunicorn's workers the texts they answer, the outbox's
worker the texts it sends. With PROMETHEUS_MULTIPROC_DIR (set by settings.py whenever
METRICS_ENABLED) each process keeps its counts in files of its own in that directory, and a
scrape, whichever web worker takes it, adds up every process's files (prometheus_client's
multiprocess mode). The outbox's backlog is counted by nobody: it is read from the database
when Prometheus asks, in one query on the outbox's partial index.

No label holds a phone number, a body or a SID: outcomes and statuses are the app's own
words, and an error code is Twilio's number of five digits or nothing.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.db import DatabaseError
from django.db.models import Count, Min
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from conversations.models import Message

logger = logging.getLogger(__name__)

# A text takes milliseconds, unless it waits for a lock: then up to WEBHOOK_DEADLINE (10 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
# Most waits for the pair's lock are none at all, or one text's time.
LOCK_WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The webhook's log outcomes that are 503s, and their reason label.
UNAVAILABLE = {"deadline": "deadline", "database_error": "database"}
# Every outcome of a text answered 200 (the recorded ones, and a repeated MessageSid's).
ANSWERED = (*Message.Outcome.values, "repeat")


class Metrics:
    """Every metric the app counts, in one process."""

    def __init__(self) -> None:
        # Their own registry: in one process /metrics shows these (and no process or GC
        # metrics, which multiprocess mode cannot add up either); in several, the files.
        self.registry = registry = CollectorRegistry()
        self.texts_received = Counter(
            "sms_texts_received",
            "Texts the webhook answered 200, by outcome (as logged: counted, paused, blocked, "
            "opted_out, ignored_opted_out, help, repeat).",
            ["outcome"],
            registry=registry,
        )
        self.webhook_duration = Histogram(
            "sms_webhook_duration_seconds",
            "Time the webhook took to answer a text (200 or 503), from the view's start.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.webhook_unavailable = Counter(
            "sms_webhook_unavailable",
            "Texts answered 503, by reason: deadline (WEBHOOK_DEADLINE passed) or database.",
            ["reason"],
            registry=registry,
        )
        self.lock_wait = Histogram(
            "sms_lock_wait_seconds",
            "Waits for a pair's lock: SQLite's writer lock, or PostgreSQL's locking statement.",
            buckets=LOCK_WAIT_BUCKETS,
            registry=registry,
        )
        self.texts_sent = Counter(
            "sms_texts_sent",
            "The outbox worker's outcome per text: Twilio's status when accepted, failed, "
            "unknown, retry, canceled; with Twilio's error code, if any.",
            ["status", "error_code"],
            registry=registry,
        )
        self.delivery_reports = Counter(
            "sms_delivery_reports",
            "Twilio's status callbacks, by status.",
            ["status"],
            registry=registry,
        )
        self.worker_heartbeats = Counter(
            "sms_worker_heartbeats",
            "Heartbeats of the outbox's worker: each tick, and each text it sends.",
            registry=registry,
        )
        # The latest of any process's, the dead ones' included: when the worker last beat.
        self.worker_last_heartbeat = Gauge(
            "sms_worker_last_heartbeat_timestamp_seconds",
            "When the outbox's worker last beat (Unix time).",
            multiprocess_mode="max",
            registry=registry,
        )
        self.outbox_ticks = Counter(
            "sms_outbox_ticks", "Ticks of the outbox's worker begun.", registry=registry
        )
        # Known from the start, at 0, so that a rate over the first one is right.
        for outcome in ANSWERED:
            self.texts_received.labels(outcome)
        for reason in UNAVAILABLE.values():
            self.webhook_unavailable.labels(reason)


@functools.cache
def metrics() -> Metrics:
    """This process's metrics, made on first use rather than at import: in multiprocess mode a
    metric opens its process's file when made, and processes that count nothing (gunicorn's
    master, `manage.py migrate`, a cron job) must leave no files behind for every scrape to read."""
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
    return Metrics()


def text_answered(outcome: str, seconds: float) -> None:
    """The webhook answered a text: the outcome it logged, and how long it took."""
    m = metrics()
    m.webhook_duration.observe(seconds)
    if (reason := UNAVAILABLE.get(outcome)) is not None:
        m.webhook_unavailable.labels(reason).inc()
    else:
        m.texts_received.labels(outcome).inc()


def lock_waited(seconds: float) -> None:
    metrics().lock_wait.observe(seconds)


def text_sent(status: str, error_code: int | None = None, *, count: int = 1) -> None:
    """The worker is done with a text for now: Twilio's status, or the outbox's word for it."""
    metrics().texts_sent.labels(_status(status), _error_code(error_code)).inc(count)


def delivery_reported(status: str) -> None:
    metrics().delivery_reports.labels(_status(status)).inc()


def outbox_ticked() -> None:
    """A tick of the outbox's worker began: counted, and a heartbeat."""
    metrics().outbox_ticks.inc()
    worker_beat()


def worker_beat() -> None:
    m = metrics()
    m.worker_heartbeats.inc()
    m.worker_last_heartbeat.set_to_current_time()


# The worker's own words beside Twilio's statuses.
WORKER_STATUSES = frozenset({*Message.Status.values, "retry"})


def _status(status: str) -> str:
    # Statuses come from Twilio's answers and callbacks: one it adds later is "other", not a
    # new series per value.
    return status if status in WORKER_STATUSES else "other"


def _error_code(code: int | None) -> str:
    return str(code) if code is not None and 10000 <= code <= 99999 else ""


def outbox_backlog(now: datetime) -> tuple[int, datetime | None]:
    """How many texts may go now and wait for the worker, and since when the oldest has: one
    query, on the outbox's partial index."""
    waiting = Message.objects.ready(now)
    row = waiting.aggregate(pending=Count("pk"), oldest=Min(Coalesce("send_at", "created_at")))
    return row["pending"], row["oldest"]


class OutboxBacklog:
    """sms_outbox_pending and sms_outbox_oldest_pending_age_seconds, read at scrape time."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        try:
            pending, oldest = outbox_backlog(now)
        except DatabaseError as error:
            # The rest of the scrape still answers; the backlog's absence says the database did not.
            logger.warning("metrics: the outbox's backlog could not be read: %s", error)
            return
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        yield from self._families(pending, max(age, 0.0))

    def _families(
        self, pending: float | None = None, age: float | None = None
    ) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "sms_outbox_pending", "Texts that may go now, waiting for the outbox's worker.", value=pending
        )
        yield GaugeMetricFamily(
            "sms_outbox_oldest_pending_age_seconds",
            "How long the oldest of them has waited since it might have gone (0: none waits).",
            value=age,
        )


def exposition() -> bytes:
    """What /metrics answers: every process's counts added up, and the outbox's backlog."""
    registry = CollectorRegistry()
    own = metrics()  # Makes the directory, should no process have counted anything yet.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(own.registry)
    registry.register(OutboxBacklog())
    return generate_latest(registry)


def multiprocess_dir_prepare() -> None:
    """At the web server's start (gunicorn.conf.py): make the directory, and remove the files of
    processes that are gone, an earlier run's, so they do not pile up.

    Not the whole directory: the outbox's worker shares it, and runs on across a restart of
    the web server; its counts would vanish until it restarted too.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for file in path.glob("*.db"):  # counter_1234.db, gauge_max_1234.db, ...
        pid = file.stem.rpartition("_")[2]
        if pid.isdigit() and not _running(int(pid)):
            file.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Someone else's process: running.
        return True
    return True
