"""The statements of a text, written out in SQL.

Building them with the ORM cost ten times more than running them: about 3.7 ms to build
and run the locking SELECT below on our 2-core machine, against 0.12 ms to run it. They run
while the pair is locked (on SQLite, while the whole database is), so every millisecond
here is one that the next text waits. Rare paths (a pair's first text, a new window) use
the ORM. The SQL is the same on SQLite and PostgreSQL but for the row locks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from conversations.models import Caller, Conversation, Message


@dataclasses.dataclass
class LockedPair:
    """A pair's conversation row, locked, with what its text needs to know."""

    conversation: Conversation
    session_data: str | None  # None: the window has ended.


# Every column of the conversation, in field order, so its row becomes a whole model instance.
CONVERSATION_FIELDS = Conversation._meta.concrete_fields
CONVERSATION_ATTNAMES = [field.attname for field in CONVERSATION_FIELDS]


@cache
def _lock_sql(vendor: str) -> str:
    conversation, session = Conversation._meta.db_table, Session._meta.db_table
    caller, message = Caller._meta.db_table, Message._meta.db_table
    columns = ", ".join(f"c.{field.column}" for field in CONVERSATION_FIELDS)
    sql = f"""
        SELECT {columns}, s.session_data, s.expire_date > %s,
               (SELECT name FROM {caller} WHERE phone_number = c.sender_number),
               (SELECT blocked FROM {caller} WHERE phone_number = c.sender_number),
               EXISTS (SELECT 1 FROM {message} WHERE sid = %s)
        FROM {conversation} c JOIN {session} s ON s.session_key = c.session_id
        WHERE c.sender = %s AND c.recipient = %s"""
    if vendor == "postgresql":
        # A statement that waited for a row lock sees the newest version of the rows it
        # locked, and of those only: the session must be locked to be read fresh.
        sql += " FOR UPDATE OF c, s"
    return sql


def lock_pair_and_session(
    sender: str, recipient: str, *, sid: str | None, now: datetime
) -> LockedPair | None:
    """Lock the pair's conversation and session; None when either row is missing."""
    db = connections[DEFAULT_DB_ALIAS]  # Looked up once: each lookup costs a thread-local read.
    params: list[Any] = [_datetime(db, now), sid, sender, recipient]
    with db.cursor() as cursor:
        cursor.execute(_lock_sql(db.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(CONVERSATION_FIELDS)
    converters = _converters(db.vendor)
    values = [convert(value, db) for convert, value in zip(converters, row[:width], strict=True)]
    conversation = Conversation.from_db(db.alias, CONVERSATION_ATTNAMES, values)
    data, live, name, blocked, seen = row[width:]
    conversation.caller_name, conversation.caller_blocked, conversation.message_seen = (
        name,
        bool(blocked),
        bool(seen),
    )
    return LockedPair(conversation, data if live else None)


Converter = Callable[[Any, BaseDatabaseWrapper], Any]


@cache
def _converters(vendor: str) -> list[Converter]:
    """What the ORM's converters would do to each column: on SQLite, times come back as text
    and booleans as 0/1; PostgreSQL's driver already returns Python values."""

    def same(value: Any, db: BaseDatabaseWrapper) -> Any:
        return value

    def datetime_of(value: Any, db: BaseDatabaseWrapper) -> Any:
        return None if value is None else db.ops.convert_datetimefield_value(value, None, db)  # type: ignore[attr-defined]

    def bool_of(value: Any, db: BaseDatabaseWrapper) -> Any:
        return None if value is None else bool(value)

    if vendor != "sqlite":
        return [same for _ in CONVERSATION_FIELDS]
    by_type = {"DateTimeField": datetime_of, "BooleanField": bool_of}
    return [by_type.get(field.get_internal_type(), same) for field in CONVERSATION_FIELDS]


def update_session_data(session_key: str, session_data: str, expire_date: datetime) -> int:
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Session._meta.db_table} SET session_data = %s, expire_date = %s WHERE session_key = %s",
            [session_data, _datetime(db, expire_date), session_key],
        )
        return cursor.rowcount


def update_conversation(conversation: Conversation) -> None:
    """Write what a text changes on its conversation."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {Conversation._meta.db_table}
                SET session_id = %s, window_count = %s, lifetime_count = %s,
                    window_started_at = %s, last_activity = %s, opted_out = %s
                WHERE id = %s""",
            [
                conversation.session_id,
                conversation.window_count,
                conversation.lifetime_count,
                _datetime(db, conversation.window_started_at),
                _datetime(db, conversation.last_activity),
                conversation.opted_out,
                conversation.pk,
            ],
        )


def insert_inbound_message(
    conversation_id: int,
    *,
    sid: str | None,
    body: str,
    media_urls: list[str],
    reply: str,
    outcome: str,
    now: datetime,
    simulated: bool = False,
    num_segments: int | None = None,
) -> None:
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Message._meta.db_table}
                (conversation_id, direction, sid, body, media_urls, reply, status, outcome, error,
                 simulated, num_segments, created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', %s, %s, %s)""",
            [
                conversation_id,
                Message.Direction.INBOUND.value,
                sid,
                body,
                db.ops.adapt_json_value(media_urls, None),
                reply,
                Message.Status.RECEIVED.value,
                str(outcome),
                simulated,
                num_segments,
                _datetime(db, now),
            ],
        )


def _datetime(db: BaseDatabaseWrapper, value: datetime | None) -> Any:
    # The same form the ORM stores (SQLite keeps naive UTC text), so comparisons agree.
    return db.ops.adapt_datetimefield_value(value)
