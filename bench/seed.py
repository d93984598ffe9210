"""All of the benchmark's raw SQL: its PostgreSQL database, database copies, the --seed bulk load.

--seed loads 1,000,000 callers, 1,000,000 conversations and 5,000,000 messages. The ORM
would take many minutes; this takes the textbook fast path instead: secondary indexes and
foreign keys dropped during the load and rebuilt after it; on SQLite, executemany of
multi-row INSERTs in one transaction per table (journal and fsync off for the load only);
on PostgreSQL, COPY. Rows are made in a second thread while the database stores the last
chunk. They are realistic where the webhook's queries can tell: distinct numbers spread
over all area codes, MessageSids spread over the whole 128-bit space like Twilio's random
ones, message counts and times that agree with the conversations.

The unique indexes (phone numbers, MessageSids) stay during the load, so the rows come in
their order: values spread evenly but ascending. Inserted in random order they would make
the load twice as slow, for indexes of the same depth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg import sql

from bench.progress import Bar
from bench.traffic import BODIES, SENDER_PREFIX

CALLERS = 1_000_000
CONVERSATIONS = 1_000_000
MESSAGES = 5_000_000
CHUNK = 50_000
ROWS_PER_INSERT = 100  # SQLite: 100 rows x 12 columns at most, under its 32,766 parameters

DAY = 86_400
# The texting numbers: callers are the first CALLERS of them, conversations' senders start
# halfway, so half of the conversations are with known callers, as in a real address book.
SENDERS_OFFSET = CALLERS // 2
# Our own Twilio numbers, the conversations' recipients.
RECIPIENTS = tuple(f"+1628555{7000 + k:04d}" for k in range(20))
FIRST_NAMES = ("Rey", "Finn", "Poe", "Rose", "Leia", "Han", "Lando", "Jyn", "Cassian", "Ahsoka", "Din", "Bo")
SID_SPACING = (1 << 128) // (MESSAGES + 2)
SID_MULTIPLIER = 0x9E3779B97F4A7C15F39CC0605CEDC835

Row = tuple[object, ...]
# Turns an epoch into what the database is handed for a timestamp.
Stamp = Callable[[int], object]


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: Callable[[], Iterator[Row]]
    count: int
    timestamps: frozenset[str]  # the columns given as Stamp values


# --- The PostgreSQL database itself ---------------------------------------------------------


def recreate_postgres_database(server_url: str, name: str) -> None:
    """Drop and create database `name` on the server of `server_url` (as a superuser, or its owner).

    Connected to the server's maintenance database, since the app's may not exist yet.
    """
    with psycopg.connect(server_url, dbname="postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def copy_postgres(url: str, copy: str) -> None:
    """Make database `copy` a copy of the database of `url` (which nothing may be connected to)."""
    source = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(copy), sql.Identifier(str(source))
            )
        )


def copy_sqlite(source: Path, copy: Path) -> None:
    original, duplicate = sqlite3.connect(source), sqlite3.connect(copy)
    try:
        original.backup(duplicate)
    finally:
        original.close()
        duplicate.close()


# --- The rows ------------------------------------------------------------------------------


def phone_numbers(count: int) -> list[str]:
    """Distinct +1 numbers spread over area codes 200-999, ascending, none in the bench senders' block."""
    spacing = 7_999_999_999 // (count + 100)
    numbers = []
    for i in range(count + 100):
        # A jitter below the spacing keeps them distinct and ascending, but not evenly spaced.
        number = f"+1{2_000_000_000 + i * spacing + (i * 2_654_435_761) % spacing}"
        if not number.startswith(SENDER_PREFIX):
            numbers.append(number)
    return numbers[:count]


def message_sid(n: int) -> str:
    """The n-th MessageSid: over the whole 128-bit range like Twilio's, ascending with n."""
    return f"SM{n * SID_SPACING + (n * SID_MULTIPLIER) % SID_SPACING:032x}"


class Stamps:
    """Timestamps as text for COPY, formatted fast (10 million of them)."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.days: dict[int, str] = {}

    def __call__(self, epoch: int) -> str:
        day, second = divmod(epoch, DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d ")
        hour, rest = divmod(second, 3600)
        return f"{prefix}{hour:02d}:{rest // 60:02d}:{rest % 60:02d}{self.suffix}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every seeded conversation looks like, decided once so the three tables agree."""

    numbers: list[str]
    first_id: int  # of the seeded conversations, after those the benchmark already made
    counts: list[int]  # messages per conversation, 5 on average, MESSAGES in all
    starts: list[int]  # epoch of each conversation's first text
    gaps: list[int]  # seconds between its texts

    @classmethod
    def make(cls, first_id: int, now: int) -> Plan:
        rng = random.Random(5)
        counts = [1 + (i * 5) % 9 for i in range(CONVERSATIONS)]  # 1..9, evenly
        counts[-1] += MESSAGES - sum(counts)
        gaps = [rng.randrange(60, DAY) for _ in range(CONVERSATIONS)]
        # Texts end in the past year, the newest no later than a day ago.
        starts = [
            now - DAY - rng.randrange(365 * DAY) - (c - 1) * g for c, g in zip(counts, gaps, strict=True)
        ]
        return cls(phone_numbers(SENDERS_OFFSET + CONVERSATIONS), first_id, counts, starts, gaps)


