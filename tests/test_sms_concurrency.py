"""Texts of one pair arriving at once, served by several gunicorn processes."""

import re
import threading
import time

import pytest
import requests
from django.contrib.sessions.models import Session
from django.test import TransactionTestCase

from conversations.models import Conversation, Message
from tests.server import gunicorn
from tests.twilio import RECIPIENT, SENDER, new_sid, sign

THREADS = 10
TEXTS_PER_THREAD = 6
COUNT = re.compile(rb"messaged \+15005550006 (\d+) times?\.")


class Burst:
    """Fire texts from many threads released together; keep every reply and its timing."""

    def __init__(self, base_url: str) -> None:
        self.url = f"{base_url}/sms/"
        self.replies: list[bytes] = []
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()

    def text(self, params: dict[str, str], cookie: str | None) -> requests.Response:
        headers = {"X-Twilio-Signature": sign(self.url, params)}
        if cookie:
            headers["Cookie"] = f"sessionid={cookie}"
        started = time.monotonic()
        response = requests.post(self.url, data=params, headers=headers, timeout=30)
        with self.lock:
            self.spans.append((started, time.monotonic()))
            self.replies.append(
                response.content if response.status_code == 200 else b"HTTP %d" % response.status_code
            )
        return response

    def run(self, texts_for_thread) -> None:
        start = threading.Barrier(THREADS)

        def worker(index: int) -> None:
            start.wait()
            for params, cookie in texts_for_thread(index):
                self.text(params, cookie)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def counts(self) -> list[int]:
        return sorted(int(match.group(1)) for reply in self.replies if (match := COUNT.search(reply)))

    def most_in_flight(self) -> int:
        """How many requests were under way at once, at the busiest moment."""
        events = sorted([(start, 1) for start, _ in self.spans] + [(end, -1) for _, end in self.spans])
        in_flight = most = 0
        for _, change in events:
            in_flight += change
            most = max(most, in_flight)
        return most


@pytest.mark.slow
class SmsConcurrencyTestCase(TransactionTestCase):
    def assert_database_agrees(self, sender: str, count: int) -> None:
        conversation = Conversation.objects.get(sender=sender, recipient=RECIPIENT)
        self.assertEqual((conversation.window_count, conversation.lifetime_count), (count, count))
        self.assertEqual(Message.objects.filter(conversation=conversation).count(), count)
        self.assertEqual(Session.objects.get(pk=conversation.session_id).get_decoded(), {"count": count})

    def test_it_counts_each_text_once_under_concurrency(self) -> None:
        with gunicorn(workers=3) as base_url:
            burst = Burst(base_url)
            first = burst.text(
                {"From": SENDER, "To": RECIPIENT, "Body": "first", "MessageSid": new_sid()}, cookie=None
            )
            cookie = first.cookies["sessionid"]

            def texts(index: int):
                for n in range(TEXTS_PER_THREAD):
                    # Twilio's cookie comes and goes: some texts carry it, others none or junk.
                    yield (
                        {"From": SENDER, "To": RECIPIENT, "Body": f"{index}/{n}", "MessageSid": new_sid()},
                        (cookie, None, "junk")[n % 3],
                    )

            burst.run(texts)

        total = 1 + THREADS * TEXTS_PER_THREAD
        self.assertEqual(burst.counts(), list(range(1, total + 1)), burst.replies)
        self.assertGreaterEqual(burst.most_in_flight(), 4)
        self.assert_database_agrees(SENDER, total)

    def test_it_starts_a_new_pair_once_when_its_first_texts_overlap(self) -> None:
        with gunicorn(workers=3) as base_url:
            burst = Burst(base_url)

            def texts(index: int):
                for n in range(TEXTS_PER_THREAD):
                    yield (
                        {"From": SENDER, "To": RECIPIENT, "Body": f"{index}/{n}", "MessageSid": new_sid()},
                        None,
                    )

            burst.run(texts)

        total = THREADS * TEXTS_PER_THREAD
        self.assertEqual(burst.counts(), list(range(1, total + 1)), burst.replies)
        self.assertGreaterEqual(burst.most_in_flight(), 4)
        self.assert_database_agrees(SENDER, total)

    def test_it_keeps_pairs_apart_under_concurrency(self) -> None:
        senders = [f"+1415555000{i}" for i in range(5)]
        with gunicorn(workers=3) as base_url:
            burst = Burst(base_url)

            def texts(index: int):
                for n in range(TEXTS_PER_THREAD):
                    yield (
                        {
                            "From": senders[(index + n) % 5],
                            "To": RECIPIENT,
                            "Body": "hi",
                            "MessageSid": new_sid(),
                        },
                        None,
                    )

            burst.run(texts)

        per_pair = THREADS * TEXTS_PER_THREAD // 5
        self.assertEqual(burst.counts(), sorted(list(range(1, per_pair + 1)) * 5))
        for sender in senders:
            self.assert_database_agrees(sender, per_pair)

    def test_it_answers_overlapping_retries_of_one_text_once(self) -> None:
        params = {"From": SENDER, "To": RECIPIENT, "Body": "once", "MessageSid": "SM" + "a" * 32}
        with gunicorn(workers=3) as base_url:
            burst = Burst(base_url)
            burst.run(lambda index: [(params, None)] * 2)

        self.assertEqual(burst.counts(), [1] * THREADS * 2, burst.replies)
        self.assert_database_agrees(SENDER, 1)
