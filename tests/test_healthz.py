import os
import subprocess
import sys

from django.test import TestCase

from tests.server import BASE_DIR


class HealthzTestCase(TestCase):
    def test_it_answers_ok_with_the_database_reachable(self) -> None:
        response = self.client.get("/healthz")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"ok\n")
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
