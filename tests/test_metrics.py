"""/metrics: off unless METRICS_ENABLED, only for the bearer of METRICS_TOKEN, never cached, and
its numbers as the rows say, with no phone number, body or SID in them.

In the test process prometheus_client counts in memory, for the whole run: each test reads how
much a count moved (tests/test_metrics_live.py scrapes gunicorn's workers and a worker, added up).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from unittest import mock

from django.db import connection
from django.test import SimpleTestCase, override_settings
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from conversations.metrics import multiprocess_dir_prepare
from conversations.models import Message
from conversations.outbox import texts_enqueue
from conversations.outbox_worker import outbox_drain
from conversations.tasks import outbox_tick
from tests.fake_twilio_api import FakeTwilioApi
from tests.server import BASE_DIR
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, sign

METRICS_TOKEN = "metrics-token-for-the-tests-0123456789abcdef"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@override_settings(METRICS_ENABLED=True, METRICS_TOKEN=METRICS_TOKEN)
class MetricsTestCase(TwilioTestCase):
    def scrape(self) -> Samples:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        self.assertEqual(response.status_code, 200)
        return samples_of(response.content.decode())

    def moved(self, before: Samples, after: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    @override_settings(METRICS_ENABLED=False)
    def test_it_is_not_found_when_metrics_are_off(self) -> None:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

        self.assertEqual(response.status_code, 404)

    def test_it_refuses_a_request_without_the_token(self) -> None:
        response = self.client.get("/metrics")

        self.assertEqual(response.status_code, 401)
        self.assertEqual(response["WWW-Authenticate"], 'Bearer realm="metrics"')
        self.assertNotIn(b"sms_", response.content)

    def test_it_refuses_a_wrong_token_or_another_scheme(self) -> None:
        for authorization in (f"Bearer {METRICS_TOKEN}x", "Bearer ", f"Basic {METRICS_TOKEN}", METRICS_TOKEN):
            with self.subTest(authorization=authorization):
                response = self.client.get("/metrics", headers={"Authorization": authorization})

                self.assertEqual(response.status_code, 401)

    @override_settings(METRICS_TOKEN="")
    def test_it_refuses_everyone_without_a_token_configured(self) -> None:
        response = self.client.get("/metrics", headers={"Authorization": "Bearer "})

        self.assertEqual(response.status_code, 401)

    def test_it_answers_the_token_in_prometheus_format_never_cached(self) -> None:
        response = self.client.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], CONTENT_TYPE_LATEST)
        self.assertIn("no-store", response["Cache-Control"])
        self.assertIn(b"# TYPE sms_texts_received_total counter", response.content)

    def test_it_counts_texts_by_outcome_as_the_rows_say(self) -> None:
        before = self.scrape()
        for body in ("Hello", "Hello again", "HELP", "STOP", "Anyone there?", "START"):
            self.twilio.text(body)
        self.twilio.text("Hello", sid="SM" + "7" * 32)
        self.twilio.text("Hello", sid="SM" + "7" * 32)  # Twilio's retry: the same MessageSid.

        after = self.scrape()
        rows = Counter(Message.objects.values_list("outcome", flat=True))
        self.assertEqual(rows, {"counted": 4, "help": 1, "opted_out": 1, "ignored_opted_out": 1})
        for outcome in ("counted", "help", "opted_out", "ignored_opted_out", "blocked", "paused"):
            self.assertEqual(
                self.moved(before, after, "sms_texts_received_total", outcome=outcome), rows[outcome]
            )
        self.assertEqual(self.moved(before, after, "sms_texts_received_total", outcome="repeat"), 1)
        self.assertEqual(self.moved(before, after, "sms_webhook_duration_seconds_count"), 8)

    def test_it_counts_a_503_past_the_deadline_by_its_reason(self) -> None:
        before = self.scrape()
        with override_settings(ROOT_URLCONF="tests.urls", WEBHOOK_DEADLINE=0.5):
            response = self.twilio.text("0.8", path="/slow/")

        after = self.scrape()
        self.assertEqual(response.status_code, 503)
        self.assertEqual(self.moved(before, after, "sms_webhook_unavailable_total", reason="deadline"), 1)
        self.assertEqual(self.moved(before, after, "sms_webhook_unavailable_total", reason="database"), 0)
        self.assertEqual(self.moved(before, after, "sms_webhook_duration_seconds_count"), 1)
        self.assertFalse(Message.objects.exists())

    def test_it_counts_delivery_reports_by_status(self) -> None:
        before = self.scrape()
        self.report("SM" + "1" * 32, "delivered")
        self.report("SM" + "2" * 32, "delivered")
        self.report("SM" + "3" * 32, "a-status-twilio-adds-one-day")

        after = self.scrape()
        self.assertEqual(self.moved(before, after, "sms_delivery_reports_total", status="delivered"), 2)
        self.assertEqual(self.moved(before, after, "sms_delivery_reports_total", status="other"), 1)

    @override_settings(
        SMS_BACKEND="twilio",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_FROM_NUMBER=RECIPIENT,
        SEND_ATTEMPTS=3,
    )
    def test_it_counts_the_texts_the_worker_sent_by_status_and_error_code(self) -> None:
        api = FakeTwilioApi()
        api.accepts(sid="SM" + "a" * 32)
        api.refuses_opted_out()
        api.too_many_requests()
        texts_enqueue(pairs=[("", "+14155550101"), ("", "+14155550102"), ("", "+14155550103")], body="Hi")
        before = self.scrape()

        with api.serving():
            outbox_drain()

        after = self.scrape()
        statuses = Counter(Message.objects.values_list("status", flat=True))
        self.assertEqual(statuses, {"queued": 1, "failed": 1, "pending": 1})
        self.assertEqual(self.moved(before, after, "sms_texts_sent_total", status="queued", error_code=""), 1)
        self.assertEqual(
            self.moved(before, after, "sms_texts_sent_total", status="failed", error_code="21610"), 1
        )
        self.assertEqual(
            self.moved(before, after, "sms_texts_sent_total", status="retry", error_code="20429"), 1
        )
        self.assertEqual(self.moved(before, after, "sms_worker_heartbeats_total"), 3)  # One a text.

    def test_it_counts_each_outbox_tick_and_beats(self) -> None:
        before = self.scrape()

        outbox_tick.call()

        after = self.scrape()
        self.assertEqual(self.moved(before, after, "sms_outbox_ticks_total"), 1)
        self.assertEqual(self.moved(before, after, "sms_worker_heartbeats_total"), 1)
        beat = value(after, "sms_worker_last_heartbeat_timestamp_seconds")
        self.assertAlmostEqual(beat, timezone.now().timestamp(), delta=60)

    @override_settings(TWILIO_FROM_NUMBER=RECIPIENT)
    def test_it_reads_the_outbox_backlog_from_the_rows_in_one_query(self) -> None:
        texts_enqueue(pairs=[("", "+14155550101"), ("", "+14155550102")], body="Now")
        texts_enqueue(pairs=[("", "+14155550103")], body="Later", send_at=timezone.now() + timedelta(hours=1))
        Message.objects.filter(body="Now").update(created_at=timezone.now() - timedelta(minutes=5))

        with self.assertNumQueries(1):
            samples = self.scrape()

        self.assertEqual(value(samples, "sms_outbox_pending"), 2)  # Not the one due in an hour.
        self.assertAlmostEqual(value(samples, "sms_outbox_oldest_pending_age_seconds"), 300, delta=30)

    def test_it_says_no_backlog_with_nothing_waiting(self) -> None:
        samples = self.scrape()

        self.assertEqual(value(samples, "sms_outbox_pending"), 0)
        self.assertEqual(value(samples, "sms_outbox_oldest_pending_age_seconds"), 0)

    def test_it_still_answers_without_the_backlog_when_the_database_cannot_say(self) -> None:
        with connection.cursor() as cursor:  # A migration half-applied: the table is not there.
            cursor.execute("ALTER TABLE conversations_message RENAME TO conversations_message_moved")

        with self.assertLogs("conversations.metrics", "WARNING"):
            samples = self.scrape()

        self.assertNotIn(("sms_outbox_pending", frozenset()), samples)
        self.assertIn(("sms_texts_received_total", frozenset({("outcome", "counted")})), samples)

    def test_it_times_each_wait_for_a_pair_s_lock(self) -> None:
        before = self.scrape()
        self.twilio.text("Hello")

        after = self.scrape()
        self.assertEqual(self.moved(before, after, "sms_lock_wait_seconds_count"), 1)

    def test_it_puts_no_number_body_or_sid_in_the_scrape(self) -> None:
        number, body, sid = "+14155550199", "Quokka zanzibar 7731", "SM" + "9d" * 16
        self.twilio.text(body, sender=number, sid=sid)
        self.report(sid, "undelivered", ErrorCode="30003")

        scraped = self.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).content

        for secret in (number, number[2:], "0199", "Quokka", "7731", sid, sid[2:], RECIPIENT[2:], SENDER[2:]):
            self.assertNotIn(secret.encode(), scraped)

    def report(self, sid: str, status: str, **extra: str) -> None:
        url, params = "http://testserver/sms/status/", {"MessageSid": sid, "MessageStatus": status, **extra}
        response = self.client.post(url, params, headers={"X-Twilio-Signature": sign(url, params)})
        self.assertEqual(response.status_code, 204)


class MultiprocessDirTestCase(SimpleTestCase):
    def test_the_web_server_start_removes_the_files_of_processes_gone_and_keeps_the_running(self) -> None:
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
        dead_pid, live_pid = int(gone.stdout), os.getpid()
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "metrics"
            path.mkdir()
            for name in (f"counter_{dead_pid}.db", f"gauge_max_{dead_pid}.db", f"counter_{live_pid}.db"):
                (path / name).write_bytes(b"")

            with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": str(path)}):
                multiprocess_dir_prepare()

            self.assertEqual(sorted(file.name for file in path.iterdir()), [f"counter_{live_pid}.db"])

    def test_it_makes_the_directory_when_missing(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "var" / "metrics"
            with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": str(path)}):
                multiprocess_dir_prepare()

            self.assertIs(path.is_dir(), True)


class MultiprocessDirSettingTestCase(SimpleTestCase):
    """prometheus_client reads the variable when first imported, so the settings set it."""

    def variable(self, **env: str) -> str:
        code = "import os, smsproject.settings; print(os.environ.get('PROMETHEUS_MULTIPROC_DIR', '-'))"
        clean = {
            name: value for name, value in os.environ.items() if not name.startswith(("METRICS_", "PROM"))
        }
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=BASE_DIR,
            env={**clean, "ENV_FILE": "", **env},
            capture_output=True,
        )
        return result.stdout.decode().strip()

    def test_it_is_var_metrics_under_the_project_when_metrics_are_on(self) -> None:
        self.assertEqual(self.variable(METRICS_ENABLED="True"), str(BASE_DIR / "var" / "metrics"))
        self.assertEqual(
            self.variable(METRICS_ENABLED="True", PROMETHEUS_MULTIPROC_DIR="run/m"), str(BASE_DIR / "run/m")
        )

    def test_it_is_unset_when_off_or_empty(self) -> None:
        # An empty one would put prometheus_client in multiprocess mode, writing to the cwd.
        self.assertEqual(self.variable(), "-")
        self.assertEqual(self.variable(METRICS_ENABLED="True", PROMETHEUS_MULTIPROC_DIR=""), "-")
