"""The servers' CPU time, and the cores other processes used meanwhile (Linux /proc): on a
shared machine, near 0 means the figures are the app's, a few tenths that the run was disturbed.
Ours: the gunicorn masters and workers (recycled ones too), this process and its children (wrk,
py-spy), and on PostgreSQL the server's own processes and the bench database's backends."""

from __future__ import annotations

import os
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy (steal included: the host took it from us)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICKS


def _stat(pid: int) -> tuple[float, float, int]:
    """A process's CPU seconds, its reaped children's, and its parent's pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # It exited meanwhile.
        return 0.0, 0.0, 0
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS, int(fields[1])


def process_seconds(pid: int) -> float:
    """A process's own CPU seconds so far (0 once it has exited)."""
    return _stat(pid)[0]


def _postgres_seconds(pid: int, database: str) -> float:
    """The postmaster's CPU seconds (with its reaped backends'), its helpers', and those of the bench
    database's backends ("postgres: 15/main: USER DATABASE HOST(PORT) STATE"), not other databases'."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return 0.0
    if comm != "postgres":
        return 0.0
    seconds, reaped, _ = _stat(pid)
    if not title.startswith("postgres:"):  # the postmaster, run by its path
        return seconds + reaped
    words = title.rsplit(": ", 1)[-1].split()
    backend = len(words) >= 3 and ("(" in words[2] or words[2] == "[local]")
    return 0.0 if backend and words[1] != database else seconds


class Meter:
    def __init__(self, servers: list[int], postgres_database: str | None) -> None:
        self.servers, self.postgres_database = servers, postgres_database
        self.elapsed: list[float] = []
        self.started = self._now()

    def _now(self) -> tuple[float, float, float, float]:
        """Wall clock, the machine's busy seconds, ours, and the servers' alone."""
        times = os.times()
        ours = times.user + times.system + times.children_user + times.children_system
        servers = 0.0
        for pid in (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()):
            seconds, reaped, parent = _stat(pid)
            if pid in self.servers:
                servers += seconds + reaped
            elif parent in self.servers:
                servers += seconds
            elif self.postgres_database:
                ours += _postgres_seconds(pid, self.postgres_database)
        return time.monotonic(), _busy_seconds(), ours + servers, servers

    def stop(self) -> None:
        self.elapsed = [now - then for now, then in zip(self._now(), self.started, strict=True)]

    def others(self) -> float:
        """Cores used by other processes between start and stop, on average."""
        wall, busy, ours, _ = self.elapsed
        return max(busy - ours, 0.0) / wall if wall else 0.0

    def server_seconds(self) -> float:
        """CPU seconds the servers used between start and stop."""
        return self.elapsed[3]
