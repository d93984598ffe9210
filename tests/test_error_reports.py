"""Sentry gets the error, never the phone numbers or the message body (no network: the
events are kept by a transport of the test's own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import sentry_sdk
from django.conf import settings
from django.http import HttpRequest
from django.test import Client, SimpleTestCase, TestCase, override_settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from conversations.error_reports import init_sentry, scrub_event
from conversations.webhook import sms_conversation
from tests.twilio import RECIPIENT, SENDER

BODY = "My card number is 4111 and I live at 12 Falcon Street"
SID = "SM" + "cd" * 16


@csrf_exempt
@sms_conversation
def failing(request: HttpRequest) -> str:
    body = request.text.body  # A local variable holding the body, as real code has.
    raise ValueError(f"cannot answer {request.text.sender}: {body}")


urlpatterns = [path("failing/", failing)]


class KeepingTransport(Transport):
    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.events.extend(item.payload.json for item in envelope.items if item.type == "event")


@override_settings(ROOT_URLCONF="tests.test_error_reports")
class SentryTestCase(TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.transport = KeepingTransport()
        init_sentry("https://public@sentry.example.com/1", transport=self.transport)
        self.addCleanup(sentry_sdk.get_global_scope().set_client, None)
        self.addCleanup(sentry_sdk.flush)

    def send_failing_text(self, **params: str) -> None:
        client = Client(raise_request_exception=False)
        data = {"From": SENDER, "To": RECIPIENT, "Body": BODY, "MessageSid": SID}
        response = client.post(
            f"/failing/?From={SENDER}&Body=QueryBody42", data, headers={"Cookie": "sessionid=abc"}
        )
        self.assertEqual(response.status_code, 500)
        sentry_sdk.flush()

    def test_it_reports_an_unhandled_error_without_numbers_or_the_body(self) -> None:
        self.send_failing_text()

        self.assertTrue(self.transport.events)
        event = self.transport.events[0]
        self.assertEqual(event["exception"]["values"][-1]["type"], "ValueError")
        everything = json.dumps(self.transport.events)
        for secret in (SENDER, RECIPIENT, "4155551234", BODY, "My card", "Falcon", "QueryBody42"):
            self.assertNotIn(secret, everything)
        for part in ("data", "query_string", "cookies"):
            self.assertNotIn(part, event["request"])
        self.assertIs(sentry_sdk.get_client().should_send_default_pii(), False)

    def test_its_reports_keep_the_masked_numbers_and_sid_the_log_adds(self) -> None:
        self.send_failing_text()

        everything = json.dumps(self.transport.events)
        self.assertIn(SID, everything)
        self.assertIn("+1415555****", everything)


class ScrubEventTestCase(SimpleTestCase):
    def test_it_cuts_numbers_in_any_format_out_of_messages(self) -> None:
        event = {"message": "from +14155551234, (415) 555-1234 and 415.555.1234 at 12:30 on 2030-01-01"}

        self.assertEqual(
            scrub_event(event)["message"], "from [Filtered], [Filtered] and [Filtered] at 12:30 on 2030-01-01"
        )

    def test_it_keeps_message_sids_and_masked_numbers(self) -> None:
        event = {"message": f"sid={SID} from=+1415555****"}

        self.assertEqual(scrub_event(event)["message"], f"sid={SID} from=+1415555****")


class SentryStartTestCase(SimpleTestCase):
    def started_with(self, **environment: str) -> str:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smsproject.settings", **environment}
        # What a process that set Django up reports to, if anything (no event is sent).
        code = (
            "import django, sentry_sdk; django.setup(); client = sentry_sdk.get_client(); "
            "print(client.is_active() and client.dsn, getattr(client.options.get('before_send'), '__name__', None))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.strip()

    def test_the_app_starts_sentry_with_sentry_dsn_and_its_scrubbing(self) -> None:
        self.assertEqual(
            self.started_with(SENTRY_DSN="https://public@sentry.example.com/1"),
            "https://public@sentry.example.com/1 scrub_event",
        )

    def test_nothing_is_reported_without_sentry_dsn(self) -> None:
        self.assertEqual(self.started_with(SENTRY_DSN=""), "False None")
