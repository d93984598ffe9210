"""`python -m bench`: the webhook under load beside three references, in one run."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import environ

from bench import inprocess, outbox, profile, report, seed
from bench.cpu import Meter
from bench.database import BASE_DIR, BenchDatabase, fresh_database
from bench.load import WrkResult, run_wrk
from bench.traffic import MAX_PAIRS, Pair, Signer, make_pairs, send_text, write_requests
from tests.server import LiveServer, gunicorn_command, serve

TOKEN = "bench-" + "0123456789abcdef" * 2
WARMUP_SECONDS = 3
# The webhook's request file holds this many times what the faster reference managed: the
# webhook does strictly more per request under the same server, so it cannot run out.
HEADROOM = 1.5
# The references keep no record of texts, so their (fewer) lines are sent again and again.
REUSED_LINES_PER_PAIR = 20
FLASK_APP = "bench.flask_app:app"
NAIVE_APP = "bench.naive_app:application"
CONFIG_SHOWN = ("workers", "worker_class", "threads", "keepalive", "max_requests")
NAIVE_SQLITE_PATH = BASE_DIR / "var" / "bench-naive.sqlite3"
_started = time.monotonic()


def step(message: str) -> None:
    """Progress on stderr, so that a minute-long run never looks stuck."""
    print(f"[{time.monotonic() - _started:5.1f}s] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The /sms/ webhook under gunicorn (production config) on a fresh database, beside "
        "a no-op Django TwiML view served the same way, and Twilio's Flask cookie tutorial app and a "
        "naive Django counter in database sessions, both served by plain `gunicorn -w WORKERS`, under "
        "the same signed, cookie-keeping wrk load. PostgreSQL when DATABASE_URL is postgres://..., "
        "else SQLite.",
        epilog="Exits 1 when the run is invalid (a reply other than 200, a wrong count). docs/benchmarks.md",
    )
    add = parser.add_argument
    add("--seconds", type=int, default=15, help="measured seconds per view (default 15)")
    add("--connections", type=int, default=16, help="wrk connections (default 16)")
    add("--threads", type=int, default=1, help="wrk threads (default 1: wrk shares the cores)")
    add("--pairs", type=int, default=100, help=f"To/From pairs texting (default 100, at most {MAX_PAIRS:,})")
    add("--workers", type=int, default=2, help="gunicorn workers per app (default 2)")
    add(
        "--gunicorn",
        default="",
        metavar="ARGS",
        help="more gunicorn options for the project, e.g. --gunicorn='-k gthread --threads 4'",
    )
    add(
        "--profile",
        action="store_true",
        help=f"py-spy the webhook for --seconds more, into {profile.OUTPUT}",
    )
    add("--verbose", action="store_true", help="print the SQL of a steady-state text")
    outbox.add_arguments(parser)
    seed.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.connections < args.threads or not 1 <= args.pairs <= MAX_PAIRS:
        parser.error(f"--connections must be at least --threads, --pairs between 1 and {MAX_PAIRS:,}")
    return args


@dataclasses.dataclass
class App:
    """A view under load and how clients text it: its path, the cookie each pair keeps, and
    whether a request may go once only (the webhook: a repeated MessageSid is a retry)."""

    label: str
    server: LiveServer
    path: str
    cookie_name: str = ""
    once: bool = False
    cookies: dict[int, str] = dataclasses.field(default_factory=dict)

    @property
    def signer(self) -> Signer:
        # What Twilio calls and signs: https, which the TLS proxy wrk plays turns into http.
        return Signer(TOKEN, self.server.replace("http://", "https://", 1) + self.path)


@dataclasses.dataclass
class Bench:
    args: argparse.Namespace
    wrk: str
    postgres_name: str | None
    pairs: list[Pair]
    workdir: Path = Path()
    servers: list[int] = dataclasses.field(default_factory=list)  # the gunicorn masters
    cookies: dict[int, str] = dataclasses.field(default_factory=dict)  # the webhook's, per pair
    answered: Counter[int] = dataclasses.field(default_factory=Counter)  # the webhook's 200 replies
    unanswered: Counter[int] = dataclasses.field(default_factory=Counter)  # in flight when wrk stopped
    problems: list[str] = dataclasses.field(default_factory=list)  # make the run invalid

    def warm_up(self, app: App) -> None:
        """One signed text per pair; keep the cookie each reply sets, as Twilio does."""
        for pair in self.pairs:
            status, cookie = send_text(f"{app.server}{app.path}", app.signer, pair, app.cookie_name)
            if status != 200 or not cookie:
                raise RuntimeError(f"the warm-up text from {pair.sender} got {status}, cookie {cookie!r}")
            app.cookies[pair.index] = cookie
            self.answered[pair.index] += app.once

    def run(
        self, app: App, label: str, seconds: int, per_second: float, pace_ms: int = 0
    ) -> tuple[WrkResult, float]:
        """wrk for `seconds` (each connection pausing `pace_ms` between requests when given);
        the result, and the servers' CPU ms per request."""
        lines = (
            math.ceil(per_second * seconds) + 1000 if app.once else REUSED_LINES_PER_PAIR * len(self.pairs)
        )
        file = self.workdir / "requests.txt"
        write_requests(file, app.path, app.signer, self.pairs, app.cookies, lines)
        step(f"{label}: {seconds} s")
        meter = Meter(self.servers, self.postgres_name)
        a = self.args
        result = run_wrk(
            self.wrk, app.server, file, a.threads, a.connections, seconds, wrap=not app.once, pace_ms=pace_ms
        )
        meter.stop()
        result.others = meter.others()
        self.problems += result.problems(label)
        if app.once:
            self.answered.update(result.ok)
            self.unanswered.update({pair: sent - result.ok[pair] for pair, sent in result.sent.items()})
        return result, meter.server_seconds() * 1000 / max(result.requests, 1)

    def measure(self, app: App, per_second: float = 0.0, pace_ms: int = 0) -> report.Row:
        """A warm-up run (discarded), then the measured one."""
        self.run(app, f"{app.label} warm-up", WARMUP_SECONDS, per_second, pace_ms)
        result, cpu_ms = self.run(app, f"{app.label} measured", self.args.seconds, per_second, pace_ms)
        step(
            f"{app.label}: {result.rate:,.0f} requests/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
        )
        return report.Row(app.label, result, cpu_ms)


