from django.contrib.sessions.models import Session
from django.test import override_settings

from conversations.models import Conversation, Message
from tests.twilio import TwilioTestCase, reply_of


@override_settings(ROOT_URLCONF="tests.urls", TWILIO_REQUIRE_SIGNATURE=False)
class ConversationHandlerTestCase(TwilioTestCase):
    def test_it_gives_the_handler_the_pairs_own_session(self) -> None:
        self.twilio.text("one", path="/echo/")
        self.twilio.text("other pair", path="/echo/", sender="+14155550002")

        response = self.twilio.text("two", path="/echo/", cookie="")

        self.assertEqual(reply_of(response), "one / two")

    def test_it_saves_changes_made_inside_session_values(self) -> None:
        self.twilio.text("a", path="/echo/")
        self.twilio.text("b", path="/echo/")

        session = Session.objects.get(pk=Conversation.objects.get().session_id)
        self.assertEqual(session.get_decoded(), {"bodies": ["a", "b"]})

    def test_it_answers_nothing_when_the_handler_returns_none(self) -> None:
        self.twilio.text(path="/silent/")
        response = self.twilio.text(path="/silent/")

        self.assertIsNone(reply_of(response))
        self.assertEqual(Session.objects.get().get_decoded(), {"heard": 2})
        self.assertEqual(Message.objects.filter(reply="").count(), 2)

    def test_it_keeps_nothing_of_a_text_whose_handler_failed(self) -> None:
        self.twilio.text(path="/echo/")
        self.twilio.client.raise_request_exception = False

        response = self.twilio.text(path="/broken/")

        self.assertEqual(response.status_code, 500)
        self.assertEqual(Message.objects.count(), 1)
        self.assertEqual(Conversation.objects.get().window_count, 1)
        self.assertNotIn("half", Session.objects.get().get_decoded())

    def test_it_drops_what_xml_forbids_from_the_reply(self) -> None:
        response = self.twilio.text("ding\x07 \x1b[1mbold\ufffe\U0001f600\t", path="/echo/")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(reply_of(response), "ding [1mbold\U0001f600\t")
