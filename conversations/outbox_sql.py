"""The worker's claim of a text, written out in SQL, as pair_sql.py writes the webhook's.

Through the ORM, the claim's statements (the next ready text, the two queries of
sending_refusals(), the UPDATE that claims it) cost 1.9 ms of the worker's CPU per text on
our 2-core machine, nearly all of it building them, and on SQLite all of it inside the writer
lock that every text waits for. Here they cost 0.06 ms: the next text and whether anything
may refuse it are one statement, built once; the claim is another.

tests/test_outbox_sql.py holds the statement to the ORM's rules: MessageQuerySet.ready() in
the worker's order, and never a text that sending_refusals() refuses left unflagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model

from conversations.indexes import literal
from conversations.models import Broadcast, Caller, Conversation, Message
from conversations.outbox_rows import OUTBOX_WAITING


@dataclass(frozen=True)
class Claimable:
    """The next text the worker may send (its fields the worker reads, and its pair's), and
    whether any row says it may be refused: then sending_refusals() says why, or that it may go."""

    message: Message
    maybe_refused: bool


_MESSAGE_FIELDS = ["id", "conversation_id", "body", "num_segments", "broadcast_id", "attempts"]
_CONVERSATION_FIELDS = ["id", "sender", "recipient"]


def _quoted(values: tuple[str, ...]) -> str:
    # Written into the statement: SQLite uses the outbox's partial index only for a WHERE with
    # its very terms (indexes.Constant).
    return ", ".join(literal(value) for value in values)


def _columns(alias: str, model: type[Model], names: list[str]) -> list[str]:
    return [f"{alias}.{cast(Field, model._meta.get_field(name)).column}" for name in names]


@cache
def _claim_sql(vendor: str) -> str:
    message, conversation = Message._meta.db_table, Conversation._meta.db_table
    broadcast, caller = Broadcast._meta.db_table, Caller._meta.db_table
    columns = ", ".join(
        [*_columns("m", Message, _MESSAGE_FIELDS), *_columns("c", Conversation, _CONVERSATION_FIELDS[1:])]
    )
    # A superset of sending_refusals(): a conversation's sender_number is number_of() its
    # sender ('' when it has none, and then the full check runs).
    maybe_refused = f"""(
        c.sender_number = ''
        OR EXISTS (SELECT 1 FROM {caller} WHERE phone_number = c.sender_number AND blocked)
        OR EXISTS (
            SELECT 1 FROM {conversation} o
            WHERE o.sender_number = c.sender_number
              AND (o.opted_out OR o.undeliverable_reason <> '')))"""
    sql = f"""
        SELECT {columns}, {maybe_refused} AS maybe_refused
        FROM {message} m
            JOIN {conversation} c ON c.id = m.conversation_id
            LEFT JOIN {broadcast} b ON b.id = m.broadcast_id
        WHERE m.status IN ({_quoted(OUTBOX_WAITING)})
          AND m.status IN ({_quoted(tuple(Message.READY))})
          AND (m.send_at IS NULL OR m.send_at <= %(now)s)
          AND (m.broadcast_id IS NULL OR b.status IN ({_quoted(tuple(Broadcast.RUNNING))}))
        ORDER BY m.priority DESC, m.id
        LIMIT 1"""
    if vendor == "postgresql":
        # Each worker takes a text no other holds; on SQLite the writer lock serializes claims.
        sql += " FOR UPDATE OF m SKIP LOCKED"
    return sql


_CLAIM = f"""
    UPDATE {Message._meta.db_table}
    SET status = {literal(Message.Status.SENDING)}, attempts = attempts + 1, claimed_at = %(now)s
    WHERE id = %(id)s"""


def next_claimable_statement(db: BaseDatabaseWrapper, now: datetime) -> tuple[str, dict[str, Any]]:
    """next_claimable()'s statement on this connection, and its parameters."""
    return _claim_sql(db.vendor), {"now": db.ops.adapt_datetimefield_value(now)}


def next_claimable(now: datetime) -> Claimable | None:
    """The next text the worker may send now, in its order (priority, then age), row-locked on
    PostgreSQL until the transaction ends; None if none is ready."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(*next_claimable_statement(db, now))
        row = cursor.fetchone()
    if row is None:
        return None
    fields = len(_MESSAGE_FIELDS)
    message = Message.from_db(DEFAULT_DB_ALIAS, _MESSAGE_FIELDS, row[:fields])
    conversation_values = [message.conversation_id, *row[fields : fields + 2]]
    message.conversation = Conversation.from_db(DEFAULT_DB_ALIAS, _CONVERSATION_FIELDS, conversation_values)
    return Claimable(message, bool(row[-1]))  # SQLite has no booleans.


def claim(message: Message, now: datetime) -> None:
    """Mark the text `sending` by this worker: one more attempt, claimed now."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_CLAIM, {"id": message.pk, "now": db.ops.adapt_datetimefield_value(now)})
    message.attempts += 1


_ACCEPTED = f"""
    UPDATE {Message._meta.db_table}
    SET sid = %(sid)s, status = %(status)s, error = '', conversation_id = %(conversation_id)s
    WHERE id = %(id)s AND status IN ({_quoted((Message.Status.SENDING, Message.Status.UNKNOWN))})"""


def record_accepted(message: Message, *, sid: str, status: str, conversation_id: int) -> bool:
    """Twilio took the text: its SID and status, on the pair that sent it; False if a status
    callback got there first and moved the row past `sending` (or `unknown`)."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(
            _ACCEPTED, {"id": message.pk, "sid": sid, "status": status, "conversation_id": conversation_id}
        )
        return cursor.rowcount == 1
