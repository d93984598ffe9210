"""The webhook under gunicorn while the parts it depends on fail, hang and come back.

Each test runs Twilio-like traffic (tests/traffic.py) through a fault and asserts that every
200 was committed with that reply, nothing was committed without one, and each pair's counts
go on 1, 2, 3 afterwards; and that /healthz said 503 exactly while texts could not commit.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from django.db import connection
from django.test import TransactionTestCase

from conversations.health import PROBE_TIMEOUT
from conversations.models import Message
from tests.postgres_server import PostgresServer, postgres_server
from tests.redis_server import redis_server
from tests.server import gunicorn
from tests.traffic import Traffic, assert_nothing_lost


@pytest.mark.slow
class SmsUnderFaultsTestCase(TransactionTestCase):
    def committed(self, traffic: Traffic) -> dict[str, str]:
        sids = [sent.sid for sent in traffic.sent]
        return dict(Message.objects.filter(sid__in=sids).values_list("sid", "reply"))

    def test_it_answers_every_text_while_redis_stops_hangs_and_comes_back_empty(self) -> None:
        with (
            redis_server() as redis,
            gunicorn(workers=2, REDIS_URL=redis.url) as base_url,
            Traffic(base_url) as traffic,
        ):
            time.sleep(1)
            redis.hang()  # Listening, never answering: each call waits for its timeout.
            time.sleep(1.5)
            redis.resume()
            redis.client().flushall()
            time.sleep(1)
            redis.stop()  # Gone: connections refused.
            time.sleep(1.5)
            redis.start()  # Back, empty.
            time.sleep(1)

        report(traffic, "Redis hung, flushed, stopped and back")
        self.assertEqual(traffic.statuses(), {200})
        self.assertEqual({status for _, status in traffic.health}, {200})
        assert_nothing_lost(self, traffic, self.committed(traffic))

    def test_it_commits_nothing_after_the_deadline_while_sqlite_is_locked(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("SQLite's database-wide write lock")
        with gunicorn(workers=2, WEBHOOK_DEADLINE="1") as base_url, Traffic(base_url) as traffic:
            time.sleep(0.5)
            held_from = time.monotonic()
            # A backup or a `sqlite3` shell holds the write lock for 5 s, past the deadline. A
            # probe waits its turn behind texts that each wait their second in both workers, so
            # it may be served seconds after it was sent: the hold is long enough for one to be
            # served inside it (with 3 s, a CI run saw every probe served after the hold).
            hold_write_lock(connection.settings_dict["NAME"], seconds=5)
            held_until = time.monotonic()
            time.sleep(1.5)

        report(traffic, "SQLite write lock held 5 s, deadline 1 s")
        self.assertIn(503, traffic.statuses())
        self.assertLessEqual(traffic.statuses(), {200, 503})
        # A probe is timed when its answer came, and may have queued behind texts that waited
        # their second for the lock in both workers: its 503 can arrive up to a probe's time
        # after the hold. Nothing else makes /healthz answer 503 here.
        self.assertIn(503, traffic.health_between(held_from, held_until + PROBE_TIMEOUT + 1.0))
        assert_nothing_lost(self, traffic, self.committed(traffic))
        last = {sent.sender: sent for sent in traffic.sent}
        self.assertEqual({sent.status for sent in last.values()}, {200})

    def test_it_commits_no_text_after_twilio_gave_up_while_sqlite_is_locked_for_twenty_seconds(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("SQLite's database-wide write lock")
        # Default settings (WEBHOOK_DEADLINE 10 s), 8 texts/s, each on its own connection and
        # not waiting for the last: texts queue for the workers while the lock is held, and
        # the deadline counts from when each reached the server, so none commits after
        # Twilio's 15 s (the client gives up then too: such a text has no 200).
        with (
            gunicorn(workers=2) as base_url,
            Traffic(base_url, pairs=4, interval=0.5, open_loop=True, probe_health=False) as traffic,
        ):
            time.sleep(0.5)
            hold_write_lock(connection.settings_dict["NAME"], seconds=20)
            time.sleep(2)

        report(traffic, "SQLite write lock held 20 s, default deadline")
        self.assertIn(503, traffic.statuses())
        self.assertIn(200, traffic.statuses())
        assert_nothing_lost(self, traffic, self.committed(traffic))

    def test_it_heals_without_a_restart_once_the_database_is_writable_again(self) -> None:
        with gunicorn(workers=2) as base_url, Traffic(base_url) as traffic:
            time.sleep(0.5)
            with read_only_database(base_url):
                time.sleep(2)
                broken_until = time.monotonic()
            healed_by = wait_for(lambda: traffic.sent[-1].status == 200, within=10)
            time.sleep(1)

        report(traffic, f"read-only, healed {healed_by - broken_until:.2f} s after it was writable again")
        self.assertIn(503, traffic.statuses())
        self.assertNotIn(500, traffic.statuses())
        self.assertIn(503, {status for _, status in traffic.health})
        assert_nothing_lost(self, traffic, self.committed(traffic))

    def test_it_loses_no_text_when_postgresql_restarts(self) -> None:
        if connection.vendor != "postgresql":
            self.skipTest("a PostgreSQL restart, on a cluster of the test's own")
        with postgres_server() as postgres, gunicorn(workers=2, DATABASE_URL=postgres.url) as base_url:
            with Traffic(base_url) as traffic:
                time.sleep(1)
                postgres.restart()
                time.sleep(1.5)
            committed = committed_in(postgres, traffic)
            # A text whose COMMIT went through as the server went down was answered 503: in
            # doubt. Twilio delivers it again, and the redelivery gets the first reply.
            in_doubt = [sent for sent in traffic.sent if sent.status != 200 and sent.sid in committed]
            again = [traffic.text(requests.Session(), sent.sender, sent.sid) for sent in in_doubt]

        report(traffic, f"PostgreSQL restarted, {len(in_doubt)} in doubt")
        self.assertLessEqual(traffic.statuses(), {200, 503})
        self.assertEqual(traffic.sent[-1].status, 200)
        self.assertEqual([committed[sent.sid] for sent in in_doubt], [sent.message for sent in again])
        for sent, redelivered in zip(in_doubt, again, strict=True):
            sent.status, sent.reply = redelivered.status, redelivered.reply
        assert_nothing_lost(self, traffic, committed)


def committed_in(postgres: PostgresServer, traffic: Traffic) -> dict[str, str]:
    with postgres.connect() as db:
        rows = db.execute(
            "SELECT sid, reply FROM conversations_message WHERE sid = ANY(%s)",
            [[sent.sid for sent in traffic.sent]],
        )
        return dict(rows.fetchall())


def report(traffic: Traffic, fault: str) -> None:
    """The figures of a run, for `pytest -s`: what each text and /healthz got."""
    texts = Counter(sent.status for sent in traffic.sent)
    health = Counter(status for _, status in traffic.health)
    print(f"\n{fault}: texts {dict(texts)}, /healthz {dict(health)} {traffic.unhealthy[:3]}")


def hold_write_lock(path: str, seconds: float) -> None:
    """Hold SQLite's write lock from another process, as a `sqlite3` shell would."""
    script = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "time.sleep(float(sys.argv[2]))\n"
        "db.execute('ROLLBACK')\n"
    )
    subprocess.run([sys.executable, "-c", script, path, str(seconds)], check=True)


