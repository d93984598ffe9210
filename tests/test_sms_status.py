from django.test import override_settings
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, sign

SID = "SM" + "c" * 32


class SmsStatusTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        conversation = Conversation.objects.create(sender=SENDER, recipient=RECIPIENT)
        self.message = Message.objects.create(
            conversation=conversation, direction=Message.Direction.OUTBOUND, sid=SID, status="queued"
        )

    def report(self, **params: str) -> int:
        url = "http://testserver/sms/status/"
        response = self.client.post(url, params, headers={"X-Twilio-Signature": sign(url, params)})
        return response.status_code

    def test_it_updates_the_status_of_a_sent_text(self) -> None:
        self.assertEqual(self.report(MessageSid=SID, MessageStatus="delivered"), 204)

        self.message.refresh_from_db()
        self.assertEqual(self.message.status, "delivered")

    def test_it_keeps_the_later_status_when_reports_arrive_out_of_order(self) -> None:
        self.report(MessageSid=SID, MessageStatus="delivered")
        self.report(MessageSid=SID, MessageStatus="sent")

        self.message.refresh_from_db()
        self.assertEqual(self.message.status, "delivered")

    def test_it_records_twilios_error_code(self) -> None:
        self.report(MessageSid=SID, MessageStatus="undelivered", ErrorCode="30003")

        self.message.refresh_from_db()
        self.assertEqual(
            (self.message.status, self.message.error),
            ("undelivered", "Twilio error 30003: Unreachable destination handset"),
        )

    def test_it_marks_a_number_the_carrier_cannot_deliver_to_on_all_its_conversations(self) -> None:
        for code, words in (
            ("30003", "Unreachable destination handset"),
            ("30005", "Unknown destination handset"),
            ("30006", "Landline or unreachable carrier"),
        ):
            with self.subTest(code=code):
                Conversation.objects.update(undeliverable_reason="", undeliverable_since=None)
                other = Conversation.objects.get_or_create(sender=f"whatsapp:{SENDER}", recipient=RECIPIENT)[
                    0
                ]
                before = timezone.now()

                self.report(MessageSid=SID, MessageStatus="undelivered", ErrorCode=code)

                for conversation in (self.message.conversation, other):
                    conversation.refresh_from_db()
                    self.assertEqual(conversation.undeliverable_reason, f"Twilio error {code}: {words}")
                    self.assertGreaterEqual(conversation.undeliverable_since, before)

    def test_it_keeps_when_the_number_was_first_marked(self) -> None:
        self.report(MessageSid=SID, MessageStatus="undelivered", ErrorCode="30003")
        first = Conversation.objects.get().undeliverable_since

        self.report(MessageSid=SID, MessageStatus="failed", ErrorCode="30005")

        conversation = Conversation.objects.get()
        self.assertEqual(conversation.undeliverable_since, first)
        self.assertEqual(conversation.undeliverable_reason, "Twilio error 30005: Unknown destination handset")

    def test_an_unregistered_sender_is_recorded_but_does_not_mark_the_number(self) -> None:
        self.report(MessageSid=SID, MessageStatus="undelivered", ErrorCode="30034")

        self.message.refresh_from_db()
        self.assertEqual(
            self.message.error, "Twilio error 30034: US A2P 10DLC - Message from an Unregistered Number"
        )
        conversation = Conversation.objects.get()
        self.assertEqual((conversation.undeliverable_reason, conversation.undeliverable_since), ("", None))

    def test_other_delivery_errors_do_not_mark_the_number(self) -> None:
        self.report(MessageSid=SID, MessageStatus="undelivered", ErrorCode="30007")

        self.assertEqual(Conversation.objects.get().undeliverable_reason, "")

    def test_it_marks_nothing_for_a_text_it_does_not_know(self) -> None:
        self.report(MessageSid="SM" + "d" * 32, MessageStatus="undelivered", ErrorCode="30003")

        self.assertEqual(Conversation.objects.get().undeliverable_reason, "")

    def test_it_accepts_reports_of_texts_it_does_not_know(self) -> None:
        self.assertEqual(self.report(MessageSid="SM" + "d" * 32, MessageStatus="sent"), 204)

    def test_it_needs_the_sid_and_the_status(self) -> None:
        self.assertEqual(self.report(MessageSid=SID), 400)
        self.assertEqual(self.report(MessageStatus="sent"), 400)

    def test_it_refuses_malformed_reports(self) -> None:
        self.assertEqual(self.report(MessageSid="SM\x00", MessageStatus="sent"), 400)
        self.assertEqual(self.report(MessageSid="S" * 65, MessageStatus="sent"), 400)
        self.assertEqual(self.report(MessageSid=SID, MessageStatus="failed", ErrorCode="x" * 300), 400)
        self.message.refresh_from_db()
        self.assertEqual(self.message.status, "queued")

    def test_it_rejects_unsigned_reports(self) -> None:
        response = self.client.post("/sms/status/", {"MessageSid": SID, "MessageStatus": "failed"})

        self.assertEqual(response.status_code, 403)
        self.message.refresh_from_db()
        self.assertEqual(self.message.status, "queued")

    def test_it_refuses_reports_whose_sid_is_not_a_message_sid(self) -> None:
        for sid in ("SM" + "c" * 31, "CA" + "c" * 32, "SM" + "x" * 32):
            with self.subTest(sid=sid):
                self.assertEqual(self.report(MessageSid=sid, MessageStatus="failed"), 400)
        self.assertEqual(self.report(MessageSid="MM" + "c" * 32, MessageStatus="failed"), 204)

    @override_settings(TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    def test_it_refuses_reports_for_another_account(self) -> None:
        self.assertEqual(self.report(MessageSid=SID, MessageStatus="failed", AccountSid="AC" + "2" * 32), 400)
        self.assertEqual(
            self.report(MessageSid=SID, MessageStatus="delivered", AccountSid="AC" + "1" * 32), 204
        )

        self.message.refresh_from_db()
        self.assertEqual(self.message.status, "delivered")
