import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from django.contrib.sessions.models import Session
from django.db import connection, connections
from django.test import SimpleTestCase, TransactionTestCase, override_settings
from twilio.twiml.messaging_response import MessagingResponse

from conversations.models import Conversation, Message
from conversations.webhook import twiml
from tests.twilio import TOKEN, Twilio, TwilioTestCase, reply_of


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


@override_settings(ROOT_URLCONF="tests.urls", WEBHOOK_DEADLINE=0.5)
class DeadlineTestCase(TwilioTestCase):
    def test_it_rolls_back_a_text_not_ready_by_its_deadline(self) -> None:
        self.twilio.text("0", path="/slow/")

        response = self.twilio.text("0.8", path="/slow/")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(response["Retry-After"], "1")
        self.assertEqual(Message.objects.count(), 1)
        self.assertEqual(Conversation.objects.get().window_count, 1)

    def test_it_answers_a_text_ready_in_time(self) -> None:
        response = self.twilio.text("0.1", path="/slow/")

        self.assertEqual(reply_of(response), "Done.")


@override_settings(WEBHOOK_DEADLINE=0.5)
class DeadlineUnderLocksTestCase(TransactionTestCase):
    """Another connection holds the lock a text needs, past the text's deadline."""

    def setUp(self) -> None:
        self.enterContext(override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True))
        self.twilio = Twilio()
        self.twilio.text("first")

    def test_it_answers_503_and_records_nothing_while_the_database_is_locked(self) -> None:
        with self.lock_held():
            response = self.twilio.text("second")

        self.assertEqual(response.status_code, 503)
        self.assertEqual(Message.objects.count(), 1)
        self.assertEqual(reply_of(self.twilio.text("third")), "Friend has messaged +15005550006 2 times.")

    @contextmanager
    def lock_held(self) -> Iterator[None]:
        if connection.vendor == "sqlite":
            # A backup or a `sqlite3` shell: the database's write lock, outside our file lock.
            other = sqlite3.connect(connection.settings_dict["NAME"])
            other.execute("BEGIN IMMEDIATE")
            try:
                yield
            finally:
                other.rollback()
                other.close()
        else:
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:
                    other.set_autocommit(False)
                    cursor.execute("SELECT 1 FROM conversations_conversation FOR UPDATE")
                    yield
            finally:
                other.rollback()
                other.close()


class InDoubtTestCase(TwilioTestCase):
    def test_it_gives_a_text_committed_but_never_answered_its_reply_when_twilio_delivers_it_again(
        self,
    ) -> None:
        self.twilio.text("one")
        self.twilio.client.raise_request_exception = False
        # The worker dies between the commit and the answer: Twilio sees no 200.
        with mock.patch("conversations.webhook.twiml", side_effect=SystemError("worker killed")):
            lost = self.twilio.text("two", sid="SM" + "a" * 32)

        again = self.twilio.text("two", sid="SM" + "a" * 32)

        self.assertEqual(lost.status_code, 500)
        self.assertEqual(reply_of(again), "Friend has messaged +15005550006 2 times.")
        self.assertEqual(Conversation.objects.get().window_count, 2)
        self.assertEqual(Message.objects.count(), 2)


class TwimlTests(SimpleTestCase):
    def test_it_writes_the_bytes_twilios_messaging_response_writes(self) -> None:
        replies = [
            None,
            "",
            "Hi Ana, 3 texts",
            "a & b <c> \"d\" 'e'",
            "line\r\nnext\ttab",
            "🎉 ﷽ مرحبا",
            "x" * 1600,
        ]
        for reply in replies:
            with self.subTest(reply=reply):
                expected = MessagingResponse()
                if reply:
                    expected.message(reply)

                response = twiml(reply)

                self.assertEqual(response.content.decode(), str(expected))
                self.assertEqual(response["Content-Type"], "text/xml; charset=utf-8")

    def test_it_drops_what_xml_forbids_before_writing(self) -> None:
        self.assertEqual(twiml("a\x00\x08b\ufffe").content, twiml("ab").content)
        self.assertEqual(twiml("\x01").content, twiml(None).content)
