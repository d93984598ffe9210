"""The benchmark's own database: a fresh SQLite file, or a fresh database on the PostgreSQL server."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench import seed

BASE_DIR = Path(__file__).resolve().parent.parent
SQLITE_PATH = BASE_DIR / "var" / "bench.sqlite3"
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")


@dataclasses.dataclass(frozen=True)
class BenchDatabase:
    vendor: str  # "sqlite" or "postgresql"
    url: str  # DATABASE_URL for the app
    sqlite_path: Path | None = None

    @property
    def postgres_name(self) -> str | None:
        return None if self.sqlite_path else urlsplit(self.url).path.lstrip("/")

    def describe(self) -> str:
        if self.sqlite_path:
            return f"SQLite {self.sqlite_path.relative_to(BASE_DIR)}"
        parts = urlsplit(self.url)
        return f"PostgreSQL {parts.hostname}:{parts.port or 5432}{parts.path}"


def fresh_database(app_url: str) -> BenchDatabase:
    """Make an empty database beside the app's: PostgreSQL if DATABASE_URL says so, else SQLite."""
    if urlsplit(app_url).scheme in POSTGRES_SCHEMES:
        url = _bench_postgres_url(app_url)
        seed.recreate_postgres_database(app_url, urlsplit(url).path.lstrip("/"))
        return BenchDatabase("postgresql", url)
    SQLITE_PATH.parent.mkdir(exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
    return BenchDatabase("sqlite", f"sqlite:///{SQLITE_PATH}", SQLITE_PATH)


def twin_of(db: BenchDatabase) -> BenchDatabase:
    """Where --seed keeps a copy of the database as it was before seeding."""
    if db.sqlite_path:
        path = db.sqlite_path.with_name(f"{db.sqlite_path.stem}-empty{db.sqlite_path.suffix}")
        return BenchDatabase("sqlite", f"sqlite:///{path}", path)
    parts = urlsplit(db.url)
    return BenchDatabase("postgresql", urlunsplit(parts._replace(path=f"{parts.path}_empty")))


def copy_database(db: BenchDatabase, twin: BenchDatabase) -> None:
    """Copy `db` to `twin`, replacing it; nothing may be connected to `db` meanwhile."""
    if db.sqlite_path and twin.sqlite_path:
        for suffix in ("-wal", "-shm", ".lock"):
            Path(f"{twin.sqlite_path}{suffix}").unlink(missing_ok=True)
        seed.copy_sqlite(db.sqlite_path, twin.sqlite_path)
    else:
        seed.copy_postgres(db.url, str(twin.postgres_name))


def _bench_postgres_url(app_url: str) -> str:
    """The app's URL with "_bench" added to the database name, so the app's data is never touched."""
    parts = urlsplit(app_url)
    name = parts.path.lstrip("/") or parts.username or "postgres"
    return urlunsplit(parts._replace(path=f"/{name}_bench"))


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        check=True,
    )
