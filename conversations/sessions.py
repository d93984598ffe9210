"""The session of one conversation window, kept in Django's database-backed sessions."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.models import Session
from django.db import transaction

from conversations import pair_sql

CACHED_DB = "django.contrib.sessions.backends.cached_db"


class PairSessionStore(cached_db.SessionStore):
    """A session read and written only while its pair is locked.

    It is loaded from the row fetched with the conversation (no query of its own) and saved
    with one UPDATE: under the lock the row can neither vanish nor change, so the savepoint
    and existence checks of the generic save() would only cost statements. The database is
    the truth; with the cached_db engine (Redis) the cache gets a copy once it is committed.
    """

    @property
    def key_salt(self) -> str:
        # Sign like Django's own stores, so the admin and get_decoded() can read it.
        return "django.contrib.sessions.SessionStore"

    @classmethod
    def from_data(cls, session_key: str, session_data: str) -> PairSessionStore:
        store = cls(session_key)
        store._session_cache = store.decode(session_data)
        return store

    @classmethod
    def start(cls) -> PairSessionStore:
        store = cls()
        store.create()
        return store

    def get_session_cookie_age(self) -> int:
        return settings.CONVERSATION_TIMEOUT

    def save(self, must_create: bool = False) -> None:
        if must_create or self.session_key is None:
            db.SessionStore.save(self, must_create=must_create)
        else:
            data = self.encode(self._get_session(no_load=True))
            if not pair_sql.save_session(self.session_key, data, self.get_expiry_date()):
                raise UpdateError
            # Written; the session middleware must not write it again after the lock.
            self.modified = False
        if settings.SESSION_ENGINE == CACHED_DB:
            copy = partial(self._cache.set, self.cache_key, dict(self._session), self.get_expiry_age())
            transaction.on_commit(copy)

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        Session.objects.filter(session_key=key).delete()
        if settings.SESSION_ENGINE == CACHED_DB:
            self._cache.delete(self.cache_key_prefix + key)
