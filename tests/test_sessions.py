from importlib import import_module

from django.conf import settings
from django.core.cache import cache
from django.test import override_settings

from conversations.models import Conversation
from conversations.sessions import CACHED_DB, PairSessionStore
from tests.twilio import TwilioTestCase


class PairSessionStoreTestCase(TwilioTestCase):
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

        PairSessionStore().delete(store.session_key)

        self.assertIsNone(cache.get(store.cache_key))
        self.assertIs(PairSessionStore().exists(store.session_key), False)

    def test_it_expires_after_the_conversation_timeout(self) -> None:
        with override_settings(CONVERSATION_TIMEOUT=900):
            self.assertEqual(PairSessionStore().get_expiry_age(), 900)