def caller_rows(plan: Plan, stamp: Stamp) -> Iterator[Row]:
    for i, number in enumerate(plan.numbers[:CALLERS]):
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]} {chr(65 + i % 26)}."
        created = stamp(plan.starts[i % CONVERSATIONS] - DAY)
        yield number, name, name.lower(), i % 100 == 0, created, created  # 1% blocked


def conversation_rows(plan: Plan, stamp: Stamp) -> Iterator[Row]:
    for i in range(CONVERSATIONS):
        count, start, gap = plan.counts[i], plan.starts[i], plan.gaps[i]
        window = 1 + i % count  # the current window holds the last texts
        yield (
            plan.first_id + i,
            plan.numbers[SENDERS_OFFSET + i],
            RECIPIENTS[i % len(RECIPIENTS)],
            window,
            count,
            stamp(start + (count - window) * gap),
            stamp(start),
            stamp(start + (count - 1) * gap),
            i % 200 == 0,  # 0.5% opted out
        )


def message_rows(plan: Plan, stamp: Stamp) -> Iterator[Row]:
    # The counter bot's replies, made once: (recipient, count) -> text.
    most = max(plan.counts)
    replies = {
        (recipient, k): f"Friend has messaged {recipient} {k} time{'s' if k > 1 else ''}."
        for recipient in RECIPIENTS
        for k in range(1, most + 1)
    }
    n = 0
    for i in range(CONVERSATIONS):
        conversation, recipient = plan.first_id + i, RECIPIENTS[i % len(RECIPIENTS)]
        start, gap = plan.starts[i], plan.gaps[i]
        for k in range(plan.counts[i]):
            n += 1
            body, reply = BODIES[n % len(BODIES)], replies[recipient, k + 1]
            yield (
                conversation,
                "inbound",
                message_sid(n),
                body,
                "[]",
                reply,
                "received",
                stamp(start + k * gap),
            )


def tables(plan: Plan, stamp: Stamp) -> list[Table]:
    from conversations.models import Caller, Conversation, Message

    return [
        _with_defaults(
            Caller,
            ("phone_number", "name", "name_search", "blocked", "created_at", "updated_at"),
            lambda: caller_rows(plan, stamp),
            CALLERS,
        ),
        _with_defaults(
            Conversation,
            (
                "id",
                "sender",
                "recipient",
                "window_count",
                "lifetime_count",
                "window_started_at",
                "first_activity",
                "last_activity",
                "opted_out",
            ),
            lambda: conversation_rows(plan, stamp),
            CONVERSATIONS,
        ),
        _with_defaults(
            Message,
            ("conversation_id", "direction", "sid", "body", "media_urls", "reply", "status", "created_at"),
            lambda: message_rows(plan, stamp),
            MESSAGES,
        ),
    ]


def _with_defaults(
    model: type, columns: tuple[str, ...], rows: Callable[[], Iterator[Row]], count: int
) -> Table:
    """The model's table, its other columns (added since this was written) filled with their defaults."""
    from django.db import connection, models

    fields = model._meta.concrete_fields  # type: ignore[attr-defined]
    timestamps = frozenset(f.column for f in fields if isinstance(f, models.DateTimeField)) & set(columns)
    extra: dict[str, object] = {}
    for field in fields:
        if field.primary_key or field.column in columns or (field.null and not field.has_default()):
            continue
        # As the ORM would fill it: the default, or "" for a text field without one.
        value = field.get_db_prep_save(field.get_default(), connection)
        if value is None:
            raise RuntimeError(f"bench/seed.py has no value for {model.__name__}.{field.name}")
        extra[field.column] = value
    table = model._meta.db_table  # type: ignore[attr-defined]
    if not extra:
        return Table(table, columns, rows, count, timestamps)
    values = tuple(extra.values())
    return Table(table, columns + tuple(extra), lambda: (row + values for row in rows()), count, timestamps)


