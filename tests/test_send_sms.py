import re
from datetime import UTC, datetime
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone

from conversations.management.commands.send_sms import Command
from conversations.models import Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, SENDER, TOKEN, TwilioTestCase, reply_of

ACCOUNT = "AC" + "0" * 32
SERVICE = "MG" + "5" * 32
# 23:10 in San Francisco (SENDER's area code), 07:10 in London, 18:10 in Sydney.
LATE_IN_CALIFORNIA = datetime(2026, 1, 15, 7, 10, tzinfo=UTC)


class SendSmsCommandTestCase(TwilioTestCase):
    """Runs `send_sms`, then the worker's part (a tick of the outbox, in-process), against
    Twilio's API faked at its HTTP layer; no tests of its own."""

    def setUp(self) -> None:
        super().setUp()
        self.api = FakeTwilioApi()

    def send(self, *args: str) -> str:
        out = StringIO()
        with self.api.serving():
            call_command("send_sms", *args, stdout=out)
            outbox_drain()
        return out.getvalue()

    def outbound(self) -> Message:
        return Message.objects.get(direction=Message.Direction.OUTBOUND)


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_FROM_NUMBER=RECIPIENT)
class SendSmsTestCase(SendSmsCommandTestCase):
    def test_it_only_queues_the_text_for_the_worker(self) -> None:
        out = StringIO()
        with self.api.serving():
            call_command("send_sms", "Your table is ready", "--to", SENDER, stdout=out)

        message = self.outbound()
        self.assertEqual((message.status, message.sid, message.priority), ("pending", None, 10))
        self.assertIn(f"Queued text {message.pk} to {SENDER} (pending): the worker sends it.", out.getvalue())
        self.assertEqual(self.api.requests, [])

    def test_it_sends_through_twilios_api(self) -> None:
        self.api.accepts(sid="SM" + "a" * 32)

        self.send("Your table is ready", "--to", SENDER)

        request = self.api.requests[0]
        self.assertEqual(request.method, "POST")
        self.assertEqual(request.url, f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
        self.assertEqual((request.data["From"], request.data["To"]), (RECIPIENT, SENDER))
        self.assertEqual(request.data["Body"], "Your table is ready")
        self.assertEqual(request.auth, (ACCOUNT, TOKEN))
        self.assertEqual(self.outbound().sid, f"SM{'a' * 32}")

    def test_it_records_the_outbound_text(self) -> None:
        self.api.accepts(sid="SM" + "b" * 32)

        self.send("Hello there", "--to", SENDER)

        message = Message.objects.get()
        self.assertEqual(message.direction, Message.Direction.OUTBOUND)
        self.assertEqual(
            (message.sid, message.status, message.body), ("SM" + "b" * 32, "queued", "Hello there")
        )
        self.assertEqual((message.attempts, message.num_segments), (1, 1))
        self.assertEqual((message.conversation.sender, message.conversation.recipient), (SENDER, RECIPIENT))

    def test_it_opens_a_conversation_the_reply_continues(self) -> None:
        self.api.accepts()
        self.send("Reply to chat", "--to", SENDER)

        response = self.twilio.text("Hi!", cookie="")  # Twilio has no cookie for it yet.

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        conversation = Conversation.objects.get()
        self.assertEqual(response.cookies["sessionid"].value, conversation.session_id)
        history = list(conversation.messages.order_by("created_at").values_list("direction", "body"))
        self.assertEqual(history, [("outbound", "Reply to chat"), ("inbound", "Hi!")])

    def test_it_refreshes_a_conversation_under_way(self) -> None:
        self.twilio.text()
        self.twilio.text()
        started = Conversation.objects.get().window_started_at
        self.api.accepts()

        self.send("Still there?", "--to", SENDER)

        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Friend has messaged +15005550006 3 times.")
        conversation = Conversation.objects.get()
        self.assertEqual(conversation.window_started_at, started)
        self.assertEqual(conversation.lifetime_count, 3)

    def test_it_records_why_twilio_refused_a_number(self) -> None:
        self.api.refuses(400, 21211, "The 'To' number +15005550001 is not a valid phone number.")

        self.send("Hi", "--to", "+15005550001")

        message = Message.objects.get()
        self.assertIn("is not a valid phone number. (Twilio error 21211)", message.error)
        self.assertEqual((message.status, message.sid), ("failed", None))
        self.assertIn("Twilio error 21211", message.error)
        self.assertIsNone(message.conversation.session_id)

    def test_it_records_an_authentication_failure(self) -> None:
        self.api.refuses(401, 20003, "Authenticate")

        self.send("Hi", "--to", SENDER)

        self.assertEqual(
            (self.outbound().status, self.outbound().error),
            ("failed", "Twilio refused the text: Authenticate (Twilio error 20003)"),
        )

    @override_settings(TWILIO_ACCOUNT_SID="")
    def test_it_needs_twilio_credentials(self) -> None:
        with self.assertRaisesMessage(CommandError, "Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
            self.send("Hi", "--to", SENDER)
        self.assertEqual(self.api.requests, [])

    def test_it_refuses_numbers_that_are_not_e164(self) -> None:
        with self.assertRaisesMessage(CommandError, "--to '415-555' is not a phone number"):
            self.send("Hi", "--to", "415-555")
        self.assertEqual(self.api.requests, [])

    @override_settings(TWILIO_WEBHOOK_BASE_URL="https://sms.example.com")
    def test_it_asks_for_delivery_reports_at_the_public_url(self) -> None:
        self.api.accepts()

        self.send("Hi", "--to", SENDER)

        callback = f"https://sms.example.com/sms/status/?outbox={self.outbound().pk}"
        self.assertEqual(self.api.requests[0].data["StatusCallback"], callback)

    @override_settings(TWILIO_FROM_NUMBER="")
    def test_it_needs_a_number_to_send_from_without_a_messaging_service(self) -> None:
        with self.assertRaisesMessage(CommandError, "Give --from or set TWILIO_FROM_NUMBER"):
            self.send("Hi", "--to", SENDER)
        self.assertEqual(self.api.requests, [])


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_MESSAGING_SERVICE_SID=SERVICE)
class SendSmsMessagingServiceTestCase(SendSmsTestCase):
    """Everything above holds through a Messaging Service; and these."""

    def test_it_sends_through_twilios_api(self) -> None:
        self.api.accepts(sid="SM" + "a" * 32)

        self.send("Your table is ready", "--to", SENDER)

        request = self.api.requests[0]
        self.assertEqual(request.data["MessagingServiceSid"], SERVICE)
        self.assertNotIn("From", request.data)
        self.assertEqual((request.data["To"], request.data["Body"]), (SENDER, "Your table is ready"))

    def test_it_records_the_pair_with_the_number_it_is_given(self) -> None:
        self.api.accepts(from_="+15005550009")

        self.send("Hi", "--from", "+15005550007", "--to", SENDER)

        self.assertNotIn("From", self.api.requests[0].data)
        self.assertEqual(Conversation.objects.get().recipient, "+15005550007")

    @override_settings(TWILIO_FROM_NUMBER="")
    def test_it_needs_no_from_and_records_the_sender_twilio_names(self) -> None:
        self.api.accepts(from_="+15005550009")

        self.send("Hi", "--to", SENDER)

        self.assertEqual(
            (Conversation.objects.get().sender, Conversation.objects.get().recipient),
            (SENDER, "+15005550009"),
        )

    @override_settings(TWILIO_FROM_NUMBER="")
    def test_it_needs_a_number_to_send_from_without_a_messaging_service(self) -> None:
        """Not with one: the service picks the sender."""
        self.api.accepts(from_=RECIPIENT)

        self.assertIn("Queued", self.send("Hi", "--to", SENDER))
        self.assertEqual(self.outbound().status, "queued")

    @override_settings(TWILIO_FROM_NUMBER="")
    def test_a_stop_through_any_of_the_services_numbers_refuses_the_text(self) -> None:
        Conversation.objects.create(sender=SENDER, recipient="+15005550009", opted_out=True)

        with self.assertRaisesMessage(CommandError, "has opted out"):
            self.send("Hi", "--to", SENDER)
        self.assertEqual(self.api.requests, [])


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_FROM_NUMBER=RECIPIENT)
class SendSmsRefusalsTestCase(SendSmsCommandTestCase):
    def test_a_recipient_who_replied_stop_is_marked_opted_out_once_twilio_refuses(self) -> None:
        self.twilio.text("Hi")  # The pair exists, and has not opted out here.
        self.api.refuses_opted_out()

        with self.assertLogs("conversations.outbox_worker", "WARNING") as logs:
            self.send("Your table is ready", "--to", SENDER)

        self.assertIs(Conversation.objects.get().opted_out, True)
        refused = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual((refused.status, refused.sid), ("failed", None))
        self.assertIn("Attempt to send to unsubscribed recipient (Twilio error 21610)", refused.error)
        self.assertEqual(len(logs.records), 1)
        self.assertIsNone(logs.records[0].exc_info)
        self.assertEqual(len(self.api.requests), 1)  # Not retried.

    def test_it_refuses_a_text_to_an_opted_out_pair_before_any_request(self) -> None:
        self.twilio.text("STOP")

        with self.assertRaisesMessage(CommandError, f"Not sent: {SENDER} has opted out (replied STOP)"):
            self.send("Hi", "--to", SENDER)

        self.assertEqual(self.api.requests, [])
        refused = self.outbound()  # Recorded, with the reason, and never sent.
        self.assertEqual(refused.status, "canceled")
        self.assertIn("has opted out (replied STOP)", refused.error)

    def test_an_opt_out_from_another_of_our_numbers_does_not_refuse_a_bare_number(self) -> None:
        Conversation.objects.create(sender=SENDER, recipient="+15005550009", opted_out=True)
        self.api.accepts()

        self.send("Hi", "--to", SENDER)

        self.assertEqual(self.outbound().status, "queued")

    def assert_undeliverable(self, number: str, reason: str) -> None:
        for conversation in Conversation.objects.filter(sender_number=number):
            self.assertEqual(conversation.undeliverable_reason, reason)
            self.assertIsNotNone(conversation.undeliverable_since)

    def test_an_invalid_number_is_marked_undeliverable_on_all_its_conversations(self) -> None:
        self.twilio.text("Hi", recipient="+15005550009")
        self.twilio.text("Hola", sender=f"whatsapp:{SENDER}")
        self.api.refuses_invalid_number(SENDER)

        self.send("Hi", "--to", SENDER)

        self.assertEqual(Conversation.objects.filter(sender_number=SENDER).count(), 3)
        self.assert_undeliverable(
            SENDER, f"Twilio error 21211: The 'To' number {SENDER} is not a valid phone number."
        )
        self.assertIn("Twilio error 21211", Message.objects.get(status="failed").error)

    def test_a_number_that_is_not_mobile_is_marked_undeliverable(self) -> None:
        self.api.refuses_not_mobile(SENDER)

        self.send("Hi", "--to", SENDER)

        self.assert_undeliverable(SENDER, f"Twilio error 21614: To number: {SENDER}, is not a mobile number")

    def test_it_refuses_a_text_to_an_undeliverable_number_before_any_request(self) -> None:
        self.api.refuses_not_mobile(SENDER)
        self.send("Hi", "--to", SENDER)

        with self.assertRaisesMessage(CommandError, f"Not sent: {SENDER} is marked undeliverable since"):
            self.send("Hi again", "--to", SENDER)

        self.assertEqual(len(self.api.requests), 1)
        self.assertEqual(Message.objects.get(body="Hi again").status, "canceled")

    def test_an_unregistered_sender_is_recorded_but_does_not_mark_the_number(self) -> None:
        self.api.refuses_unregistered()

        self.send("Hi", "--to", SENDER)

        self.assertIn("Message from an Unregistered Number (Twilio error 30034)", Message.objects.get().error)
        conversation = Conversation.objects.get()
        self.assertEqual((conversation.undeliverable_reason, conversation.opted_out), ("", False))
        self.api.accepts()
        self.send("Hi again", "--to", SENDER)
        self.assertEqual(Message.objects.get(body="Hi again").status, "queued")

    def test_a_refused_text_exits_non_zero(self) -> None:
        Conversation.objects.create(sender=SENDER, recipient=RECIPIENT, opted_out=True)
        err = StringIO()

        # run_from_argv closes the database connections on its way out, as manage.py does;
        # the test's transaction needs its connection.
        closing = mock.patch("django.core.management.base.connections.close_all")
        with self.assertRaises(SystemExit) as exit, self.api.serving(), closing:
            Command(stderr=err).run_from_argv(["manage.py", "send_sms", "--to", SENDER, "Hi"])

        self.assertEqual(exit.exception.code, 1)
        self.assertIn("has opted out", err.getvalue())
        self.assertEqual(self.api.requests, [])


