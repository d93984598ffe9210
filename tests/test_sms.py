import tempfile
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from tests.twilio import RECIPIENT, SENDER, TOKEN, TwilioTestCase, reply_of, sid_of, sign


class SmsReplyTestCase(TwilioTestCase):
    def test_it_answers_the_first_text_in_twiml(self) -> None:
        response = self.twilio.text("Hello")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(response["Content-Type"], "text/xml; charset=utf-8")
        self.assertEqual(
            response.content.decode(),
            '<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
            "Friend has messaged +15005550006 1 time.</Message></Response>",
        )

    def test_it_counts_the_texts_of_a_pair(self) -> None:
        replies = [reply_of(self.twilio.text()) for _ in range(3)]

        self.assertEqual(
            replies,
            [
                "Friend has messaged +15005550006 1 time.",
                "Friend has messaged +15005550006 2 times.",
                "Friend has messaged +15005550006 3 times.",
            ],
        )

    def test_it_counts_each_pair_on_its_own(self) -> None:
        self.twilio.text(sender="+14155550001")
        self.twilio.text(sender="+14155550001")
        other = self.twilio.text(sender="+14155550002")
        to_other_number = self.twilio.text(sender="+14155550001", recipient="+15005550009")

        self.assertEqual(reply_of(other), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(reply_of(to_other_number), "Friend has messaged +15005550009 1 time.")

    def test_it_names_a_known_caller(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")

        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 1 time.")

    def test_it_uses_a_renamed_caller_on_the_very_next_reply(self) -> None:
        caller = Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text()
        caller.name = "Finn"
        caller.save()

        self.assertEqual(reply_of(self.twilio.text()), "Finn has messaged +15005550006 2 times.")

    @override_settings(UNKNOWN_CALLER_NAME="Stranger")
    def test_it_calls_unknown_senders_by_the_configured_name(self) -> None:
        self.assertEqual(reply_of(self.twilio.text()), "Stranger has messaged +15005550006 1 time.")

    def test_it_looks_up_whatsapp_senders_by_their_number(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")

        response = self.twilio.text(sender=f"whatsapp:{SENDER}", recipient=f"whatsapp:{RECIPIENT}")

        self.assertEqual(reply_of(response), "Rey has messaged whatsapp:+15005550006 1 time.")

    def test_it_answers_senders_that_are_not_phone_numbers(self) -> None:
        for sender in ("ACME", "12345", "whatsapp:+1", "+", "+999999999999999"):
            with self.subTest(sender=sender):
                response = self.twilio.text(sender=sender)
                self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")

    def test_it_escapes_markup_in_bodies_and_names(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="<b>Rey & \"Finn\" 'o'</b>")

        response = self.twilio.text("<script>&amp;</script>")

        self.assertEqual(reply_of(response), "<b>Rey & \"Finn\" 'o'</b> has messaged +15005550006 1 time.")
        self.assertEqual(Message.objects.get().body, "<script>&amp;</script>")

    def test_it_takes_the_words_of_the_reply_from_its_template_without_html_escaping(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey & <Finn>")
        directory = Path(self.enterContext(tempfile.TemporaryDirectory()))
        (directory / "conversations").mkdir()
        # No {% autoescape off %}: the reply is plain text whatever the template says.
        (directory / "conversations" / "reply.txt").write_text("{{ count }} from {{ name }} to {{ to }}\n")
        templates = [{**settings.TEMPLATES[0], "DIRS": [directory]}]

        with override_settings(TEMPLATES=templates):
            response = self.twilio.text()

        self.assertEqual(reply_of(response), "1 from Rey & <Finn> to +15005550006")

    def test_it_records_long_emoji_and_rtl_bodies_exactly(self) -> None:
        for body in ("x" * 1600, "👋🏽 héllo 🇺🇸", "مرحبا بالعالم", "שלום"):
            with self.subTest(body=body[:10]):
                response = self.twilio.text(body)
                self.assertEqual(response.status_code, 200)
                ET.fromstring(response.content)
                self.assertEqual(Message.objects.latest("pk").body, body)

    def test_it_records_each_text_with_its_reply(self) -> None:
        self.twilio.text("First", sid=sid_of(1), NumMedia="1", MediaUrl0="https://api.twilio.com/m/1")

        message = Message.objects.get()
        self.assertEqual(message.direction, Message.Direction.INBOUND)
        self.assertEqual(message.sid, sid_of(1))
        self.assertEqual(message.body, "First")
        self.assertEqual(message.media_urls, ["https://api.twilio.com/m/1"])
        self.assertEqual(message.reply, "Friend has messaged +15005550006 1 time.")
        self.assertEqual(message.conversation.sender, SENDER)

    def test_it_accepts_parameters_it_does_not_know(self) -> None:
        response = self.twilio.text(SmsStatus="received", ApiVersion="2010-04-01", NewThing="1")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")

    def test_it_serves_the_path_without_a_slash(self) -> None:
        response = self.twilio.text(path="/sms")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")

    def test_it_answers_get_requests_signed_on_the_url_alone(self) -> None:
        query = f"From=%2B14155551234&To=%2B15005550006&Body=Hi&MessageSid={sid_of(9)}"
        url = f"http://testserver/sms/?{query}"

        response = self.client.get(url, headers={"X-Twilio-Signature": sign(url)})

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(Message.objects.get().sid, sid_of(9))


class SmsStateTestCase(TwilioTestCase):
    def test_it_sets_the_session_cookie_for_four_hours(self) -> None:
        cookie = self.twilio.text().cookies["sessionid"]

        self.assertEqual(cookie["max-age"], 14400)
        self.assertIs(cookie["httponly"], True)
        self.assertEqual(cookie["secure"], "")  # The test client speaks plain HTTP.
        conversation = Conversation.objects.get()
        self.assertEqual(cookie.value, conversation.session_id)

    def test_it_keeps_the_pair_state_in_a_database_session(self) -> None:
        self.twilio.text()
        self.twilio.text()

        session = Session.objects.get(pk=Conversation.objects.get().session_id)
        self.assertEqual(session.get_decoded(), {"count": 2})
        self.assertAlmostEqual(
            session.expire_date, timezone.now() + timedelta(seconds=14400), delta=timedelta(seconds=60)
        )

    def test_it_slides_the_window_with_each_text(self) -> None:
        self.twilio.text()
        Session.objects.update(expire_date=timezone.now() + timedelta(minutes=1))

        self.twilio.text()

        session = Session.objects.get()
        self.assertGreater(session.expire_date, timezone.now() + timedelta(hours=3, minutes=59))

    def test_it_continues_the_conversation_without_a_cookie(self) -> None:
        self.twilio.text()

        response = self.twilio.text(cookie="")

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 2 times.")
        self.assertEqual(Session.objects.count(), 1)

    def test_it_ignores_a_garbage_cookie(self) -> None:
        self.twilio.text()

        for cookie in ("garbage", "x" * 300, "';--<>", "0" * 32):
            with self.subTest(cookie=cookie), self.assertLogs("conversations", "INFO") as logs:
                self.twilio.text(cookie=cookie)
                self.assertIn("cookie=ignored", logs.output[0])

        self.assertEqual(reply_of(self.twilio.text()), "Friend has messaged +15005550006 6 times.")

    def test_it_ignores_the_cookie_of_another_pair(self) -> None:
        self.twilio.text(sender="+14155550001")
        self.twilio.text(sender="+14155550001")
        other_pair_cookie = self.twilio.jars[("+14155550001", RECIPIENT)]

        response = self.twilio.text(sender="+14155550002", cookie=other_pair_cookie)

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertNotEqual(response.cookies["sessionid"].value, other_pair_cookie)
        first = Conversation.objects.get(sender="+14155550001")
        self.assertEqual(Session.objects.get(pk=first.session_id).get_decoded(), {"count": 2})

    def test_it_ignores_the_cookie_of_a_staff_login(self) -> None:
        staff = SessionStore()
        staff["_auth_user_id"] = "1"
        staff.save()

        response = self.twilio.text(cookie=staff.session_key)

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertEqual(SessionStore(staff.session_key).load(), {"_auth_user_id": "1"})

    def test_it_starts_a_new_window_after_four_hours_of_silence(self) -> None:
        self.twilio.text()
        self.twilio.text()
        old_key = Conversation.objects.get().session_id
        Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

        response = self.twilio.text()

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        conversation = Conversation.objects.get()
        self.assertNotEqual(conversation.session_id, old_key)
        self.assertFalse(Session.objects.filter(pk=old_key).exists())
        self.assertEqual((conversation.window_count, conversation.lifetime_count), (1, 3))

    def test_it_ignores_the_cookie_of_an_expired_window(self) -> None:
        self.twilio.text()
        old_cookie = self.twilio.jars[(SENDER, RECIPIENT)]
        Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
        self.twilio.text()

        response = self.twilio.text(cookie=old_cookie)

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 2 times.")

    def test_it_starts_a_new_window_when_the_session_was_cleared(self) -> None:
        self.twilio.text()
        Session.objects.all().delete()

        response = self.twilio.text()

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")

    @override_settings(CONVERSATION_TIMEOUT=600)
    def test_it_uses_the_configured_window(self) -> None:
        cookie = self.twilio.text().cookies["sessionid"]

        self.assertEqual(cookie["max-age"], 600)
        self.assertLess(Session.objects.get().expire_date, timezone.now() + timedelta(seconds=601))

    def test_it_counts_the_window_and_the_lifetime_on_the_conversation(self) -> None:
        for _ in range(3):
            self.twilio.text()

        conversation = Conversation.objects.get()
        self.assertEqual((conversation.window_count, conversation.lifetime_count), (3, 3))
        self.assertIsNotNone(conversation.last_activity)
        self.assertEqual(Message.objects.filter(conversation=conversation).count(), 3)


class SmsRetryTestCase(TwilioTestCase):
    def test_it_answers_a_repeated_message_sid_with_the_first_reply(self) -> None:
        first = self.twilio.text(sid=sid_of(1))
        self.twilio.text(sid=sid_of(2))

        again = self.twilio.text(sid=sid_of(1))

        self.assertEqual(again.content, first.content)
        self.assertEqual(Message.objects.count(), 2)
        self.assertEqual(Conversation.objects.get().window_count, 2)
        self.assertEqual(
            reply_of(self.twilio.text(sid=sid_of(3))), "Friend has messaged +15005550006 3 times."
        )

    def test_it_refuses_a_message_sid_of_another_pair(self) -> None:
        self.twilio.text(sid=sid_of(1), sender="+14155550001")

        response = self.twilio.text(sid=sid_of(1), sender="+14155550002")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(Message.objects.count(), 1)
        self.assertFalse(Conversation.objects.filter(sender="+14155550002").exists())


class SmsBlockedCallerTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        Caller.objects.create(phone_number=SENDER, name="Kylo", blocked=True)

    def test_it_records_but_does_not_answer_a_blocked_caller(self) -> None:
        response = self.twilio.text("Let the past die")

        self.assertEqual(response.status_code, 200)
        self.assertIsNone(reply_of(response))
        message = Message.objects.get()
        self.assertEqual((message.body, message.reply), ("Let the past die", ""))
        self.assertEqual(Conversation.objects.get().window_count, 0)

    def test_it_counts_again_once_unblocked(self) -> None:
        self.twilio.text()
        Caller.objects.update(blocked=False)

        self.assertEqual(reply_of(self.twilio.text()), "Kylo has messaged +15005550006 1 time.")


class SmsQueryBudgetTestCase(TwilioTestCase):
    def test_it_runs_six_statements_per_steady_state_text(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text(sid=sid_of(1))

        # Savepoint and release stand in for BEGIN and COMMIT inside the test's transaction.
        with self.assertNumQueries(6):
            response = self.twilio.text(sid=sid_of(2))

        self.assertEqual(reply_of(response), "Rey has messaged +15005550006 2 times.")

    def test_it_runs_as_many_statements_while_staff_have_the_conversation(self) -> None:
        self.twilio.text(sid=sid_of(1))
        Conversation.objects.update(bot_paused_until=timezone.now() + timedelta(minutes=30))

        with self.assertNumQueries(6):
            response = self.twilio.text(sid=sid_of(2))

        self.assertIsNone(reply_of(response))
        self.assertEqual(Conversation.objects.get().window_count, 2)

    @override_settings(TWILIO_REQUIRE_SIGNATURE=False)  # Else a text without MessageSid gets 400.
    def test_it_runs_as_many_statements_without_a_cookie_or_sid(self) -> None:
        self.twilio.text(sid="")

        with self.assertNumQueries(6):
            self.twilio.text(sid="", cookie="")

    def test_it_stores_twilios_num_segments_in_the_same_statements(self) -> None:
        self.twilio.text(sid=sid_of(1))

        with self.assertNumQueries(6):
            self.twilio.text("a" * 200, sid=sid_of(2), NumSegments="2")

        self.assertEqual(Message.objects.get(sid=sid_of(2)).num_segments, 2)
        self.assertIsNone(Message.objects.get(sid=sid_of(1)).num_segments)

    def test_it_leaves_out_a_num_segments_twilio_would_never_send(self) -> None:
        for number, value in enumerate(("0", "-1", "many", "99999"), start=10):
            with self.subTest(value=value):
                self.twilio.text(sid=sid_of(number), NumSegments=value)
                self.assertIsNone(Message.objects.get(sid=sid_of(number)).num_segments)

    def test_it_answers_a_retry_in_four_statements(self) -> None:
        self.twilio.text(sid=sid_of(1))

        with self.assertNumQueries(4):
            self.twilio.text(sid=sid_of(1))

    def test_its_statement_count_does_not_grow_with_the_tables(self) -> None:
        for i in range(30):
            Caller.objects.create(phone_number=f"+1415555{i:04d}", name=f"Caller {i}")
            self.twilio.text(sender=f"+1415555{i:04d}", sid=sid_of(100 + i))
        self.twilio.text(sid=sid_of(1))

        with self.assertNumQueries(6):
            self.twilio.text(sid=sid_of(2))


@override_settings(TWILIO_AUTH_TOKEN=TOKEN)
class SmsLogTestCase(TwilioTestCase):
    def test_it_logs_one_line_per_text_with_numbers_masked(self) -> None:
        with self.assertLogs("conversations", "INFO") as logs:
            self.twilio.text(sid=sid_of(1))

        self.assertEqual(len(logs.output), 1)
        line = logs.output[0]
        self.assertIn(f"sid={sid_of(1)} outcome=counted from=+1415555**** to=+1500555****", line)
        self.assertIn("duration_ms=", line)
        self.assertNotIn(SENDER, line)
