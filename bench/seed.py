"""`python -m bench --seed`: the admin dashboard on a big database (issue 21).

A fresh bench database (bench/database.py) is migrated and filled by set-based SQL, a few
statements in all: --seed-conversations conversations and --seed-messages texts spread evenly
over the last SEED_DAYS days (INSERT ... SELECT from generate_series on PostgreSQL, from a
recursive CTE on SQLite), in a mixture like a real service's: half in, half out; STOPs,
STARTs and HELPs; delivered, failed and undelivered texts with Twilio's error codes; a few
paused conversations, two broadcasts going out and a small outbox backlog. Then the dashboard
is fetched through Django's test client as a logged-in superuser: once, which counts the days
before yesterday and keeps them (conversations/daily_counts.py), as the first view after a
deploy does; then --seed-requests times, whose best and median are printed, with the page's
SQL statement count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass

SEED_DAYS = 60
DASHBOARD = "/admin/dashboard/"
RECIPIENT = "+15005550006"
# One text in PERIOD: a fixed, well-spread pseudo-random number (Knuth's multiplicative hash)
# picks each text's kind, so both databases get the same mixture without a random().
HASH = 2654435761
PERIOD = 1000
# The kinds of texts, by their share of PERIOD (h = the text's hash % PERIOD).
INBOUND_CASES = """
    CASE WHEN h < 5 THEN 'STOP' WHEN h < 8 THEN 'START' WHEN h < 10 THEN 'HELP'
         ELSE 'Are you open today?' END"""
INBOUND_OUTCOMES = """
    CASE WHEN h < 5 THEN 'opted_out' WHEN h < 8 THEN 'counted' WHEN h < 10 THEN 'help'
         WHEN h < 12 THEN 'ignored_opted_out' ELSE 'counted' END"""
# Outbound (h >= 500): 80 % delivered, then sent, undelivered, failed, canceled and the rest.
OUTBOUND_STATUSES = """
    CASE WHEN h < 900 THEN 'delivered' WHEN h < 925 THEN 'sent' WHEN h < 950 THEN 'undelivered'
         WHEN h < 970 THEN 'failed' WHEN h < 980 THEN 'canceled' WHEN h < 985 THEN 'read'
         WHEN h < 990 THEN 'queued' WHEN h < 995 THEN 'unknown' ELSE 'accepted' END"""
UNDELIVERED = (
    "Twilio error 30003: Unreachable destination handset",
    "Twilio error 30005: Unknown destination handset",
    "Twilio error 30006: Landline or unreachable carrier",
    "Twilio error 30007: Message filtered",
    "Twilio error 30008: Unknown error",
)
FAILED = (
    "Twilio refused the text: Attempt to send to unsubscribed recipient (Twilio error 21610)",
    "Twilio refused the text: Invalid 'To' Phone Number (Twilio error 21211)",
    "Twilio refused the text: 'To' number is not a valid mobile number (Twilio error 21614)",
    "Twilio is busy (429) (gave up after 5 attempts)",
)
# Of every SHARE texts, one is pending in the last hour (the outbox's backlog), and one in each
# of two broadcasts going out; at most MOST of each.
SHARE, MOST = 1000, 5000


def extra_texts(messages: int) -> int:
    """The pending texts, and the texts of each broadcast, of `messages` texts in all."""
    return min(messages // SHARE, MOST)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--seed", action="store_true", help="time the admin dashboard on a big seeded database instead")
    add("--seed-conversations", type=int, default=1_000_000, help="conversations (default 1,000,000)")
    add("--seed-messages", type=int, default=5_000_000, help="texts (default 5,000,000)")
    add("--seed-requests", type=int, default=5, help="dashboard requests timed after the first (default 5)")
    add(
        "--seed-reuse",
        action="store_true",
        help="time the dashboard again on the database a previous --seed left, without seeding",
    )


@dataclass(frozen=True)
class Timing:
    first: float  # The first request: it counts the days not counted yet (DailyCount).
    seconds: list[float]  # Each request after it.
    statements: list[str]  # The SQL of the last request.

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _case(values: tuple[str, ...], selector: str) -> str:
    quoted = (value.replace("'", "''") for value in values)
    whens = " ".join(f"WHEN {n} THEN '{value}'" for n, value in enumerate(quoted))
    return f"CASE {selector} %% {len(values)} {whens} END"


def statements(vendor: str, conversations: int, messages: int) -> list[tuple[str, list[int]]]:
    """The seeding SQL with its parameters: conversations, then texts, then the backlog. A
    literal % is written %% (the drivers' parameter syntax); the numbers are the program's own."""
    if vendor == "postgresql":
        series = "SELECT i FROM generate_series(1::bigint, %s) AS i"
        ago = "now() - make_interval(secs => {})"
        later = "now() + interval '1 hour'"
    else:
        series = (
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s) SELECT i FROM s"
        )
        ago = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '-' || ({}) || ' seconds')"
        later = "strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', '+1 hour')"
    span = SEED_DAYS * 86400
    main = messages - 3 * extra_texts(messages)
    first = "(SELECT MIN(id) FROM conversations_conversation)"
    message_columns = (
        "conversation_id, direction, sid, body, media_urls, reply, status, outcome, error, "
        "num_segments, simulated, priority, attempts, created_at, broadcast_id"
    )
    return [
        (
            # Every 50th opted out, every 2,000th taken over by staff (the bot paused).
            "INSERT INTO conversations_conversation (sender, recipient, sender_number, window_count, "
            "lifetime_count, first_activity, last_activity, opted_out, bot_paused_until, "
            "undeliverable_reason) "
            f"SELECT '+1415' || (1000000 + i), '{RECIPIENT}', '+1415' || (1000000 + i), 1, 5, "
            f"{ago.format(span)}, {ago.format(f'i %% {span}')}, i %% 50 = 0, "
            f"CASE WHEN i %% 2000 = 1 THEN {later} END, '' FROM ({series}) AS n",
            [conversations],
        ),
        (
            f"INSERT INTO conversations_message ({message_columns}) "
            f"SELECT {first} + (i * 7919) %% {conversations}, "
            f"CASE WHEN h < 500 THEN 'inbound' ELSE 'outbound' END, NULL, "
            f"CASE WHEN h < 500 THEN {INBOUND_CASES} ELSE 'Your table is ready.' END, '[]', "
            "CASE WHEN h >= 12 AND h < 500 THEN 'Yes, 9 to 5.' ELSE '' END, "
            f"CASE WHEN h < 500 THEN 'received' ELSE {OUTBOUND_STATUSES} END, "
            f"CASE WHEN h < 500 THEN {INBOUND_OUTCOMES} ELSE '' END, "
            f"CASE WHEN h >= 925 AND h < 950 THEN {_case(UNDELIVERED, 'i')} "
            f"WHEN h >= 950 AND h < 970 THEN {_case(FAILED, 'i')} ELSE '' END, "
            f"1, {_false(vendor)}, 0, CASE WHEN h >= 500 THEN 1 ELSE 0 END, "
            f"{ago.format(f'(i * {span}) / {max(main, 1)}')}, NULL "
            f"FROM (SELECT i, (i * {HASH}) %% {PERIOD} AS h FROM ({series}) AS n) AS t",
            [main],
        ),
        (
            # The outbox's backlog: pending texts of the last hour, to numbers of their own.
            f"INSERT INTO conversations_message ({message_columns}) "
            f"SELECT {first} + i %% {conversations}, 'outbound', NULL, 'We open at 9', '[]', '', 'pending', '', '', 1, "
            f"{_false(vendor)}, 10, 0, {ago.format('i * 3600 / %s')}, NULL FROM ({series}) AS n",
            [extra_texts(messages), extra_texts(messages)],
        ),
    ]


def _false(vendor: str) -> str:
    return "false" if vendor == "postgresql" else "0"


def seed(conversations: int, messages: int, *, statistics: bool = True) -> None:
    """Fill the migrated, empty bench database; then the planner's statistics, as autovacuum
    would (not in tests: they would outlive the test's rows and steer other tests' plans)."""
    from django.contrib.auth.models import User
    from django.db import connection

    from conversations.models import Broadcast, Conversation, Message

    with connection.cursor() as cursor:
        for sql, params in statements(connection.vendor, conversations, messages):
            cursor.execute(sql, params)
    # Two broadcasts going out, half sent (their texts to one conversation: only counted here).
    conversation = Conversation.objects.order_by("pk").first()
    for status in (Broadcast.Status.SENDING, Broadcast.Status.PAUSED):
        broadcast = Broadcast.objects.create(body="We open at 9 tomorrow.", status=status)
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                direction=Message.Direction.OUTBOUND,
                body=broadcast.body,
                status=Message.Status.DELIVERED if n % 2 else Message.Status.PENDING,
                broadcast=broadcast,
                num_segments=1,
            )
            for n in range(extra_texts(messages))
        )
    User.objects.create_superuser("bench-admin", password=None)
    if statistics:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def time_dashboard(requests: int) -> Timing:
    """The dashboard through Django's test client, as a logged-in superuser: the first request's
    time, then each of `requests` more."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.traffic import PROXY_HEADERS

    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    seconds = []
    statements: list[str] = []
    for _ in range(max(requests, 1) + 1):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(DASHBOARD, secure=True, headers=PROXY_HEADERS)
            seconds.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"the dashboard answered {response.status_code}")
        statements = [query["sql"] for query in captured.captured_queries]
    return Timing(seconds[0], seconds[1:], statements)


