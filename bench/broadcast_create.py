"""`python -m bench.broadcast_create`: how long creating a broadcast takes, on a fresh database
(SQLite, or PostgreSQL when DATABASE_URL names one): the Broadcast and one outbound Message
per recipient, deduplicated and with the excluded counted, as broadcast_create() commits them.

Each run texts numbers never texted before (new conversations too, the costlier case), with
1 % of them opted out, blocked or given twice. A figure, not a test: the suite pins the
statements instead (tests/test_broadcast.py).
"""

from __future__ import annotations

import argparse
import os
import time

AREAS = ("415", "510", "650", "707", "925", "408")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--quiet-hours", default="", help="QUIET_HOURS, e.g. 00:00-23:59 to defer every text."
    )
    args = parser.parse_args()

    from bench.database import fresh_database

    db = fresh_database(os.environ.get("DATABASE_URL", ""))
    os.environ.update(
        DATABASE_URL=db.url, DJANGO_SETTINGS_MODULE="tests.settings", QUIET_HOURS=args.quiet_hours
    )
    os.environ.update(SMS_BACKEND="console", TWILIO_FROM_NUMBER="+15005550006", LOG_LEVEL="WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    from conversations.broadcast_control import broadcast_create
    from conversations.models import Caller, Conversation

    call_command("migrate", verbosity=0)
    print(f"{db.description}: broadcast_create() to {args.recipients:,} new numbers, {args.runs} runs")
    for run in range(args.runs):
        # Valid numbers, as a person would type them too: a new area code each run.
        numbers = [
            f"+1{AREAS[run % len(AREAS)]}{200 + n // 10_000}{n % 10_000:04d}" for n in range(args.recipients)
        ]
        excluded = numbers[
            :: max(1, args.recipients // 100)
        ]  # 1 %: a third each opted out, blocked, given twice.
        Conversation.objects.bulk_create(
            Conversation(sender=n, recipient="+15005550006", sender_number=n, opted_out=True)
            for n in excluded[0::3]
        )
        Caller.objects.bulk_create(Caller(phone_number=n, name=n, blocked=True) for n in excluded[1::3])
        given = numbers + [f"({n[2:5]}) {n[5:8]}-{n[8:]}" for n in excluded[2::3]]  # The same, written so.
        start = time.perf_counter()
        if os.environ.get("BENCH_PROFILE"):
            import cProfile

            with cProfile.Profile() as profiler:
                broadcast = broadcast_create(body="We open at 9 tomorrow.", their_numbers=given)
            profiler.print_stats("cumulative")
        else:
            broadcast = broadcast_create(body="We open at 9 tomorrow.", their_numbers=given)
        took = time.perf_counter() - start
        print(
            f"  run {run + 1}: {took:.3f} s · {broadcast.counts_label()} · {broadcast.messages.count():,} rows"
        )


if __name__ == "__main__":
    main()
