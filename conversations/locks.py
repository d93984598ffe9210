"""One writer at a time on SQLite, and every wait for a lock bounded by the text's deadline.

SQLite serializes writers itself, but a writer that finds the database locked polls it,
sleeping up to 100 ms between tries, so waiting processes idle while the lock is free. An
flock() on a file beside the database hands it over within a millisecond. PostgreSQL needs
none of this: its row locks wake waiters at once.

A text has one deadline (WEBHOOK_DEADLINE, below Twilio's 15 s): the file lock, SQLite's busy
timeout and PostgreSQL's lock_timeout all wait at most until then, so a text is either
committed in time or rolled back and answered 503.
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from conversations.metrics import lock_waited

# How often a writer without a deadline tries the lock while it is taken: texts try at least
# every millisecond, so a text waiting for it goes before.
YIELD_PAUSE = 0.002
# Waits are tightened only when less than this is left of the connection's own timeout: a
# fresh text runs no extra statement.
SLACK = 0.05


class DeadlinePassed(Exception):
    """The text could not be committed before its deadline; nothing of it was."""


class _ProcessWriterLock:
    """A database's writer lock as this process takes it.

    Threads queue on a lock of the process's own, which wakes the next one at once and costs
    nothing while they wait; only the thread in front tries the file lock that the processes
    hold in turn, so at most one thread per process polls it.
    """

    def __init__(self, path: str) -> None:
        self.threads = threading.Lock()
        self.file = open(path, "a+b")  # noqa: SIM115  (kept open for the process's life)


_by_path: dict[str, _ProcessWriterLock] = {}
_by_path_guard = threading.Lock()


def _process_lock(path: str) -> _ProcessWriterLock:
    with _by_path_guard:
        if path not in _by_path:
            _by_path[path] = _ProcessWriterLock(path)
        return _by_path[path]


def _forget_inherited_locks() -> None:
    """In a forked child: close the lock files the parent opened, and take none of its state.

    An flock belongs to the open file, which a fork shares: a child that kept the parent's copy
    would not be excluded by the parent's lock (it is the same holder), and would keep it held
    after the parent died holding it: a worker SIGKILLed mid-transaction would leave RQ's
    scheduler, forked from it, holding every writer out for good. Closing the copy never
    releases the parent's lock (its own descriptor still holds it); the child opens its own."""
    global _by_path, _by_path_guard
    for lock in _by_path.values():
        lock.file.close()
    _by_path, _by_path_guard = {}, threading.Lock()  # A parent's thread may have held them.


os.register_at_fork(after_in_child=_forget_inherited_locks)


def _flock(fd: int, deadline: float | None) -> None:
    if deadline is None:
        # A writer with no deadline (the outbox's worker, the admin, a command) polls as well,
        # more slowly than a text: blocked in flock() it would be woken the moment the lock is
        # free and win every race against the texts polling for it, so that a text would wait
        # behind each of them in turn. Polling, it lets a waiting text go first.
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(YIELD_PAUSE)
    pause = 0.0001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlinePassed("the database's writer lock was held past the deadline") from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.001)


class HeldLock:
    """The writer lock, held until released, at most once."""

    def __init__(self, lock: _ProcessWriterLock | None) -> None:
        self.lock = lock

    def release(self) -> None:
        if self.lock is not None:
            lock, self.lock = self.lock, None
            fcntl.flock(lock.file.fileno(), fcntl.LOCK_UN)
            lock.threads.release()


@contextmanager
def writer_lock(using: str = "default", deadline: float | None = None) -> Iterator[HeldLock]:
    """Hold the database's writer lock (SQLite) for the block, or until released early."""
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():  # type: ignore[attr-defined]
        yield HeldLock(None)
        return
    lock = _process_lock(f"{connection.settings_dict['NAME']}.lock")
    started = time.perf_counter()
    wait = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        if not lock.threads.acquire(timeout=wait):
            raise DeadlinePassed("the database's writer lock was held past the deadline")
        try:
            _flock(lock.file.fileno(), deadline)
        except BaseException:
            lock.threads.release()
            raise
    finally:
        lock_waited(time.perf_counter() - started)  # Waits that ran out included.
    held = HeldLock(lock)
    try:
        yield held
    finally:
        held.release()


@contextmanager
def sqlite_waits_until(deadline: float | None, using: str = "default") -> Iterator[None]:
    """SQLite's busy wait for the write lock ends by the deadline; enter before BEGIN.

    The connection's busy timeout (WEBHOOK_DEADLINE) already bounds a text that gets here at
    once; only one that spent its budget waiting for the file lock needs less, so a text
    that did not wait runs nothing extra.
    """
    connection = connections[using]
    left = _left(deadline)
    configured = connection.settings_dict.get("OPTIONS", {}).get("timeout", 5.0)  # Python's default.
    if connection.vendor != "sqlite" or left is None or left >= configured - SLACK:
        yield
        return
    connection.ensure_connection()
    # On the driver's connection: a pragma without I/O, not a query of the text's.
    connection.connection.execute(f"PRAGMA busy_timeout = {int(left * 1000)}")
    try:
        yield
    finally:
        if connection.connection is not None:
            connection.connection.execute(f"PRAGMA busy_timeout = {int(configured * 1000)}")


def postgres_waits_until(deadline: float | None, using: str = "default") -> None:
    """PostgreSQL's lock and statement waits end by the deadline; call inside the transaction.

    The connection's lock_timeout (WEBHOOK_DEADLINE) already bounds a text that gets here
    at once, so only a late one runs this statement.
    """
    connection = connections[using]
    left = _left(deadline)
    if connection.vendor != "postgresql" or left is None or left >= _lock_timeout(connection) - SLACK:
        return
    timeout = f"{max(int(left * 1000), 1)}ms"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            [timeout, timeout],
        )


def _lock_timeout(connection: BaseDatabaseWrapper) -> float:
    """The connection's own lock_timeout, in seconds (settings.py sets it); none is forever."""
    match = re.search(r"lock_timeout=(\d+)", connection.settings_dict.get("OPTIONS", {}).get("options", ""))
    return int(match.group(1)) / 1000 if match else float("inf")


def _left(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlinePassed("the deadline passed before the transaction began")
    return left
