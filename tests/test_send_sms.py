import re
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from conversations.models import Conversation, Message
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, SENDER, TOKEN, TwilioTestCase, reply_of

ACCOUNT = "AC" + "0" * 32


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_FROM_NUMBER=RECIPIENT)
class SendSmsTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = FakeTwilioApi()

    def send(self, *args: str) -> str:
        out = StringIO()
        with self.api.serving():
            call_command("send_sms", *args, stdout=out)
        return out.getvalue()

    def test_it_sends_through_twilios_api(self) -> None:
        self.api.accepts(sid="SM" + "a" * 32)

        output = self.send("Your table is ready", "--to", SENDER)

        request = self.api.requests[0]
        self.assertEqual(request.method, "POST")
        self.assertEqual(request.url, f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json")
        self.assertEqual((request.data["From"], request.data["To"]), (RECIPIENT, SENDER))
        self.assertEqual(request.data["Body"], "Your table is ready")
        self.assertEqual(request.auth, (ACCOUNT, TOKEN))
        self.assertIn(f"Sent SM{'a' * 32} (queued)", output)

    def test_it_records_the_outbound_text(self) -> None:
        self.api.accepts(sid="SM" + "b" * 32)

        self.send("Hello there", "--to", SENDER)

        message = Message.objects.get()
        self.assertEqual(message.direction, Message.Direction.OUTBOUND)
        self.assertEqual(
            (message.sid, message.status, message.body), ("SM" + "b" * 32, "queued", "Hello there")
        )
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

    def test_it_explains_a_number_twilio_refuses_and_records_the_failure(self) -> None:
        self.api.refuses(400, 21211, "The 'To' number +15005550001 is not a valid phone number.")

        with self.assertRaisesMessage(CommandError, "is not a valid phone number. (Twilio error 21211)"):
            self.send("Hi", "--to", "+15005550001")

        message = Message.objects.get()
        self.assertEqual((message.status, message.sid), ("failed", None))
        self.assertIn("Twilio error 21211", message.error)
        self.assertIsNone(message.conversation.session_id)

    def test_it_explains_an_authentication_failure(self) -> None:
        self.api.refuses(401, 20003, "Authenticate")

        with self.assertRaisesMessage(
            CommandError, "Twilio refused the text: Authenticate (Twilio error 20003)"
        ):
            self.send("Hi", "--to", SENDER)

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

        self.assertEqual(self.api.requests[0].data["StatusCallback"], "https://sms.example.com/sms/status/")


@override_settings(SMS_BACKEND="console", TWILIO_ACCOUNT_SID="", TWILIO_FROM_NUMBER=RECIPIENT)
class SendSmsConsoleTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = FakeTwilioApi()

    def send(self, *args: str) -> str:
        out = StringIO()
        with self.api.serving(), self.assertLogs("conversations.outbound") as logs:
            call_command("send_sms", *args, stdout=out)
        self.logged = "\n".join(logs.output)
        return out.getvalue()

    def test_it_logs_the_text_and_records_it_as_sent_without_the_network(self) -> None:
        output = self.send("Your table is ready", "--to", SENDER)

        message = Message.objects.get()
        self.assertRegex(message.sid, r"^SM[0-9a-f]{32}$")
        self.assertEqual((message.status, message.error, message.body), ("sent", "", "Your table is ready"))
        self.assertIn(f"Sent {message.sid} (sent)", output)
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
