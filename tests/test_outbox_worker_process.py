"""The outbox's worker as real processes (db_worker, or an RQ worker with TASKS_BACKEND=rq) on
the test database, against a fake Twilio API on loopback that keeps every POST: retries,
timeouts, refusals, a worker killed mid-run, two workers sharing the work."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase

from conversations.models import Conversation, Message
from conversations.outbox import texts_enqueue
from tests.twilio import sign
from tests.twilio_api_server import DROP, OPTED_OUT, SLOW, TOO_MANY, TwilioApiServer, twilio_api_server
from tests.worker import ACCOUNT, Worker, sending_through_twilio, wait_for, workers


def numbers(count: int) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(count)]


@pytest.mark.slow
@sending_through_twilio
class OutboxWorkerProcessTestCase(TransactionTestCase):
    def setUp(self) -> None:
        if settings.TASKS_BACKEND == "rq":
            import django_rq  # Only installed as an app with the RQ backend.

            django_rq.get_queue("default").connection.flushdb()  # No task of another test's.

    def enqueue(self, count: int, body: str = "Your table is ready") -> list[str]:
        texts_enqueue(pairs=[("", number) for number in numbers(count)], body=body)
        return numbers(count)

    def statuses(self) -> Counter[str]:
        return Counter(Message.objects.values_list("status", flat=True))

    def all_done(self) -> bool:
        return not Message.objects.filter(status__in=("pending", "scheduled", "sending")).exists()

    def wait_until_done(self, worker: Worker, within: float = 30) -> None:
        wait_for(self.all_done, within, "every text sent or settled", worker.log)

    def test_the_worker_runs_behind_the_web_server_for_the_cpu(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            self.enqueue(1)
            self.wait_until_done(worker)  # Started, and working.
            assert worker.process is not None
            niceness = os.getpriority(os.PRIO_PROCESS, worker.process.pid)

        # OUTBOX_WORKER_NICE (10) below whatever started it: the webhook's texts go first.
        self.assertEqual(niceness, min(os.getpriority(os.PRIO_PROCESS, 0) + settings.OUTBOX_WORKER_NICE, 19))
        self.assertEqual(self.statuses(), {"queued": 1})

    def test_a_429_is_retried_after_a_backoff_and_the_text_sent_once(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            api.answer(numbers(1)[0], TOO_MANY)
            self.enqueue(1)
            self.wait_until_done(worker)

        message = Message.objects.get()
        self.assertEqual((message.status, message.attempts), ("queued", 2))
        self.assertEqual(api.posts_to(), {numbers(1)[0]: 2})

    def test_a_read_timeout_leaves_the_row_unknown_never_resent_until_a_late_callback_fills_it_in(
        self,
    ) -> None:
        with twilio_api_server(slow=2) as api, workers(api.url, TWILIO_TIMEOUT="1") as [worker]:
            api.answer(numbers(1)[0], SLOW)
            self.enqueue(1)
            self.wait_until_done(worker)
            time.sleep(2)  # Ticks go on: none sends it again.

        message = Message.objects.get()
        self.assertEqual((message.status, message.sid, message.attempts), ("unknown", None, 1))
        self.assertEqual(len(api.posts), 1)
        # Twilio had it: its callback, at the URL the worker gave, names the row.
        url, params = api.posts[0].status_callback, {"AccountSid": ACCOUNT, "MessageSid": "SM" + "a" * 32}
        params["MessageStatus"] = "delivered"
        self.assertEqual(url, f"http://testserver/sms/status/?outbox={message.pk}")
        self.client.post(url, params, headers={"X-Twilio-Signature": sign(url, params)})
        message.refresh_from_db()
        self.assertEqual((message.status, message.sid), ("delivered", "SM" + "a" * 32))

    def test_a_connection_dropped_after_the_request_leaves_the_row_unknown(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            api.answer(numbers(1)[0], DROP)
            self.enqueue(1)
            self.wait_until_done(worker)

        self.assertEqual(Message.objects.get().status, "unknown")
        self.assertEqual(len(api.posts), 1)

    def test_a_stop_mid_run_fails_that_text_only_and_opts_the_pair_out(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            api.answer(numbers(10)[4], OPTED_OUT)
            self.enqueue(10)
            self.wait_until_done(worker)

        self.assertEqual(self.statuses(), {"queued": 9, "failed": 1})
        self.assertIs(Conversation.objects.get(sender=numbers(10)[4]).opted_out, True)
        self.assertEqual(set(api.posts_to().values()), {1})

    def test_it_never_sends_a_row_twice_when_the_worker_is_killed(self) -> None:
        with twilio_api_server(latency=0.005) as api, workers(api.url, SMS_SEND_RATE="100") as [worker]:
            self.enqueue(300)
            wait_for(lambda: len(api.posts) >= 100, 30, "a third of the texts sent", worker.log)
            worker.kill()
            time.sleep(0.5)
            worker.start()
            # The rows the killed worker had in flight wait out 2 x TWILIO_TIMEOUT + 10 s; on
            # RQ its scheduler's lock, a minute, holds back the ticks due later.
            self.wait_until_done(worker, within=30 if settings.TASKS_BACKEND == "db" else 120)

        posts, statuses = api.posts_to(), self.statuses()
        unknown = set(Message.objects.filter(status="unknown").values_list("conversation__sender", flat=True))
        print(f"\nkilled at {100}+ of 300: {dict(statuses)}; POSTs per row {Counter(posts.values())}")
        self.assertEqual(statuses["queued"] + statuses["unknown"], 300)
        self.assertLessEqual(statuses["unknown"], 2)  # At most what was in flight at the kill.
        self.assertEqual({posts[number] for number in numbers(300) if number not in unknown}, {1})
        self.assertLessEqual({posts[number] for number in unknown}, {0, 1})

    def test_two_workers_share_300_texts_without_a_double_post_and_hold_the_rate(self) -> None:
        if connection.vendor != "postgresql":
            self.skipTest("two workers on PostgreSQL (on SQLite they share the writer lock)")
        with twilio_api_server() as api, workers(api.url, 2, SMS_SEND_RATE="50") as pair:
            self.enqueue(300)
            self.wait_until_done(pair[0])

        self.assertEqual(self.statuses(), {"queued": 300})
        self.assertEqual(set(api.posts_to().values()), {1})
        assert_rate_held(self, api, per_second=50)


def assert_rate_held(test: TransactionTestCase, api: TwilioApiServer, per_second: float) -> None:
    """No second's worth of texts from one sender reached Twilio faster than the pace allows.

    The slots are exact, the POSTs' arrival times are not: a worker that wakes a few ms late for
    its slot shortens the gap to the next one, so a short window (10 POSTs, 0.2 s) fails on a
    loaded machine with nothing wrong. Over 50 POSTs (1 s at 50/s) 5 % of slack is 50 ms of
    jitter, and a real breach (two workers pacing alone: twice the rate) still fails by far."""
    times = sorted(post.at for post in api.posts)
    window = int(per_second)
    shortest = min(times[i + window] - times[i] for i in range(len(times) - window))
    test.assertGreaterEqual(shortest, 0.95 * window / per_second)
    print(
        f"\n{len(times)} POSTs in {times[-1] - times[0]:.2f} s; {window} POSTs never in under {shortest:.3f} s"
    )
