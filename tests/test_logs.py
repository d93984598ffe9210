"""What reaches stderr: tracebacks of unhandled errors, with the text they happened to."""

from __future__ import annotations

import copy
import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, SimpleTestCase, TestCase, override_settings

from conversations.logs import configure, escape
from tests.twilio import RECIPIENT, SENDER

SID = "SM" + "ab" * 16


def logging_with(level: str, fmt: str) -> dict[str, Any]:
    """The LOGGING setting as settings make it for LOG_LEVEL and LOG_FORMAT."""
    config = copy.deepcopy(settings.LOGGING)
    config["handlers"]["stderr"]["formatter"] = fmt
    config["root"]["level"] = config["loggers"]["django"]["level"] = level
    return config


@contextmanager
def stderr_log(level: str = "INFO", fmt: str = "plain") -> Iterator[io.StringIO]:
    """Configure logging as settings do for LOG_LEVEL/LOG_FORMAT; yield what it writes to stderr."""
    buffer = io.StringIO()
    try:
        with redirect_stderr(buffer):
            logging.config.dictConfig(logging_with(level, fmt))
        yield buffer
    finally:
        logging.config.dictConfig(settings.LOGGING)


@override_settings(ROOT_URLCONF="tests.urls")
class UnhandledErrorLogTestCase(TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client = Client(raise_request_exception=False)

    def text_the_broken_app(self, sender: str = SENDER) -> int:
        params = {"From": sender, "To": RECIPIENT, "Body": "Hello", "MessageSid": SID}
        return self.client.post("/broken/", params).status_code

    def test_it_logs_the_traceback_of_an_unhandled_error_with_the_text_it_happened_to(self) -> None:
        with stderr_log() as stderr:
            status = self.text_the_broken_app()

        self.assertEqual(status, 500)
        log = stderr.getvalue()
        self.assertIn("ERROR django.request Internal Server Error: /broken/", log)
        self.assertIn(f"[sid={SID} from=+1415555**** to=+1500555****]", log)
        self.assertIn("Traceback (most recent call last):", log)
        self.assertIn("RuntimeError: the handler failed", log)
        self.assertNotIn(SENDER, log)

    def test_it_logs_one_json_object_a_line_with_the_traceback_in_json_format(self) -> None:
        with stderr_log(fmt="json") as stderr:
            self.text_the_broken_app()

        records = [json.loads(line) for line in stderr.getvalue().splitlines()]
        error = next(record for record in records if record["levelname"] == "ERROR")
        self.assertEqual(error["name"], "django.request")
        self.assertEqual(error["message"], "Internal Server Error: /broken/")
        self.assertIn("RuntimeError: the handler failed", error["exc_info"])
        self.assertEqual(
            (error["message_sid"], error["sms_from"], error["sms_to"]), (SID, "+1415555****", "+1500555****")
        )

    def test_it_forgets_the_text_when_its_request_ends(self) -> None:
        self.text_the_broken_app()

        with stderr_log() as stderr:
            logging.getLogger("conversations").warning("after the request")

        self.assertNotIn("sid=", stderr.getvalue())

    def test_it_keeps_records_under_log_level_out(self) -> None:
        with stderr_log(level="ERROR") as stderr:
            self.client.post("/echo/", {"From": SENDER, "To": RECIPIENT, "Body": "Hi", "MessageSid": SID})

        self.assertEqual(stderr.getvalue(), "")


class EscapedLogTestCase(TestCase):
    FORGED = "\n2030-01-01 00:00:00,000 INFO conversations.webhook sms sid=SMforged outcome=counted"

    def test_a_sender_cannot_forge_a_webhook_log_line(self) -> None:
        with stderr_log() as stderr:
            self.client.post("/sms/", {"From": "+1415" + self.FORGED, "To": RECIPIENT, "Body": "Hi"})

        self.assertNotIn(self.FORGED, stderr.getvalue())
        for line in stderr.getvalue().splitlines():
            self.assertFalse(line.startswith("2030-01-01"), line)

    def test_the_webhook_line_itself_escapes_the_sid_and_numbers(self) -> None:
        with self.assertLogs("conversations.webhook", "INFO") as logs:
            self.client.post(
                "/sms/", {"From": SENDER + "\r\x1b[2J", "To": RECIPIENT, "MessageSid": "SM1\nforged"}
            )

        line = logs.records[-1].getMessage()
        self.assertNotIn("\n", line)
        self.assertIn("sid=SM1\\nforged", line)

    def test_every_logged_value_has_its_control_characters_escaped(self) -> None:
        with stderr_log() as stderr:
            logging.getLogger("conversations").warning("name=%s", "Rey\nERROR forged\x1b[31m\u2028")

        self.assertEqual(len(stderr.getvalue().splitlines()), 1)
        self.assertIn("name=Rey\\nERROR forged\\x1b[31m\\u2028", stderr.getvalue())

    def test_escape_writes_control_characters_as_python_does(self) -> None:
        self.assertEqual(escape("a\tb\x00c\x7f"), "a\\tb\\x00c\\x7f")
        self.assertEqual(escape("Chloé +1415"), "Chloé +1415")


class LogSettingsTestCase(SimpleTestCase):
    def test_it_refuses_a_log_format_it_does_not_know(self) -> None:
        with (
            override_settings(LOG_FORMAT="xml"),
            self.assertRaisesMessage(ImproperlyConfigured, "LOG_FORMAT must be plain or json, not 'xml'."),
        ):
            configure(settings.LOGGING)

    def test_it_refuses_a_log_level_it_does_not_know(self) -> None:
        with (
            override_settings(LOG_LEVEL="LOUD"),
            self.assertRaisesMessage(ImproperlyConfigured, "LOG_LEVEL must be DEBUG, INFO, WARNING"),
        ):
            configure(settings.LOGGING)

    def test_a_process_with_a_bad_log_format_does_not_start(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smsproject.settings", "LOG_FORMAT": "xml"}

        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            capture_output=True,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
            timeout=60,
        )

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured: LOG_FORMAT must be plain or json, not 'xml'.", result.stderr)
