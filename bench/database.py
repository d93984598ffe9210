"""The benchmark's own database: a fresh SQLite file, or a fresh database on the PostgreSQL server."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SQLITE_PATH = BASE_DIR / "var" / "bench.sqlite3"
POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql")


@dataclasses.dataclass(frozen=True)
class BenchDatabase:
    url: str  # DATABASE_URL for the app
    description: str
    postgres_name: str | None = None  # None on SQLite


def fresh_database(app_url: str) -> BenchDatabase:
    """An empty database beside the app's, never the app's own: on PostgreSQL if DATABASE_URL
    says so (the same server, the database's name + "_bench"), else var/bench.sqlite3."""
    parts = urlsplit(app_url)
    if parts.scheme not in POSTGRES_SCHEMES:
        SQLITE_PATH.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{SQLITE_PATH}{suffix}").unlink(missing_ok=True)
        return BenchDatabase(f"sqlite:///{SQLITE_PATH}", f"SQLite {SQLITE_PATH.relative_to(BASE_DIR)}")
    import psycopg
    from psycopg import sql

    name = _bench_name(app_url)
    # Connected to the server's maintenance database, since the app's may not exist yet.
    with psycopg.connect(app_url, dbname="postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    where = f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{name}"
    return BenchDatabase(urlunsplit(parts._replace(path=f"/{name}")), where, name)


def existing_database(app_url: str) -> BenchDatabase:
    """The bench database a previous run left (fresh_database()'s), as it is."""
    parts = urlsplit(app_url)
    if parts.scheme not in POSTGRES_SCHEMES:
        return BenchDatabase(
            f"sqlite:///{SQLITE_PATH}", f"SQLite {SQLITE_PATH.relative_to(BASE_DIR)} (reused)"
        )
    name = _bench_name(app_url)
    where = f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{name} (reused)"
    return BenchDatabase(urlunsplit(parts._replace(path=f"/{name}")), where, name)


def _bench_name(app_url: str) -> str:
    parts = urlsplit(app_url)
    return f"{parts.path.lstrip('/') or parts.username or 'postgres'}_bench"
