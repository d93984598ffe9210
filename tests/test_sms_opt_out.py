"""Twilio's opt-out keywords in the SMS webhook: STOP, START, HELP and OptOutType."""

from conversations.models import Conversation, Message
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, reply_of


class SmsOptOutTestCase(TwilioTestCase):
    def conversation(self) -> Conversation:
        return Conversation.objects.get(sender=SENDER, recipient=RECIPIENT)

    def test_it_opts_out_on_each_stop_word_in_any_case(self) -> None:
        words = ["STOP", "stopall", "Unsubscribe", "CANCEL", "end", "QUIT", "revoke", "OPTOUT", "  stop \n"]
        for number, word in enumerate(words):
            with self.subTest(word=word):
                sender = f"+1415555{number:04d}"
                response = self.twilio.text(word, sender=sender)
                self.assertIsNone(reply_of(response))
                self.assertIs(Conversation.objects.get(sender=sender).opted_out, True)

    def test_it_opts_out_on_twilios_opt_out_type(self) -> None:
        response = self.twilio.text("Arrêt", OptOutType="STOP")

        self.assertIsNone(reply_of(response))
        self.assertIs(self.conversation().opted_out, True)

    def test_it_does_not_take_a_sentence_with_stop_for_an_opt_out(self) -> None:
        response = self.twilio.text("Please don't stop")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertIs(self.conversation().opted_out, False)

    def test_it_records_but_does_not_answer_while_opted_out(self) -> None:
        self.twilio.text()
        self.twilio.text("STOP")

        response = self.twilio.text("Are you there?")

        self.assertIsNone(reply_of(response))
        self.assertEqual(Message.objects.count(), 3)
        self.assertEqual(self.conversation().window_count, 1)

    def test_it_opts_back_in_and_answers_each_start_word(self) -> None:
        for word in ("START", "unstop", "Yes"):
            with self.subTest(word=word):
                self.twilio.text("STOP")
                response = self.twilio.text(word)
                self.assertIsNotNone(reply_of(response))
                self.assertIs(self.conversation().opted_out, False)
        self.assertEqual(self.conversation().window_count, 3)

    def test_it_opts_back_in_on_twilios_opt_out_type(self) -> None:
        self.twilio.text("STOP")

        response = self.twilio.text("Hola", OptOutType="START")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertIs(self.conversation().opted_out, False)

    def test_it_leaves_help_and_info_to_twilio(self) -> None:
        for word in ("HELP", "info"):
            with self.subTest(word=word):
                self.assertIsNone(reply_of(self.twilio.text(word)))
        self.assertIsNone(reply_of(self.twilio.text("Aide", OptOutType="HELP")))
        self.assertEqual(self.conversation().window_count, 0)
        self.assertEqual(Message.objects.count(), 3)
