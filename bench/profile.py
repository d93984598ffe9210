"""`--profile`: py-spy samples the webhook's gunicorn workers during one more webhook run.

The samples go to var/bench-profile.txt in the collapsed-stack format ("frame;frame;... count")
that speedscope and flamegraph.pl read; the report lists where the workers spent their time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

OUTPUT = "var/bench-profile.txt"
RATE = 100  # samples per second: py-spy pauses a worker for each, which slows it
TOP = 15
_LINE_NUMBER = re.compile(r":\d+\)$")
PROJECT = re.compile(r"\((conversations|smsproject)/")


def find_py_spy() -> str | None:
    beside_python = Path(sys.executable).with_name("py-spy")
    return str(beside_python) if beside_python.exists() else shutil.which("py-spy")


@contextmanager
def recording(py_spy: str, master_pid: int, seconds: int, output: Path) -> Iterator[None]:
    """Sample the gunicorn master's workers (not while idle) for `seconds`, into `output`."""
    # Only the thread holding the GIL: Python's CPU time, not threads waiting for a lock, the
    # GIL or the database (SQLite's own work, done without the GIL, is left out too).
    command = [py_spy, "record", "--pid", str(master_pid), "--subprocesses", "--gil", "--format", "raw"]
    command += ["--rate", str(RATE), "--duration", str(seconds), "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield
    finally:
        out, _ = process.communicate(timeout=seconds + 60)
    if process.returncode != 0:
        raise RuntimeError(
            f"py-spy failed ({process.returncode}); it needs ptrace (root or CAP_SYS_PTRACE):\n{out}"
        )


def self_time(collapsed: str) -> tuple[Counter[str], Counter[str]]:
    """Samples per function (line numbers dropped) from collapsed stacks: in the function itself,
    and in the project's own functions with what they call (each counted once per stack)."""
    own: Counter[str] = Counter()
    project: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
            own[frames[-1]] += int(count)
            project.update({frame: int(count) for frame in set(frames) if PROJECT.search(frame)})
    return own, project


def summary(output: Path, texts: int, cpu_ms_per_text: float) -> list[str]:
    """Where the workers held the GIL, in ms per text: each sample stands for 1/RATE s."""
    own, project = self_time(output.read_text())
    total, per_text = sum(own.values()), 1000 / RATE / max(texts, 1)
    lines = [
        f"\nprofile: {OUTPUT} ({total:,} samples at {RATE} Hz, collapsed stacks): the GIL held "
        f"{total * per_text:.2f} ms per text (of the {cpu_ms_per_text:.2f} CPU ms above)"
    ]
    for title, samples in (("self time", own), ("the project's functions, with what they call", project)):
        lines.append(f"  {title}:")
        for function, count in samples.most_common(TOP):
            lines.append(f"  {count / max(total, 1):6.1%} {count * per_text:6.3f} ms  {function}")
    return lines
