import logging
from importlib import import_module
from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import TransactionTestCase, override_settings

from conversations.models import Conversation
from conversations.sessions import PairSessionStore, SessionStore
from tests.redis_server import redis_cache, redis_server
from tests.twilio import SENDER, TOKEN, Twilio, TwilioTestCase, reply_of

CACHED_DB = "conversations.sessions"


class PairSessionStoreTestCase(TwilioTestCase):
    def test_a_new_window_drawing_a_key_already_taken_draws_another(self) -> None:
        taken = PairSessionStore.start()
        taken["window"] = "theirs"
        taken.save()
        keys = iter([taken.session_key, "b" * 32])

        with mock.patch("conversations.sessions.get_random_string", side_effect=lambda *args: next(keys)):
            store = PairSessionStore.start()
            store["window"] = "ours"
            store.save()  # One INSERT, no look first: refused for the taken key, then made.

        self.assertEqual(store.session_key, "b" * 32)
        self.assertEqual(PairSessionStore(taken.session_key).load(), {"window": "theirs"})
        self.assertEqual(PairSessionStore("b" * 32).load(), {"window": "ours"})

    def test_it_is_readable_by_the_configured_session_engine(self) -> None:
        self.twilio.text()
        self.twilio.text()
        key = Conversation.objects.get().session_id

        engine = import_module(settings.SESSION_ENGINE)

        self.assertEqual(engine.SessionStore(key).load(), {"count": 2})

    @override_settings(SESSION_ENGINE=CACHED_DB)
    def test_it_copies_the_session_to_the_cache_once_committed(self) -> None:
        store = PairSessionStore.start()
        store["count"] = 7

        with self.captureOnCommitCallbacks() as callbacks:
            store.save()
            self.assertIsNone(cache.get(store.cache_key))
        for callback in callbacks:
            callback()

        self.assertEqual(cache.get(store.cache_key), {"count": 7})
        cache.delete(store.cache_key)

    @override_settings(SESSION_ENGINE=CACHED_DB)
    def test_it_drops_the_cached_copy_of_an_ended_window(self) -> None:
        store = PairSessionStore.start()
        cache.set(store.cache_key, {"count": 1})

        with self.captureOnCommitCallbacks(execute=True):
            PairSessionStore().delete(store.session_key)

        self.assertIsNone(cache.get(store.cache_key))
        self.assertIs(PairSessionStore().exists(store.session_key), False)

    def test_it_expires_after_the_conversation_timeout(self) -> None:
        with override_settings(CONVERSATION_TIMEOUT=900):
            self.assertEqual(PairSessionStore().get_expiry_age(), 900)


@pytest.mark.slow
@override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True, SESSION_ENGINE=CACHED_DB)
class SessionCacheOutageTestCase(TransactionTestCase):
    """A real redis-server of the test's own, stopped or hung while texts keep coming."""

    def setUp(self) -> None:
        self.redis = self.enterContext(redis_server())
        self.enterContext(override_settings(CACHES=redis_cache(self.redis.url)))
        self.twilio = Twilio()

    def counts(self, *bodies: str, sender: str = SENDER) -> list[str | None]:
        replies = []
        for body in bodies:
            response = self.twilio.text(body, sender=sender)
            self.assertEqual(response.status_code, 200)
            replies.append(reply_of(response))
        return replies

    def test_it_answers_and_counts_every_text_while_redis_is_down(self) -> None:
        self.counts("one", "two")
        self.redis.stop()

        with self.assertLogs("django.contrib.sessions", "ERROR"):
            replies = self.counts("three", "four")
            first = self.counts("hi", sender="+14155550000")

        self.assertEqual(
            replies,
            ["Friend has messaged +15005550006 3 times.", "Friend has messaged +15005550006 4 times."],
        )
        self.assertEqual(first, ["Friend has messaged +15005550006 1 time."])

    def test_it_answers_every_text_while_redis_hangs(self) -> None:
        self.counts("one")
        self.redis.hang()

        with self.assertLogs("django.contrib.sessions", "ERROR"):
            replies = self.counts("two", "three")

        self.assertEqual(replies[-1], "Friend has messaged +15005550006 3 times.")
        self.assertEqual(Conversation.objects.get(sender=SENDER).window_count, 3)

    def test_it_logs_one_error_for_an_outage_not_one_per_text(self) -> None:
        self.counts("one")
        self.redis.stop()

        with self.assertLogs("django.contrib.sessions", "DEBUG") as logs:
            self.counts("two", "three", "four", "five")

        errors = [record for record in logs.records if record.levelno >= logging.ERROR]
        self.assertEqual(len(errors), 1)
        self.assertIsNotNone(errors[0].exc_info)

    def test_it_never_serves_a_copy_older_than_the_database_once_redis_is_back(self) -> None:
        store = SessionStore()
        store["count"] = 1
        store.save()
        self.redis.hang()
        store["count"] = 2
        # Retried at once rather than after a few seconds.
        with (
            mock.patch("conversations.sessions.RETRY_AFTER", 0.0),
            self.assertLogs("django.contrib.sessions"),
        ):
            store.save()  # The database has 2; the cache still holds 1.
        self.redis.resume()

        with self.assertLogs("django.contrib.sessions", "WARNING"):
            loaded = SessionStore(store.session_key).load()

        self.assertEqual(loaded, {"count": 2})
        self.assertEqual(SessionStore(store.session_key).load(), {"count": 2})
