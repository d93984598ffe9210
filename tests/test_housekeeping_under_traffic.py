"""Housekeeping while texts keep coming: nothing waits long, nothing is lost."""

import os
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import requests
from django.contrib.sessions.models import Session
from django.test import TransactionTestCase
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.server import BASE_DIR, gunicorn, live_database_url
from tests.twilio import RECIPIENT, SENDER, TOKEN, new_sid, sign

OLD_MESSAGES = 20_000


@pytest.mark.slow
class HousekeepingUnderTrafficTestCase(TransactionTestCase):
    def setUp(self) -> None:
        old = Conversation.objects.create(
            sender="+14155550000", recipient=RECIPIENT, lifetime_count=OLD_MESSAGES
        )
        Message.objects.bulk_create(
            Message(conversation=old, direction="inbound", body=f"old {i}") for i in range(OLD_MESSAGES)
        )
        Message.objects.update(created_at=timezone.now() - timedelta(days=90))
        expired = Session.objects.create(session_key="e" * 32, session_data="", expire_date=timezone.now())
        Conversation.objects.filter(pk=old.pk).update(session=expired)

    def test_it_answers_texts_while_pruning_and_clearing_sessions(self) -> None:
        replies: list[int] = []
        housekeeping_done = threading.Event()
        with gunicorn(workers=2) as base_url:
            url = f"{base_url}/sms/"

            def texts() -> None:
                # Texts keep coming from before the housekeeping starts until after it ends.
                while not housekeeping_done.is_set() or len(replies) < 20:
                    params = {
                        "From": SENDER,
                        "To": RECIPIENT,
                        "Body": f"text {len(replies)}",
                        "MessageSid": new_sid(),
                    }
                    headers = {"X-Twilio-Signature": sign(url, params)}
                    replies.append(requests.post(url, data=params, headers=headers, timeout=30).status_code)

            traffic = threading.Thread(target=texts)
            traffic.start()
            prune = manage("prune_messages", "--days", "30", "--batch-size", "500")
            clear = manage("clearsessions")
            answered_during_housekeeping = len(replies)
            housekeeping_done.set()
            traffic.join()

        self.assertEqual((prune.returncode, clear.returncode), (0, 0), prune.stderr + clear.stderr)
        self.assertIn(f"Deleted {OLD_MESSAGES} messages", prune.stdout)
        self.assertGreater(answered_during_housekeeping, 0)
        self.assertEqual(replies, [200] * len(replies))
        self.assertEqual(Conversation.objects.get(sender=SENDER).window_count, len(replies))
        self.assertEqual(Message.objects.count(), len(replies))
        self.assertFalse(Session.objects.filter(session_key="e" * 32).exists())


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": live_database_url(), "TWILIO_AUTH_TOKEN": TOKEN}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