def server_env(database_url: str) -> dict[str, str]:
    """The servers' environment and the in-process measurement's: production settings, pinned."""
    return {
        **os.environ,
        "ENV_FILE": "",  # .env was read into os.environ already; the pins below win over it.
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ALLOWED_HOSTS": "127.0.0.1",
        # One INFO line per text would make the benchmark measure logging.
        "LOG_LEVEL": "WARNING",
        # As deployed: behind a TLS proxy that sets X-Forwarded-Proto, so that production's
        # HTTPS redirect and secure cookies stay on.
        "USE_X_FORWARDED": "True",
        "TWILIO_WEBHOOK_BASE_URL": "",
        "CONVERSATION_TIMEOUT": "14400",
        "UNKNOWN_CALLER_NAME": "Friend",
    }


def gunicorn_config(env: dict[str, str], workers: int, args: list[str]) -> dict[str, str]:
    """The settings gunicorn resolves from gunicorn.conf.py, the command line and GUNICORN_CMD_ARGS."""
    command = [*gunicorn_command(workers, *args), "--print-config"]
    output = subprocess.run(command, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=True).stdout
    pairs = (line.split("=", 1) for line in output.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.seed:  # Neither wrk nor a server: the dashboard in-process.
        return seed.main(args)
    wrk, py_spy = shutil.which("wrk"), profile.find_py_spy()
    if wrk is None or (args.profile and py_spy is None):
        print("bench: needs wrk (apt-get install -y wrk) and, to profile, py-spy (requirements-dev.txt)")
        return 1
    if args.outbox:
        return outbox.main(args, wrk)
    # Read .env as the app does, so that a DATABASE_URL (or REDIS_URL) kept there counts too.
    environ.Env.read_env(BASE_DIR / ".env")
    db = fresh_database(os.environ.get("DATABASE_URL", ""))
    env = server_env(db.url)
    inprocess.setup(env)
    env["NAIVE_DATABASE_URL"] = naive_database(db, env)
    step(f"fresh databases, migrated: {db.description}")
    # No worker recycling: in a run this short, a recycled worker's start-up (Django and the
    # app imported anew) lands on whichever view is being measured then, not on all alike.
    extra = ["--max-requests", "0", *shlex.split(args.gunicorn)]
    config = gunicorn_config(env, args.workers, extra)
    bench = Bench(args, wrk, db.postgres_name, make_pairs(args.pairs))
    rows, notes, config["worker_class"] = run_apps(bench, env, extra, py_spy)
    step("SQL statements of one steady-state text (in-process)")
    pair = bench.pairs[0]
    statements, statuses = inprocess.statements_per_text(pair, bench.cookies[pair.index], TOKEN)
    bench.answered[pair.index] += statuses.count(200)
    if statuses != [200, 200]:
        bench.problems.append(f"in-process texts answered {statuses}")
    senders = {pair.index: pair.sender for pair in bench.pairs}
    counts = inprocess.window_counts(bench.pairs)
    mismatches, check = report.check_counts(senders, bench.answered, bench.unanswered, counts)
    if mismatches:
        bench.problems.append(f"{len(mismatches)} pairs' counts disagree with their replies")
    if (busiest := max(row.result.others for row in rows)) > report.DISTURBED:
        notes.append(f"DISTURBED: other processes used up to {busiest:.2f} cores meanwhile; repeat.")
    if bench.problems:
        notes.append("INVALID RUN: " + "; ".join(bench.problems))
    header = [
        f"{db.description} · {'cached_db (Redis)' if os.environ.get('REDIS_URL') else 'db'} sessions · "
        f"{args.pairs} pairs · wrk -t{args.threads} -c{args.connections} · "
        f"{args.seconds} s measured per view after {WARMUP_SECONDS} s warm-up",
        f"project: gunicorn -c gunicorn.conf.py {shlex.join(extra)}".rstrip()
        + ": "
        + ", ".join(f"{name} {config.get(name, '?')}" for name in CONFIG_SHOWN),
        f"Flask app and naive Django: gunicorn -w {args.workers} (gunicorn's defaults: sync workers)",
    ]
    targets = report.targets(*(row.result for row in rows), len(statements))
    report.show(header, rows, targets, [check, *notes], statements if args.verbose else [])
    return 1 if bench.problems else 0


def run_apps(
    bench: Bench, env: dict[str, str], extra: list[str], py_spy: str | None
) -> tuple[list[report.Row], list[str], str]:
    """Serve the project and the references and measure the four views in turn: their rows, notes
    on the run, and the worker class gunicorn ran for the project."""
    args = bench.args
    with ExitStack() as stack:
        bench.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        django = stack.enter_context(serve(env, args.workers, extra))
        # The references as their authors would run them: gunicorn's own defaults.
        flask = stack.enter_context(serve(env, args.workers, [FLASK_APP], ready_path="/", config=False))
        naive_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.naive_app"}
        naive = stack.enter_context(serve(naive_env, args.workers, [NAIVE_APP], ready_path="/", config=False))
        bench.servers = [django.process.pid, flask.process.pid, naive.process.pid]
        webhook = App("project /sms/", django, "/sms/", "sessionid", once=True, cookies=bench.cookies)
        tutorial = App("Flask app", flask, "/", "session")
        counter = App("naive Django", naive, "/", "sessionid")
        step(f"gunicorn up; one text from each of {len(bench.pairs)} pairs to each app")
        for app in (webhook, tutorial, counter):
            bench.warm_up(app)
        # The no-op view reads no cookie, but gets the same requests as the webhook.
        rows = [bench.measure(App("no-op view", django, "/noop/", cookies=webhook.cookies))]
        rows.append(bench.measure(tutorial))
        rows.append(bench.measure(counter))
        per_second = max(row.result.rate for row in rows) * HEADROOM
        rows.append(bench.measure(webhook, per_second))
        notes = []
        if py_spy and args.profile:
            with profile.recording(py_spy, django.process.pid, args.seconds, BASE_DIR / profile.OUTPUT):
                result, _ = bench.run(webhook, "profiled webhook", args.seconds, per_second)
            notes = profile.summary(BASE_DIR / profile.OUTPUT, result.requests, rows[-1].cpu_ms)
        logs = {"Django": django.log(), "Flask": flask.log(), "naive Django": naive.log()}
    notes += server_notes(logs, args.workers, bench.problems)
    # What gunicorn ran, not the setting: with threads > 1 it runs gthread for "sync".
    ran = sorted(set(re.findall(r"Using worker: (\S+)", logs["Django"])))
    return rows, notes, ", ".join(ran)


def naive_database(db: BenchDatabase, env: dict[str, str]) -> str:
    """The naive app's DATABASE_URL: on PostgreSQL the bench's database (its sessions table), on
    SQLite a file of its own, as `startproject` makes it (SQLite's default journal, not WAL)."""
    if db.postgres_name is not None:
        return db.url
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{NAIVE_SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{NAIVE_SQLITE_PATH}"
    naive_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.naive_app", "NAIVE_DATABASE_URL": url}
    command = [sys.executable, "-m", "django", "migrate", "--no-input", "-v0"]
    subprocess.run(command, cwd=BASE_DIR, env=naive_env, check=True)
    return url


def server_notes(logs: dict[str, str], workers: int, problems: list[str]) -> list[str]:
    """Workers recycled during the run (max_requests), and error lines, which make the run invalid."""
    notes = []
    markers = ("Traceback", "ERROR", "CRITICAL", "WORKER TIMEOUT", "Internal Server Error")
    for app, log in logs.items():
        if recycled := log.count("Booting worker") - workers:
            notes.append(f"note: gunicorn recycled {recycled} {app} worker(s) during the run (max_requests)")
        errors = [line for line in log.splitlines() if any(marker in line for marker in markers)]
        notes += [f"{app} server log: {line}" for line in errors[:10]]
        if errors:
            problems.append(f"{len(errors)} error lines in the {app} server's log")
    return notes
