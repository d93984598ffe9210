"""The figures, as a table on stdout, and whether the run is valid."""

from __future__ import annotations

import dataclasses
import statistics

from bench.load import ViewRun, WrkResult

# Issue 5's targets.
MIN_RATE_RATIO = 0.5
MAX_TAIL_RATIO = 5.0
MAX_STATEMENTS = 6
MAX_SEEDED_RATIO = 1.2
# Cores other processes may use during a measured run before its figures are suspect.
DISTURBED = 0.1


@dataclasses.dataclass(frozen=True)
class Header:
    database: str
    sessions: str
    workers: int
    threads: int
    connections: int
    pairs: int
    seconds: int
    warmup: int
    load_before: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str
    noop: ViewRun
    webhook: ViewRun
    statements: list[str]  # the SQL of one steady-state text
    statuses: list[int]  # of the in-process texts
    recycled: int  # gunicorn workers restarted during the phase (max_requests)
    problems: list[str]  # error lines in the server's log


@dataclasses.dataclass(frozen=True)
class Seeding:
    callers: int
    conversations: int
    messages: int
    seconds: float
    empty: list[WrkResult]  # webhook runs on the empty copy, alternating with...
    seeded: list[WrkResult]  # ...the same runs on the seeded database


@dataclasses.dataclass
class Check:
    pairs: int
    mismatches: list[str] = dataclasses.field(default_factory=list)
    unanswered: int = 0  # texts in flight when a wrk run stopped
    in_flight_counted: int = 0  # of those, how many the server counted


def show(
    header: Header,
    phases: list[Phase],
    seeding: Seeding | None,
    check: Check,
    problems: list[str],
    *,
    verbose: bool,
) -> bool:
    """Print the report; return whether the run is valid (every request answered 200, counts right)."""
    print()
    print(
        f"{header.database} · {header.sessions} sessions · gunicorn -w {header.workers} (gunicorn.conf.py) · "
        f"wrk -t{header.threads} -c{header.connections} · {header.pairs} pairs · "
        f"{header.seconds} s measured per view after {header.warmup} s warm-up"
    )
    print("load average before the run: " + " ".join(f"{load:.2f}" for load in header.load_before))
    invalid = list(problems)
    for phase in phases:
        _show_phase(phase, verbose)
        invalid += _invalid(phase)
    if seeding is not None:
        _show_seeding(phases, seeding)
    _show_check(check)
    if check.mismatches:
        invalid.append(f"{len(check.mismatches)} pairs' counts disagree with their replies")
    print()
    measured = [run.measured for phase in phases for run in (phase.noop, phase.webhook)]
    if seeding is not None:
        measured += seeding.empty + seeding.seeded
    busiest = max(result.others for result in measured)
    if busiest > DISTURBED:
        print(
            f"DISTURBED: other processes used up to {busiest:.2f} cores meanwhile; repeat on an idle machine."
        )
    if invalid:
        print("INVALID RUN: " + "; ".join(invalid))
    return not invalid


def _show_phase(phase: Phase, verbose: bool) -> None:
    noop, webhook = phase.noop.measured, phase.webhook.measured
    print()
    print(
        f"{phase.name:<16}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'requests':>10}"
        f"{'not 200':>9}{'others':>8}"
    )
    for label, result in (("no-op view", noop), ("webhook /sms/", webhook)):
        print(
            f"  {label:<14}{result.rate:>12,.1f}{result.p50_ms:>10.2f}{result.p99_ms:>10.2f}"
            f"{result.max_ms:>10.1f}{result.requests:>10,}{result.not_ok:>9}{result.others:>8.2f}"
        )
    print(f"  (others: cores used by other processes meanwhile; above {DISTURBED} the run was disturbed)")
    print()
    _target(
        "webhook ÷ no-op, requests/s",
        _ratio(webhook.rate, noop.rate),
        f"≥ {MIN_RATE_RATIO}",
        MIN_RATE_RATIO,
        True,
    )
    _target(
        "webhook p99 ÷ p50",
        _ratio(webhook.p99_ms, webhook.p50_ms),
        f"≤ {MAX_TAIL_RATIO:g}",
        MAX_TAIL_RATIO,
        False,
    )
    statements = len(phase.statements)
    _target("SQL statements per text", statements, f"≤ {MAX_STATEMENTS}", MAX_STATEMENTS, False, digits=0)
    if phase.recycled:
        print(f"  note: gunicorn recycled {phase.recycled} worker(s) during this phase (max_requests)")
    for line in phase.problems[:10]:
        print(f"  server log: {line}")
    if verbose:
        print("  SQL of one steady-state text:")
        for number, statement in enumerate(phase.statements, 1):
            print(f"    {number}. {statement}")


