"""Running wrk with bench/wrk.lua and reading what its done() printed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections import Counter
from pathlib import Path

SCRIPT = Path(__file__).with_name("wrk.lua")
# Twilio gives up after 15 s; wrk's default of 2 s would hide slow replies as errors.
TIMEOUT = "15s"
_SCALARS = ("requests", "seconds", "p50_ms", "p99_ms", "max_ms", "unmapped", "exhausted")


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
    others: float = 0.0  # cores other processes used meanwhile (bench/cpu.py)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def not_ok(self) -> int:
        """Replies other than 200, and requests that got no reply because of an error."""
        return sum(n for status, n in self.statuses.items() if status != 200) + sum(self.errors.values())

    def problems(self, where: str) -> list[str]:
        """What makes the run invalid."""
        reasons = []
        if self.not_ok:
            statuses = {status: n for status, n in self.statuses.items() if status != 200}
            errors = {kind: n for kind, n in self.errors.items() if n}
            reasons.append(f"{where}: {self.not_ok} requests not answered 200 {statuses or ''}{errors or ''}")
        if self.exhausted:
            reasons.append(f"{where}: the request file ran out")
        if self.unmapped:
            reasons.append(f"{where}: {self.unmapped} replies set no known pair's cookie")
        return reasons


def run_wrk(
    wrk: str,
    base_url: str,
    file: Path,
    threads: int,
    connections: int,
    seconds: int,
    *,
    wrap: bool,
    pace_ms: int = 0,
) -> WrkResult:
    """wrk -tTHREADS -cCONNECTIONS for `seconds`, sending the lines of `file` (reused if `wrap`);
    each connection waiting `pace_ms` before each request when given (wrk.lua)."""
    command = [
        *(wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT}", f"-s{SCRIPT}"),
        *(base_url, "--", str(file), str(threads), "wrap" if wrap else "once"),
    ]
    env = {**os.environ, "WRK_PACE_MS": str(pace_ms)}
    completed = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if completed.returncode != 0 or "BENCH requests" not in completed.stdout:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    return parse(completed.stdout)


def parse(output: str) -> WrkResult:
    result = WrkResult()
    for line in output.splitlines():
        kind, *values = line.split()[1:] if line.startswith("BENCH ") else [""]
        if kind in _SCALARS:
            setattr(result, kind, type(getattr(result, kind))(values[0]))  # int or float
        elif kind == "error":
            result.errors[values[0]] += int(values[1])
        elif kind == "status":
            result.statuses[int(values[0])] += int(values[1])
        elif kind == "pair":
            pair, sent, ok = map(int, values)
            result.sent[pair] += sent
            result.ok[pair] += ok
    return result
