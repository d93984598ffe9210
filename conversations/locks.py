"""One writer at a time on SQLite, and every wait for a lock bounded by the text's deadline.

SQLite serializes writers itself, but a writer that finds the database locked polls it,
sleeping up to 100 ms between tries, so waiting processes idle while the lock is free. A
text waits instead for an flock() on a file beside the database, blocked in flock() (in a
thread of its process's own, since flock() has no timeout), where the kernel wakes it the
moment the lock is free. PostgreSQL needs none of this: its row locks wake waiters at once.

A text has one deadline (WEBHOOK_DEADLINE, below Twilio's 15 s): the file lock, SQLite's busy
timeout and PostgreSQL's lock_timeout all wait at most until then, so a text is either
committed in time or rolled back and answered 503.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from conversations.metrics import lock_waited

logger = logging.getLogger(__name__)

# A writer without a deadline (the outbox's worker, the admin, a command) tries the lock this
# often while it is taken, so that a text waiting for it, blocked in flock(), gets it first;
# after YIELD_FOR it queues in flock() too. Under texts flat out (550/s, two web processes
# taking turns), polling alone got the outbox's worker a slot so seldom that it sent 37
# texts/s instead of its 50.
YIELD_PAUSE = 0.002
YIELD_FOR = 0.02
# Every this many writes, a process copies SQLite's WAL into the database file (a PASSIVE
# checkpoint) once it has released the writer lock. SQLite's own checkpoint runs inside the
# COMMIT that grows the WAL past wal_autocheckpoint pages, so with the writer lock held: at
# its default (1,000 pages, about 78 texts) 1 text in 78 took 3.5-4.7 ms to commit instead of
# 0.06 ms, while every other writer waited. Under steady writes from several processes, a
# checkpoint outside the lock seldom catches up with the last commit, and only one that does
# lets the WAL start over from its beginning: SQLite's own, raised to 10,000 pages (40 MB) in
# settings.py, still does that now and then, with only what came since the last one to copy.
CHECKPOINT_EVERY = 100
# Waits are tightened only when less than this is left of the connection's own timeout: a
# fresh text runs no extra statement.
SLACK = 0.05


class DeadlinePassed(Exception):
    """The text could not be committed before its deadline; nothing of it was."""


class _ProcessWriterLock:
    """A database's writer lock as this process takes it.

    Threads queue on a lock of the process's own, which wakes the next one at once and costs
    nothing while they wait; only the thread in front goes for the file lock that the
    processes hold in turn.

    A text waits for the file lock blocked in flock(), where the kernel wakes it the moment
    it is free (a writer trying it just then may still win it); polling found it only on its
    next try, and with two processes taking turns that left a core idle: 1,291 texts/s
    polling, 1,548 blocked (one `make bench` each).
    flock() has no timeout, so the blocked call runs in a thread of its own, and the text waits
    for that thread's word until its deadline. A text that gives up leaves the call blocked:
    the next one takes it over, and a lock it gets for nobody is released at once. While that
    call is blocked, nothing else here touches the file lock: the same open file is the same
    holder, so any other flock() of ours would be granted beside it, and the call's release
    would then free a lock that a text holds.

    The checkpoint that every CHECKPOINT_EVERY-th write makes runs in that write's request,
    after the lock is let go: that request waits for it (a median of 4.9 ms here, single
    process, 100 texts' pages), no other does.
    """

    def __init__(self, path: str) -> None:
        self.threads = threading.Lock()
        self.file = open(path, "a+b")  # noqa: SIM115  (kept open for the process's life)
        # Plain locks as signals between the two threads: a Condition (an Event's) costs
        # several times more to wait on and to wake.
        self.guard = threading.Lock()  # Over `blocked` and `request`.
        # True from when the waiting thread is sent into flock() until it has let go of, or
        # handed over, what it got: while True, nothing else here may touch the file lock.
        self.blocked = False
        self.go = threading.Lock()  # Released to send the waiting thread into flock().
        self.go.acquire()
        self.request: _Request | None = None  # The text the blocked call is for; None: nobody.
        self.waiting_thread: threading.Thread | None = None
        self.writes = 0  # Since the last checkpoint, counted while held (CHECKPOINT_EVERY).

    def take_file_lock(self, deadline: float | None) -> None:
        """Hold the file lock for this process by the deadline; the caller holds `threads`."""
        fd = self.file.fileno()
        with self.guard:
            idle = not self.blocked
            if idle and _try_flock(fd):
                return
        if idle and deadline is None:
            # Only a caller sets the waiting thread going, so it stays away meanwhile.
            if not _poll(fd, YIELD_FOR):
                fcntl.flock(fd, fcntl.LOCK_EX)  # No deadline to keep: blocked right here.
            return
        request = _Request()
        with self.guard:
            if not self.blocked:
                self._send_waiting_thread()
            self.request = request
        try:
            granted = request.wait(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        except BaseException:  # Interrupted (a signal's exception): the lock must not stay ours.
            if self._withdraw(request) and request.error is None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            raise
        if not granted and not self._withdraw(request):
            raise DeadlinePassed("the database's writer lock was held past the deadline")
        if request.error is not None:
            raise OSError("waiting for the SQLite writer lock failed") from request.error

    def _send_waiting_thread(self) -> None:
        if self.waiting_thread is None or not self.waiting_thread.is_alive():
            thread = threading.Thread(target=self._wait, name="sqlite-writer-lock", daemon=True)
            thread.start()
            self.waiting_thread = thread
        self.blocked = True
        self.go.release()

    def _withdraw(self, request: _Request) -> bool:
        """Stop waiting: whether the lock (or the waiting thread's error) came meanwhile."""
        with self.guard:
            if request.granted.acquire(blocking=False):
                return True
            if self.request is request:
                self.request = None
            return False

    def _wait(self) -> None:
        fd = self.file.fileno()
        while True:
            self.go.acquire()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException as error:
                # The kernel refused (ENOLCK), or the file is gone: this thread ends, its text
                # is told at once, and the next text starts another.
                logger.warning("Waiting for the SQLite writer lock failed", exc_info=True)
                with self.guard:
                    request, self.request = self.request, None
                    self.blocked = False
                    if request is not None:
                        request.error = error
                        request.granted.release()
                return
            with self.guard:
                request, self.request = self.request, None
                if request is None:
                    fcntl.flock(fd, fcntl.LOCK_UN)  # Its text gave up waiting.
                # Clear only once let go of: a text that finds it clear takes the file lock,
                # and the same open file would be granted it beside this call's.
                self.blocked = False
                if request is not None:
                    request.granted.release()


class _Request:
    """A text's wait for the waiting thread's flock()."""

    def __init__(self) -> None:
        self.granted = threading.Lock()  # Released when the lock is the text's (or on error).
        self.granted.acquire()
        self.error: BaseException | None = None

    def wait(self, timeout: float | None) -> bool:
        return self.granted.acquire(timeout=-1 if timeout is None else timeout)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _poll(fd: int, patience: float) -> bool:
    """Try the file lock every YIELD_PAUSE for `patience` seconds: whether it was taken."""
    give_up = time.monotonic() + patience
    while not _try_flock(fd):
        if time.monotonic() >= give_up:
            return False
        time.sleep(YIELD_PAUSE)
    return True


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
            lock.take_file_lock(deadline)
        except BaseException:
            lock.threads.release()
            raise
    finally:
        lock_waited(time.perf_counter() - started)  # Waits that ran out included.
    held = HeldLock(lock)
    lock.writes += 1
    try:
        yield held
    finally:
        held.release()
    if lock.writes >= CHECKPOINT_EVERY and _checkpoint(connection):
        lock.writes = 0


def _checkpoint(connection: BaseDatabaseWrapper) -> bool:
    """Copy the WAL's pages into the database file, with the writer lock free (CHECKPOINT_EVERY);
    False when it cannot be tried now (inside a transaction), so that the next write tries."""
    driver = connection.connection
    if connection.in_atomic_block or driver is None or driver.in_transaction:
        return False
    try:
        driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        # Committed all the same: the next CHECKPOINT_EVERY writes try again, and SQLite's
        # own checkpoint (wal_autocheckpoint) is the backstop.
        logger.warning("The WAL checkpoint failed", exc_info=True)
    return True


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