def chunks(rows: Iterable[Row], size: int = CHUNK) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def prefetched(items: Iterator[list[Row]]) -> Iterator[list[Row]]:
    """Make the next chunk in a thread while the caller stores this one.

    The database drivers let go of the GIL while the database works, so making rows in Python
    and storing them in C overlap on two cores.
    """
    ahead: queue.Queue[list[Row] | BaseException | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for item in items:
                ahead.put(item)
            ahead.put(None)
        except BaseException as error:  # Handed to the consumer, which raises it.
            ahead.put(error)

    threading.Thread(target=produce, daemon=True).start()
    while (item := ahead.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


# --- SQLite --------------------------------------------------------------------------------


def seed_sqlite(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # For the load only: no rollback journal, no fsync, a big page cache. A crash would
        # leave a broken file, which for a benchmark database is fine.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-2000000")  # up to 2 GB, as the file grows
        connection.execute("PRAGMA temp_store=MEMORY")  # index builds sort in memory
        connection.execute("PRAGMA threads=2")  # and on both cores
        (last_id,) = connection.execute(
            "SELECT COALESCE(MAX(id), 0) FROM conversations_conversation"
        ).fetchone()
        plan = Plan.make(last_id + 1, int(time.time()))
        # Timestamps go in as epochs and SQLite formats them, faster than Python would.
        for table in tables(plan, int):
            _load_sqlite(connection, table)
        # Back to what the app's connections expect (settings.py sets WAL on each, too).
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _load_sqlite(connection: sqlite3.Connection, table: Table) -> None:
    indexes = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table.name,),
    ).fetchall()
    bar = Bar(table.name.removeprefix("conversations_"), table.count)
    connection.execute("BEGIN")
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    for chunk in prefetched(chunks(table.rows())):
        _insert_sqlite(connection, table, chunk)
        bar.advance(len(chunk))
    bar.note("indexing")
    for _, create in indexes:
        connection.execute(create)
    connection.execute("COMMIT")
    bar.close()


def _insert_sqlite(connection: sqlite3.Connection, table: Table, rows: list[Row]) -> None:
    """Insert ROWS_PER_INSERT rows per statement: a statement's fixed costs (the AUTOINCREMENT
    counter among them) would otherwise cost more than its row."""
    whole = len(rows) - len(rows) % ROWS_PER_INSERT
    groups = (
        itertools.chain.from_iterable(rows[i : i + ROWS_PER_INSERT]) for i in range(0, whole, ROWS_PER_INSERT)
    )
    connection.executemany(_insert_statement(table, ROWS_PER_INSERT), (tuple(group) for group in groups))
    connection.executemany(_insert_statement(table, 1), rows[whole:])


def _insert_statement(table: Table, rows: int) -> str:
    # Text as Django stores it on SQLite: "2026-01-31 12:34:56".
    values = (
        "("
        + ", ".join("datetime(?, 'unixepoch')" if c in table.timestamps else "?" for c in table.columns)
        + ")"
    )
    return f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES {', '.join([values] * rows)}"


# --- PostgreSQL ----------------------------------------------------------------------------


def seed_postgres(url: str) -> None:
    with psycopg.connect(url) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")  # index builds sort in memory
        (last_id,) = connection.execute(
            "SELECT COALESCE(MAX(id), 0) FROM conversations_conversation"
        ).fetchone()
        plan = Plan.make(last_id + 1, int(time.time()))
        for table in tables(plan, Stamps("+00")):
            bar = Bar(table.name.removeprefix("conversations_"), table.count)
            with _bare(connection, table.name):
                _copy(connection, table, bar)
                bar.note("indexing")
            connection.commit()
            bar.close()
        connection.execute(
            "SELECT setval(pg_get_serial_sequence('conversations_conversation', 'id'), MAX(id)) "
            "FROM conversations_conversation"
        )
        connection.commit()
        # What autovacuum would soon do after such a load; the planner needs the new sizes.
        connection.autocommit = True
        connection.execute("ANALYZE")
        # Write the load's dirty buffers now rather than during the next measurement.
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # superuser or pg_checkpoint
            connection.execute("CHECKPOINT")


def _copy(connection: psycopg.Connection, table: Table, bar: Bar) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns))
    )
    with connection.cursor().copy(statement) as copy:
        for chunk in prefetched(chunks(table.rows())):
            for row in chunk:
                copy.write_row(row)
            bar.advance(len(chunk))


@contextmanager
def _bare(connection: psycopg.Connection, table: str) -> Iterator[None]:
    """Drop the table's foreign keys and plain indexes for the load and recreate them after it.

    Checking 5 million foreign keys one row at a time, and growing indexes in random order,
    would cost more than the load; building them once at the end is PostgreSQL's own advice.
    Constraint-backed indexes (primary key, unique) stay.
    """
    foreign_keys = connection.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
        (table,),
    ).fetchall()
    indexes = connection.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.conrelid = %s::regclass)",
        (table, table),
    ).fetchall()
    name = sql.Identifier(table)
    for constraint, _ in foreign_keys:
        connection.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(name, sql.Identifier(constraint))
        )
    for index, _ in indexes:
        connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
    yield
    for _, create in indexes:
        connection.execute(create)
    for constraint, definition in foreign_keys:
        connection.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                name, sql.Identifier(constraint), sql.SQL(definition)
            )
        )
