"""A text scheduled from the conversation page, and staff canceling it from Messages."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.admin.models import LogEntry
from django.test import override_settings
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import staff_with, superuser
from tests.test_conversation_admin import history_of
from tests.twilio import SENDER, TwilioTestCase

CONVERSATIONS = "/admin/conversations/conversation/"
MESSAGES = "/admin/conversations/message/"
PARIS = ZoneInfo("Europe/Paris")


@override_settings(SMS_BACKEND="console", TIME_ZONE="Europe/Paris")
class ScheduledTextAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.twilio.text("Hello")
        self.conversation = Conversation.objects.get()
        # 09:00 tomorrow in Paris, TIME_ZONE.
        self.tomorrow = (datetime.now(PARIS) + timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        self.at = f"{self.tomorrow:%Y-%m-%dT%H:%M}"
        self.shown_at = f"{self.tomorrow:%Y-%m-%d %H:%M %Z}"

    def send(self, **form: str) -> list[str]:
        response = self.client.post(
            f"{CONVERSATIONS}{self.conversation.pk}/send/", {"body": "See you at 9", **form}, follow=True
        )
        return [str(message) for message in response.context["messages"]]

    def outbound(self) -> Message:
        return Message.objects.get(direction=Message.Direction.OUTBOUND)

    def test_the_send_box_offers_a_send_at_field(self) -> None:
        response = self.client.get(f"{CONVERSATIONS}{self.conversation.pk}/change/")

        self.assertContains(response, 'type="datetime-local" name="send_at"', html=False)
        self.assertContains(response, "in TIME_ZONE (Europe/Paris) unless an offset is given")

    def test_it_schedules_the_text_in_time_zone_and_says_so(self) -> None:
        shown = self.send(send_at=self.at)

        message = self.outbound()
        self.assertEqual((message.status, message.send_at), ("scheduled", self.tomorrow))
        self.assertEqual(
            shown,
            [
                f"Scheduled the text to {SENDER} for {self.shown_at}; "
                "until then “Cancel scheduled texts” in Messages cancels it."
            ],
        )
        self.assertEqual(history_of(self.conversation), [f"Scheduled a text for {self.shown_at}"])

    def test_an_offset_in_the_value_wins_over_time_zone(self) -> None:
        self.send(send_at=f"{self.at}-05:00")

        expected = self.tomorrow.replace(tzinfo=None).replace(tzinfo=UTC) + timedelta(hours=5)
        self.assertEqual(self.outbound().send_at, expected)

    def test_a_time_in_the_past_is_refused_and_nothing_is_queued(self) -> None:
        a_minute_ago = datetime.now(PARIS) - timedelta(minutes=1)

        shown = self.send(send_at=f"{a_minute_ago:%Y-%m-%dT%H:%M}")

        self.assertEqual(
            shown,
            [
                f"Not sent: {a_minute_ago:%Y-%m-%d %H:%M %Z} has passed; give a time to come, or leave it empty."
            ],
        )
        self.assertFalse(Message.objects.filter(direction=Message.Direction.OUTBOUND).exists())

    def test_without_a_time_it_goes_now(self) -> None:
        shown = self.send()

        self.assertEqual(shown, [f"Queued the text to {SENDER}: the worker sends it."])
        self.assertEqual((self.outbound().status, self.outbound().send_at), ("pending", None))

    def test_the_thread_shows_when_a_scheduled_text_goes(self) -> None:
        self.send(send_at=self.at)

        response = self.client.get(f"{CONVERSATIONS}{self.conversation.pk}/change/")

        self.assertContains(response, f"· at {self.shown_at}")

    def test_staff_cancel_a_scheduled_text_and_it_is_never_sent(self) -> None:
        self.send(send_at=self.at)
        message = self.outbound()

        response = self.client.post(
            MESSAGES, {"action": "cancel_waiting", "_selected_action": [message.pk]}, follow=True
        )

        self.assertContains(response, "Canceled 1 text.")
        message.refresh_from_db()
        self.assertEqual(message.status, "canceled")
        self.assertTrue(message.error.startswith("Canceled by staff on "), message.error)
        entry = LogEntry.objects.get(object_id=str(message.pk), content_type__model="message")
        self.assertEqual(entry.get_change_message(), "Canceled the text before it was sent")
        Message.objects.update(send_at=timezone.now() - timedelta(minutes=1))  # Its time came.
        outbox_drain()
        message.refresh_from_db()
        self.assertEqual(message.status, "canceled")

    def test_canceling_leaves_sent_texts_as_they_are(self) -> None:
        self.send()
        outbox_drain()
        sent = self.outbound()

        response = self.client.post(
            MESSAGES, {"action": "cancel_waiting", "_selected_action": [sent.pk]}, follow=True
        )

        self.assertContains(
            response, "Canceled 0 texts; 1 had been sent or settled already and stay as they are."
        )
        sent.refresh_from_db()
        self.assertEqual(sent.status, "sent")

    def test_staff_who_may_only_view_get_no_cancel_action(self) -> None:
        self.send(send_at=self.at)
        self.client.force_login(staff_with("reader", "view_message", "view_conversation"))

        listed = self.client.get(MESSAGES)
        response = self.client.post(
            MESSAGES, {"action": "cancel_waiting", "_selected_action": [self.outbound().pk]}
        )

        self.assertIsNone(listed.context["action_form"])  # No action for them at all.
        self.assertEqual(response.status_code, 200)  # The list again, "No action selected."
        self.assertEqual(self.outbound().status, "scheduled")


@override_settings(SMS_BACKEND="console")
class ScheduledTextsActionTestCase(TwilioTestCase):
    def test_the_conversations_send_a_text_action_schedules_too(self) -> None:
        self.client.force_login(superuser())
        self.twilio.text("Hello")
        conversation = Conversation.objects.get()
        at = timezone.localtime() + timedelta(hours=3)

        self.client.post(
            CONVERSATIONS,
            {
                "action": "send_text",
                "_selected_action": [conversation.pk],
                "send": "1",
                "body": "Reminder: your table at 8.",
                "send_at": f"{at:%Y-%m-%dT%H:%M}",
            },
        )

        message = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual(
            (message.status, message.send_at), ("scheduled", at.replace(second=0, microsecond=0))
        )


@override_settings(SMS_BACKEND="console", TIME_ZONE="America/Los_Angeles", QUIET_HOURS="21:00-08:00")
class ScheduledTextInQuietHoursTestCase(TwilioTestCase):
    def test_a_time_in_their_night_moves_to_their_morning_and_the_page_says_when(self) -> None:
        self.client.force_login(superuser())
        self.twilio.text("Hello")  # From San Francisco (SENDER's area code).
        conversation = Conversation.objects.get()
        night = (timezone.localtime() + timedelta(days=1)).replace(
            hour=23, minute=30, second=0, microsecond=0
        )
        morning = (night + timedelta(days=1)).replace(hour=8, minute=0)

        response = self.client.post(
            f"{CONVERSATIONS}{conversation.pk}/send/",
            {"body": "Your order ships tomorrow.", "send_at": f"{night:%Y-%m-%dT%H:%M}"},
            follow=True,
        )

        self.assertEqual(Message.objects.get(direction=Message.Direction.OUTBOUND).send_at, morning)
        self.assertContains(response, f"Scheduled the text to {SENDER} for {morning:%Y-%m-%d %H:%M %Z}")
        self.assertEqual(history_of(conversation), [f"Scheduled a text for {morning:%Y-%m-%d %H:%M %Z}"])
