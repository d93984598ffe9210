"""`python -m bench --outbox`: the outbox's worker sending a bulk run through a fake Twilio,
beside the webhook under wrk (issue 18's benchmark).

A fake Twilio REST API on loopback (tests/twilio_api_server.py) answers each POST after
--outbox-latency and keeps when each arrived. TEXTS bulk texts are committed through the real
outbox (`texts_enqueue`) and sent by real `manage.py outbox_worker` processes, production
settings with SMS_SEND_RATE=RATE. The webhook (gunicorn, production config) is measured under
the same wrk load with no worker running, then while the workers send: flat out (as many texts
as it answers) and paced (about --outbox-webhook-rate texts/s, Twilio's traffic rather than a
flood). The report: the rate held, from the fake API's own arrival times; POSTs per row; the
rows' statuses; the webhook's p50/p99 without and with the worker, paced and flat out.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import environ

# bench.cli imports this module for its options: its names are read at run time.
from bench import cli, cpu, inprocess, report
from bench.database import BASE_DIR, fresh_database
from bench.traffic import ACCOUNT_SID, RECIPIENT, make_pairs
from tests.server import serve
from tests.twilio_api_server import Post, twilio_api_server

# The recipients of the bulk run: none of them texts the webhook (+1 415 555 xxxx).
BULK_PREFIX = "+1202555"
# Sliding windows over the POSTs' arrival times, for the worst and best rate held.
WINDOW_SECONDS = 5.0
# The target: the rate held within this fraction of SMS_SEND_RATE.
RATE_TOLERANCE = 0.05
# The webhook's p99 while the worker sends, at most this many times its p99 without.
P99_GROWTH = 1.5
# The webhook's request file when its rate is not known yet (the run without the worker).
FIRST_RATE_GUESS = 3000.0
# Processes beyond rate x latency: each spends time on claims and commits too (twice the writer
# lock per text on SQLite), and a process late on its slot costs the rate.
WORKER_MARGIN = 1.5
BODY = "Your table is ready. Reply STOP to opt out."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--outbox", action="store_true", help="run the outbox's benchmark instead (docs/benchmarks.md)")
    add("--outbox-texts", type=int, default=3000, help="bulk texts sent by the worker (default 3000)")
    add("--outbox-rate", type=float, default=50.0, help="SMS_SEND_RATE, segments/s (default 50)")
    add("--outbox-latency", type=float, default=0.1, help="the fake Twilio's answer time, s (default 0.1)")
    add(
        "--outbox-workers",
        type=int,
        default=0,
        help="outbox_worker processes (default: 1.5 x RATE x LATENCY POSTs in flight, + 1)",
    )
    add(
        "--outbox-webhook-rate",
        type=float,
        default=100.0,
        help="texts/s of Twilio's traffic for the webhook's paced runs (default 100)",
    )


def workers_needed(rate: float, latency: float) -> int:
    """Worker processes for `rate` POSTs a second when each takes `latency`: one POST in flight
    per process, half as many again for the claims and commits between them, and one more."""
    return math.ceil(WORKER_MARGIN * rate * latency) + 1


@dataclasses.dataclass(frozen=True)
class HeldRate:
    overall: float  # segments/s from the first POST's arrival to the last's
    worst: float  # over WINDOW_SECONDS sliding windows (nan: the run was shorter)
    best: float
    posts: int
    seconds: float


def held_rate(arrivals: Sequence[float], window: float = WINDOW_SECONDS, segments: int = 1) -> HeldRate:
    """The rate the POSTs arrived at: overall, N-1 intervals over the span (the first POST opens
    the run, each later one is a segment sent in it); and the fewest and most POSTs in any
    window of `window` seconds that starts at a POST and ends before the last one, per second."""
    times = sorted(arrivals)
    if len(times) < 2:
        return HeldRate(math.nan, math.nan, math.nan, len(times), 0.0)
    span = times[-1] - times[0]
    overall = (len(times) - 1) * segments / span if span else math.inf
    counts, end = [], 0
    for start, at in enumerate(times):
        if at + window > times[-1]:
            break
        while end < len(times) and times[end] < at + window:
            end += 1
        counts.append(end - start)
    if not counts:
        return HeldRate(overall, math.nan, math.nan, len(times), span)
    return HeldRate(
        overall, min(counts) * segments / window, max(counts) * segments / window, len(times), span
    )


def posts_per_row(recipients: Sequence[str], posts: Counter[str]) -> Counter[int]:
    """How many rows got 0, 1, 2 ... POSTs (each row has a recipient of its own)."""
    return Counter(posts[number] for number in recipients)


def targets(
    rate: HeldRate, wanted: float, without: float, with_worker: float, flat_out: tuple[float, float]
) -> list[report.Target]:
    """The rate within RATE_TOLERANCE of SMS_SEND_RATE; the webhook's p99 with the worker
    sending at most P99_GROWTH times its p99 without."""
    off = abs(rate.overall - wanted) / wanted if wanted else math.nan
    return [
        report.Target("held rate, off SMS_SEND_RATE by", off, RATE_TOLERANCE, False),
        report.Target(
            "webhook p99 with ÷ without worker, paced", report.ratio(with_worker, without), P99_GROWTH, False
        ),
        report.Target(
            "webhook p99 with ÷ without worker, flat out", report.ratio(*flat_out), math.nan, False
        ),
    ]


@dataclasses.dataclass(frozen=True)
class Usage:
    """The workers' CPU from the first POST until every row settled."""

    texts: int
    seconds: float
    cpu_seconds: float

    def line(self) -> str:
        per_text = self.cpu_seconds * 1000 / self.texts if self.texts else math.nan
        cores = self.cpu_seconds / self.seconds if self.seconds else math.nan
        return f"workers' CPU while sending: {per_text:.1f} ms per text, {cores:.2f} cores over {self.seconds:.1f} s"