@override_settings(
    SMS_BACKEND="twilio",
    TWILIO_ACCOUNT_SID=ACCOUNT,
    TWILIO_FROM_NUMBER=RECIPIENT,
    QUIET_HOURS="21:00-08:00",
)
class SendSmsQuietHoursTestCase(SendSmsCommandTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.enterContext(mock.patch("django.utils.timezone.now", return_value=LATE_IN_CALIFORNIA))

    def test_it_holds_a_text_while_it_is_night_where_the_recipient_is(self) -> None:
        message = "it is 23:10 there (America/Los_Angeles); it may go after 08:00. Add --force"
        with self.assertRaisesMessage(CommandError, message):
            self.send("Your table is ready", "--to", SENDER)

        self.assertEqual(self.api.requests, [])
        self.assertFalse(Message.objects.exists())

    def test_it_sends_where_it_is_day_at_the_same_moment(self) -> None:
        self.api.accepts()

        self.send("Good evening", "--to", "+61291234567")

        self.assertEqual(len(self.api.requests), 1)

    def test_force_sends_it_anyway(self) -> None:
        self.api.accepts()

        self.send("Your table is ready", "--to", SENDER, "--force")

        self.assertEqual(len(self.api.requests), 1)
        self.assertEqual(Message.objects.get().created_at, timezone.now())

    def test_replies_to_inbound_texts_are_never_held(self) -> None:
        self.assertEqual(reply_of(self.twilio.text("Hi")), "Friend has messaged +15005550006 1 time.")

    def test_a_text_scheduled_in_their_night_waits_for_their_morning(self) -> None:
        out = self.send("Your table is ready", "--to", SENDER, "--at", "2026-01-15T09:00Z")  # 01:00 there.

        self.assertEqual(self.outbound().send_at, datetime(2026, 1, 15, 16, 0, tzinfo=UTC))  # 08:00 there.
        self.assertIn("(scheduled at 2026-01-15 16:00 UTC)", out)
        self.assertEqual(self.api.requests, [])


@override_settings(
    SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_FROM_NUMBER=RECIPIENT, TIME_ZONE="Europe/Paris"
)
class SendSmsAtTestCase(SendSmsCommandTestCase):
    """--at schedules the text, in TIME_ZONE unless it has an offset; --cancel ID cancels it."""

    def setUp(self) -> None:
        super().setUp()
        self.enterContext(mock.patch("django.utils.timezone.now", return_value=LATE_IN_CALIFORNIA))

    def test_it_schedules_the_text_in_the_sites_time_zone(self) -> None:
        out = self.send("Happy holidays", "--to", SENDER, "--at", "2026-12-24T09:00")

        message = self.outbound()
        self.assertEqual(
            (message.status, message.send_at), ("scheduled", datetime(2026, 12, 24, 8, 0, tzinfo=UTC))
        )
        self.assertIn(f"Queued text {message.pk} to {SENDER} (scheduled at 2026-12-24 09:00 CET)", out)
        self.assertEqual(self.api.requests, [])  # Not before its time.

    def test_an_offset_in_the_time_is_kept(self) -> None:
        self.send("Hi", "--to", SENDER, "--at", "2026-12-24T09:00-08:00")

        self.assertEqual(self.outbound().send_at, datetime(2026, 12, 24, 17, 0, tzinfo=UTC))

    def test_a_time_in_the_past_is_an_error(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "--at: 2026-01-15T08:00 is in the past: it is 2026-01-15 08:10 CET now."
        ):
            self.send("Hi", "--to", SENDER, "--at", "2026-01-15T08:00")
        self.assertFalse(Message.objects.exists())

    def test_a_time_that_is_not_iso_8601_is_an_error(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "--at: 'tomorrow 9am' is not a date and time in ISO 8601"
        ):
            self.send("Hi", "--to", SENDER, "--at", "tomorrow 9am")

    def test_cancel_cancels_a_scheduled_text_until_it_has_gone(self) -> None:
        self.send("Hi", "--to", SENDER, "--at", "2026-12-24T09:00")
        message = self.outbound()

        self.assertEqual(self.send("--cancel", str(message.pk)), f"Canceled text {message.pk}.\n")

        message.refresh_from_db()
        self.assertEqual(message.status, "canceled")
        self.assertIn("Canceled on 2026-01-15 08:10", message.error)
        with self.assertRaisesMessage(
            CommandError, f"Text {message.pk} is canceled: it can no longer be canceled."
        ):
            self.send("--cancel", str(message.pk))
        with self.assertRaisesMessage(CommandError, "There is no outbound text 999."):
            self.send("--cancel", "999")

    def test_it_needs_a_text_and_a_recipient_without_cancel(self) -> None:
        with self.assertRaisesMessage(CommandError, "Give the text and --to (or --cancel ID)."):
            self.send("Hi")


@override_settings(SMS_BACKEND="console", TWILIO_ACCOUNT_SID="", TWILIO_FROM_NUMBER=RECIPIENT)
class SendSmsConsoleTestCase(SendSmsCommandTestCase):
    def send(self, *args: str) -> str:
        out = StringIO()
        with self.api.serving(), self.assertLogs("conversations.twilio_api") as logs:
            call_command("send_sms", *args, stdout=out)
            outbox_drain()
        self.logged = "\n".join(logs.output)
        return out.getvalue()

    def test_it_logs_the_text_and_records_it_as_sent_without_the_network(self) -> None:
        output = self.send("Your table is ready", "--to", SENDER)

        message = Message.objects.get()
        self.assertRegex(message.sid, r"^SM[0-9a-f]{32}$")
        self.assertEqual((message.status, message.error, message.body), ("sent", "", "Your table is ready"))
        self.assertIn(f"Queued text {message.pk}", output)
        self.assertIn("'Your table is ready'", self.logged)
        self.assertEqual(self.api.requests, [])

    def test_it_opens_a_conversation_the_reply_continues(self) -> None:
        self.send("Reply to chat", "--to", SENDER)

        response = self.twilio.text("Hi!", cookie="")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(response.cookies["sessionid"].value, Conversation.objects.get().session_id)

    def test_it_gives_each_text_its_own_sid(self) -> None:
        self.send("One", "--to", SENDER)
        self.send("Two", "--to", SENDER)

        sids = set(Message.objects.values_list("sid", flat=True))
        self.assertEqual(len(sids), 2)
        self.assertTrue(all(re.fullmatch(r"SM[0-9a-f]{32}", sid) for sid in sids))
