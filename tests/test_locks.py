"""The SQLite writer lock (conversations/locks.py) across processes that fork: a child never
keeps its parent's lock alive."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from unittest import mock

from django.db import connections
from django.test import SimpleTestCase

from conversations.locks import YIELD_PAUSE, writer_lock
from tests.server import BASE_DIR

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


class WriterWithoutDeadlineTestCase(SimpleTestCase):
    def test_a_writer_without_a_deadline_waits_by_polling_so_a_waiting_text_goes_first(self) -> None:
        if connections["default"].vendor != "sqlite":
            self.skipTest("SQLite's writer lock (PostgreSQL has none: its row locks wake waiters)")
        with tempfile.TemporaryDirectory() as directory:
            database = str(Path(directory) / "db.sqlite3")
            holder = self.enterContext(open(f"{database}.lock", "a+b"))  # Another writer, this file.
            fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
            tries: list[int] = []
            real_flock = fcntl.flock

            def flock(fd: int, operation: int) -> None:
                tries.append(operation)
                real_flock(fd, operation)

            got = threading.Event()

            def writer() -> None:
                with writer_lock():
                    got.set()

            with (
                mock.patch.dict(connections["default"].settings_dict, {"NAME": database}),
                mock.patch("conversations.locks.fcntl.flock", side_effect=flock),
            ):
                thread = threading.Thread(target=writer)
                thread.start()
                self.assertFalse(got.wait(0.05))  # Held by the other writer: it waits...
                real_flock(holder.fileno(), fcntl.LOCK_UN)
                self.assertTrue(got.wait(5))  # ...and takes it once free.
                thread.join()

        # Never blocked in flock(), where the kernel would hand it the lock ahead of a text
        # polling for it: it tried, again every YIELD_PAUSE, never faster than a text tries.
        self.assertGreater(len(tries), 1)
        self.assertTrue(all(operation & fcntl.LOCK_NB for operation in tries if operation & fcntl.LOCK_EX))
        self.assertGreater(YIELD_PAUSE, 0.001)