def plans(statements: list[str]) -> list[str]:
    """Each statement with the database's plan for it (EXPLAIN; EXPLAIN QUERY PLAN on SQLite)."""
    from django.db import connection

    explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    shown = []
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(f"{explain} {sql}".replace("%", "%%"), [])
            steps = [" ".join(str(column) for column in row) for row in cursor.fetchall()]
            shown.append(sql + "\n    " + "\n    ".join(steps))
    return shown


def main(args: argparse.Namespace) -> int:
    import environ

    from bench import cli, inprocess
    from bench.database import existing_database, fresh_database

    environ.Env.read_env(cli.BASE_DIR / ".env")
    app_url = os.environ.get("DATABASE_URL", "")
    db = existing_database(app_url) if args.seed_reuse else fresh_database(app_url)
    inprocess.setup(cli.server_env(db.url))
    cli.step(f"database migrated: {db.description}")
    if args.seed_reuse:  # The first request counts the days past again, as after seeding.
        from conversations.models import DailyCount

        DailyCount.objects.all().delete()
    else:
        cli.step(f"seeding {args.seed_conversations:,} conversations and {args.seed_messages:,} texts")
        started = time.monotonic()
        seed(args.seed_conversations, args.seed_messages)
        cli.step(f"seeded in {time.monotonic() - started:.0f} s")
    timing = time_dashboard(args.seed_requests)
    if args.verbose:
        print("\n\n".join(plans(timing.statements)))
    load = os.getloadavg()
    print(f"{db.description}: {_counts()}")
    print(
        f"{DASHBOARD}: best {timing.best * 1000:,.0f} ms, median {timing.median * 1000:,.0f} ms "
        f"over {len(timing.seconds)} requests; {len(timing.statements)} SQL statements per page"
    )
    print(f"the first request, which counted the days before yesterday: {timing.first * 1000:,.0f} ms")
    print(f"each request after the first, ms: {', '.join(f'{s * 1000:,.0f}' for s in timing.seconds)}")
    print(
        f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores", file=sys.stdout
    )
    return 0


def _counts() -> str:
    from django.db import connections

    from conversations.models import Conversation, Message

    counts = f"{Conversation.objects.count():,} conversations, {Message.objects.count():,} texts"
    connections.close_all()
    return counts
