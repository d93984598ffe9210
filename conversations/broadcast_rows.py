"""A broadcast's rows, written set-based: its conversations that are missing, then one
INSERT … SELECT of its texts per batch of recipients, from those conversations.

Its texts differ only in their conversation (and, in quiet hours, their send-at), and a new
conversation only in its numbers, so the database fills in the rest: no model object per
recipient, no id read back, and none of the ORM's per-value work, which is most of the time
of 10,000 rows through bulk_create(). Both statements are plain SQL that SQLite (3.24+) and
PostgreSQL read alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

from conversations.models import Broadcast, Conversation, Message

# The columns written, by field name: the rest keep their database defaults or NULL.
COPIED = ("conversation", "direction", "body", "media_urls", "reply", "status", "outcome", "error")
BATCH_ROWS = 500
GIVEN = ("num_segments", "simulated", "sent_by", "send_at", "priority", "attempts", "created_at", "broadcast")


def broadcast_rows_insert(
    groups: dict[tuple[str, datetime | None], list[str]],
    *,
    body: str,
    segments: int,
    sent_by: User | None,
    priority: int,
    broadcast: Broadcast,
    batch: int,
) -> int:
    """Insert one outbound row per their number, by (our number, send-at) group, for the
    conversations (their number, our number) that exist; return how many rows."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column_of(Message, name)) for name in (*COPIED, *GIVEN))
    conversation = Conversation._meta
    sender, recipient = (quote(column_of(Conversation, name)) for name in ("sender", "recipient"))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    inserted = 0
    with connection.cursor() as cursor:
        for (our, send_at), theirs in groups.items():
            status = Message.Status.SCHEDULED if send_at else Message.Status.PENDING
            for chunk in _chunks(theirs, batch):
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {quote(Message._meta.db_table)} ({columns}) "
                    f"SELECT {quote(column_of(Conversation, 'id'))}, %s, %s, '[]', '', %s, '', '', "
                    f"%s, %s, %s, %s, %s, 0, %s, %s FROM {quote(conversation.db_table)} "
                    f"WHERE {recipient} = %s AND {sender} IN ({marks})",
                    [
                        Message.Direction.OUTBOUND,
                        body,
                        status,
                        segments,
                        False,
                        sent_by.pk if sent_by is not None else None,
                        connection.ops.adapt_datetimefield_value(send_at),
                        priority,
                        now,
                        broadcast.pk,
                        our,
                        *chunk,
                    ],
                )
                inserted += cursor.rowcount
    return inserted


def conversations_insert(pairs: list[tuple[str, str, str]]) -> None:
    """Create the conversations (our number, their number, their E.164 number or "") that do
    not exist yet, a batch of them per statement."""
    quote, meta = connection.ops.quote_name, Conversation._meta
    names = (
        *("sender", "recipient", "sender_number", "window_count", "lifetime_count", "first_activity"),
        *("opted_out", "undeliverable_reason"),
    )
    columns = ", ".join(quote(column_of(Conversation, name)) for name in names)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    # Three variables a row, under SQLite's limit of old versions (999).
    size = min(BATCH_ROWS, ((connection.features.max_query_params or 3000) - 2) // 3)
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), size):
            chunk = pairs[start : start + size]
            cursor.execute(
                f"INSERT INTO {quote(meta.db_table)} ({columns}) "
                f"SELECT column1, column2, column3, 0, 0, %s, %s, '' FROM (VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(chunk))
                # WHERE: SQLite reads ON CONFLICT after a bare SELECT's FROM as a join's ON.
                + ") AS given WHERE true ON CONFLICT DO NOTHING",
                [now, False, *(value for their, our, number in chunk for value in (their, our, number))],
            )


def column_of(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column is not None
    return field.column


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
