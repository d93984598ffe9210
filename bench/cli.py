"""`python -m bench`: the webhook under load beside a no-op view, on a fresh database."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ

from bench import inprocess, report, seed
from bench.cpu import Meter
from bench.database import BASE_DIR, BenchDatabase, copy_database, fresh_database, migrate, twin_of
from bench.load import Load, ViewRun, WrkResult, find_wrk, run_wrk
from bench.progress import step
from bench.server import WORKERS, Server, gunicorn
from bench.traffic import MAX_PAIRS, Pair, Signer, make_pairs, send_text, write_requests

TOKEN = "bench-" + "0123456789abcdef" * 2
WARMUP_SECONDS = 3
# The webhook's request file holds this many times what the no-op view managed: the webhook
# does strictly more per request under the same server, so it cannot run out.
HEADROOM = 1.5
NOOP_LINES_PER_PAIR = 20
# --seed compares the empty and the seeded database in this many alternating webhook runs.
ROUNDS = 5
ROUND_SECONDS = 4


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Serve the app with gunicorn (production config, 2 workers) on a fresh database, drive "
            "a no-op TwiML view and the /sms/ webhook with the same signed, cookie-keeping wrk "
            "load, and print requests/s, p50/p99 latency, their ratios and the SQL statements "
            "per steady-state text. PostgreSQL when DATABASE_URL is postgres://..., else SQLite."
        ),
        epilog=(
            "Run it as `make bench`, options as `make bench BENCH_ARGS='--seed --verbose'`. Exits 1 "
            "when the run is invalid: a reply other than 200, or a count that disagrees with the "
            "replies. See docs/benchmarks.md."
        ),
    )
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per view (default 15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument(
        "--threads", type=int, default=1, help="wrk threads (default 1: wrk shares the cores with the server)"
    )
    parser.add_argument("--pairs", type=int, default=100, help="To/From pairs texting (default 100)")
    parser.add_argument(
        "--seed",
        action="store_true",
        help="measure, then bulk-load 1M callers, 1M conversations and 5M messages and measure again",
    )
    parser.add_argument("--verbose", action="store_true", help="print the SQL of a steady-state text")
    args = parser.parse_args(argv)
    if args.connections < args.threads:
        parser.error("--connections must be at least --threads")
    if not 1 <= args.pairs <= MAX_PAIRS:
        parser.error(f"--pairs must be between 1 and {MAX_PAIRS:,}")
    return args


@dataclasses.dataclass
class Tally:
    """What the clients saw, per pair: 200 replies (each one a counted text) and unanswered texts."""

    answered: Counter[int] = dataclasses.field(default_factory=Counter)
    unanswered: Counter[int] = dataclasses.field(default_factory=Counter)

    def add_run(self, result: WrkResult) -> None:
        self.answered.update(result.ok)
        for pair, sent in result.sent.items():
            self.unanswered[pair] += sent - result.ok[pair]


@dataclasses.dataclass
class Bench:
    args: argparse.Namespace
    wrk: str
    db: BenchDatabase
    env: dict[str, str]
    pairs: list[Pair]
    workdir: Path
    cookies: dict[int, str] = dataclasses.field(default_factory=dict)
    tally: Tally = dataclasses.field(default_factory=Tally)
    problems: list[str] = dataclasses.field(default_factory=list)  # make the run invalid

    @property
    def load(self) -> Load:
        return Load(self.args.threads, self.args.connections)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = find_wrk()
    if wrk is None:
        print("bench: wrk not found; install it with: sudo apt-get install wrk", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    # Read .env as the app does, so that a DATABASE_URL kept there picks PostgreSQL too.
    environ.Env.read_env(BASE_DIR / ".env")
    db = fresh_database(os.environ.get("DATABASE_URL", ""))
    step(f"fresh database: {db.describe()}")
    env = server_env(db)
    migrate(env)
    step("migrated")
    with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
        bench = Bench(args, wrk, db, env, make_pairs(args.pairs), Path(workdir))
        inprocess.setup(env)
        phases = [run_phase(bench, "empty database")]
        seeding = run_seeded(bench, phases) if args.seed else None
        check = check_counts(bench)
    header = bench_header(bench, load_before)
    valid = report.show(header, phases, seeding, check, bench.problems, verbose=args.verbose)
    return 0 if valid else 1


def run_seeded(bench: Bench, phases: list[report.Phase]) -> report.Seeding:
    """Keep a copy of the empty database, seed, measure again, then compare the two in turns."""
    twin = twin_of(bench.db)
    inprocess.close_connections()
    copy_database(bench.db, twin)
    step(f"copied the empty database to {twin.describe()}")
    seconds = seed_database(bench.db)
    phases.append(run_phase(bench, "seeded database"))
    empty, seeded = interleave(bench, twin, phases[-1].noop.measured.rate)
    return report.Seeding(seed.CALLERS, seed.CONVERSATIONS, seed.MESSAGES, seconds, empty, seeded)


def server_env(db: BenchDatabase) -> dict[str, str]:
    """The environment of the server and of the in-process measurement: production settings."""
    return {
        "DATABASE_URL": db.url,
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ALLOWED_HOSTS": "127.0.0.1",
        # One INFO line per text would make the benchmark measure logging.
        "LOG_LEVEL": "WARNING",
        # As deployed: behind a TLS proxy that sets X-Forwarded-Proto, so that production's
        # HTTPS redirect and secure cookies stay on. Pinned, whatever a local .env says.
        "USE_X_FORWARDED": "True",
        "TWILIO_WEBHOOK_BASE_URL": "",
        "CONVERSATION_TIMEOUT": "14400",
        "UNKNOWN_CALLER_NAME": "Friend",
    }


def bench_header(bench: Bench, load_before: tuple[float, float, float]) -> report.Header:
    return report.Header(
        database=bench.db.describe(),
        # settings.py switches to cached_db sessions when REDIS_URL is set.
        sessions="cached_db (Redis)" if os.environ.get("REDIS_URL") else "db",
        workers=WORKERS,
        threads=bench.args.threads,
        connections=bench.args.connections,
        pairs=len(bench.pairs),
        seconds=bench.args.seconds,
        warmup=WARMUP_SECONDS,
        load_before=load_before,
    )


def run_phase(bench: Bench, name: str) -> report.Phase:
    step(f"{name}: starting gunicorn ({WORKERS} workers)")
    log = bench.workdir / f"gunicorn-{name.split()[0]}.log"
    with gunicorn(bench.env, log) as server:
        warm_up_pairs(bench, server, bench.tally)
        noop = run_view(bench, server, "no-op", lambda seconds: NOOP_LINES_PER_PAIR * len(bench.pairs))
        webhook = run_view(bench, server, "webhook", partial(webhook_lines, noop.measured.rate))
        recycled = server.workers_booted() - WORKERS
        problems = server.problems()
    step(f"{name}: SQL statements of one steady-state text (in-process)")
    pair = bench.pairs[0]
    statements, statuses = inprocess.statements_per_text(pair, bench.cookies[pair.index], TOKEN)
    bench.tally.answered[pair.index] += statuses.count(200)
    return report.Phase(name, noop, webhook, statements, statuses, recycled, problems)


def webhook_lines(noop_rate: float, seconds: int) -> int:
    """Requests enough for the webhook for `seconds`: it cannot outrun the no-op view."""
    return math.ceil(noop_rate * HEADROOM * seconds) + 1000


def warm_up_pairs(bench: Bench, server: Server, tally: Tally) -> None:
    """One signed text per pair; keep the session cookie each reply sets, as Twilio does."""
    step(f"warm-up: one signed text from each of {len(bench.pairs)} pairs")
    signer = Signer(TOKEN, server.public_url("/sms/"))
    for pair in bench.pairs:
        known = bench.cookies.get(pair.index)
        status, cookie = send_text(f"{server.base_url}/sms/", signer, pair, known)
        if status != 200 or cookie is None:
            raise RuntimeError(f"warm-up text from {pair.sender} got {status}, cookie {cookie!r}")
        if known and cookie != known:  # The window lasts 4 hours: its session must not change.
            bench.problems.append(f"{pair.sender}'s session cookie changed between phases")
        tally.answered[pair.index] += 1
        bench.cookies[pair.index] = cookie


def run_view(bench: Bench, server: Server, view: str, lines_for: Callable[[int], int]) -> ViewRun:
    """A warm-up run (discarded), then the measured run, each from a request file of its own.

    `lines_for(seconds)` says how many requests a run of that length needs.
    """
    noop = view == "no-op"
    runs = []
    for part, seconds in (("warm-up", WARMUP_SECONDS), ("measuring", bench.args.seconds)):
        file = bench.workdir / f"{view}-{part}.txt"
        result = load_run(bench, server, file, lines_for(seconds), seconds, noop=noop, label=f"{view} {part}")
        if not noop:
            bench.tally.add_run(result)
        runs.append(result)
    run = ViewRun(*runs)
    measured = run.measured
    step(
        f"{view}: {measured.rate:,.0f} requests/s, p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms"
    )
    return run


def load_run(
    bench: Bench,
    server: Server,
    file: Path,
    lines: int,
    seconds: int,
    *,
    noop: bool,
    label: str,
    database: BenchDatabase | None = None,
) -> WrkResult:
    """Write `lines` signed requests to `file`, then run wrk from it for `seconds`.

    `database` is the one the server uses, if not the bench database (--seed's empty copy).
    """
    started = time.monotonic()
    write_requests(file, Signer(TOKEN, server.public_url("/sms/")), bench.pairs, bench.cookies, lines)
    step(f"{label}: {lines:,} signed requests written in {time.monotonic() - started:.1f} s")
    meter = Meter(server.pid, (database or bench.db).postgres_name)
    meter.start()
    result = run_wrk(
        bench.wrk,
        server.base_url,
        file,
        bench.load,
        seconds,
        # The no-op view reads nothing, so its lines may be reused; the webhook's never are.
        path="/noop/" if noop else None,
        wrap=noop,
        label=label,
    )
    result.others = meter.others()
    return result


def seed_database(db: BenchDatabase) -> float:
    step(
        f"seeding {seed.CALLERS:,} callers, {seed.CONVERSATIONS:,} conversations, {seed.MESSAGES:,} messages"
    )
    inprocess.close_connections()
    started = time.monotonic()
    if db.sqlite_path:
        seed.seed_sqlite(db.sqlite_path)
    else:
        seed.seed_postgres(db.url)
    # Gigabytes were just written: let the kernel write them back before measuring again.
    os.sync()
    seconds = time.monotonic() - started
    step(f"seeded in {seconds:.0f} s")
    return seconds


def interleave(
    bench: Bench, twin: BenchDatabase, noop_rate: float
) -> tuple[list[WrkResult], list[WrkResult]]:
    """The webhook on the empty copy and on the seeded database in turns, both served at once.

    This machine's speed drifts by tens of percent over the minutes that seeding takes, so
    the phases before and after it are not a fair comparison; rounds seconds apart are.
    """
    step(f"interleaved: the empty copy and the seeded database in turns, {ROUNDS} x {ROUND_SECONDS} s each")
    runs: dict[str, list[WrkResult]] = {"empty": [], "seeded": []}
    twin_env = {**bench.env, "DATABASE_URL": twin.url}
    if os.environ.get("REDIS_URL"):
        # Same session keys in both databases: the copy must not share the seeded one's cache.
        twin_env["REDIS_URL"] = other_redis_database(os.environ["REDIS_URL"])
    with (
        gunicorn(twin_env, bench.workdir / "gunicorn-twin.log") as empty,
        gunicorn(bench.env, bench.workdir / "gunicorn-seeded.log") as seeded,
    ):
        # The copy's counts are its own and not checked at the end; its replies are.
        servers = {"empty": (empty, Tally(), twin), "seeded": (seeded, bench.tally, bench.db)}
        for server, tally, _ in servers.values():
            warm_up_pairs(bench, server, tally)
        for round_ in range(ROUNDS + 1):  # round 0 warms both servers up and is not kept
            seconds = ROUND_SECONDS if round_ else WARMUP_SECONDS
            for name, (server, tally, database) in servers.items():
                file = bench.workdir / f"{name}-{round_}.txt"
                label = f"{name} round {round_}" if round_ else f"{name} warm-up"
                lines = webhook_lines(noop_rate, seconds)
                result = load_run(
                    bench, server, file, lines, seconds, noop=False, label=label, database=database
                )
                tally.add_run(result)
                bench.problems += report.result_problems(f"interleaved, {label}", result, webhook=True)
                if round_:
                    runs[name].append(result)
    return runs["empty"], runs["seeded"]


def other_redis_database(url: str) -> str:
    """The same Redis server, the next of its 16 numbered databases."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(number + 1) % 16}"))


def check_counts(bench: Bench) -> report.Check:
    """Each pair's window_count against the 200 replies its texts got."""
    counts = inprocess.window_counts(bench.pairs)
    check = report.Check(pairs=len(bench.pairs))
    for pair in bench.pairs:
        answered, unanswered = bench.tally.answered[pair.index], bench.tally.unanswered[pair.index]
        count = counts.get(pair.index, 0)
        # A text still in flight when wrk stopped may have been counted, its reply unread.
        if answered <= count <= answered + unanswered:
            check.in_flight_counted += count - answered
        else:
            check.mismatches.append(
                f"{pair.sender}: window_count {count}, 200 replies {answered} (+{unanswered} unanswered)"
            )
    check.unanswered = sum(bench.tally.unanswered.values())
    return check
