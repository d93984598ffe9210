"""A PostgreSQL cluster of the test's own, to restart without touching anyone else's."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import unittest
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.server import BASE_DIR, free_port


class PostgresServer:
    def __init__(self, bindir: str, directory: str) -> None:
        self.bindir, self.data = bindir, os.path.join(directory, "data")
        self.directory = directory
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/sms"

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bindir, tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root.
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-w", *args)

    def create(self) -> None:
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres")
        self._pg_ctl("start")
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as db:
            db.execute("CREATE DATABASE sms")

    def restart(self) -> None:
        """A fast restart: open transactions are aborted and every connection is dropped."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")

    def migrate(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.url, "DEBUG": "True", "SECRET_KEY": "x" * 50}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=BASE_DIR, env=env, check=True
        )

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        raise unittest.SkipTest("PostgreSQL is not installed (apt-get install postgresql)")
    directory = tempfile.mkdtemp(prefix="sms-pg-")
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(directory, postgres.pw_uid, postgres.pw_gid)
    server = PostgresServer(bindirs[-1], directory)
    try:
        server.create()
        server.migrate()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
