"""Sending from the conversation page when Twilio refuses, or the recipient's night has come."""

from datetime import UTC, datetime
from unittest import mock

from django.test import override_settings

from conversations.models import Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.test_conversation_admin import history_of
from tests.twilio import SENDER, TwilioTestCase, reply_of

CHANGELIST = "/admin/conversations/conversation/"


class AdminSendingTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.twilio.text("Hello")
        self.conversation = Conversation.objects.get()
        self.api = FakeTwilioApi()

    def send(self, body: str = "We're open!", **extra: str) -> list[str]:
        with self.api.serving():
            response = self.client.post(
                f"{CHANGELIST}{self.conversation.pk}/send/", {"body": body, **extra}, follow=True
            )
            outbox_drain()  # The worker's part.
        return [str(message) for message in response.context["messages"]]

    def outbound(self) -> Message:
        return Message.objects.filter(direction=Message.Direction.OUTBOUND).latest("pk")


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32)
class ConversationAdminRefusalsTestCase(AdminSendingTestCase):
    def test_it_marks_the_number_undeliverable_and_shows_why_in_the_list_and_on_the_page(self) -> None:
        self.api.refuses_not_mobile(SENDER)

        self.send()

        self.assertIn("Twilio error 21614", self.outbound().error)
        reason = f"Twilio error 21614: To number: {SENDER}, is not a mobile number"
        listed = self.client.get(CHANGELIST, {"undeliverable": "yes"})
        self.assertEqual([c.pk for c in listed.context["cl"].result_list], [self.conversation.pk])
        self.assertContains(listed, reason)
        self.assertEqual(
            list(self.client.get(CHANGELIST, {"undeliverable": "no"}).context["cl"].result_list), []
        )
        self.assertContains(self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/"), reason)

    def test_it_refuses_a_text_to_an_undeliverable_number_before_any_request(self) -> None:
        Conversation.objects.update(
            undeliverable_reason="Twilio error 30006: Landline or unreachable carrier"
        )

        shown = self.send()

        self.assertIn(f"Not sent: {SENDER} is marked undeliverable since", shown[0])
        self.assertIn("Landline or unreachable carrier", shown[0])
        self.assertEqual(self.api.requests, [])
        self.assertEqual(self.outbound().status, "canceled")  # Recorded with the reason, never sent.

    def test_it_refuses_a_text_to_an_opted_out_number_before_any_request(self) -> None:
        self.twilio.text("STOP")

        shown = self.send()

        self.assertEqual(
            shown,
            [
                f"Not sent: {SENDER} has opted out (replied STOP); Twilio would refuse the text. They can text START to opt back in."
            ],
        )
        self.assertEqual(self.api.requests, [])

    def test_a_stop_twilio_reports_opts_the_conversation_out(self) -> None:
        self.api.refuses_opted_out()

        self.send()

        self.assertEqual(self.outbound().status, "failed")
        self.assertIn("(Twilio error 21610)", self.outbound().error)
        self.conversation.refresh_from_db()
        self.assertIs(self.conversation.opted_out, True)

    def test_staff_mark_a_number_deliverable_again(self) -> None:
        Conversation.objects.update(
            undeliverable_reason="Twilio error 30003: Unreachable destination handset"
        )
        self.api.accepts()

        self.client.post(
            CHANGELIST, {"action": "mark_deliverable", "_selected_action": [self.conversation.pk]}
        )

        self.conversation.refresh_from_db()
        self.assertEqual(
            (self.conversation.undeliverable_reason, self.conversation.undeliverable_since), ("", None)
        )
        self.assertEqual(history_of(self.conversation), ["Marked the number deliverable again"])
        self.assertEqual(self.send()[-1], f"Queued the text to {SENDER}: the worker sends it.")
        self.assertEqual(self.outbound().status, "queued")


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, QUIET_HOURS="21:00-08:00")
class ConversationAdminQuietHoursTestCase(AdminSendingTestCase):
    def setUp(self) -> None:
        super().setUp()
        # 23:10 where SENDER's area code is (San Francisco).
        self.enterContext(
            mock.patch("django.utils.timezone.now", return_value=datetime(2026, 1, 15, 7, 10, tzinfo=UTC))
        )

    def test_it_holds_a_text_and_says_when_it_may_go(self) -> None:
        shown = self.send()

        self.assertEqual(
            shown,
            [
                f"Not sent: Quiet hours (21:00-08:00) for {SENDER}: it is 23:10 there (America/Los_Angeles); "
                "it may go after 08:00. Tick “Send during quiet hours” to send it now."
            ],
        )
        self.assertEqual(self.api.requests, [])

    def test_the_checkbox_sends_it_anyway(self) -> None:
        self.api.accepts()

        self.assertEqual(self.send(force="on"), [f"Queued the text to {SENDER}: the worker sends it."])

        self.assertEqual(len(self.api.requests), 1)

    def test_the_page_offers_the_checkbox(self) -> None:
        content = self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/").content.decode()

        self.assertIn('name="force"', content)
        self.assertIn("Send during quiet hours", content)

    def test_the_send_text_action_holds_it_too_unless_forced(self) -> None:
        selection = {
            "action": "send_text",
            "_selected_action": [self.conversation.pk],
            "send": "1",
            "body": "Hi",
        }
        with self.api.serving():
            held = self.client.post(CHANGELIST, selection, follow=True)
        self.assertContains(held, "it may go after 08:00. Tick “Send during quiet hours” to send it now.")
        self.assertEqual(self.api.requests, [])
        self.api.accepts()

        with self.api.serving():
            self.client.post(CHANGELIST, {**selection, "force": "on"})
            outbox_drain()

        self.assertEqual(len(self.api.requests), 1)

    def test_replies_to_inbound_texts_are_never_held(self) -> None:
        self.assertEqual(
            reply_of(self.twilio.text("Still there?")), "Friend has messaged +15005550006 2 times."
        )


class ConversationAdminWithoutQuietHoursTestCase(TwilioTestCase):
    def test_the_page_has_no_checkbox_to_force(self) -> None:
        self.client.force_login(superuser())
        self.twilio.text("Hello")

        response = self.client.get(f"{CHANGELIST}{Conversation.objects.get().pk}/change/")

        self.assertNotContains(response, 'name="force"')
        self.assertContains(response, 'id="gsm-charset"')
        self.assertContains(response, "data-segments")
