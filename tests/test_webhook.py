import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection, connections
from django.http import HttpResponse
from django.test import Client, SimpleTestCase, TransactionTestCase, override_settings
from twilio.twiml.messaging_response import MessagingResponse

from conversations.models import Conversation, Message
from conversations.webhook import twiml
from tests.twilio import TOKEN, Twilio, TwilioTestCase, reply_of, sign

TWILIO_WEBHOOK_MIDDLEWARE = "conversations.webhook.twilio_webhook_middleware"
# Django's browser middlewares that leave a mark on every request they take.
BROWSER_MIDDLEWARES = {
    "SecurityMiddleware",
    "AuthenticationMiddleware",
    "MessageMiddleware",
    "XFrameOptionsMiddleware",
}


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


def browser_middlewares_of(response: HttpResponse) -> set[str]:
    """Which of BROWSER_MIDDLEWARES took the request, by what each leaves on it or its answer.

    (A spy on the middlewares' __call__ would miss them once Sentry's integration, which the
    error-report tests switch on, has wrapped them.)
    """
    request = response.wsgi_request  # type: ignore[attr-defined]  # The test client's.
    marks = {
        "SecurityMiddleware": "X-Content-Type-Options" in response,
        "AuthenticationMiddleware": hasattr(request, "user"),
        "MessageMiddleware": hasattr(request, "_messages"),
        "XFrameOptionsMiddleware": "X-Frame-Options" in response,
    }
    return {name for name, left in marks.items() if left}


class TwilioWebhookMiddlewareTestCase(TwilioTestCase):
    def test_the_webhook_skips_the_browser_middlewares(self) -> None:
        response = self.twilio.text()

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(browser_middlewares_of(response), set())

    def test_the_status_callback_skips_the_browser_middlewares(self) -> None:
        url = "http://testserver/sms/status/"
        params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "sent"}

        response = self.client.post(url, params, headers={"X-Twilio-Signature": sign(url, params)})

        self.assertEqual(response.status_code, 204)
        self.assertEqual(browser_middlewares_of(response), set())

    def test_the_webhook_answers_as_it_does_through_every_middleware(self) -> None:
        every_middleware = [name for name in settings.MIDDLEWARE if name != TWILIO_WEBHOOK_MIDDLEWARE]
        fast = self.twilio.text(sender="+14155550001")
        unsigned = self.client.post("/sms/", {"From": "+14155550001", "To": "+15005550006"})
        with override_settings(MIDDLEWARE=every_middleware):
            full = Twilio().text(sender="+14155550002")
            unsigned_full = Client().post("/sms/", {"From": "+14155550001", "To": "+15005550006"})

        for name in ("status_code", "content"):
            self.assertEqual(getattr(fast, name), getattr(full, name))
            self.assertEqual(getattr(unsigned, name), getattr(unsigned_full, name))
        for header in ("Content-Type", "Content-Length"):
            self.assertEqual(fast[header], full[header])
        cookie = settings.SESSION_COOKIE_NAME
        # The same cookie but for its key, and its expiry's second.
        self.assertEqual({**fast.cookies[cookie], "expires": ""}, {**full.cookies[cookie], "expires": ""})
        self.assertEqual(set(fast.cookies), set(full.cookies))
        # Only what browsers read is left out.
        self.assertEqual(
            set(full.headers) - set(fast.headers),
            {"X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"},
        )

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_the_webhook_over_plain_http_is_still_redirected_to_https(self) -> None:
        response = self.twilio.text()

        self.assertEqual(response.status_code, 301)
        self.assertEqual(response["Location"], "https://testserver/sms/")
        self.assertEqual(browser_middlewares_of(response), {"SecurityMiddleware"})
        self.assertEqual(Message.objects.count(), 0)

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_the_webhook_over_https_skips_the_browser_middlewares_under_ssl_redirect(self) -> None:
        response = Twilio(base_url="https://testserver").text()

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(browser_middlewares_of(response), set())
        self.assertIs(response.cookies[settings.SESSION_COOKIE_NAME]["secure"], True)

    @override_settings(TWILIO_REQUIRE_SIGNATURE=False)
    def test_the_webhook_refuses_a_host_not_allowed(self) -> None:
        response = self.client.post(
            "/sms/", {"From": "+14155550001", "To": "+15005550006"}, headers={"Host": "evil.example"}
        )

        self.assertEqual(response.status_code, 400)
        self.assertEqual(Message.objects.count(), 0)

    def test_every_other_page_keeps_every_middleware(self) -> None:
        for path in ("/healthz", "/metrics", "/admin/login/", "/simulator/", "/sms/nowhere/"):
            with self.subTest(path=path):
                response = self.client.get(path)

                self.assertEqual(browser_middlewares_of(response), BROWSER_MIDDLEWARES)

    def test_it_resolves_paths_afresh_once_the_urlconf_changes(self) -> None:
        self.assertEqual(self.twilio.text().status_code, 200)

        with override_settings(ROOT_URLCONF="tests.urls"):  # Which has no /sms/.
            response = self.twilio.text()

        self.assertEqual(response.status_code, 404)
        self.assertEqual(browser_middlewares_of(response), BROWSER_MIDDLEWARES)
        self.assertEqual(self.twilio.text().status_code, 200)

    @override_settings(ROOT_URLCONF="tests.urls", TWILIO_REQUIRE_SIGNATURE=False)
    def test_a_twilio_view_that_is_not_csrf_exempt_keeps_every_middleware(self) -> None:
        response = Client(enforce_csrf_checks=True).post("/not-exempt/", {"From": "+14155550001"})

        self.assertEqual(response.status_code, 403)  # The CSRF middleware's refusal.
        self.assertEqual(browser_middlewares_of(response), BROWSER_MIDDLEWARES)


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
