import json
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase, TransactionTestCase, override_settings

from conversations.models import Caller, Conversation, Message
from tests.server import free_port, gunicorn
from tests.twilio import RECIPIENT, SENDER, TOKEN, Twilio

ONE = "Friend has messaged +15005550006 1 time."


def sms(*args: str, **options: object) -> str:
    out = StringIO()
    call_command("sms", *args, stdout=out, **options)
    return out.getvalue().strip()


def use_temporary_jar(test: TransactionTestCase) -> Path:
    """Keep the command's cookie jar in a temporary directory for the test's duration."""
    jar = Path(test.enterContext(tempfile.TemporaryDirectory())) / "sms-cookies.json"
    test.enterContext(override_settings(SMS_COOKIE_JAR=jar))
    return jar


def kept_cookie(jar: Path) -> dict[str, Any]:
    return json.loads(jar.read_text())[SENDER][RECIPIENT]["sessionid"]


class SmsCommandTestCase(TestCase):
    def setUp(self) -> None:
        self.jar = use_temporary_jar(self)

    def test_it_counts_three_runs(self) -> None:
        replies = [sms("hello") for _ in range(3)]

        self.assertEqual(replies, [ONE, ONE.replace("1 time", "2 times"), ONE.replace("1 time", "3 times")])

    def test_it_keeps_the_pair_cookie_between_runs(self) -> None:
        sms("hello")

        with self.assertLogs("conversations", "INFO") as logs:
            sms("again", verbosity=2)

        self.assertIn("cookie=used", logs.output[0])
        self.assertEqual(kept_cookie(self.jar)["value"], Conversation.objects.get().session_id)

    def test_it_keeps_a_jar_per_pair(self) -> None:
        sms("hello", sender="+14155550001")

        self.assertEqual(sms("hello", sender="+14155550002"), ONE)
        self.assertEqual(
            sms("hello", sender="+14155550001", recipient="+15005550009"), ONE.replace("06", "09")
        )

    def test_it_keeps_the_cookie_for_its_max_age(self) -> None:
        sms("hello")

        self.assertAlmostEqual(kept_cookie(self.jar)["expires"], time.time() + 14400, delta=60)

    @override_settings(CONVERSATION_TIMEOUT=60)
    def test_it_honours_a_shorter_max_age(self) -> None:
        sms("hello")

        self.assertAlmostEqual(kept_cookie(self.jar)["expires"], time.time() + 60, delta=30)

    def test_it_does_not_send_an_expired_cookie(self) -> None:
        expired = {"value": "left-over", "expires": time.time() - 1}
        self.jar.write_text(json.dumps({SENDER: {RECIPIENT: {"sessionid": expired}}}))

        with self.assertLogs("conversations", "INFO") as logs:
            sms("hello", verbosity=2)

        self.assertIn("cookie=missing", logs.output[0])

    def test_it_prints_the_twiml_with_raw(self) -> None:
        self.assertEqual(
            sms("hello", raw=True),
            f'<?xml version="1.0" encoding="UTF-8"?><Response><Message>{ONE}</Message></Response>',
        )

    def test_it_sends_media_urls(self) -> None:
        sms("look", media=["https://example.com/owl.jpg", "https://example.com/cat.png"])

        message = Message.objects.get()
        self.assertEqual(message.media_urls, ["https://example.com/owl.jpg", "https://example.com/cat.png"])
        self.assertRegex(message.sid, r"^MM[0-9a-f]{32}$")  # Twilio's SIDs of texts with media.

    def test_it_says_when_there_is_no_reply(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Kylo", blocked=True)

        self.assertEqual(sms("hello"), "(no reply)")

    def test_it_reaches_the_same_conversation_however_the_number_is_typed(self) -> None:
        sms("hello", sender="+14155550142")
        second = sms("again", sender="(415) 555-0142", recipient="500-555-0006")

        self.assertEqual(second, ONE.replace("1 time", "2 times"))
        self.assertEqual(Conversation.objects.get().sender, "+14155550142")
        self.assertEqual(set(json.loads(self.jar.read_text())), {"+14155550142"})

    def test_it_sends_the_segments_twilio_would_count(self) -> None:
        sms("It’s a long one " * 5)  # 80 characters, with a curly quote: two UCS-2 segments.  # noqa: RUF001 (the curly quote is the point)

        self.assertEqual(Message.objects.get().num_segments, 2)

    def test_it_marks_its_texts_as_simulated(self) -> None:
        sms("hello")

        self.assertIs(Message.objects.get().simulated, True)

    @override_settings(
        TWILIO_ACCOUNT_SID="AC" + "1" * 32, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True
    )
    def test_it_sends_a_well_formed_sid_and_the_configured_account(self) -> None:
        self.assertEqual(sms("hello"), ONE)

        self.assertRegex(Message.objects.get().sid, r"^SM[0-9a-f]{32}$")

    def test_it_refuses_to_send_as_a_number_that_texted_through_twilio(self) -> None:
        Twilio().text("I am real", sender="+14155550142")

        with self.assertRaisesMessage(
            CommandError, "400 Bad Request: +14155550142 has texted this app through"
        ):
            sms("STOP", sender="(415) 555-0142")

        self.assertEqual(Message.objects.count(), 1)
        self.assertIs(Conversation.objects.get().opted_out, False)

    @override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_signs_the_text_when_a_token_is_set(self) -> None:
        self.assertEqual(sms("hello"), ONE)

    @override_settings(TWILIO_AUTH_TOKEN="", TWILIO_REQUIRE_SIGNATURE=True)
    def test_it_fails_with_the_reason_of_a_403(self) -> None:
        with self.assertRaisesMessage(CommandError, "403 Forbidden: Missing or invalid X-Twilio-Signature."):
            sms("hello")

        self.assertFalse(Message.objects.exists())

    def test_it_fails_with_the_reason_of_a_400(self) -> None:
        with self.assertRaisesMessage(
            CommandError, "400 Bad Request: From and To must be at most 64 characters."
        ):
            sms("hello", sender="+1" + "5" * 70)

    def test_it_fails_in_one_line_when_no_server_answers(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/sms/"

        with self.assertRaises(CommandError) as raised:
            sms("hello", url=url)

        self.assertEqual(str(raised.exception), f"Could not reach {url}: Connection refused")


@pytest.mark.slow
@override_settings(TWILIO_AUTH_TOKEN=TOKEN)
class SmsCommandOverHttpTestCase(TransactionTestCase):
    def setUp(self) -> None:
        self.jar = use_temporary_jar(self)

    def test_it_texts_a_running_server_signed_and_with_its_cookie(self) -> None:
        with gunicorn(workers=1) as base_url:
            first = sms("hello", url=f"{base_url}/sms/")
            second = sms("again", url=f"{base_url}/sms/")

        self.assertEqual([first, second], [ONE, ONE.replace("1 time", "2 times")])
        self.assertEqual(kept_cookie(self.jar)["value"], Conversation.objects.get().session_id)
