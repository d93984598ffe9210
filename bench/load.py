"""Running wrk with bench/wrk.lua and reading what its done() printed."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from bench.progress import countdown

SCRIPT = Path(__file__).with_name("wrk.lua")
# Twilio gives up after 15 s; wrk's default of 2 s would hide slow replies as errors.
TIMEOUT = "15s"


@dataclasses.dataclass(frozen=True)
class Load:
    """How hard to push: the same for the no-op view and the webhook."""

    threads: int
    connections: int


@dataclasses.dataclass
class WrkResult:
    requests: int = 0
    seconds: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    errors: Counter[str] = dataclasses.field(default_factory=Counter)
    sent: Counter[int] = dataclasses.field(default_factory=Counter)  # per pair index
    ok: Counter[int] = dataclasses.field(default_factory=Counter)  # 200s per pair index
    unmapped: int = 0  # 200s whose cookie names no pair
    exhausted: int = 0  # requests wanted after the file ran out
    others: float = 0.0  # cores other processes used meanwhile (see bench/cpu.py)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def not_ok(self) -> int:
        """Replies other than 200, and requests that got no reply because of an error."""
        return sum(n for status, n in self.statuses.items() if status != 200) + sum(self.errors.values())

    @property
    def in_flight(self) -> int:
        """Requests sent but unanswered when wrk stopped (the server may still have counted them)."""
        return max(sum(self.sent.values()) - self.requests, 0)


@dataclasses.dataclass(frozen=True)
class ViewRun:
    warmup: WrkResult  # discarded, but its errors still make the run invalid
    measured: WrkResult


def find_wrk() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    wrk: str,
    base_url: str,
    requests_file: Path,
    load: Load,
    seconds: int,
    *,
    path: str | None,
    wrap: bool,
    label: str,
) -> WrkResult:
    command = [
        wrk,
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT}",
        f"-s{SCRIPT}",
        base_url,
        "--",
        str(requests_file),
        str(load.threads),
        path or "-",
        "wrap" if wrap else "once",
    ]
    with countdown(label, seconds):
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or "BENCH requests" not in completed.stdout:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return parse(completed.stdout)


def parse(output: str) -> WrkResult:
    result = WrkResult()
    for line in output.splitlines():
        if not line.startswith("BENCH "):
            continue
        kind, *values = line.split()[1:]
        match kind, values:
            case "requests", [n]:
                result.requests = int(n)
            case "duration_us", [n]:
                result.seconds = int(n) / 1e6
            case "p50_us", [n]:
                result.p50_ms = int(n) / 1e3
            case "p99_us", [n]:
                result.p99_ms = int(n) / 1e3
            case "max_us", [n]:
                result.max_ms = int(n) / 1e3
            case "error", [name, n]:
                result.errors[name] += int(n)
            case "status", [status, n]:
                result.statuses[int(status)] += int(n)
            case "pair", [pair, sent, ok]:
                result.sent[int(pair)] += int(sent)
                result.ok[int(pair)] += int(ok)
            case "unmapped", [n]:
                result.unmapped = int(n)
            case "exhausted", [n]:
                result.exhausted = int(n)
    return result
