import os
import subprocess
import sys
import tempfile
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from conversations.checks import check_metrics
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


STRONG_KEY = "k7#Vq9!pZ2@rT5^wX8&yB3*nM6(cF1)hJ4-dG0_sL9+aQ2=eR5{uI8}oP3[vC6]"


@override_settings(DEBUG=False, TWILIO_AUTH_TOKEN="secret")
class SecretKeyCheckTestCase(SimpleTestCase):
    UNSAFE_KEYS = {
        "empty": "",
        "short": "k7#Vq9!pZ2@rT5^wX8&yB3*nM6",
        "too few different characters": "ab" * 40,
        "the .env.example value": "change-me-to-a-long-random-string",
        "Django's development prefix": "django-insecure-" + STRONG_KEY,
        "the development fallback": "insecure-development-key",
    }

    def test_it_refuses_an_empty_short_or_placeholder_key_with_debug_off(self) -> None:
        for kind, key in self.UNSAFE_KEYS.items():
            with (
                self.subTest(kind),
                override_settings(SECRET_KEY=key),
                self.assertRaisesMessage(SystemCheckError, "conversations.E002"),
            ):
                call_command("check")

    def test_it_passes_a_long_random_key(self) -> None:
        with override_settings(SECRET_KEY=STRONG_KEY):
            call_command("check")

    @override_settings(DEBUG=True, SECRET_KEY="insecure-development-key")
    def test_it_lets_debug_run_on_the_development_key(self) -> None:
        call_command("check")

    def test_it_stops_manage_py_with_a_placeholder_key(self) -> None:
        env = {**os.environ, "DEBUG": "False", "TWILIO_AUTH_TOKEN": "secret"}
        env["SECRET_KEY"] = "change-me-to-a-long-random-string"

        result = subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )

        self.assertEqual(result.returncode, 1)
        self.assertIn("conversations.E002", result.stderr)
        self.assertIn("SECRET_KEY is a placeholder, but DEBUG is off.", result.stderr)

    def test_it_stops_manage_py_with_no_key(self) -> None:
        env = {**os.environ, "DEBUG": "False", "TWILIO_AUTH_TOKEN": "secret", "SECRET_KEY": ""}

        result = subprocess.run(
            [sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env, capture_output=True, text=True
        )

        self.assertEqual(result.returncode, 1)
        self.assertIn("SECRET_KEY is empty, but DEBUG is off.", result.stderr)


class SmsBackendCheckTestCase(SimpleTestCase):
    @override_settings(SMS_BACKEND="carrier-pigeon")
    def test_it_refuses_a_backend_it_does_not_know(self) -> None:
        with self.assertRaisesMessage(SystemCheckError, "conversations.E003"):
            call_command("check")

    def test_it_passes_twilio_and_the_console(self) -> None:
        for backend in ("twilio", "console"):
            with self.subTest(backend=backend), override_settings(SMS_BACKEND=backend):
                call_command("check")


class OutboxSettingsCheckTestCase(SimpleTestCase):
    """Each would stop the worker at its first text: manage.py refuses them at startup."""

    def test_it_refuses_what_the_worker_cannot_run_with(self) -> None:
        for setting, value, words in [
            ("TASKS_BACKEND", "celery", "TASKS_BACKEND must be db or rq"),
            ("SMS_SEND_RATE", 0, "must be more than 0"),
            ("TWILIO_TIMEOUT", -1, "must be more than 0"),
            ("OUTBOX_POLL", 0, "must be more than 0"),
            ("SEND_ATTEMPTS", 0, "SEND_ATTEMPTS must be at least 1"),
            ("OUTBOX_WORKER_NICE", 20, "OUTBOX_WORKER_NICE must be between 0 and 19"),
            ("OUTBOX_WORKER_NICE", -5, "OUTBOX_WORKER_NICE must be between 0 and 19"),
        ]:
            with (
                self.subTest(setting=setting, value=value),
                override_settings(**{setting: value}),
                self.assertRaisesMessage(SystemCheckError, words),
            ):
                call_command("check")

    @override_settings(TASKS_BACKEND="rq", REDIS_URL="")
    def test_it_refuses_rq_without_redis(self) -> None:
        with self.assertRaisesMessage(SystemCheckError, "TASKS_BACKEND=rq needs REDIS_URL"):
            call_command("check")

    def test_it_passes_the_defaults(self) -> None:
        call_command("check")


class QuietHoursCheckTestCase(SimpleTestCase):
    def test_it_refuses_what_is_not_two_times(self) -> None:
        for value in ("9pm-8am", "21:00", "21:00-21:00"):
            with (
                self.subTest(value=value),
                override_settings(QUIET_HOURS=value),
                self.assertRaisesMessage(SystemCheckError, "conversations.E004"),
            ):
                call_command("check")

    def test_it_says_what_a_good_value_looks_like(self) -> None:
        with (
            override_settings(QUIET_HOURS="9pm-8am"),
            self.assertRaisesMessage(
                SystemCheckError,
                "QUIET_HOURS must be two times on a 24-hour clock, like 21:00-08:00, not '9pm-8am'.",
            ),
        ):
            call_command("check")

    def test_it_passes_hours_or_none(self) -> None:
        for value in ("21:00-08:00", ""):
            with self.subTest(value=value), override_settings(QUIET_HOURS=value):
                call_command("check")


GOOD_METRICS_TOKEN = "Xq3v9LmP2rT8wZ5kB7nC4hJ6dG1sF0aE"


class MetricsCheckTestCase(SimpleTestCase):
    def setUp(self) -> None:
        self.directory = Path(self.enterContext(tempfile.TemporaryDirectory())) / "metrics"

    def errors(self, **settings: object) -> list[str]:
        metrics = {"METRICS_ENABLED": True, "METRICS_TOKEN": GOOD_METRICS_TOKEN}
        metrics["PROMETHEUS_MULTIPROC_DIR"] = str(self.directory)
        with override_settings(**{**metrics, **settings}):
            return [error.msg for error in check_metrics() if error.id == "conversations.E021"]

    def test_it_refuses_metrics_without_a_token_or_with_a_short_one(self) -> None:
        for token in ("", "short", GOOD_METRICS_TOKEN[:-1]):
            with self.subTest(token=token):
                [error] = self.errors(METRICS_TOKEN=token)

                self.assertIn("METRICS_ENABLED needs a METRICS_TOKEN of at least 32 characters", error)

    def test_it_refuses_metrics_without_a_directory_for_every_process_s_counts(self) -> None:
        [error] = self.errors(PROMETHEUS_MULTIPROC_DIR="")

        self.assertIn("METRICS_ENABLED needs PROMETHEUS_MULTIPROC_DIR", error)

    def test_it_refuses_a_directory_that_is_a_file(self) -> None:
        self.directory.write_text("not a directory")

        [error] = self.errors()

        self.assertIn("is not a directory this process can write to", error)

    def test_it_passes_a_long_token_and_a_directory_that_can_be_made(self) -> None:
        self.assertEqual(self.errors(), [])

    def test_it_passes_anything_while_metrics_are_off(self) -> None:
        self.assertEqual(
            self.errors(METRICS_ENABLED=False, METRICS_TOKEN="", PROMETHEUS_MULTIPROC_DIR=""), []
        )
