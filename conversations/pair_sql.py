"""The statements of a text, written out in SQL.

Building them with the ORM cost ten times more than running them: about 3.7 ms to build
and run the locking SELECT below on our 2-core machine, against 0.12 ms to run it. Their
parameters are named (%(name)s, a dict): Django's SQLite cursor turns positional %s into ?
with a regular expression that cost 13-30 µs a statement, named ones with one `%`. They run
while the pair is locked (on SQLite, while the whole database is), so every millisecond
here is one that the next text waits. Rare paths (a pair's first text, a new window) use
the ORM. The SQL is the same on SQLite and PostgreSQL but for the row locks.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, cast
from weakref import WeakKeyDictionary

from django.contrib.sessions.models import Session
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field

from conversations.models import Caller, Conversation, Message


@cache
def _lock_sql(vendor: str) -> str:
    conversation, caller, message = Conversation._meta, Caller._meta, Message._meta
    columns = ", ".join(f"c.{field.column}" for field in conversation.concrete_fields)
    # The SQL of Conversation.window_live(), with_caller() and with_message_seen(), which
    # tests/test_raw_sql_matches_orm.py holds it to.
    sql = f"""
        SELECT {columns},
               CASE WHEN s.expire_date > %(now)s THEN s.session_data END AS window_data,
               (SELECT name FROM {caller.db_table} WHERE phone_number = c.sender_number) AS caller_name,
               (SELECT blocked FROM {caller.db_table} WHERE phone_number = c.sender_number) AS caller_blocked,
               EXISTS (SELECT 1 FROM {message.db_table} WHERE sid = %(sid)s) AS message_seen
        FROM {conversation.db_table} c JOIN {Session._meta.db_table} s ON s.session_key = c.session_id
        WHERE c.sender = %(sender)s AND c.recipient = %(recipient)s"""
    if vendor == "postgresql":
        # A statement that waited for a row lock sees the newest version of the rows it
        # locked, and of those only: the session must be locked to be read fresh.
        sql += " FOR UPDATE OF c, s"
    return sql


def locked_for_text(
    db: BaseDatabaseWrapper, sender: str, recipient: str, *, sid: str | None, now: datetime
) -> tuple[str, dict[str, Any]]:
    """The statement of ConversationQuerySet.locked_for_text() on this connection, and its parameters."""
    return _lock_sql(db.vendor), {
        "now": _datetime(db, now),
        "sid": sid,
        "sender": sender,
        "recipient": recipient,
    }


def fetch_locked(
    using: str, sender: str, recipient: str, *, sid: str | None, now: datetime
) -> Conversation | None:
    """Run locked_for_text()'s statement; its row as a Conversation with its annotations.

    Built as raw() builds it (the columns' converters, then Model.from_db()), without
    raw()'s own work per query, which cost more than the statement: resolving the columns
    against the model and the converters of each, again on every text.
    """
    db = connections[using]  # Once: each lookup is a thread-local's, about a µs.
    sql, params = locked_for_text(db, sender, recipient, sid=sid, now=now)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    conversation = _conversation_of(db, row)
    window_data, caller_name, caller_blocked, message_seen = row[_FIELD_COUNT:]
    conversation.window_data = window_data
    conversation.caller_name = caller_name
    # SQLite has no booleans.
    conversation.caller_blocked = bool(caller_blocked)
    conversation.message_seen = bool(message_seen)
    return conversation


@cache
def _lock_by_key_sql(vendor: str) -> str:
    columns = ", ".join(field.column for field in Conversation._meta.concrete_fields)
    sql = f"SELECT {columns} FROM {Conversation._meta.db_table} WHERE {Conversation._meta.pk.column} = %(pk)s"
    return sql + " FOR UPDATE" if vendor == "postgresql" else sql


def fetch_locked_by_key(pk: int) -> Conversation | None:
    """The conversation with this key, row-locked (on SQLite the writer lock is held); None if
    it is gone. The outbox's path: Twilio took a text for a pair that has its row already."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_lock_by_key_sql(db.vendor), {"pk": pk})
        row = cursor.fetchone()
    return None if row is None else _conversation_of(db, row)


def _conversation_of(db: BaseDatabaseWrapper, row: tuple[Any, ...]) -> Conversation:
    """A Conversation from the first _FIELD_COUNT columns of a row, as the ORM converts them."""
    values = list(row[:_FIELD_COUNT])
    for index, converters, expression in _converters(db):
        for converter in converters:
            values[index] = converter(values[index], expression, db)
    return Conversation.from_db(db.alias, _FIELD_NAMES, values)


_FIELD_NAMES = [field.attname for field in Conversation._meta.concrete_fields]
_FIELD_COUNT = len(_FIELD_NAMES)
# Per connection (one a thread): the converters of the columns that have any, as the ORM
# applies them (the backend's first, then the field's).
_CONVERTERS: WeakKeyDictionary[BaseDatabaseWrapper, list[tuple[int, list[Any], Any]]] = WeakKeyDictionary()


def _converters(db: BaseDatabaseWrapper) -> list[tuple[int, list[Any], Any]]:
    found = _CONVERTERS.get(db)
    if found is None:
        found = []
        for index, field in enumerate(Conversation._meta.concrete_fields):
            expression = field.get_col(Conversation._meta.db_table)
            converters = db.ops.get_db_converters(expression) + expression.get_db_converters(db)
            if converters:
                found.append((index, converters, expression))
        _CONVERTERS[db] = found
    return found


def insert_session(session_key: str, session_data: str, expire_date: datetime) -> bool:
    """Insert a new window's session; False when its key is taken (the caller draws another).
    No savepoint: ON CONFLICT leaves the transaction usable on PostgreSQL."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Session._meta.db_table} (session_key, session_data, expire_date) "
            "VALUES (%(key)s, %(data)s, %(expires)s) ON CONFLICT (session_key) DO NOTHING",
            {"key": session_key, "data": session_data, "expires": _datetime(db, expire_date)},
        )
        return cursor.rowcount == 1


def update_session_data(session_key: str, session_data: str, expire_date: datetime) -> int:
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Session._meta.db_table} SET session_data = %(data)s, expire_date = %(expires)s "
            "WHERE session_key = %(key)s",
            {"data": session_data, "expires": _datetime(db, expire_date), "key": session_key},
        )
        return cursor.rowcount


# The fields of Conversation.TEXT_CHANGES, and the UPDATE that writes them.
TEXT_CHANGES = [cast(Field, Conversation._meta.get_field(name)) for name in Conversation.TEXT_CHANGES]
UPDATE_CONVERSATION = "UPDATE {table} SET {columns} WHERE {pk} = %(pk)s".format(
    table=Conversation._meta.db_table,
    columns=", ".join(f"{field.column} = %({field.attname})s" for field in TEXT_CHANGES),
    pk=Conversation._meta.pk.column,
)


def update_conversation(conversation: Conversation) -> None:
    """Write what a text changes on its conversation (its TEXT_CHANGES), as the ORM would."""
    db = connections[DEFAULT_DB_ALIAS]
    values = {
        field.attname: field.get_db_prep_save(getattr(conversation, field.attname), db)
        for field in TEXT_CHANGES
    }
    with db.cursor() as cursor:
        cursor.execute(UPDATE_CONVERSATION, {**values, "pk": conversation.pk})


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
                VALUES (%(conversation_id)s, %(direction)s, %(sid)s, %(body)s, %(media_urls)s, %(reply)s,
                        %(status)s, %(outcome)s, '', %(simulated)s, %(num_segments)s, %(created_at)s)""",
            {
                "conversation_id": conversation_id,
                "direction": Message.Direction.INBOUND.value,
                "sid": sid,
                "body": body,
                "media_urls": db.ops.adapt_json_value(media_urls, None),
                "reply": reply,
                "status": Message.Status.RECEIVED.value,
                "outcome": str(outcome),
                "simulated": simulated,
                "num_segments": num_segments,
                "created_at": _datetime(db, now),
            },
        )


def _datetime(db: BaseDatabaseWrapper, value: datetime | None) -> Any:
    # The same form the ORM stores (SQLite keeps naive UTC text), so comparisons agree.
    return db.ops.adapt_datetimefield_value(value)
