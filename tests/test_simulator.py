from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import Client, TestCase, override_settings

from conversations.models import Caller, Conversation, Message
from conversations.simulator import JARS_KEY
from tests.twilio import RECIPIENT, SENDER, TOKEN

ONE = "Friend has messaged +15005550006 1 time."
TWO = "Friend has messaged +15005550006 2 times."


class SimulatorTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        # No password: force_login() needs none, and hashing one costs most of a test's time.
        cls.staff = User.objects.create(username="alice", is_staff=True)

    def setUp(self) -> None:
        self.client.force_login(self.staff)

    def text(self, body: str, sender: str = SENDER, recipient: str = RECIPIENT) -> HttpResponse:
        data = {"sender": sender, "recipient": recipient, "body": body}
        return self.client.post("/simulator/", data, follow=True)

    def test_it_sends_anonymous_visitors_to_the_admin_login(self) -> None:
        response = Client().get("/simulator/")

        self.assertRedirects(response, "/admin/login/?next=/simulator/")

    def test_it_sends_users_who_are_not_staff_to_the_admin_login(self) -> None:
        self.client.force_login(User.objects.create(username="bob"))

        response = self.client.get("/simulator/")

        self.assertRedirects(response, "/admin/login/?next=/simulator/")

    def test_it_records_the_text_and_shows_the_reply(self) -> None:
        response = self.text("hello")

        self.assertRedirects(response, "/simulator/?sender=%2B14155551234&recipient=%2B15005550006")
        self.assertContains(response, ONE)
        message = Message.objects.get()
        self.assertEqual((message.body, message.reply), ("hello", ONE))

    def test_it_keeps_the_pair_cookie_in_the_staff_session(self) -> None:
        self.text("hello")

        with self.assertLogs("conversations", "INFO") as logs:
            self.assertContains(self.text("again"), TWO)

        self.assertIn("cookie=used", logs.output[0])
        session_key = Conversation.objects.get().session_id
        self.assertEqual(self.client.session[JARS_KEY][SENDER][RECIPIENT]["sessionid"]["value"], session_key)
        self.assertNotEqual(self.client.cookies["sessionid"].value, session_key)

    def test_it_shows_each_pair_its_own_thread(self) -> None:
        self.text("first", sender="+14155550001")
        self.text("second", sender="+14155550001")
        self.text("other", sender="+14155550002")

        response = self.client.get("/simulator/", {"sender": "+14155550001", "recipient": RECIPIENT})

        self.assertContains(response, "second")
        self.assertContains(response, TWO)
        self.assertNotContains(response, "other")

    def test_it_opens_the_last_pair_by_default(self) -> None:
        self.text("hi", sender="+14155550001")

        response = self.client.get("/simulator/")

        self.assertContains(response, 'value="+14155550001"')
        self.assertContains(response, ONE)

    def test_it_takes_numbers_as_people_type_them(self) -> None:
        self.text("hello", sender="(415) 555-0001")

        self.assertEqual(Conversation.objects.get().sender, "+14155550001")

    def test_it_offers_known_callers_by_name(self) -> None:
        Caller.objects.create(phone_number="+14155550001", name="Rey")

        response = self.client.get("/simulator/", {"sender": "+14155550001", "recipient": RECIPIENT})

        self.assertContains(response, '<option value="+14155550001">Rey</option>', html=True)
        self.assertContains(response, "<strong>Rey</strong>", html=True)

    @override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_signs_texts_when_a_token_is_set(self) -> None:
        self.assertContains(self.text("hello"), ONE)

    @override_settings(TWILIO_AUTH_TOKEN="", TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_says_why_a_text_was_not_delivered(self) -> None:
        response = self.text("hello")

        self.assertContains(response, "Not delivered: 403 Forbidden: Missing or invalid X-Twilio-Signature.")
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_a_post_without_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.staff)

        response = client.post("/simulator/", {"sender": SENDER, "recipient": RECIPIENT, "body": "hi"})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Message.objects.exists())

    def test_it_takes_a_post_with_the_page_csrf_token(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.staff)
        token = client.get("/simulator/").context["csrf_token"]

        response = client.post(
            "/simulator/",
            {"sender": SENDER, "recipient": RECIPIENT, "body": "hi", "csrfmiddlewaretoken": token},
        )

        self.assertEqual(response.status_code, 302)
        self.assertEqual(Message.objects.get().reply, ONE)

    def test_it_asks_for_a_text(self) -> None:
        response = self.client.post("/simulator/", {"sender": SENDER, "recipient": RECIPIENT, "body": ""})

        self.assertContains(response, "This field is required.", status_code=400)
        self.assertFalse(Session.objects.filter(conversation__isnull=False).exists())

    def test_it_is_linked_from_the_admin(self) -> None:
        response = self.client.get("/admin/")

        self.assertContains(response, '<a href="/simulator/">SMS simulator</a>', html=True)