def _show_seeding(phases: list[Phase], seeding: Seeding) -> None:
    before, after = phases[0], phases[-1]
    print()
    print(
        f"seeded {seeding.callers:,} callers, {seeding.conversations:,} conversations, "
        f"{seeding.messages:,} messages in {seeding.seconds:.0f} s"
    )
    # The phases are minutes apart; the no-op view reads no table, so its change is the machine's.
    webhook = _ratio(after.webhook.measured.p50_ms, before.webhook.measured.p50_ms)
    noop = _ratio(after.noop.measured.p50_ms, before.noop.measured.p50_ms)
    print(
        f"  p50, seeded phase ÷ empty phase: webhook {webhook:.2f}, no-op view {noop:.2f} (the machine's drift)"
    )
    print(
        f"  webhook in turns, the empty copy and the seeded database served at once ({len(seeding.empty)} rounds):"
    )
    for label, runs in (("empty copy", seeding.empty), ("seeded", seeding.seeded)):
        p50s = " ".join(f"{run.p50_ms:7.2f}" for run in runs)
        rate = statistics.median(run.rate for run in runs)
        print(f"    {label:<12}p50 ms {p50s}   median {_median_p50(runs):6.2f} ms, {rate:,.0f} requests/s")
        print(f"    {'':<12}others {' '.join(f'{run.others:7.2f}' for run in runs)}")
    ratio = _ratio(_median_p50(seeding.seeded), _median_p50(seeding.empty))
    _target("seeded ÷ empty, median p50", ratio, f"≤ {MAX_SEEDED_RATIO}", MAX_SEEDED_RATIO, False)


def _median_p50(runs: list[WrkResult]) -> float:
    return statistics.median(run.p50_ms for run in runs)


def _show_check(check: Check) -> None:
    print()
    if check.mismatches:
        print(f"correctness: MISMATCH for {len(check.mismatches)} of {check.pairs} pairs")
        for line in check.mismatches[:20]:
            print(f"  {line}")
        return
    in_flight = ""
    if check.unanswered:
        in_flight = (
            f"; of the {check.unanswered} texts in flight when wrk stopped (reply unread), "
            f"the server counted {check.in_flight_counted}"
        )
    print(
        f"correctness: OK, every pair's window_count = its 200 replies, warm-up included ({check.pairs} pairs){in_flight}"
    )


def _invalid(phase: Phase) -> list[str]:
    reasons = []
    for view, run in (("no-op", phase.noop), ("webhook", phase.webhook)):
        for part, result in (("warm-up", run.warmup), ("measured", run.measured)):
            reasons += result_problems(f"{phase.name}, {view} {part}", result, webhook=view == "webhook")
    if any(status != 200 for status in phase.statuses):
        reasons.append(f"{phase.name}: in-process texts answered {phase.statuses}")
    if phase.problems:
        reasons.append(f"{phase.name}: {len(phase.problems)} error lines in the server log")
    return reasons


def result_problems(where: str, result: WrkResult, *, webhook: bool) -> list[str]:
    reasons = []
    if result.not_ok:
        statuses = {status: n for status, n in result.statuses.items() if status != 200}
        errors = {kind: n for kind, n in result.errors.items() if n}
        reasons.append(f"{where}: {result.not_ok} requests not answered 200 {statuses or ''}{errors or ''}")
    if result.exhausted:
        reasons.append(f"{where}: the request file ran out")
    if webhook and result.unmapped:
        reasons.append(f"{where}: {result.unmapped} replies set no known pair's cookie")
    return reasons


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def _target(label: str, value: float, target: str, bound: float, at_least: bool, digits: int = 2) -> None:
    met = value >= bound if at_least else value <= bound
    print(f"  {label:<30}{value:>8.{digits}f}    target {target:<7}{_verdict(met)}")


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"
