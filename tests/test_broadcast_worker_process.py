"""Broadcasts and scheduled texts sent by the outbox's worker as a real process, on the test
database (SQLite or PostgreSQL), against the fake Twilio API on loopback: one POST per
recipient, pause, resume and cancel mid-run, a scheduled text at its time, a STOP before it."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.test import TransactionTestCase
from django.utils import timezone

from conversations.broadcast_control import (
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_resume,
)
from conversations.models import Broadcast, Caller, Conversation
from conversations.outbox import text_enqueue
from tests.twilio import RECIPIENT, Twilio
from tests.twilio_api_server import twilio_api_server
from tests.worker import Worker, sending_through_twilio, wait_for, workers


def numbers(count: int) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(count)]


@pytest.mark.slow
@sending_through_twilio
class BroadcastWorkerProcessTestCase(TransactionTestCase):
    def statuses(self, broadcast: Broadcast) -> Counter[str]:
        return Counter(broadcast.messages.values_list("status", flat=True))

    def wait_for_status(self, broadcast: Broadcast, status: str, worker: Worker, within: float = 60) -> None:
        wait_for(
            lambda: Broadcast.objects.filter(pk=broadcast.pk, status=status).exists(),
            within,
            f"broadcast {status}",
            worker.log,
        )

    def test_a_broadcast_to_500_callers_posts_once_to_each_number_it_did_not_exclude(self) -> None:
        everyone = numbers(500)
        Caller.objects.bulk_create(Caller(phone_number=n, name=f"Caller {i}") for i, n in enumerate(everyone))
        Caller.objects.filter(phone_number__in=everyone[10:12]).update(blocked=True)
        Conversation.objects.bulk_create(
            Conversation(sender=n, recipient=RECIPIENT, sender_number=n, opted_out=True)
            for n in everyone[20:23]
        )
        given = [*everyone, "(415) 555-0007"]  # The same caller as +14155550007.

        with twilio_api_server() as api, workers(api.url, SMS_SEND_RATE="200") as [worker]:
            broadcast = broadcast_create(body="We open at 9 tomorrow.", their_numbers=given)
            self.assertEqual(
                broadcast.counts_label(),
                "501 selected, 495 will be texted: 3 opted out, 2 blocked, 1 duplicate",
            )
            self.wait_for_status(broadcast, "completed", worker)

        texted = [n for n in everyone if n not in everyone[10:12] + everyone[20:23]]
        self.assertEqual(api.posts_to(), Counter(dict.fromkeys(texted, 1)))
        self.assertEqual(self.statuses(broadcast), {"queued": 495})
        broadcast.refresh_from_db()
        self.assertIsNotNone(broadcast.started_at)
        self.assertEqual(broadcast.progress().done, 1.0)

    def test_pause_stops_the_posts_within_one_text_and_resume_finishes_it(self) -> None:
        with twilio_api_server() as api, workers(api.url, SMS_SEND_RATE="20") as [worker]:
            broadcast = broadcast_create(body="News", their_numbers=numbers(150))
            wait_for(lambda: len(api.posts) >= 20, 30, "20 texts sent", worker.log)
            broadcast_pause(broadcast)
            at_pause = len(api.posts)
            time.sleep(1.5)  # 30 texts' time at the pace.
            after_pause = len(api.posts)
            self.assertEqual(Broadcast.objects.get(pk=broadcast.pk).status, "paused")

            broadcast_resume(broadcast)
            self.wait_for_status(broadcast, "completed", worker)

        print(f"\npaused after {at_pause} POSTs; {after_pause} by 1.5 s later")
        self.assertLessEqual(after_pause, at_pause + 1)  # At most the text being sent.
        self.assertLess(after_pause, 150)
        self.assertEqual(api.posts_to(), Counter(dict.fromkeys(numbers(150), 1)))

    def test_cancel_leaves_the_rest_unsent(self) -> None:
        with twilio_api_server() as api, workers(api.url, SMS_SEND_RATE="20") as [worker]:
            broadcast = broadcast_create(body="News", their_numbers=numbers(150))
            wait_for(lambda: len(api.posts) >= 20, 30, "20 texts sent", worker.log)
            broadcast_cancel(broadcast)
            at_cancel = len(api.posts)
            time.sleep(1.5)
            sent = len(api.posts)

        statuses = self.statuses(broadcast)
        self.assertLessEqual(sent, at_cancel + 1)
        self.assertEqual(statuses, {"queued": sent, "canceled": 150 - sent})
        self.assertEqual(set(api.posts_to().values()), {1})
        self.assertEqual(Broadcast.objects.get(pk=broadcast.pk).status, "canceled")

    def test_a_scheduled_text_is_not_sent_before_its_time_and_is_sent_after_it(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            at = timezone.now() + timedelta(seconds=4)
            message = text_enqueue(their_number=numbers(1)[0], body="Reminder", send_at=at)
            wait_for(lambda: len(api.posts) == 1, 20, "the scheduled text sent", worker.log)

        message.refresh_from_db()
        self.assertEqual(message.status, "queued")
        self.assertGreaterEqual(api.posts[0].at, at.timestamp())  # Not before its time.

    def test_a_stop_before_its_time_cancels_a_scheduled_text(self) -> None:
        with twilio_api_server() as api, workers(api.url) as [worker]:
            at = timezone.now() + timedelta(seconds=3)
            message = text_enqueue(their_number=numbers(1)[0], body="Reminder", send_at=at)
            Twilio(self.client).text("STOP", sender=numbers(1)[0])
            wait_for(lambda: timezone.now() > at + timedelta(seconds=3), 10, "its time passed", worker.log)

        message.refresh_from_db()
        self.assertEqual(message.status, "canceled")
        self.assertIn("the recipient replied STOP", message.error)
        self.assertEqual(api.posts, [])
