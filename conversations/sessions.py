"""Sessions in the database, with copies in the cache (Redis) that may fail at any time.

The database is the truth. With REDIS_URL, SESSION_ENGINE is this module: Django's cached_db
store, except that no cache error ever fails a request. Reads fall back to the database;
writes and deletes of the copy are best effort. After a failure the cache is left alone for
a few seconds, so an outage costs each request nothing, and it is trusted again only once the
copies this process could not replace or delete meanwhile have been dropped: a copy older
than its database row is never served.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends import cached_db, db
from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.core.cache.backends.base import BaseCache
from django.db import transaction
from django.utils.crypto import get_random_string

from conversations import pair_sql

# Django's own logger for sessions, so that its handlers and tests see our failures.
logger = logging.getLogger("django.contrib.sessions")

CACHED_ENGINES = frozenset({"conversations.sessions", "django.contrib.sessions.backends.cached_db"})
# How long a failed cache is left alone before it is tried again.
RETRY_AFTER = 5.0
# Keys to drop from the cache once it is back, at most; beyond it the whole cache is cleared.
STALE_LIMIT = 10_000

T = TypeVar("T")


def uses_cache() -> bool:
    return settings.SESSION_ENGINE in CACHED_ENGINES


class CacheHealth:
    """One cache connection's state: up, or down until a retry, with the copies gone stale."""

    def __init__(self) -> None:
        self.down_until: float | None = None
        self.stale: set[str] = set()
        self.overflowed = False
        self.lock = threading.Lock()

    @classmethod
    def of(cls, cache: BaseCache) -> CacheHealth:
        health = getattr(cache, "_session_health", None)
        if health is None:
            health = cache._session_health = cls()  # type: ignore[attr-defined]
        return health

    def usable(self, cache: BaseCache) -> bool:
        """Whether the cache may be used now; after an outage, drop stale copies first."""
        with self.lock:
            if self.down_until is None:
                return True
            if time.monotonic() < self.down_until:
                return False
            try:
                if self.overflowed:
                    cache.clear()
                elif self.stale:
                    cache.delete_many(list(self.stale))
            except Exception:
                self.down_until = time.monotonic() + RETRY_AFTER
                return False
            dropped = "all" if self.overflowed else len(self.stale)
            self.down_until, self.stale, self.overflowed = None, set(), False
        logger.warning("Session cache %s is back; dropped %s stale session copies.", cache, dropped)
        return True

    def failed(self, cache: BaseCache, stale_key: str | None, action: str) -> None:
        with self.lock:
            if stale_key is not None:
                if len(self.stale) < STALE_LIMIT:
                    self.stale.add(stale_key)
                else:
                    self.overflowed = True
            first = self.down_until is None
            self.down_until = time.monotonic() + RETRY_AFTER
        if first:  # Once per outage, with the traceback; the rest of it is silent.
            logger.error("Error %s cache (%s)", action, cache, exc_info=True)

    def skipped(self, stale_key: str) -> None:
        """Remember a copy that could not be written or deleted while the cache was down."""
        with self.lock:
            if len(self.stale) < STALE_LIMIT:
                self.stale.add(stale_key)
            else:
                self.overflowed = True


