"""The report maths (ratios, targets, the count check) and the report on stdout."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

from bench.load import WrkResult

# Cores other processes may use during a measured run before its figures are suspect.
DISTURBED = 0.1


@dataclasses.dataclass(frozen=True)
class Target:
    label: str
    value: float
    bound: float
    at_least: bool  # the value must be >= bound, else <= bound

    @property
    def met(self) -> bool:
        if math.isnan(self.bound):
            return True  # a figure, not a target
        return self.value >= self.bound if self.at_least else self.value <= self.bound

    def line(self) -> str:
        digits = 0 if self.label.startswith("SQL") else 2
        if math.isnan(self.bound):
            return f"  {self.label:<36}{self.value:>8.{digits}f}"
        bound = f"{'≥' if self.at_least else '≤'} {self.bound:g}"
        return f"  {self.label:<36}{self.value:>8.{digits}f}    target {bound:<7}{'met' if self.met else 'MISSED'}"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def targets(
    noop: WrkResult, flask: WrkResult, naive: WrkResult, webhook: WrkResult, statements: int
) -> list[Target]:
    """Issue 20's targets, all measured in one run; the no-op view's ratio is a figure, no target."""
    return [
        Target("project ÷ naive Django, requests/s", ratio(webhook.rate, naive.rate), 1.0, True),
        Target("project ÷ Flask app, requests/s", ratio(webhook.rate, flask.rate), 0.5, True),
        Target("project p99 ÷ p50", ratio(webhook.p99_ms, webhook.p50_ms), 5, False),
        Target("SQL statements per text", statements, 6, False),
        Target("project ÷ no-op view, requests/s", ratio(webhook.rate, noop.rate), math.nan, True),
    ]


def check_counts(
    senders: dict[int, str], answered: Counter[int], unanswered: Counter[int], counts: dict[int, int]
) -> tuple[list[str], str]:
    """Each pair's window_count against the 200 replies its texts got: the pairs that disagree,
    and the report's line. A count may exceed the replies only by texts in flight when wrk
    stopped: the server may have counted them, their replies unread."""
    mismatches, counted = [], 0
    for index, sender in senders.items():
        count, ok, lost = counts.get(index, 0), answered[index], unanswered[index]
        if ok <= count <= ok + lost:
            counted += count - ok
        else:
            mismatches.append(f"{sender}: window_count {count}, 200 replies {ok} (+{lost} unanswered)")
    if mismatches:
        return mismatches, f"correctness: MISMATCH for {len(mismatches)} of {len(senders)} pairs\n  " + (
            "\n  ".join(mismatches[:20])
        )
    return mismatches, (
        f"correctness: OK, every pair's window_count = its 200 replies, warm-up included ({len(senders)} "
        f"pairs); of the {sum(unanswered.values())} texts in flight when wrk stopped, the server counted {counted}"
    )


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    result: WrkResult
    cpu_ms: float  # the server's CPU (gunicorn master and workers) per request


def show(
    header: list[str], rows: list[Row], targets: list[Target], notes: list[str], statements: list[str]
) -> None:
    lines = [
        "",
        *header,
        "",
        f"{'':<18}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'requests':>10}"
        f"{'not 200':>9}{'CPU ms/req':>12}{'others':>8}",
    ]
    for row in rows:
        r = row.result
        lines.append(
            f"  {row.label:<16}{r.rate:>12,.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.max_ms:>9.1f}{r.requests:>10,}"
            f"{r.not_ok:>9}{row.cpu_ms:>12.2f}{r.others:>8.2f}"
        )
    lines.append(
        f"  (CPU ms/req: the servers' processes; others: cores other processes used, over {DISTURBED}: disturbed)"
    )
    lines += ["", *(target.line() for target in targets)]
    if statements:
        lines += [
            "",
            "SQL of one steady-state text:",
            *(f"  {n}. {sql}" for n, sql in enumerate(statements, 1)),
        ]
    print("\n".join([*lines, "", *notes]))
