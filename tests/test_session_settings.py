"""No setting of Django's session framework changes how a pair's texts are counted.

A pair's session is read and written under the pair's lock, whatever SESSION_ENGINE says,
and the session middleware is left nothing to do for a text. Each case sends texts as
Twilio does, through the whole stack, committing as production does (TransactionTestCase),
so that copies to the cache and the middleware's work on the way out happen for real.
"""

from __future__ import annotations

import json
import re
import tempfile
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.signing import JSONSerializer
from django.http import HttpResponse
from django.test import TransactionTestCase, override_settings

from conversations.models import Conversation
from tests.twilio import RECIPIENT, SENDER, TOKEN, Twilio, TwilioTestCase, reply_of, sid_of

ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
    "conversations.sessions",
    "django.contrib.sessions.backends.cache",
    "django.contrib.sessions.backends.file",
    "django.contrib.sessions.backends.signed_cookies",
)
COUNT = re.compile(r"has messaged \S+ (\d+) times?\.")


class CompactJSONSerializer(JSONSerializer):
    """Another SESSION_SERIALIZER: JSON without spaces, keys sorted."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("latin-1")


def count_of(response: HttpResponse) -> int:
    match = COUNT.search(reply_of(response) or "")
    assert match is not None, response.content
    return int(match.group(1))


@override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
class SessionSettingsTestCase(TransactionTestCase):
    def setUp(self) -> None:
        super().setUp()
        files = self.enterContext(tempfile.TemporaryDirectory())  # For the file engine.
        self.enterContext(override_settings(SESSION_FILE_PATH=files))
        self.pairs = 0

    def assert_counts_one_two_three(self) -> None:
        """Three texts of a pair, one more without its cookie, and three of a second pair."""
        self.pairs += 1  # Pairs of their own for each run, so that subtests share nothing.
        recipient, other = f"+1500555{self.pairs:04d}", f"+1415555{self.pairs:04d}"
        twilio = Twilio()
        with self.assertLogs("conversations.webhook", "INFO") as logs:
            responses = [twilio.text(recipient=recipient) for _ in range(3)]
            responses.append(twilio.text(recipient=recipient, cookie=""))
            responses += [twilio.text(sender=other, recipient=recipient) for _ in range(3)]

        self.assertEqual([count_of(response) for response in responses], [1, 2, 3, 4, 1, 2, 3])
        # Each text but the cookie-less and first ones came with the cookie the previous set.
        self.assertEqual(
            re.findall(r"cookie=(\w+)", "\n".join(logs.output)),
            ["missing", "used", "used", "missing", "missing", "used", "used"],
        )
        windows = Conversation.objects.filter(recipient=recipient).order_by("pk")
        self.assertEqual([(c.window_count, c.lifetime_count) for c in windows], [(4, 4), (3, 3)])
        for response in responses:  # The pair's own cookie, never one the middleware made.
            cookie = response.cookies[settings.SESSION_COOKIE_NAME]
            self.assertEqual(cookie["max-age"], settings.CONVERSATION_TIMEOUT)
        self.assertEqual(cookie.value, windows[1].session_id)

    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_it_counts_one_two_three_with_session_save_every_request(self) -> None:
        self.assert_counts_one_two_three()

    def test_it_counts_one_two_three_with_each_session_engine(self) -> None:
        for engine in ENGINES:
            for save_every_request in (False, True):
                with (
                    self.subTest(engine=engine, save_every_request=save_every_request),
                    override_settings(SESSION_ENGINE=engine, SESSION_SAVE_EVERY_REQUEST=save_every_request),
                ):
                    self.assert_counts_one_two_three()

    @override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True, SESSION_SAVE_EVERY_REQUEST=True)
    def test_it_counts_one_two_three_when_sessions_expire_at_browser_close(self) -> None:
        self.assert_counts_one_two_three()

    @override_settings(SESSION_COOKIE_AGE=1, SESSION_SAVE_EVERY_REQUEST=True)
    def test_it_counts_one_two_three_with_a_tiny_session_cookie_age(self) -> None:
        self.assert_counts_one_two_three()

    @override_settings(
        SESSION_COOKIE_NAME="pair", SESSION_COOKIE_PATH="/sms/", SESSION_COOKIE_DOMAIN=".example.com"
    )
    def test_it_counts_one_two_three_with_a_renamed_session_cookie(self) -> None:
        for save_every_request in (False, True):
            with (
                self.subTest(save_every_request=save_every_request),
                override_settings(SESSION_SAVE_EVERY_REQUEST=save_every_request),
            ):
                self.assert_counts_one_two_three()

    @override_settings(
        SESSION_SERIALIZER="tests.test_session_settings.CompactJSONSerializer",
        SESSION_SAVE_EVERY_REQUEST=True,
    )
    def test_it_counts_one_two_three_with_another_session_serializer(self) -> None:
        self.assert_counts_one_two_three()


class RejectedTextSessionTestCase(TwilioTestCase):
    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_a_rejected_text_with_the_pairs_cookie_leaves_its_session_alone(self) -> None:
        self.twilio.text()
        self.twilio.text()
        window = Session.objects.get(pk=Conversation.objects.get().session_id)
        cookie = f"{settings.SESSION_COOKIE_NAME}={window.session_key}"

        # Unsigned (403), then signed but no text (400): neither may load and save the
        # pair's session outside its lock, which could write back a count a text moved on.
        unsigned = self.client.post("/sms/", {"From": SENDER, "To": RECIPIENT}, headers={"Cookie": cookie})
        no_text = self.twilio.text(sender="")

        self.assertEqual((unsigned.status_code, no_text.status_code), (403, 400))
        self.assertNotIn(settings.SESSION_COOKIE_NAME, unsigned.cookies)
        after = Session.objects.get(pk=window.pk)
        self.assertEqual((after.session_data, after.expire_date), (window.session_data, window.expire_date))
        self.assertEqual(count_of(self.twilio.text()), 3)


class SessionSettingsQueryBudgetTestCase(TwilioTestCase):
    @override_settings(SESSION_SAVE_EVERY_REQUEST=True)
    def test_it_runs_six_statements_per_steady_text_with_session_save_every_request(self) -> None:
        for number, engine in enumerate(ENGINES):
            with self.subTest(engine=engine), override_settings(SESSION_ENGINE=engine):
                sender = f"+1415555{number:04d}"
                self.twilio.text(sender=sender, sid=sid_of(2 * number + 1))

                with self.assertNumQueries(6):
                    response = self.twilio.text(sender=sender, sid=sid_of(2 * number + 2))

                self.assertEqual(count_of(response), 2)
