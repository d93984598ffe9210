from datetime import timedelta

from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import TestCase, override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.simulator import JARS_KEY
from tests.factories import superuser
from tests.twilio import RECIPIENT, SENDER, TOKEN, Twilio

ONE = "Friend has messaged +15005550006 1 time."
TWO = "Friend has messaged +15005550006 2 times."


@override_settings(SIMULATOR_ENABLED=True)
class SimulatorTestCase(TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        # No password: force_login() needs none, and hashing one costs most of a test's time.
        cls.staff = superuser("alice")

    def setUp(self) -> None:
        self.client.force_login(self.staff)

    def text(self, body: str, sender: str = SENDER, recipient: str = RECIPIENT, **extra: str) -> HttpResponse:
        data = {"sender": sender, "recipient": recipient, "body": body, **extra}
        return self.client.post("/simulator/", data, follow=True)

    def open(self, sender: str = SENDER, recipient: str = RECIPIENT) -> HttpResponse:
        return self.client.get("/simulator/", {"sender": sender, "recipient": recipient})


class SimulatorTextingTestCase(SimulatorTestCase):
    def test_it_records_the_text_and_shows_the_reply(self) -> None:
        response = self.text("hello")

        self.assertRedirects(response, "/simulator/?sender=%2B14155551234&recipient=%2B15005550006")
        self.assertContains(response, ONE)
        message = Message.objects.get()
        self.assertEqual((message.body, message.reply), ("hello", ONE))

    def test_it_marks_its_texts_as_simulated(self) -> None:
        self.text("hello")

        self.assertIs(Message.objects.get().simulated, True)

    @override_settings(
        TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True
    )
    def test_it_sends_a_well_formed_sid_and_the_configured_account(self) -> None:
        self.assertContains(self.text("hello"), ONE)

        self.assertRegex(Message.objects.get().sid, r"^SM[0-9a-f]{32}$")

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

        response = self.open("+14155550001")

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
        self.text("again", sender="+1 415 555 0001")

        self.assertEqual(Conversation.objects.get().sender, "+14155550001")

    @override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_signs_texts_when_a_token_is_set(self) -> None:
        self.assertContains(self.text("hello"), ONE)

    @override_settings(TWILIO_AUTH_TOKEN="", TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_says_why_a_text_was_not_delivered(self) -> None:
        response = self.text("hello")

        self.assertContains(response, "Not delivered: 403 Forbidden: Missing or invalid X-Twilio-Signature.")
        self.assertFalse(Message.objects.exists())

    def test_it_asks_for_a_text(self) -> None:
        response = self.client.post("/simulator/", {"sender": SENDER, "recipient": RECIPIENT, "body": ""})

        self.assertContains(response, "This field is required.", status_code=400)
        self.assertFalse(Session.objects.filter(conversation__isnull=False).exists())

    def test_it_offers_a_media_url_field(self) -> None:
        self.assertContains(self.open(), 'name="media_url"')

    def test_it_attaches_a_media_url(self) -> None:
        self.text("look", media_url="https://example.com/owl.jpg")

        message = Message.objects.get()
        self.assertEqual(message.media_urls, ["https://example.com/owl.jpg"])
        self.assertRegex(message.sid, r"^MM[0-9a-f]{32}$")

    def test_it_attaches_only_web_media_urls(self) -> None:
        response = self.client.post(
            "/simulator/",
            {"sender": SENDER, "recipient": RECIPIENT, "body": "x", "media_url": "javascript:alert(1)"},
        )

        self.assertContains(response, "Enter a valid URL.", status_code=400)
        self.assertFalse(Message.objects.exists())

    def test_it_shows_only_http_media_urls_as_links(self) -> None:
        conversation = Conversation.objects.create(sender=SENDER, recipient=RECIPIENT)
        Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.INBOUND,
            media_urls=["https://example.com/owl.jpg", "javascript:alert(document.domain)"],
        )

        response = self.open()

        self.assertContains(response, '<a class="sim-media" href="https://example.com/owl.jpg"', html=False)
        self.assertContains(
            response, '<span class="sim-media">javascript:alert(document.domain)</span>', html=True
        )
        self.assertNotContains(response, 'href="javascript:')

    def test_it_shows_the_apps_outbound_texts_as_its_bubbles(self) -> None:
        self.text("hello")
        Message.objects.create(
            conversation=Conversation.objects.get(),
            direction=Message.Direction.OUTBOUND,
            body="Your table is ready",
            status="delivered",
            sent_by=self.staff,
        )

        response = self.open()

        self.assertContains(response, '<li class="sim-bubble sim-received sim-outbound"', html=False)
        self.assertContains(response, "Your table is ready")
        self.assertContains(response, '<span class="sim-meta">Sent by alice · delivered</span>', html=True)


class SimulatorRealCustomerTestCase(SimulatorTestCase):
    def setUp(self) -> None:
        super().setUp()
        Twilio().text("Hi, it's me", sender=SENDER)  # A real customer, through Twilio.

    def test_it_refuses_to_send_as_a_number_that_texted_through_twilio(self) -> None:
        response = self.client.post("/simulator/", {"sender": SENDER, "recipient": RECIPIENT, "body": "STOP"})

        self.assertContains(
            response,
            "+14155551234 has texted this app through Twilio: a real customer&#x27;s",
            status_code=400,
        )
        self.assertEqual(Message.objects.count(), 1)
        self.assertIs(Conversation.objects.get().opted_out, False)

    def test_it_refuses_the_number_however_it_is_typed(self) -> None:
        for sender in ("(415) 555-1234", "whatsapp:+14155551234"):
            with self.subTest(sender=sender):
                data = {"sender": sender, "recipient": "+15005550009", "body": "hi"}
                self.assertEqual(self.client.post("/simulator/", data).status_code, 400)
        self.assertEqual(Message.objects.count(), 1)

    def test_it_sends_as_other_numbers(self) -> None:
        self.assertContains(self.text("hello", sender="+14155550001"), ONE)


class SimulatorWhyNoReplyTestCase(SimulatorTestCase):
    def test_it_says_the_sender_is_blocked(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Kylo", blocked=True)

        response = self.text("hello")

        self.assertContains(response, "The sender is blocked")

    def test_it_says_the_text_opted_the_conversation_out(self) -> None:
        self.text("hello")

        response = self.text("STOP")

        self.assertContains(response, "This text opted the conversation out")

    def test_it_says_the_conversation_is_opted_out(self) -> None:
        self.text("STOP")

        response = self.text("Are you there?")

        self.assertContains(response, "This conversation is opted out")
        self.assertContains(response, "This text opted the conversation out")

    def test_it_says_twilio_answers_help_itself(self) -> None:
        response = self.text("help")

        self.assertContains(response, "HELP and INFO are answered by Twilio itself")

    def test_it_says_staff_have_taken_over_a_paused_conversation(self) -> None:
        self.text("hello")
        Conversation.objects.update(bot_paused_until=timezone.now() + timedelta(minutes=30))

        response = self.text("Anyone there?")

        self.assertContains(response, "Staff have taken over this conversation")
        self.assertNotContains(response, "The app chose not to answer")

    def test_it_says_why_from_the_recorded_outcome_even_after_the_caller_changed(self) -> None:
        caller = Caller.objects.create(phone_number=SENDER, name="Kylo", blocked=True)
        self.text("hello")
        caller.blocked = False
        caller.save()

        response = self.open()

        self.assertContains(response, "The sender is blocked")

    def test_it_marks_where_a_new_conversation_began(self) -> None:
        self.text("one")
        self.text("two")
        Message.objects.update(created_at=timezone.now() - timedelta(hours=5))
        window = Conversation.objects.get().session_id  # Not the staff login's session.
        Session.objects.filter(pk=window).update(expire_date=timezone.now() - timedelta(hours=1))

        response = self.text("three")

        began = [entry.message.body for entry in response.context["thread"] if entry.window_began]
        self.assertEqual(began, ["one", "three"])
        self.assertContains(response, "New conversation", count=2)
