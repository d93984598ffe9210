"""`manage.py broadcast`: one text to many, queued at once, its id and counts printed."""

from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from conversations.models import Broadcast, Conversation, Message
from tests.factories import caller
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, TwilioTestCase

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_FROM_NUMBER=RECIPIENT)
class BroadcastCommandTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.enterContext(mock.patch("django.utils.timezone.now", return_value=NOW))
        self.api = FakeTwilioApi()

    def broadcast(self, *args: str) -> str:
        out = StringIO()
        with self.api.serving():
            call_command("broadcast", *args, stdout=out)
        return out.getvalue()

    def test_it_queues_a_text_per_number_and_prints_its_id_and_counts(self) -> None:
        Conversation.objects.create(sender="+14155550002", recipient=RECIPIENT, opted_out=True)
        numbers = ["+14155550001", "+14155550002", "(415) 555-0001", "+14155550003"]

        out = self.broadcast("Open at 9.", *[arg for number in numbers for arg in ("--to", number)])

        broadcast = Broadcast.objects.get()
        self.assertEqual(
            out,
            f"Broadcast {broadcast.pk} (scheduled): 4 selected, 2 will be texted: 1 opted out, 1 duplicate. "
            "The worker sends the texts.\n",
        )
        self.assertEqual(broadcast.messages.filter(status="pending").count(), 2)
        self.assertEqual(self.api.requests, [])  # It returns at once: the worker sends them.

    def test_callers_texts_every_caller_not_blocked(self) -> None:
        caller("+14155550001", name="Ann")
        caller("+14155550002", name="Bob", blocked=True)

        self.broadcast("Open at 9.", "--callers")

        broadcast = Broadcast.objects.get()
        self.assertEqual((broadcast.selected, broadcast.blocked), (1, 0))
        self.assertEqual(
            list(broadcast.messages.values_list("conversation__sender", flat=True)), ["+14155550001"]
        )

    def test_at_schedules_it(self) -> None:
        out = self.broadcast("Merry Christmas", "--to", "+14155550001", "--at", "2026-12-24T09:00+00:00")

        message = Message.objects.get()
        self.assertEqual(
            (message.status, message.send_at), ("scheduled", datetime(2026, 12, 24, 9, 0, tzinfo=UTC))
        )
        self.assertEqual(Broadcast.objects.get().send_at, message.send_at)
        self.assertIn("(scheduled at 2026-12-24 09:00 UTC)", out)

    def test_a_time_in_the_past_is_an_error(self) -> None:
        with self.assertRaisesMessage(CommandError, "--at: 2026-01-15T17:00 is in the past"):
            self.broadcast("Hi", "--to", "+14155550001", "--at", "2026-01-15T17:00")
        self.assertFalse(Broadcast.objects.exists())

    def test_it_needs_recipients(self) -> None:
        with self.assertRaisesMessage(CommandError, "one of the arguments --to --callers is required"):
            self.broadcast("Hi")
