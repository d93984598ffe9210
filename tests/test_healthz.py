import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings

from tests.redis_server import redis_cache, redis_server
from tests.server import BASE_DIR


class HealthzTestCase(TestCase):
    def test_it_answers_ok_with_the_database_reachable(self) -> None:
        response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["database"], "ok")
        self.assertIn("no-cache", response["Cache-Control"])

    def test_it_answers_503_without_the_database(self) -> None:
        # A PostgreSQL URL on a port where nothing listens, in a process of its own.
        script = (
            "import django; django.setup();"
            "from django.test import Client;"
            "print(Client().get('/healthz', HTTP_HOST='localhost').status_code)"
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "smsproject.settings",
            "DATABASE_URL": "postgres://nobody:x@127.0.0.1:9/none",
            "DEBUG": "True",
        }

        result = subprocess.run(
            [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )

        self.assertEqual(result.stdout.strip(), "503", result.stderr)


@pytest.mark.slow
class HealthzUnderFaultsTestCase(TransactionTestCase):
    def test_it_answers_503_while_another_process_holds_the_write_lock(self) -> None:
        if connection.vendor != "sqlite":
            self.skipTest("SQLite's database-wide write lock")
        other = sqlite3.connect(connection.settings_dict["NAME"])
        other.execute("BEGIN IMMEDIATE")
        try:
            response = self.client.get("/healthz")
        finally:
            other.rollback()
            other.close()

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json(), {"status": "unavailable", "database": "locked"})
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_it_answers_503_while_the_database_refuses_writes(self) -> None:
        with self.read_only():
            response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response.json()["database"], "read-only")
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_it_reports_a_cache_outage_but_still_answers_200(self) -> None:
        with redis_server() as redis, override_settings(REDIS_URL=redis.url, CACHES=redis_cache(redis.url)):
            self.assertEqual(self.client.get("/healthz").json()["cache"], "ok")
            redis.stop()

            response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json(), {"status": "ok", "database": "ok", "cache": "unavailable"})

    @contextmanager
    def read_only(self) -> Iterator[None]:
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            connection.connection.execute("PRAGMA query_only = ON")
            yield
            return  # healthz discarded the connection: the next one is writable again.
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        connection.close()  # Sessions read the default when they open.
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET default_transaction_read_only = off")
                cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
            connection.close()
