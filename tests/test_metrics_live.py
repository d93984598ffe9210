"""/metrics scraped from a live gunicorn with two workers and an outbox worker process, after real
signed traffic and texts sent to a fake Twilio API: every process's counts added up, as the rows
say; nothing for a scraper without the token."""

from __future__ import annotations

import json
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.test import TransactionTestCase
from django.utils import timezone
from prometheus_client.mmap_dict import MmapedDict

from conversations.models import Message
from conversations.outbox import texts_enqueue
from tests.server import LiveServer, gunicorn
from tests.test_metrics import METRICS_TOKEN, Samples, samples_of, value
from tests.twilio import RECIPIENT, new_sid, sign
from tests.twilio_api_server import OPTED_OUT, twilio_api_server
from tests.worker import ACCOUNT, sending_through_twilio, wait_for, workers

INBOUND = [f"+1650555{n:04d}" for n in range(8)]
OUTBOUND = [f"+1415555{n:04d}" for n in range(6)]


@pytest.mark.slow
@sending_through_twilio
class MetricsLiveTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.directory = self.enterContext(tempfile.TemporaryDirectory(prefix="metrics-"))
        self.env = {"METRICS_ENABLED": "True", "METRICS_TOKEN": METRICS_TOKEN}
        self.env["PROMETHEUS_MULTIPROC_DIR"] = self.directory

    def test_it_adds_up_every_process_s_counts_as_the_rows_say(self) -> None:
        with (
            twilio_api_server() as api,
            workers(api.url, **self.env) as [worker],
            gunicorn(workers=2, **self.env) as server,
        ):
            api.answer(OUTBOUND[3], OPTED_OUT)
            texts_enqueue(pairs=[("", number) for number in OUTBOUND], body="Your table is ready")
            by_pid = self.text_until_both_workers_count(server, worker_pid=worker.process.pid)  # type: ignore[union-attr]
            wait_for(self.outbox_done, 30, "every text sent or settled", worker.log)
            wait_for(lambda: self.scrape(server)[0] != {}, 5, "a scrape")
            samples, scraped = self.scrape(server)
            refused = requests.get(f"{server}/metrics", timeout=5)

        inbound = Counter(Message.objects.filter(direction="inbound").values_list("outcome", flat=True))
        print(f"\ntexts answered per gunicorn worker: {by_pid}; rows: {dict(inbound)}")
        for outcome in ("counted", "opted_out", "help", "blocked", "paused", "ignored_opted_out"):
            self.assertEqual(value(samples, "sms_texts_received_total", outcome=outcome), inbound[outcome])
        self.assertEqual(value(samples, "sms_texts_received_total", outcome="repeat"), 1)
        self.assertGreater(inbound["counted"], 0)
        # Both of gunicorn's workers answered texts; the scrape, in one of them, added up both.
        self.assertGreaterEqual(len([pid for pid, texts in by_pid.items() if texts > 0]), 2, by_pid)
        self.assertEqual(sum(by_pid.values()), sum(inbound.values()) + 1)
        self.assertEqual(value(samples, "sms_webhook_duration_seconds_count"), sum(by_pid.values()))

        outbound = Counter(Message.objects.filter(direction="outbound").values_list("status", flat=True))
        self.assertEqual(outbound, {"queued": 5, "failed": 1})
        self.assertEqual(value(samples, "sms_texts_sent_total", status="queued", error_code=""), 5)
        self.assertEqual(value(samples, "sms_texts_sent_total", status="failed", error_code="21610"), 1)
        self.assertGreater(value(samples, "sms_outbox_ticks_total"), 0)
        self.assertGreater(value(samples, "sms_worker_heartbeats_total"), 0)
        beat = value(samples, "sms_worker_last_heartbeat_timestamp_seconds")
        self.assertAlmostEqual(beat, timezone.now().timestamp(), delta=60)
        self.assertEqual(value(samples, "sms_outbox_pending"), 0)

        self.assertEqual(refused.status_code, 401)
        for number in (*INBOUND, *OUTBOUND, RECIPIENT):
            self.assertNotIn(number[2:], scraped)

    def text_until_both_workers_count(self, server: LiveServer, worker_pid: int) -> dict[int, float]:
        """Signed texts, each on a connection of its own, several at once, until both of
        gunicorn's workers have counted some; then each web process's count of texts."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(10):
                list(pool.map(lambda number: self.text(server, number, "Hello"), INBOUND))
                by_pid = texts_counted(Path(self.directory), exclude=worker_pid)
                if len([pid for pid, texts in by_pid.items() if texts > 0]) >= 2:
                    break
        self.text(server, INBOUND[0], "HELP")
        self.text(server, INBOUND[1], "STOP")
        self.text(server, INBOUND[1], "Still there?")
        sid = new_sid()
        self.text(server, INBOUND[2], "Once", sid=sid)
        self.text(server, INBOUND[2], "Once", sid=sid)  # Twilio's retry: counted as a repeat.
        return texts_counted(Path(self.directory), exclude=worker_pid)

    def text(self, server: LiveServer, sender: str, body: str, sid: str | None = None) -> None:
        url = f"{server}/sms/"
        params = {
            "AccountSid": ACCOUNT,
            "From": sender,
            "To": RECIPIENT,
            "Body": body,
            "MessageSid": sid or new_sid(),
        }
        response = requests.post(
            url, data=params, headers={"X-Twilio-Signature": sign(url, params)}, timeout=15
        )
        self.assertEqual(response.status_code, 200, response.text)

    def scrape(self, server: LiveServer) -> tuple[Samples, str]:
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        response = requests.get(f"{server}/metrics", headers=headers, timeout=5)
        self.assertEqual(response.status_code, 200)
        return samples_of(response.text), response.text

    def outbox_done(self) -> bool:
        return not Message.objects.filter(status__in=("pending", "scheduled", "sending")).exists()


def texts_counted(directory: Path, exclude: int) -> dict[int, float]:
    """Each process's count of texts answered, from its own file (what a scrape adds up)."""
    counted: dict[int, float] = defaultdict(float)
    for file in directory.glob("counter_*.db"):
        pid = int(file.stem.rpartition("_")[2])
        if pid == exclude:
            continue
        for key, count, _, _ in MmapedDict.read_all_values_from_file(str(file)):
            if json.loads(key)[1] == "sms_texts_received_total":
                counted[pid] += count
    return dict(counted)
