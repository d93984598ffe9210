"""Redacting a text: the body becomes [redacted] everywhere the app kept it, by staff allowed to."""

from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import override_settings

from conversations.models import Conversation, Message
from conversations.redaction import REDACTED, message_redact
from conversations.sessions import PairSessionStore
from tests.factories import staff_with, superuser
from tests.twilio import TwilioTestCase, reply_of

CARD = "My card is 4111 1111 1111 1111"
# What must be gone: "4111" alone also turns up in a page's timestamps (02:07:09.411128).
NUMBER = "4111 1111"
CONVERSATIONS = "/admin/conversations/conversation/"
MESSAGES = "/admin/conversations/message/"


def history_of(message: Message) -> list[LogEntry]:
    return list(LogEntry.objects.filter(object_id=str(message.pk), content_type__model="message"))


class RedactionAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.twilio.text("Hi")
        self.twilio.text(CARD, NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1")
        self.message = Message.objects.get(body=CARD)
        self.conversation = self.message.conversation

    def redact(self) -> int:
        return self.client.post(f"{MESSAGES}{self.message.pk}/redact/").status_code

    def page(self) -> str:
        return self.client.get(f"{CONVERSATIONS}{self.conversation.pk}/change/").content.decode()

    def test_it_replaces_the_body_and_drops_the_media(self) -> None:
        response = self.client.post(f"{MESSAGES}{self.message.pk}/redact/")

        self.assertRedirects(
            response,
            f"{CONVERSATIONS}{self.conversation.pk}/change/#message-{self.message.pk}",
            fetch_redirect_response=False,
        )
        self.message.refresh_from_db()
        self.assertEqual((self.message.body, self.message.media_urls), (REDACTED, []))

    def test_the_original_is_gone_from_every_row_of_the_database(self) -> None:
        self.redact()

        for message in Message.objects.all():
            with self.subTest(message=message.pk):
                self.assertNotIn(NUMBER, f"{message.body} {message.reply} {message.media_urls}")
                self.assertNotIn("ME1", str(message.media_urls))
        for session in Session.objects.all():
            self.assertNotIn(NUMBER, str(session.get_decoded()))
        self.assertNotIn(NUMBER, self.page())

    def test_it_keeps_who_redacted_it_and_when_in_the_history_but_not_what(self) -> None:
        self.redact()

        [entry] = history_of(self.message)
        self.assertEqual((entry.user, entry.get_change_message()), (self.staff, "Redacted the body"))
        self.assertIsNotNone(entry.action_time)
        self.assertNotIn(NUMBER, f"{entry.object_repr} {entry.change_message}")

    def test_a_second_redaction_changes_and_notes_nothing(self) -> None:
        self.redact()

        self.redact()

        self.assertEqual(len(history_of(self.message)), 1)

    def test_the_counter_keeps_counting_after_a_redaction(self) -> None:
        self.redact()

        self.assertEqual(reply_of(self.twilio.text()), "Friend has messaged +15005550006 3 times.")

    def test_the_bubble_offers_redact_to_staff_with_the_permission(self) -> None:
        self.client.force_login(staff_with("privacy", "view_conversation", "redact_message"))

        content = self.page()

        self.assertIn(f'action="{MESSAGES}{self.message.pk}/redact/"', content)
        self.assertEqual(self.redact(), 302)

    def test_a_redacted_bubble_offers_no_redact(self) -> None:
        self.redact()

        self.assertNotIn(f'action="{MESSAGES}{self.message.pk}/redact/"', self.page())

    def test_staff_without_the_permission_see_no_button_and_get_403(self) -> None:
        self.client.force_login(
            staff_with("agent", "view_conversation", "change_conversation", "view_message")
        )

        content = self.page()
        status = self.redact()

        self.assertIn(CARD, content)
        self.assertNotIn("/redact/", content)
        self.assertEqual(status, 403)
        self.message.refresh_from_db()
        self.assertEqual(self.message.body, CARD)
        self.assertEqual(history_of(self.message), [])

    def test_redact_takes_only_post(self) -> None:
        self.assertEqual(self.client.get(f"{MESSAGES}{self.message.pk}/redact/").status_code, 405)

    def test_it_answers_404_for_no_such_message(self) -> None:
        self.assertEqual(self.client.post(f"{MESSAGES}999999/redact/").status_code, 404)
        self.assertEqual(self.client.post(f"{MESSAGES}nope/redact/").status_code, 404)


@override_settings(ROOT_URLCONF="tests.urls", TWILIO_REQUIRE_SIGNATURE=False)
class RedactionSessionTestCase(TwilioTestCase):
    """The echo app keeps every body in the pair's session and echoes them in its replies."""

    def setUp(self) -> None:
        super().setUp()
        self.twilio.text("Hi", path="/echo/")
        self.twilio.text(CARD, path="/echo/")
        self.twilio.text("Thanks", path="/echo/")
        self.conversation = Conversation.objects.get()
        self.message = Message.objects.get(body=CARD)

    def session(self) -> Session:
        return Session.objects.get(pk=self.conversation.session_id)

    def test_it_takes_the_text_out_of_the_session_without_moving_the_window(self) -> None:
        expiry = self.session().expire_date

        message_redact(self.message)

        self.assertEqual(self.session().get_decoded(), {"bodies": ["Hi", REDACTED, "Thanks"]})
        self.assertEqual(self.session().expire_date, expiry)

    def test_it_redacts_the_replies_that_echoed_it(self) -> None:
        message_redact(self.message)

        replies = list(Message.objects.order_by("created_at", "pk").values_list("reply", flat=True))
        self.assertEqual(replies, ["Hi", REDACTED, REDACTED])

    def test_the_pair_goes_on_from_the_redacted_session(self) -> None:
        message_redact(self.message)

        self.assertEqual(reply_of(self.twilio.text("Bye", path="/echo/")), f"Hi / {REDACTED} / Thanks / Bye")

    @override_settings(SESSION_ENGINE="conversations.sessions")
    def test_it_drops_the_sessions_copy_in_the_cache(self) -> None:
        key = PairSessionStore(self.conversation.session_id).cache_key
        cache.set(key, {"bodies": ["Hi", CARD, "Thanks"]})
        self.addCleanup(cache.delete, key)

        with self.captureOnCommitCallbacks(execute=True):
            message_redact(self.message)

        self.assertIsNone(cache.get(key))
        self.assertEqual(
            PairSessionStore(self.conversation.session_id).load(), {"bodies": ["Hi", REDACTED, "Thanks"]}
        )


@override_settings(SESSION_ENGINE="conversations.sessions")
class RedactionCounterSessionTestCase(TwilioTestCase):
    def test_it_drops_the_cached_copy_even_of_a_session_that_holds_only_a_count(self) -> None:
        self.twilio.text(CARD)
        conversation = Conversation.objects.get()
        key = PairSessionStore(conversation.session_id).cache_key
        cache.set(key, {"count": 1})
        self.addCleanup(cache.delete, key)

        with self.captureOnCommitCallbacks(execute=True):
            message_redact(Message.objects.get())

        self.assertIsNone(cache.get(key))
        self.assertEqual(Session.objects.get(pk=conversation.session_id).get_decoded(), {"count": 1})
