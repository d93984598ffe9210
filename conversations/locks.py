"""One writer at a time on SQLite, handed over without sleeping.

SQLite serializes writers itself, but a writer that finds the database locked polls it,
sleeping 1, 2, 5, 10… ms between tries, so waiting processes idle while the lock is free.
A blocking flock() on a file beside the database wakes the next writer as soon as the
current one releases it. PostgreSQL needs none of this: its row locks wake waiters at once.
"""

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

# flock() locks belong to an open file, so each thread needs its own to exclude the others.
_files = threading.local()


def _lock_file(path: str) -> int:
    files: dict[str, object] = _files.__dict__.setdefault("by_path", {})
    if path not in files:
        files[path] = open(path, "a+b")  # noqa: SIM115  (kept open for the thread's life)
    return files[path].fileno()  # type: ignore[attr-defined]


@contextmanager
def writer_lock(using: str = "default") -> Iterator[None]:
    connection = connections[using]
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        yield
        return
    fd = _lock_file(f"{connection.settings_dict['NAME']}.lock")
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
