"""Whether the app can take texts now: the database accepts writes; the cache, a copy, is noted."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection

from conversations.locks import DeadlinePassed, writer_lock

logger = logging.getLogger(__name__)

# A health probe must answer well inside a load balancer's timeout, even while a writer holds
# the database: a writer lock held longer than this is reported as such.
PROBE_TIMEOUT = 1.0


def database_state() -> str:
    """ "ok" when a text could be committed now; else what stops it."""
    try:
        if connection.vendor == "sqlite":
            return _sqlite_state()
        return _postgresql_state() if connection.vendor == "postgresql" else _any_state()
    except DatabaseError as error:
        logger.warning("healthz: database unavailable: %s", error)
        _discard()
        return "unavailable"


def _sqlite_state() -> str:
    connection.ensure_connection()
    raw = connection.connection
    configured = connection.settings_dict.get("OPTIONS", {}).get("timeout", 5.0)
    deadline = time.monotonic() + PROBE_TIMEOUT
    try:
        # In line with the texts (their file lock first), then the write lock itself, by
        # writing the header's user_version back unchanged and rolling back: a connection
        # opened read-only, or a read-only disk, fails here. A savepoint works inside a
        # transaction too.
        with writer_lock(deadline=deadline):
            raw.execute(f"PRAGMA busy_timeout = {max(int((deadline - time.monotonic()) * 1000), 1)}")
            raw.execute("SAVEPOINT healthz")
            try:
                version = raw.execute("PRAGMA user_version").fetchone()[0]
                raw.execute(f"PRAGMA user_version = {int(version)}")
            finally:
                raw.execute("ROLLBACK TO healthz")
                raw.execute("RELEASE healthz")
    except DeadlinePassed:
        return "busy"  # Texts held the database all along; none was to be cut in on.
    except Exception as error:  # The driver's own errors: Django does not wrap the raw connection.
        reason = (
            "locked" if "locked" in str(error) else "read-only" if "readonly" in str(error) else "unavailable"
        )
        logger.warning("healthz: database %s: %s", reason, error)
        _discard()
        return reason
    finally:
        if connection.connection is not None:
            connection.connection.execute(f"PRAGMA busy_timeout = {int(configured * 1000)}")
    return "ok"


def _postgresql_state() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
        in_recovery, read_only = cursor.fetchone()
    if in_recovery or read_only == "on":
        _discard()  # Its read-only default was fixed when it opened.
        return "read-only"
    return "ok"


def _discard() -> None:
    # A connection that failed is not reused: the next request opens a fresh one, so the
    # app heals as soon as the database does.
    if not connection.in_atomic_block:
        connection.close()


def _any_state() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def cache_state() -> str | None:
    """The cache's state, or None when the app has none configured (no REDIS_URL)."""
    if not settings.REDIS_URL:
        return None
    try:
        cache.set("healthz", "ok", 10)
        return "ok" if cache.get("healthz") == "ok" else "unavailable"
    except Exception as error:  # Any cache failure: reported, never fatal.
        logger.warning("healthz: cache unavailable: %s", error)
        return "unavailable"
