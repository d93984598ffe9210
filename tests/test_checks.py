import os
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from tests.server import BASE_DIR


class TwilioAuthTokenCheckTestCase(SimpleTestCase):
    @override_settings(TWILIO_REQUIRE_SIGNATURE=True, TWILIO_AUTH_TOKEN="")
    def test_it_fails_when_signatures_are_required_without_a_token(self) -> None:
        with self.assertRaisesMessage(SystemCheckError, "TWILIO_AUTH_TOKEN is not set"):
            call_command("check")

    @override_settings(TWILIO_REQUIRE_SIGNATURE=True, TWILIO_AUTH_TOKEN="secret")
    def test_it_passes_with_a_token(self) -> None:
        call_command("check")

    def test_it_stops_manage_py_with_debug_off_and_no_token(self) -> None:
        env = {**os.environ, "DEBUG": "False", "TWILIO_AUTH_TOKEN": "", "SECRET_KEY": "x" * 50}

        result = subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )

        self.assertEqual(result.returncode, 1)
        self.assertIn("conversations.E001", result.stderr)
        self.assertIn("TWILIO_AUTH_TOKEN is not set, but DEBUG is off", result.stderr)

    def test_it_lets_debug_run_without_a_token(self) -> None:
        env = {**os.environ, "DEBUG": "True", "TWILIO_AUTH_TOKEN": ""}

        result = subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )

        self.assertEqual(result.returncode, 0, result.stderr)
