"""How much of the CPU went to processes other than the benchmark's, while it measured.

The machine has 2 cores and other people's test suites may run on it, so each measured run
reports the cores that neither the server, nor wrk, nor this process used (nor, on
PostgreSQL, the database server's own processes and its backends for the bench database):
near 0 means the figures are the app's; a few tenths means the run was disturbed and should
be repeated. Linux only (/proc), like wrk's epoll build.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy (steal included: the host took it from us)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


def _process_seconds(pid: int, *, reaped_children: bool) -> tuple[float, int]:
    """A process's CPU time (with its reaped children's, if asked) and its parent's pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # It exited between listing and reading.
        return 0.0, 0
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    ticks = utime + stime + (cutime + cstime if reaped_children else 0)
    return ticks / TICKS, int(fields[1])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _server_seconds(master: int) -> float:
    """The gunicorn master, its live workers, and the workers it already reaped (recycled)."""
    total, _ = _process_seconds(master, reaped_children=True)
    for pid in _pids():
        if pid != master:
            seconds, parent = _process_seconds(pid, reaped_children=False)
            if parent == master:
                total += seconds
    return total


def _postgres_seconds(database: str) -> float:
    """PostgreSQL's work for the benchmark: the postmaster (with the backends it reaped), its
    helpers (WAL writer, checkpointer...) and the bench database's backends, not the backends
    of other databases ("postgres: 15/main: USER DATABASE HOST(PORT) STATE")."""
    total = 0.0
    for pid in _pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if not title.startswith("postgres:"):  # the postmaster, run by its path
            total += _process_seconds(pid, reaped_children=True)[0]
            continue
        words = title.rsplit(": ", 1)[-1].split()
        client = len(words) >= 3 and (words[2] == "[local]" or "(" in words[2])
        if not client or words[1] == database:
            total += _process_seconds(pid, reaped_children=False)[0]
    return total


def _own_seconds() -> float:
    """This process and its reaped children (wrk, once it has exited)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclasses.dataclass
class Meter:
    server_pid: int
    postgres_database: str | None = None
    _started: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        ours = _server_seconds(self.server_pid) + _own_seconds()
        if self.postgres_database:
            ours += _postgres_seconds(self.postgres_database)
        return time.monotonic(), _busy_seconds(), ours

    def start(self) -> None:
        self._started = self._now()

    def others(self) -> float:
        """Cores used by other processes since start(), on average."""
        wall, busy, ours = (now - then for now, then in zip(self._now(), self._started, strict=True))
        return max(busy - ours, 0.0) / wall if wall else 0.0