class SessionStore(cached_db.SessionStore):
    """Django's cached_db store for which the cache is a copy that may be missing or down."""

    # What Django's stores keep privately, which the stubs leave out.
    _cache: BaseCache
    _session: dict[str, Any]
    _session_cache: dict[str, Any]
    _get_session_from_db: Callable[[], Session | None]
    _get_session: Callable[..., dict[str, Any]]

    @property
    def _health(self) -> CacheHealth:
        return CacheHealth.of(self._cache)

    def _try_cache(self, action: str, key: str | None, call: Callable[[], T], default: T) -> T:
        """Run a cache call; on any error mark the cache down and return the default.

        `key` names the copy the call would have replaced or deleted: if it fails, that copy
        may be stale and is dropped before the cache is trusted again.
        """
        if not self._health.usable(self._cache):
            if key is not None:
                self._health.skipped(key)
            return default
        try:
            return call()
        except Exception:
            self._health.failed(self._cache, key, action)
            return default

    def load(self) -> dict[str, Any]:
        key = self.cache_key
        data = self._try_cache("reading from", None, lambda: self._cache.get(key), None)
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        age = self.get_expiry_age(expiry=row.expire_date)
        self._try_cache("saving to", key, lambda: self._cache.set(key, data, age), None)
        return data

    def exists(self, session_key: str | None) -> bool:
        if not session_key:
            return False
        key = self.cache_key_prefix + session_key
        if self._try_cache("reading from", None, lambda: key in self._cache, False):
            return True
        return db.SessionStore.exists(self, session_key)

    def save(self, must_create: bool = False) -> None:
        db.SessionStore.save(self, must_create)
        self._copy_to_cache()

    def _copy_to_cache(self) -> None:
        key, data, age = self.cache_key, dict(self._session), self.get_expiry_age()
        self._try_cache("saving to", key, lambda: self._cache.set(key, data, age), None)

    def delete(self, session_key: str | None = None) -> None:
        db.SessionStore.delete(self, session_key)
        session_key = session_key or self.session_key
        if session_key is None:
            return
        key = self.cache_key_prefix + session_key
        self._try_cache("deleting from", key, lambda: self._cache.delete(key), None)

    # The same guarded paths for async views: the stock async ones call the cache unguarded.
    async def aload(self) -> dict[str, Any]:
        return await sync_to_async(self.load)()

    async def aexists(self, session_key: str | None) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)


class PairSessionStore(SessionStore):
    """A session read and written only while its pair is locked.

    It is loaded from the row fetched with the conversation (no query of its own) and saved
    with one UPDATE: under the lock the row can neither vanish nor change, so the savepoint
    and existence checks of the generic save() would only cost statements. The webhook reads
    it from the database, never from the cache; with Redis the cache gets a copy once the
    text is committed, and not before, so no copy is newer than the database.
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
        """A new window's store: its key and row come with its first save(), data included
        (one INSERT, where create() then save() took an INSERT and an UPDATE)."""
        return cls()

    def get_session_cookie_age(self) -> int:
        return settings.CONVERSATION_TIMEOUT

    def _get_new_session_key(self) -> str:
        # Without Django's look first (one SELECT per new window): 32 characters of 36 never
        # meet in practice, and the INSERT of save(must_create=True) refuses a key that is
        # taken all the same (CreateError: create() draws another).
        return get_random_string(32, VALID_KEY_CHARS)

    def load(self) -> dict[str, Any]:
        # Only a cached engine keeps the cache's copies current (on commit, in save()); any
        # other would leave a copy made here to be read back, stale, by the next load().
        return super().load() if uses_cache() else db.SessionStore.load(self)

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            self.create()  # Django's: a new key, then save(must_create=True) below.
            return
        if must_create:
            data = self.encode(self._get_session(no_load=True))
            if not pair_sql.insert_session(self.session_key, data, self.get_expiry_date()):
                raise CreateError
        else:
            # Loaded first when it never was, as Django's stores do: saving keeps the data.
            data = self.encode(self._get_session())
            if self.session_key is None:  # Loading found it gone: nothing to update.
                raise UpdateError
            if not pair_sql.update_session_data(self.session_key, data, self.get_expiry_date()):
                raise UpdateError
            # Written; the session middleware must not write it again after the lock.
            self.modified = False
        if uses_cache():
            transaction.on_commit(self._copy_to_cache)

    def delete(self, session_key: str | None = None) -> None:
        db.SessionStore.delete(self, session_key)
        session_key = session_key or self.session_key
        if session_key and uses_cache():
            key = self.cache_key_prefix + session_key
            drop = partial(self._try_cache, "deleting from", key, partial(self._cache.delete, key), None)
            transaction.on_commit(drop)

    def drop_cached_copy(self) -> None:
        """Once committed, drop the cache's copy: the next read takes the database's."""
        if self.session_key and uses_cache():
            key = self.cache_key
            drop = partial(self._try_cache, "deleting from", key, partial(self._cache.delete, key), None)
            transaction.on_commit(drop)
