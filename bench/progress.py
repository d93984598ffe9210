"""Progress on stderr, so that a two-minute run never looks stuck."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_started = time.monotonic()


def step(message: str) -> None:
    print(f"[{time.monotonic() - _started:5.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def countdown(label: str, seconds: int) -> Iterator[None]:
    """Announce a timed run; on a terminal, tick the seconds off in place."""
    step(f"{label}: {seconds} s")
    if not sys.stderr.isatty():
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        begun = time.monotonic()
        while not stop.wait(1):
            done = min(int(time.monotonic() - begun), seconds)
            print(f"\r        {label}: {done}/{seconds} s ", end="", file=sys.stderr, flush=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        print("\r\033[K", end="", file=sys.stderr, flush=True)


class Bar:
    """A plain progress line for bulk loads: 'callers  420,000/1,000,000  42%  3.1 s'."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self.begun = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_shown = -1.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        # On a terminal redraw in place; in a log, a line every 5 seconds.
        if self.tty or now - self.last_shown >= 5:
            self.last_shown = now
            self._show()

    def note(self, text: str) -> None:
        """Say what happens after the rows (building indexes), which takes a while too."""
        self._show(f"  {text}")

    def close(self) -> None:
        self._show(end="\n")

    def _show(self, note: str = "", end: str = "") -> None:
        share = self.done / self.total if self.total else 1
        line = f"        {self.label:<14}{self.done:>11,}/{self.total:,}  {share:4.0%}  {time.monotonic() - self.begun:5.1f} s"
        if self.tty:
            print(f"\r\033[K{line}{note}", end=end, file=sys.stderr, flush=True)
        else:
            print(f"{line}{note}", file=sys.stderr, flush=True)
