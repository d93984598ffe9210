"""What reaches stderr: tracebacks of unhandled errors, with the text they happened to."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr

from django.conf import settings
from django.test import Client, TestCase, override_settings

from conversations.logs import escape, logging_config
from tests.twilio import RECIPIENT, SENDER

SID = "SM" + "ab" * 16


@contextmanager
def stderr_log(level: str = "INFO", fmt: str = "plain") -> Iterator[io.StringIO]:
    """Configure logging as settings do for LOG_LEVEL/LOG_FORMAT; yield what it writes to stderr."""
    buffer = io.StringIO()
    try:
        with redirect_stderr(buffer):
            logging.config.dictConfig(logging_config(level=level, fmt=fmt))
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
