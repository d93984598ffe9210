"""Django's own tests of a cached_db session store, run against ours.

`make test` fetches them from the source release of the pinned Django (tests/sessions_tests
and the failing cache of tests/cache) into the virtualenv; the cases that apply to a cached_db
store run here unchanged, with our store as the backend.
"""

import sys
import unittest
from pathlib import Path
from unittest import mock

import django
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError
from django.contrib.sessions.models import Session
from django.db import transaction
from django.test import TransactionTestCase, override_settings

from conversations.sessions import PairSessionStore, SessionStore

DJANGO_TESTS = Path(sys.prefix) / f"django-tests-{django.__version__}"

if not (DJANGO_TESTS / "sessions_tests").is_dir():
    raise unittest.SkipTest(f"Django's tests are not in {DJANGO_TESTS}; `make test` fetches them.")

sys.path.insert(0, str(DJANGO_TESTS))
# Their module defines a custom Session model too, which needs its app installed to import.
with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, "sessions_tests"]):
    import sessions_tests.tests as django_sessions


class ProjectSessionStoreContractTests(django_sessions.CacheDBSessionTests):
    backend = SessionStore


# A pair's store copies to the cache once the text commits: outside a test transaction, so
# that the copy is made when Django's cases look for it. Its session lasts CONVERSATION_TIMEOUT.
@override_settings(SESSION_ENGINE="conversations.sessions", SESSION_COOKIE_AGE=settings.CONVERSATION_TIMEOUT)
class PairSessionStoreContractTests(django_sessions.SessionTestsMixin, TransactionTestCase):
    backend = PairSessionStore

    locals().update(
        (name, case)
        for name, case in vars(django_sessions.CacheDBSessionTests).items()
        if name.startswith("test_")
    )


@override_settings(SESSION_ENGINE="conversations.sessions")
class SessionMiddlewareContractTests(django_sessions.SessionMiddlewareTests):
    pass


class PairSessionStoreSaveContractTests(TransactionTestCase):
    """What Django's stores do when saved without having been loaded, ours does too."""

    ENGINES = ("django.contrib.sessions.backends.db", "conversations.sessions")

    def test_saving_a_store_never_loaded_keeps_its_data(self) -> None:
        for engine in self.ENGINES:
            with self.subTest(engine=engine), override_settings(SESSION_ENGINE=engine):
                store = PairSessionStore.start()
                store["count"] = 3
                store.save()

                PairSessionStore(store.session_key).save()
                SessionStore(store.session_key).save()  # Django's cached_db store, as a yardstick.

                self.assertEqual(PairSessionStore(store.session_key).load(), {"count": 3})

    def test_loading_leaves_no_copy_that_a_later_load_reads_stale(self) -> None:
        # Only a cached engine keeps the cache's copies current; with any other, a copy
        # left by a load would hide the next text's count.
        for engine in self.ENGINES:
            with self.subTest(engine=engine), override_settings(SESSION_ENGINE=engine):
                store = PairSessionStore.start()
                store["count"] = 1
                store.save()
                PairSessionStore(store.session_key).load()

                store["count"] = 2
                store.save()

                self.assertEqual(PairSessionStore(store.session_key).load(), {"count": 2})

    def test_a_new_windows_key_already_taken_is_drawn_again_in_the_same_transaction(self) -> None:
        taken = PairSessionStore.start()
        taken["count"] = 1
        taken.save()
        keys = iter([taken.session_key, "f" * 32])

        # In one transaction, as the webhook and the worker save it: on PostgreSQL a failed
        # INSERT would leave the transaction unusable.
        with (
            transaction.atomic(),
            mock.patch.object(PairSessionStore, "_get_new_session_key", lambda _: next(keys)),
        ):
            store = PairSessionStore.start()
            store["count"] = 7
            store.save()
            self.assertEqual(Session.objects.count(), 2)

        self.assertEqual(store.session_key, "f" * 32)
        self.assertEqual(PairSessionStore(taken.session_key).load(), {"count": 1})
        self.assertEqual(PairSessionStore("f" * 32).load(), {"count": 7})

    def test_saving_a_new_store_on_a_taken_key_says_so(self) -> None:
        taken = PairSessionStore.start()
        taken.save()

        with self.assertRaises(CreateError):
            PairSessionStore(taken.session_key).save(must_create=True)