def worker_tracebacks(log: str) -> tuple[int, str] | None:
    """How many tracebacks the workers logged, and the first one (its last 25 lines)."""
    if (count := log.count("Traceback")) == 0:
        return None
    first = log[log.index("Traceback") :].split("\n\n", 1)[0].splitlines()
    return count, "\n".join([*first[:3], "  ...", *first[-22:]] if len(first) > 25 else first)


def workers_seconds(workers: list[subprocess.Popen[bytes]]) -> float:
    return sum(cpu.process_seconds(worker.pid) for worker in workers)


def lines(
    rate: HeldRate, wanted: float, per_row: Counter[int], statuses: Counter[str], rows: list[report.Row]
) -> list[str]:
    """The outbox's part of the report."""
    ok = set(per_row) == {1} and set(statuses) <= {"queued", "sent"}
    return [
        f"held rate: {rate.overall:.2f} segments/s overall ({rate.posts:,} POSTs in {rate.seconds:.1f} s), "
        f"over {WINDOW_SECONDS:g} s windows worst {rate.worst:.2f}, best {rate.best:.2f}; SMS_SEND_RATE {wanted:g}",
        f"POSTs per row: {', '.join(f'{n} POST(s): {rows_:,} rows' for n, rows_ in sorted(per_row.items()))}",
        f"rows: {', '.join(f'{status} {n:,}' for status, n in statuses.most_common())}",
        "at most once: "
        + ("OK, every row exactly one POST and queued/sent" if ok else "BROKEN, see the two lines above"),
        "",
        f"{'webhook /sms/':<18}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'requests':>10}"
        f"{'not 200':>9}{'others':>8}",
        *(
            f"  {row.label:<16}{row.result.rate:>12,.1f}{row.result.p50_ms:>9.2f}{row.result.p99_ms:>9.2f}"
            f"{row.result.max_ms:>9.1f}{row.result.requests:>10,}{row.result.not_ok:>9}{row.result.others:>8.2f}"
            for row in rows
        ),
    ]


