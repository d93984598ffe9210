"""Broadcasts in-process: created in bulk through the outbox with the excluded counted, paused,
resumed and canceled, started and completed by the worker's tick; STOP cancels a recipient's
waiting texts; quiet hours move a broadcast's or a scheduled text to the recipient's morning."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from unittest import mock

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.broadcast_control import (
    broadcast_cancel,
    broadcast_create,
    broadcast_pause,
    broadcast_resume,
    broadcasts_complete,
)
from conversations.models import Broadcast, Caller, Conversation, Message
from conversations.outbox import BATCH, SendError, text_cancel, text_enqueue, texts_enqueue
from conversations.outbox_worker import outbox_drain
from conversations.refusals import opted_out_mark
from tests.factories import caller, superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, TwilioTestCase, new_sid

NUMBERS = [f"+1415555{n:04d}" for n in range(10)]
# 23:10 in San Francisco (+1415…), 07:10 in London (+44…): quiet hours 21:00-08:00 in both.
NIGHT = datetime(2026, 1, 15, 7, 10, tzinfo=UTC)


def statuses(broadcast: Broadcast) -> dict[str, str]:
    return dict(broadcast.messages.values_list("conversation__sender", "status"))


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_FROM_NUMBER=RECIPIENT)
class BroadcastTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = FakeTwilioApi()

    def drain(self, *, posts: int) -> None:
        for _ in range(posts):
            self.api.accepts(sid=new_sid())
        with self.api.serving():
            outbox_drain()

    def test_it_texts_each_number_once_however_written_and_counts_those_it_excludes(self) -> None:
        caller("+14155550001", blocked=True)
        Conversation.objects.create(sender="+14155550002", recipient=RECIPIENT, opted_out=True)
        Conversation.objects.create(sender="+14155550003", recipient=RECIPIENT, undeliverable_reason="30006")
        given = [*NUMBERS, "(415) 555-0004", "whatsapp:+14155550005", "not a number"]

        broadcast = broadcast_create(body="Open at 9.", their_numbers=given, sent_by=superuser())

        self.assertEqual(
            (broadcast.selected, broadcast.duplicates, broadcast.blocked, broadcast.opted_out),
            (13, 2, 1, 1),
        )
        self.assertEqual(broadcast.undeliverable, 2)  # Marked so, and not a phone number.
        self.assertEqual(
            broadcast.counts_label(),
            "13 selected, 7 will be texted: 1 opted out, 1 blocked, 2 undeliverable, 2 duplicates",
        )
        expected = {number: "pending" for number in NUMBERS if number[-1] not in "123"}
        self.assertEqual(statuses(broadcast), expected)  # The excluded get no row: they are counted.
        self.assertEqual(broadcast.status, "scheduled")
        self.assertEqual(set(broadcast.messages.values_list("priority", flat=True)), {Message.Priority.BULK})

    def test_its_texts_continue_a_pairs_conversation_and_open_the_missing_ones(self) -> None:
        known = Conversation.objects.create(sender=NUMBERS[0], recipient=RECIPIENT, lifetime_count=5)

        broadcast = broadcast_create(body="Hi", their_numbers=[NUMBERS[0], "(415) 555-0001"])

        rows = {
            message.conversation.sender: message
            for message in broadcast.messages.select_related("conversation")
        }
        self.assertEqual(rows[NUMBERS[0]].conversation_id, known.pk)
        self.assertEqual(Conversation.objects.get(pk=known.pk).lifetime_count, 5)
        opened = rows[NUMBERS[1]].conversation
        self.assertEqual(
            (opened.recipient, opened.sender_number, opened.opted_out), (RECIPIENT, NUMBERS[1], False)
        )
        self.assertEqual(
            (opened.window_count, opened.lifetime_count, opened.undeliverable_reason), (0, 0, "")
        )
        self.assertIsNotNone(opened.first_activity)
        row = rows[NUMBERS[1]]
        self.assertEqual(
            (row.direction, row.body, row.media_urls, row.num_segments), ("outbound", "Hi", [], 1)
        )
        self.assertEqual(
            (row.attempts, row.simulated, row.sid, row.broadcast_id), (0, False, None, broadcast.pk)
        )

    def test_it_takes_callers_and_counts_the_blocked_among_them(self) -> None:
        for number in NUMBERS[:3]:
            caller(number, name=number)
        Caller.objects.filter(phone_number=NUMBERS[0]).update(blocked=True)

        broadcast = broadcast_create(body="Hi", callers=Caller.objects.all())

        self.assertEqual((broadcast.selected, broadcast.blocked, broadcast.to_text), (3, 1, 2))
        self.assertEqual(set(statuses(broadcast)), set(NUMBERS[1:3]))

    def test_its_statements_grow_only_by_batches_of_rows(self) -> None:
        def created(count: int, start: int) -> int:
            numbers = [f"+1415{n:07d}" for n in range(start, start + count)]
            with CaptureQueriesContext(connection) as queries:
                broadcast_create(body="Open at 9.", their_numbers=numbers)
            return len(queries)

        created(5, 0)  # Warm.
        few = created(10, 100)
        many = created(1210, 1000)

        # Per BATCH recipients: the refusals (two reads), the texts (one INSERT … SELECT); the
        # missing conversations: one INSERT of three variables a row, under SQLite's 999.
        per_insert = min(BATCH, ((connection.features.max_query_params or 3000) - 2) // 3)
        extra = 3 * (math.ceil(1210 / BATCH) - 1) + math.ceil(1210 / per_insert) - 1
        self.assertEqual(many, few + extra)
        self.assertEqual(Message.objects.count(), 5 + 10 + 1210)

    def test_the_worker_starts_it_and_completes_it_when_no_text_is_left(self) -> None:
        broadcast = broadcast_create(body="Hi", their_numbers=NUMBERS[:2])

        self.drain(posts=2)

        broadcast.refresh_from_db()
        self.assertEqual(broadcast.status, "completed")
        self.assertIsNotNone(broadcast.started_at)
        self.assertEqual(len(self.api.requests), 2)
        progress = broadcast.progress()
        self.assertEqual((progress.counts["sent"], progress.done, progress.eta), (2, 1.0, timedelta(0)))

    def test_it_is_completed_once_twilio_has_every_text_even_one_it_is_still_sending(self) -> None:
        broadcast = broadcast_create(body="Hi", their_numbers=NUMBERS[:2])
        first, second = broadcast.messages.order_by("pk")
        broadcast.messages.filter(pk=first.pk).update(status="sending", sid=new_sid())  # Twilio's status.
        broadcast.messages.filter(pk=second.pk).update(
            status="sending"
        )  # Claimed: the worker's POST under way.

        self.assertEqual(broadcasts_complete(), 0)
        broadcast.messages.filter(pk=second.pk).update(status="queued", sid=new_sid())
        self.assertEqual(broadcasts_complete(), 1)

    def test_a_broadcast_with_nobody_to_text_is_completed_at_once(self) -> None:
        caller(NUMBERS[0], blocked=True)

        broadcast = broadcast_create(body="Hi", their_numbers=[NUMBERS[0]])

        self.assertEqual((broadcast.status, broadcast.messages.count()), ("completed", 0))

    def test_paused_its_texts_wait_and_resumed_they_go(self) -> None:
        broadcast = broadcast_create(body="Hi", their_numbers=NUMBERS[:3])

        self.assertTrue(broadcast_pause(broadcast))
        self.drain(posts=0)
        self.assertEqual((len(self.api.requests), broadcast.status), (0, "paused"))
        self.assertFalse(broadcast_pause(broadcast))  # Paused already.

        self.assertTrue(broadcast_resume(broadcast))
        self.assertEqual(broadcast.status, "scheduled")  # Not started before its pause.
        self.drain(posts=3)

        broadcast.refresh_from_db()
        self.assertEqual((len(self.api.requests), broadcast.status), (3, "completed"))

    def test_progress_counts_its_texts_and_the_time_left_at_the_send_rate(self) -> None:
        broadcast = broadcast_create(body="x" * 200, their_numbers=NUMBERS[:4])  # Two segments each.
        broadcast.messages.filter(pk=broadcast.messages.first().pk).update(status="delivered")  # type: ignore[union-attr]

        with override_settings(SMS_SEND_RATE=2.0):
            progress = broadcast.progress()

            self.assertEqual((progress.counts["pending"], progress.counts["delivered"]), (3, 1))
            self.assertEqual((progress.total, progress.done, progress.eta), (4, 0.25, timedelta(seconds=3)))

    def test_cancel_cancels_every_waiting_text_and_the_sent_stay_sent(self) -> None:
        broadcast = broadcast_create(body="Hi", their_numbers=NUMBERS[:3])
        first = broadcast.messages.order_by("pk").first()
        assert first is not None
        broadcast.messages.filter(pk=first.pk).update(status="sent", sid="SM" + "1" * 32)

        canceled = broadcast_cancel(broadcast, by=superuser())

        self.assertEqual((canceled, broadcast.status), (2, "canceled"))
        self.assertEqual(sorted(statuses(broadcast).values()), ["canceled", "canceled", "sent"])
        self.assertIn(
            "The broadcast was canceled by staff on", broadcast.messages.filter(status="canceled")[0].error
        )
        self.drain(posts=0)
        self.assertEqual(self.api.requests, [])
        self.assertFalse(broadcast_resume(broadcast))

    def test_a_staff_text_goes_ahead_of_a_broadcast(self) -> None:
        broadcast_create(body="News", their_numbers=NUMBERS[:3])
        text_enqueue(their_number=NUMBERS[5], body="Your table is ready")

        self.drain(posts=4)

        self.assertEqual(self.api.requests[0].data["To"], NUMBERS[5])

    def test_a_stop_cancels_the_texts_waiting_for_them_with_the_reason(self) -> None:
        broadcast = broadcast_create(body="News", their_numbers=[NUMBERS[0], NUMBERS[1]])
        later = text_enqueue(
            their_number=NUMBERS[0], body="Reminder", send_at=timezone.now() + timedelta(days=1)
        )

        self.twilio.text("STOP", sender=NUMBERS[0])

        later.refresh_from_db()
        self.assertEqual((later.status, statuses(broadcast)[NUMBERS[0]]), ("canceled", "canceled"))
        self.assertIn("the recipient replied STOP", later.error)
        self.assertEqual(statuses(broadcast)[NUMBERS[1]], "pending")

    def test_twilio_saying_they_opted_out_cancels_their_waiting_texts(self) -> None:
        later = text_enqueue(
            their_number=NUMBERS[0], body="Reminder", send_at=timezone.now() + timedelta(days=1)
        )

        opted_out_mark(NUMBERS[0], RECIPIENT)

        later.refresh_from_db()
        self.assertEqual(later.status, "canceled")

    def test_a_scheduled_text_waits_for_its_time_and_can_be_canceled_until_then(self) -> None:
        at = timezone.now() + timedelta(hours=1)
        later = text_enqueue(their_number=NUMBERS[0], body="Reminder", send_at=at)

        self.drain(posts=0)
        self.assertEqual((later.status, self.api.requests), ("scheduled", []))

        self.assertEqual(text_cancel(later.pk, by=superuser()).status, "canceled")
        with self.assertRaisesMessage(
            SendError, f"Text {later.pk} is canceled: it can no longer be canceled."
        ):
            text_cancel(later.pk)


@override_settings(
    SMS_BACKEND="twilio",
    TWILIO_ACCOUNT_SID="AC" + "0" * 32,
    TWILIO_FROM_NUMBER=RECIPIENT,
    QUIET_HOURS="21:00-08:00",
)
class BroadcastQuietHoursTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.enterContext(mock.patch("django.utils.timezone.now", return_value=NIGHT))

    def test_a_broadcast_waits_for_each_recipients_morning(self) -> None:
        broadcast = broadcast_create(body="News", their_numbers=["+14155550100", "+442071838750"])

        send_at = dict(broadcast.messages.values_list("conversation__sender", "send_at"))
        # 08:00 in San Francisco (16:00 UTC) and in London (08:00 UTC), the same day.
        self.assertEqual(send_at["+14155550100"], datetime(2026, 1, 15, 16, 0, tzinfo=UTC))
        self.assertEqual(send_at["+442071838750"], datetime(2026, 1, 15, 8, 0, tzinfo=UTC))
        self.assertEqual(set(statuses(broadcast).values()), {"scheduled"})

    def test_a_scheduled_text_due_in_their_night_waits_for_their_morning(self) -> None:
        evening = datetime(2026, 1, 16, 6, 0, tzinfo=UTC)  # 22:00 in San Francisco.

        message = text_enqueue(their_number="+14155550100", body="Reminder", send_at=evening)

        self.assertEqual(
            (message.status, message.send_at), ("scheduled", datetime(2026, 1, 16, 16, 0, tzinfo=UTC))
        )

    def test_a_scheduled_text_due_in_their_day_keeps_its_time(self) -> None:
        noon = datetime(2026, 1, 15, 20, 0, tzinfo=UTC)  # 12:00 in San Francisco.

        self.assertEqual(text_enqueue(their_number="+14155550100", body="Hi", send_at=noon).send_at, noon)

    def test_a_staff_text_now_is_still_held_unless_forced(self) -> None:
        held = texts_enqueue(pairs=[("", "+14155550100")], body="Hi", priority=Message.Priority.PERSON)

        self.assertEqual((held.messages, len(held.held)), ([], 1))
        forced = text_enqueue(their_number="+14155550100", body="Hi", force=True)
        self.assertEqual((forced.status, forced.send_at), ("pending", None))
