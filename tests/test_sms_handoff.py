"""Staff step in: a text sent from the admin pauses the bot's replies in that conversation."""

from datetime import timedelta
from unittest import mock

from django.test import override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.outbox import SendError, text_enqueue
from conversations.pairs import bot_resume
from tests.factories import superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.outbox import sent
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, reply_of, sid_of


@override_settings(SMS_BACKEND="console", HANDOFF_PAUSE=1800)
class HandoffTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text("Is my order ready?")

    def staff_text(self, body: str = "Let me check for you.") -> Message:
        return sent(our_number=RECIPIENT, their_number=SENDER, body=body, sent_by=self.staff)

    def conversation(self) -> Conversation:
        return Conversation.objects.get(sender=SENDER)

    def test_a_staff_text_pauses_the_bot_as_soon_as_it_is_queued(self) -> None:
        text_enqueue(our_number=RECIPIENT, their_number=SENDER, body="On my way", sent_by=self.staff)

        # The worker has not sent it yet: the customer's text meanwhile gets no bot reply.
        self.assertIsNotNone(self.conversation().bot_paused_until)
        self.assertEqual(Message.objects.get(body="On my way").status, "pending")
        self.assertIsNone(reply_of(self.twilio.text("Are you there?")))

    def test_a_staff_text_queued_pauses_the_bot_in_its_own_transaction(self) -> None:
        # A failure after the pause, before the commit (waking the worker is the last step).
        failing = mock.patch("conversations.outbox.outbox_wake", side_effect=RuntimeError("disk full"))
        with failing, self.assertRaises(RuntimeError):
            text_enqueue(our_number=RECIPIENT, their_number=SENDER, body="On my way", sent_by=self.staff)

        self.assertFalse(Message.objects.filter(body="On my way").exists())
        self.assertIsNone(self.conversation().bot_paused_until)  # No text queued, no pause.

    def test_a_staff_text_refused_when_queued_does_not_pause_the_bot(self) -> None:
        Caller.objects.filter(phone_number=SENDER).update(blocked=True)

        with self.assertRaises(SendError):
            text_enqueue(our_number=RECIPIENT, their_number=SENDER, body="On my way", sent_by=self.staff)

        self.assertEqual(Message.objects.get(body="On my way").status, "canceled")
        self.assertIsNone(self.conversation().bot_paused_until)

    def test_a_staff_text_pauses_the_bot_for_handoff_pause(self) -> None:
        before = timezone.now()
        self.staff_text()

        paused_until = self.conversation().bot_paused_until
        assert paused_until is not None
        self.assertGreaterEqual(paused_until, before + timedelta(seconds=1800))
        self.assertLessEqual(paused_until, timezone.now() + timedelta(seconds=1800))

    def test_it_counts_and_records_but_does_not_answer_a_text_while_paused(self) -> None:
        self.staff_text()

        response = self.twilio.text("Thanks, I'll wait")

        self.assertEqual(response.status_code, 200)
        self.assertIn("<Response />", response.content.decode())
        self.assertIsNone(reply_of(response))
        conversation = self.conversation()
        self.assertEqual((conversation.window_count, conversation.lifetime_count), (2, 2))
        latest = Message.objects.filter(direction=Message.Direction.INBOUND).latest("created_at", "pk")
        self.assertEqual((latest.body, latest.reply), ("Thanks, I'll wait", ""))

    def test_the_bot_answers_with_the_whole_count_once_the_pause_ends(self) -> None:
        self.staff_text()
        self.twilio.text("Thanks")
        later = timezone.now() + timedelta(seconds=1801)

        with mock.patch("django.utils.timezone.now", return_value=later):
            response = self.twilio.text("Still there?")

        self.assertEqual(reply_of(response), "Rey has messaged +15005550006 3 times.")

    def test_each_staff_text_renews_the_pause(self) -> None:
        self.staff_text()
        first = self.conversation().bot_paused_until
        assert first is not None
        later = timezone.now() + timedelta(seconds=1000)

        with mock.patch("django.utils.timezone.now", return_value=later):
            self.staff_text("Found it: ready at 5.")
            response = self.twilio.text(f"Can I come at {later:%H:%M}?")

        self.assertEqual(self.conversation().bot_paused_until, later + timedelta(seconds=1800))
        self.assertIsNone(reply_of(response))

    def test_resume_bot_lets_the_bot_answer_the_next_text(self) -> None:
        self.staff_text()

        bot_resume(self.conversation())

        self.assertIsNone(self.conversation().bot_paused_until)
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 2 times.")

    def test_a_text_the_app_sends_without_staff_does_not_pause_the_bot(self) -> None:
        sent(our_number=RECIPIENT, their_number=SENDER, body="Your table is ready")

        self.assertIsNone(self.conversation().bot_paused_until)
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 2 times.")

    @override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="t")
    def test_a_staff_text_twilio_refuses_later_leaves_the_pause_to_staff(self) -> None:
        api = FakeTwilioApi()
        api.refuses(
            status=400, code=21617, message="The concatenated message body exceeds the 1600 character limit."
        )
        with api.serving():
            refused = self.staff_text()

        # Staff had stepped in: the failed text shows under Needs reply, and Resume bot ends it.
        self.assertEqual(refused.status, "failed")
        self.assertIsNotNone(self.conversation().bot_paused_until)

    @override_settings(HANDOFF_PAUSE=0)
    def test_a_zero_handoff_pause_never_pauses_the_bot(self) -> None:
        self.staff_text()

        self.assertIsNone(self.conversation().bot_paused_until)

    def test_stop_still_opts_out_while_paused(self) -> None:
        self.staff_text()

        self.twilio.text("STOP")

        conversation = self.conversation()
        self.assertIs(conversation.opted_out, True)
        self.assertEqual(conversation.window_count, 1)

    def test_it_logs_a_paused_text_as_paused(self) -> None:
        self.staff_text()

        with self.assertLogs("conversations.webhook", "INFO") as logs:
            self.twilio.text(sid=sid_of(7))

        self.assertIn(f"sid={sid_of(7)} outcome=paused", logs.output[0])

    def test_a_retry_of_a_paused_text_gets_the_same_empty_answer(self) -> None:
        self.staff_text()
        self.twilio.text(sid=sid_of(8))
        bot_resume(self.conversation())

        self.assertIsNone(reply_of(self.twilio.text(sid=sid_of(8))))
        self.assertEqual(self.conversation().window_count, 2)
