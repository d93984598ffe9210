"""The SQLite writer lock (conversations/locks.py): a child never keeps its parent's lock alive,
a text waits for it in the kernel and never past its deadline, and writers checkpoint the WAL
once they have let it go."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from unittest import mock

from django.db import connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import SimpleTestCase, TransactionTestCase

from conversations import locks
from conversations.locks import YIELD_PAUSE, DeadlinePassed, writer_lock
from conversations.models import Caller
from tests.server import BASE_DIR

# The sizes of SQLite's WAL file: its header, and each frame's (before its page).
WAL_HEADER = 32
WAL_FRAME_HEADER = 24

# A worker that forks a long-lived child (RQ's scheduler does) while it holds the writer lock,
# and is then SIGKILLed mid-transaction.
KILLED_HOLDING_THE_LOCK = textwrap.dedent(
    """
    import os, signal, sys, time
    import django
    django.setup()
    from conversations.locks import writer_lock
    with writer_lock():
        child = os.fork()
        if child == 0:
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)  # Not the pipe its parent's reader waits on to close.
            os.dup2(quiet, 2)
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """
)


# A process of writers: three threads, for as many seconds as its argument says, texts with
# deadlines short enough that many give up, and writers without one. Inside the lock, each
# takes a second lock file without waiting: it is free unless another writer is inside too.
# Prints its counts.
WRITERS = textwrap.dedent(
    """
    import fcntl, random, sys, threading, time
    import django
    django.setup()
    from django.db import connections
    from conversations.locks import DeadlinePassed, writer_lock
    inside = open(connections["default"].settings_dict["NAME"] + ".inside", "a+b")
    counts = {"done": 0, "gave up": 0, "overlaps": 0}
    end = time.monotonic() + float(sys.argv[1])

    def write(rng):
        while time.monotonic() < end:
            deadline = None if rng.random() < 0.1 else time.monotonic() + rng.choice([0.0002, 0.001, 0.003])
            try:
                with writer_lock(deadline=deadline):
                    try:
                        fcntl.flock(inside.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        counts["overlaps"] += 1
                        continue
                    time.sleep(rng.random() * 0.0005)
                    fcntl.flock(inside.fileno(), fcntl.LOCK_UN)
                counts["done"] += 1
            except DeadlinePassed:
                counts["gave up"] += 1

    threads = [threading.Thread(target=write, args=(random.Random(n),)) for n in range(3)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    print(counts["done"], counts["gave up"], counts["overlaps"])
    """
)


class WritersInParallelTestCase(SimpleTestCase):
    def test_no_two_writers_ever_hold_the_lock_at_once_while_texts_give_up(self) -> None:
        if connections["default"].vendor != "sqlite":
            self.skipTest("SQLite's writer lock (PostgreSQL has none: its row locks wake waiters)")
        with tempfile.TemporaryDirectory() as directory:
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": f"sqlite:///{Path(directory) / 'db.sqlite3'}",
            }
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", WRITERS, "3"],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(3)
            ]
            counts = [tuple(map(int, process.communicate(timeout=60)[0].split())) for process in processes]
        done, gave_up, overlaps = (sum(column) for column in zip(*counts, strict=True))
        self.assertEqual(overlaps, 0)
        self.assertGreater(done, 1000)
        self.assertGreater(gave_up, 100)  # Waits abandoned, and taken over, all along.


class ForkedChildTestCase(SimpleTestCase):
    def test_a_child_forked_by_a_process_killed_holding_the_lock_does_not_keep_it(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            database = Path(directory) / "db.sqlite3"
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.settings",
                "DATABASE_URL": f"sqlite:///{database}",
            }
            killed = subprocess.run(
                [sys.executable, "-c", KILLED_HOLDING_THE_LOCK],
                cwd=BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            self.assertEqual(killed.returncode, -signal.SIGKILL, killed.stderr)
            child = int(killed.stdout)
            self.addCleanup(os.kill, child, signal.SIGKILL)

            with open(f"{database}.lock", "a+b") as lock_file:
                # Its parent is gone and the child still runs: the lock is free all the same.
                os.kill(child, 0)
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


class AnotherWriterTestCase(SimpleTestCase):
    """Tests against a writer of another process holding the lock (an open file of its own is
    another holder) on a database of their own."""

    def setUp(self) -> None:
        if connections["default"].vendor != "sqlite":
            self.skipTest("SQLite's writer lock (PostgreSQL has none: its row locks wake waiters)")
        directory = self.enterContext(tempfile.TemporaryDirectory())
        self.database = str(Path(directory) / "db.sqlite3")
        self.enterContext(mock.patch.dict(connections["default"].settings_dict, {"NAME": self.database}))
        self.holder = self.enterContext(open(f"{self.database}.lock", "a+b"))
        fcntl.flock(self.holder.fileno(), fcntl.LOCK_EX)

    def holder_can_lock(self) -> bool:
        try:
            fcntl.flock(self.holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def assert_holder_locks_it_again(self) -> None:
        for _ in range(500):
            if self.holder_can_lock():
                return
            time.sleep(0.01)
        self.fail("the lock was never free again")

    def assert_takes_it_alone_once_free(self, lock: Callable[[], AbstractContextManager[object]]) -> None:
        """A writer (lock() enters its lock) waits while the holder has it, then holds it alone."""
        inside = threading.Event()
        leave = threading.Event()

        def writer() -> None:
            with lock():
                inside.set()
                leave.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        self.assertFalse(inside.wait(0.05))
        fcntl.flock(self.holder.fileno(), fcntl.LOCK_UN)
        self.assertTrue(inside.wait(5))
        self.assertFalse(self.holder_can_lock())  # The writer holds it, alone.
        leave.set()
        thread.join()
        self.assertTrue(self.holder_can_lock())

    def flock_calls_while_waiting(self, deadline: float | None, waits_at_least: float) -> list[int]:
        """The flock() operations of a writer that finds the lock held, waits (at least
        `waits_at_least` seconds), and takes it once the holder lets it go."""
        calls: list[int] = []
        real_flock = fcntl.flock

        def flock(fd: int, operation: int) -> None:
            calls.append(operation)
            real_flock(fd, operation)

        got = threading.Event()

        def writer() -> None:
            with writer_lock(deadline=deadline):
                got.set()

        with mock.patch("conversations.locks.fcntl.flock", side_effect=flock):
            thread = threading.Thread(target=writer)
            thread.start()
            self.assertFalse(got.wait(waits_at_least))
            real_flock(self.holder.fileno(), fcntl.LOCK_UN)
            self.assertTrue(got.wait(5))
            thread.join()
        return [operation for operation in calls if operation != fcntl.LOCK_UN]


class WriterWithoutDeadlineTestCase(AnotherWriterTestCase):
    """A writer without a deadline (the outbox's worker, the admin) lets texts waiting for the
    lock go first for YIELD_FOR, then queues with them."""

    def test_a_waiting_text_goes_before_a_writer_without_a_deadline(self) -> None:
        order: list[str] = []
        # The writer is another process's: a lock of its own on the same file (within one
        # process, threads take turns on a lock of the process's first).
        other_process = locks._ProcessWriterLock(f"{self.database}.lock")
        self.addCleanup(other_process.file.close)

        def writer() -> None:
            other_process.take_file_lock(None)
            order.append("writer")

        def text() -> None:
            with writer_lock(deadline=time.monotonic() + 10):
                order.append("text")

        with mock.patch.object(locks, "YIELD_FOR", 10.0):
            writing = threading.Thread(target=writer)
            writing.start()
            time.sleep(0.05)  # Polling by now.
            texting = threading.Thread(target=text)
            texting.start()
            time.sleep(0.05)  # Blocked in flock() by now, behind the writer's turn.
            fcntl.flock(self.holder.fileno(), fcntl.LOCK_UN)
            texting.join(5)
            writing.join(5)
        self.assertEqual(order, ["text", "writer"])
        self.assertGreater(YIELD_PAUSE, 0.001)

    def test_a_writer_without_a_deadline_queues_in_flock_after_yielding_for_a_while(self) -> None:
        calls = self.flock_calls_while_waiting(None, waits_at_least=2 * locks.YIELD_FOR + 0.05)
        self.assertGreater(len(calls), 2)  # It tried, every YIELD_PAUSE...
        self.assertTrue(all(operation & fcntl.LOCK_NB for operation in calls[:-1]))
        self.assertEqual(calls[-1], fcntl.LOCK_EX)  # ...then waited in the kernel's queue.


class TextWaitTestCase(AnotherWriterTestCase):
    """A text (a writer with a deadline) waits for the lock blocked in flock(), where the kernel
    hands it over the moment it is free, and still never past its deadline."""

    def give_up(self) -> None:
        with self.assertRaises(DeadlinePassed), writer_lock(deadline=time.monotonic() + 0.05):
            self.fail("the lock was held by another writer")

    def test_a_text_waits_blocked_in_flock_and_takes_the_lock_once_free(self) -> None:
        calls = self.flock_calls_while_waiting(time.monotonic() + 10, waits_at_least=0.05)
        self.assertIn(fcntl.LOCK_EX, calls)  # Blocking: no LOCK_NB.

    def process_lock(self) -> locks._ProcessWriterLock:
        return locks._by_path[f"{self.database}.lock"]

    def let_go_and_let_the_waiting_thread_take_it(self) -> None:
        """The other writer lets go, and the flock() a text left blocked gets the lock."""
        fcntl.flock(self.holder.fileno(), fcntl.LOCK_UN)
        for _ in range(500):
            if not self.process_lock().blocked:
                return
            time.sleep(0.01)
        self.fail("the waiting thread never got the lock")

    def test_a_text_gives_up_at_its_deadline_and_the_lock_it_got_too_late_is_let_go(self) -> None:
        self.give_up()
        self.let_go_and_let_the_waiting_thread_take_it()
        self.assertTrue(self.holder_can_lock())  # Got for nobody, and let go.

    def test_a_text_never_takes_the_lock_before_the_waiting_thread_has_let_it_go(self) -> None:
        # The waiting thread gets the lock for a text that gave up; while it lets go (a
        # system call, the GIL released), the next text must not take it beside it.
        real_flock = fcntl.flock
        letting_go = threading.Event()

        def flock(fd: int, operation: int) -> None:
            if threading.current_thread().name == "sqlite-writer-lock" and operation == fcntl.LOCK_UN:
                letting_go.set()
                time.sleep(0.2)
            real_flock(fd, operation)

        self.give_up()
        held_alone: list[bool] = []

        def text() -> None:
            letting_go.wait(5)
            with writer_lock(deadline=time.monotonic() + 10):
                time.sleep(0.3)  # Past the waiting thread's release.
                held_alone.append(not self.holder_can_lock())

        with mock.patch("conversations.locks.fcntl.flock", side_effect=flock):
            thread = threading.Thread(target=text)
            thread.start()
            real_flock(self.holder.fileno(), fcntl.LOCK_UN)
            thread.join(10)
        self.assertEqual(held_alone, [True])

    def test_a_writer_without_a_deadline_takes_over_the_wait_of_a_text_that_gave_up(self) -> None:
        self.give_up()
        self.assert_takes_it_alone_once_free(lambda: writer_lock())

    def test_a_wait_cut_short_by_an_exception_leaves_the_lock_to_nobody(self) -> None:
        # E.g. a job timeout's SIGALRM raising in the middle of the wait.
        with (
            mock.patch.object(locks._Request, "wait", side_effect=KeyboardInterrupt),
            self.assertRaises(KeyboardInterrupt),
            writer_lock(deadline=time.monotonic() + 10),
        ):
            self.fail("the lock was held by another writer")
        self.let_go_and_let_the_waiting_thread_take_it()
        self.assertTrue(self.holder_can_lock())

    def test_a_text_hears_at_once_when_the_waiting_thread_fails_and_the_next_text_goes_on(self) -> None:
        real_flock = fcntl.flock

        def flock(fd: int, operation: int) -> None:
            if threading.current_thread().name == "sqlite-writer-lock":
                raise OSError(errno.ENOLCK, "No locks available")
            real_flock(fd, operation)

        started = time.monotonic()
        with (
            mock.patch("conversations.locks.fcntl.flock", side_effect=flock),
            self.assertLogs("conversations.locks", "WARNING"),
            self.assertRaises(OSError),
            writer_lock(deadline=started + 10),
        ):
            self.fail("the lock was held by another writer")
        self.assertLess(time.monotonic() - started, 5)  # Not at its deadline.
        got = threading.Event()

        def text() -> None:
            with writer_lock(deadline=time.monotonic() + 10):
                got.set()

        thread = threading.Thread(target=text)
        thread.start()
        self.assertFalse(got.wait(0.05))
        fcntl.flock(self.holder.fileno(), fcntl.LOCK_UN)
        self.assertTrue(got.wait(5))  # Through a waiting thread of its own.
        thread.join()

    def test_the_next_text_takes_over_the_wait_of_one_that_gave_up(self) -> None:
        self.give_up()
        self.assert_takes_it_alone_once_free(lambda: writer_lock(deadline=time.monotonic() + 10))

    def test_a_text_never_shares_the_lock_with_the_wait_of_one_that_gave_up(self) -> None:
        # Both are this process's, on one open file, so flock() would grant both: the wait
        # that gave up, once it got the lock, would then release the text's.
        for _ in range(20):
            self.give_up()
            fcntl.flock(self.holder.fileno(), fcntl.LOCK_UN)
            with writer_lock(deadline=time.monotonic() + 10):
                time.sleep(0.01)  # Time for a wrong release to happen.
                self.assertFalse(self.holder_can_lock())
            self.assert_holder_locks_it_again()


class CheckpointTestCase(TransactionTestCase):
    """SQLite's WAL is copied into the database by writers once they have released the writer
    lock, not inside a COMMIT while every other writer waits."""

    def setUp(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("SQLite's WAL (PostgreSQL checkpoints in a process of its own)")
        self.write(1)
        locks._by_path[f"{connection.settings_dict['NAME']}.lock"].writes = 0  # Other tests' writes.

    def write(self, times: int) -> None:
        for n in range(times):
            with writer_lock(), transaction.atomic():
                Caller.objects.update_or_create(phone_number="+15005550001", defaults={"name": f"Rey {n}"})

    def test_a_writer_checkpoints_every_so_many_writes_with_the_lock_free(self) -> None:
        path = f"{connection.settings_dict['NAME']}.lock"
        free: list[bool] = []
        real_checkpoint = locks._checkpoint

        def checkpoint(db: BaseDatabaseWrapper) -> bool:
            with open(path, "a+b") as other:
                try:
                    fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    free.append(True)
                except BlockingIOError:
                    free.append(False)
            return real_checkpoint(db)

        with mock.patch("conversations.locks._checkpoint", side_effect=checkpoint):
            self.write(2 * locks.CHECKPOINT_EVERY)
        self.assertEqual(free, [True, True])

    def test_a_checkpoint_due_inside_a_transaction_is_made_by_the_next_write(self) -> None:
        self.write(locks.CHECKPOINT_EVERY - 1)
        made: list[bool] = []
        real_checkpoint = locks._checkpoint

        def checkpoint(db: BaseDatabaseWrapper) -> bool:
            made.append(real_checkpoint(db))
            return made[-1]

        with mock.patch("conversations.locks._checkpoint", side_effect=checkpoint):
            with transaction.atomic():  # An outer transaction: SQLite could not finish one.
                self.write(1)
            self.write(1)
        self.assertEqual(made, [False, True])

    def test_the_wal_stays_small_however_many_texts_are_written(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = Path(f"{connection.settings_dict['NAME']}-wal")
        self.write(3 * locks.CHECKPOINT_EVERY)
        frames = (wal.stat().st_size - WAL_HEADER) / (4096 + WAL_FRAME_HEADER)
        # Each of these writes adds a frame or more, and SQLite's own checkpoint waits for
        # 10,000 (settings.py): without the writers' checkpoints, it would hold 300 and more.
        self.assertLessEqual(frames, 1.5 * locks.CHECKPOINT_EVERY)

    def test_a_failed_checkpoint_leaves_the_write_committed_and_a_traceback(self) -> None:
        self.write(1)
        driver = connection.connection

        class ReadOnly:
            def execute(self, sql: str, *args: object) -> object:
                if sql.startswith("PRAGMA wal_checkpoint"):
                    raise sqlite3.OperationalError("attempt to write a readonly database")
                return driver.execute(sql, *args)

            def __getattr__(self, name: str) -> object:
                return getattr(driver, name)

        with (
            mock.patch.object(locks, "CHECKPOINT_EVERY", 1),
            mock.patch.object(connection, "connection", ReadOnly()),
            self.assertLogs("conversations.locks", "WARNING") as logs,
            writer_lock(),
            transaction.atomic(),
        ):
            Caller.objects.filter(phone_number="+15005550001").update(name="Finn")
        self.assertEqual(Caller.objects.get().name, "Finn")
        self.assertIn("readonly database", logs.output[0])  # With its traceback.
