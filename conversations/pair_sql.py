"""The statements of a text, written out in SQL.

Building them with the ORM cost ten times more than running them: about 3.7 ms to build
and run the locking SELECT below on our 2-core machine, against 0.12 ms to run it. They run
while the pair is locked (on SQLite, while the whole database is), so every millisecond
here is one that the next text waits. Rare paths (a pair's first text, a new window) use
the ORM. The SQL is the same on SQLite and PostgreSQL but for the row locks.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Field

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
    params: list[Any] = [_datetime(now), sid, sender, recipient]
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    width = len(CONVERSATION_FIELDS)
    values = [_from_db(field, value) for field, value in zip(CONVERSATION_FIELDS, row[:width], strict=True)]
    conversation = Conversation.from_db(connection.alias, CONVERSATION_ATTNAMES, values)
    data, live, name, blocked, seen = row[width:]
    conversation.caller_name, conversation.caller_blocked, conversation.message_seen = (
        name,
        bool(blocked),
        bool(seen),
    )
    return LockedPair(conversation, data if live else None)


def _from_db(field: Field, value: Any) -> Any:
    # What the ORM's converters would do: SQLite returns times as text and booleans as 0/1.
    if connection.vendor != "sqlite" or value is None:
        return value
    if field.get_internal_type() == "DateTimeField":
        return connection.ops.convert_datetimefield_value(value, None, connection)  # type: ignore[attr-defined]
    if field.get_internal_type() == "BooleanField":
        return bool(value)
    return value


def update_session_data(session_key: str, session_data: str, expire_date: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Session._meta.db_table} SET session_data = %s, expire_date = %s WHERE session_key = %s",
            [session_data, _datetime(expire_date), session_key],
        )
        return cursor.rowcount


def update_conversation(conversation: Conversation) -> None:
    """Write what a text changes on its conversation."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""UPDATE {Conversation._meta.db_table}
                SET session_id = %s, window_count = %s, lifetime_count = %s,
                    window_started_at = %s, last_activity = %s, opted_out = %s
                WHERE id = %s""",
            [
                conversation.session_id,
                conversation.window_count,
                conversation.lifetime_count,
                _datetime(conversation.window_started_at),
                _datetime(conversation.last_activity),
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
    now: datetime,
    simulated: bool = False,
    num_segments: int | None = None,
) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {Message._meta.db_table}
                (conversation_id, direction, sid, body, media_urls, reply, status, error, simulated,
                 num_segments, created_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, '', %s, %s, %s)""",
            [
                conversation_id,
                Message.Direction.INBOUND.value,
                sid,
                body,
                connection.ops.adapt_json_value(media_urls, None),
                reply,
                "received",
                simulated,
                num_segments,
                _datetime(now),
            ],
        )


def _datetime(value: datetime | None) -> Any:
    # The same form the ORM stores (SQLite keeps naive UTC text), so comparisons agree.
    return connection.ops.adapt_datetimefield_value(value)