def main(args: argparse.Namespace, wrk: str) -> int:
    environ.Env.read_env(BASE_DIR / ".env")
    db = fresh_database(os.environ.get("DATABASE_URL", ""))
    count, wanted = args.outbox_texts, args.outbox_rate
    processes = args.outbox_workers or workers_needed(wanted, args.outbox_latency)
    recipients = [f"{BULK_PREFIX}{n:04d}" for n in range(count)]
    with ExitStack() as stack:
        api = stack.enter_context(twilio_api_server(latency=args.outbox_latency))
        env = {
            **cli.server_env(db.url),
            "SMS_BACKEND": "twilio",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_FROM_NUMBER": RECIPIENT,
            "SMS_SEND_RATE": f"{wanted:g}",
            "FAKE_TWILIO_API": api.url,
        }
        inprocess.setup(env)
        cli.step(f"fresh database, migrated: {db.description}")
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-outbox-")))
        django = stack.enter_context(serve(env, args.workers, ["--max-requests", "0"]))
        bench = cli.Bench(args, wrk, db.postgres_name, make_pairs(args.pairs), workdir, [django.process.pid])
        webhook = cli.App("project /sms/", django, "/sms/", "sessionid", once=True, cookies=bench.cookies)
        bench.warm_up(webhook)
        pace_ms = round(args.connections * 1000 / args.outbox_webhook_rate)
        flat_alone = dataclasses.replace(bench.measure(webhook, FIRST_RATE_GUESS), label="without, flat out")
        alone = dataclasses.replace(
            bench.measure(webhook, args.outbox_webhook_rate, pace_ms), label="without worker, paced"
        )
        worker_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.outbox_settings"}
        logs = [workdir / f"worker-{n}.log" for n in range(processes)]
        started: list[subprocess.Popen[bytes]] = []
        stack.callback(stop, started)
        cli.step(
            f"{count:,} texts into the outbox; {processes} outbox_worker processes, SMS_SEND_RATE={wanted:g}"
        )
        enqueue(recipients)
        started += [start(worker_env, log) for log in logs]
        wait(lambda: len(api.posts) > 0, 60, "the first POST")
        began = (time.monotonic(), workers_seconds(started))
        paced_run = time.time()
        sending = dataclasses.replace(
            bench.measure(webhook, args.outbox_webhook_rate, pace_ms), label="worker sending, paced"
        )
        flat_run = time.time()
        flat_sending = dataclasses.replace(
            bench.measure(webhook, flat_alone.result.rate * 1.5), label="sending, flat out"
        )
        runs = {"paced": (paced_run, flat_run), "flat out": (flat_run, time.time())}
        if len(api.posts) >= count:
            bench.problems.append("the worker finished before the measured run did: more --outbox-texts")
        cli.step("waiting for the worker to send the rest")
        wait(lambda: not unsettled(), 2 * count / wanted + 120, "every row settled")
        used = Usage(count, time.monotonic() - began[0], workers_seconds(started) - began[1])
        ticks = tick_statuses()
        # Read before the SIGTERM: db_worker's own exit, when idle, raises SystemExit mid-query.
        if tracebacks := worker_tracebacks("".join(log.read_text(errors="replace") for log in logs)):
            bench.problems.append(
                f"{tracebacks[0]} Traceback(s) in the workers' logs, the first:\n{tracebacks[1]}"
            )
        stop(started)
    per_row, statuses = posts_per_row(recipients, api.posts_to()), row_statuses()
    arrivals = [post.at for post in _ours(api.posts, recipients)]
    rate = held_rate(arrivals)
    during = {
        label: held_rate([at for at in arrivals if start <= at < end]) for label, (start, end) in runs.items()
    }
    if set(per_row) != {1} or not set(statuses) <= {"queued", "sent"}:
        bench.problems.append("a row was not POSTed exactly once, or did not end queued/sent")
    header = [
        f"{db.description} · outbox: {count:,} bulk texts, SMS_SEND_RATE={wanted:g}, {processes} outbox_worker "
        f"processes (production settings), fake Twilio answering in {args.outbox_latency * 1000:.0f} ms",
        f"webhook: gunicorn -c gunicorn.conf.py -w {args.workers}, {args.pairs} pairs, wrk -t{args.threads} "
        f"-c{args.connections}, {args.seconds} s measured after a {cli.WARMUP_SECONDS} s warm-up, without "
        f"then with the worker sending: flat out, and paced (each connection {pace_ms} ms between texts, "
        f"about {args.outbox_webhook_rate:g} texts/s)",
    ]
    flat_out = (flat_sending.result.p99_ms, flat_alone.result.p99_ms)
    found = targets(rate, wanted, alone.result.p99_ms, sending.result.p99_ms, flat_out)
    rows = [flat_alone, alone, sending, flat_sending]
    print(
        "\n".join(
            [
                "",
                *header,
                "",
                *lines(rate, wanted, per_row, statuses, rows),
                used.line(),
                "held rate while the webhook ran "
                + ", ".join(f"{label}: {r.overall:.2f} segments/s" for label, r in during.items())
                + " (warm-up included)",
                f"ticks when every row had settled: {', '.join(f'{n:,} {s.lower()}' for s, n in ticks.most_common())}",
                "",
            ]
        )
    )
    print("\n".join([*(target.line() for target in found), "", *notes(bench.problems, rows[:2])]))
    return 1 if bench.problems else 0


def notes(problems: list[str], without_worker: list[report.Row]) -> list[str]:
    found = ["INVALID RUN: " + "; ".join(problems)] if problems else []
    others = max(row.result.others for row in without_worker)
    if others > report.DISTURBED:
        found.append(f"DISTURBED: other processes used {others:.2f} cores without the worker; repeat.")
    return [
        *found,
        "(others: cores other processes used meanwhile; with the worker, its processes count too)",
    ]


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`manage.py outbox_worker` as production runs it (db_worker, its default interval)."""
    with log.open("a") as out:
        command = [sys.executable, "manage.py", "outbox_worker"]
        return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=out, stderr=out)


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, as a deploy stops them: each finishes its tick (at most 10 s)."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def enqueue(recipients: list[str]) -> None:
    from conversations.outbox import texts_enqueue

    texts_enqueue(pairs=[("", number) for number in recipients], body=BODY)


def unsettled() -> bool:
    from conversations.models import Message

    rows = Message.objects.filter(conversation__sender__startswith=BULK_PREFIX)
    return rows.filter(status__in=("pending", "scheduled", "sending")).exists()


def tick_statuses() -> Counter[str]:
    """The outbox's tasks by state (db_worker's rows): READY ones left once every text has gone
    are ticks enqueued for nothing (helpers that piled up while every process was busy)."""
    from django_tasks_db.models import DBTaskResult

    return Counter(DBTaskResult.objects.values_list("status", flat=True))


def row_statuses() -> Counter[str]:
    from conversations.models import Message

    rows = Message.objects.filter(direction="outbound", conversation__sender__startswith=BULK_PREFIX)
    return Counter(rows.values_list("status", flat=True))


def _ours(posts: list[Post], recipients: list[str]) -> list[Post]:
    wanted = set(recipients)
    return [post for post in posts if post.to in wanted]


def wait(condition: object, within: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench --outbox: {what} not so within {within:.0f} s")
        time.sleep(0.2)