class read_only_database:
    """The database refuses writes, and the app's workers are replaced meanwhile, as when
    permissions slip during a deploy; then it is fixed, and nothing is restarted."""

    def __init__(self, server: object) -> None:
        self.server = server

    def __enter__(self) -> None:
        if connection.vendor == "sqlite":
            # Root ignores file modes; an immutable file it cannot open for writing either,
            # so SQLite opens it read-only.
            if shutil.which("chattr") is None:
                raise AssertionError("chattr (e2fsprogs) is needed to make the database read-only")
            subprocess.run(["chattr", "+i", connection.settings_dict["NAME"]], check=True)
        else:
            self._set_read_only("on")
        self.server.reload_workers()  # type: ignore[attr-defined]
        time.sleep(1)

    def __exit__(self, *exc: object) -> None:
        if connection.vendor == "sqlite":
            subprocess.run(["chattr", "-i", connection.settings_dict["NAME"]], check=True)
        else:
            self._set_read_only("off")

    def _set_read_only(self, value: str) -> None:
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {value}')
            if value == "on":
                # Connections keep the default they opened with: end the app's, as a
                # failover would, so that they reopen read-only.
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [name],
                )


def wait_for(condition: object, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"not so within {within} s")


if os.environ.get("CI") and shutil.which("chattr") is None:  # pragma: no cover
    raise RuntimeError("CI needs chattr for the read-only database test")
