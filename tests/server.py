"""Running the app under gunicorn with the production config: the tests' live server and `make bench`'s.

`serve()` starts gunicorn on a free port with exactly the environment it is given; `gunicorn()`
is the tests' server on top of it, against the test database with the test settings.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

from django.conf import settings
from django.db import connection

from tests.twilio import TOKEN

BASE_DIR = Path(__file__).resolve().parent.parent


def live_database_url() -> str:
    """A DATABASE_URL for the database this test run created."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user, password = quote(db["USER"] or "", safe=""), quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer(str):
    """The base URL of a running gunicorn, with a handle on its master process and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def reload_workers(self) -> None:
        """Replace every worker, as a deploy does: new processes, new database connections."""
        self.process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        """What gunicorn and the app wrote to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace")


def gunicorn_command(workers: int, *args: str) -> list[str]:
    """`gunicorn -c gunicorn.conf.py -w WORKERS ARGS...`; an app among `args` replaces the config's."""
    return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", str(workers), *args]


@contextmanager
def serve(
    env: Mapping[str, str],
    workers: int = 2,
    args: Sequence[str] = (),
    ready_path: str = "/healthz",
    config: bool = True,
) -> Iterator[LiveServer]:
    """Serve with the production gunicorn config on a free port until the block ends; yield its URL.

    `env` is the server's whole environment, read by no .env file. The server is up once
    `ready_path` answers 200. Without `config`, gunicorn runs on its own defaults (`gunicorn
    -w WORKERS`), from a directory where it finds no gunicorn.conf.py to read by itself.
    """
    port = free_port()
    bind = ("-b", f"127.0.0.1:{port}")
    if config:
        command = gunicorn_command(workers, *bind, *args)
    else:
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), *bind, *args]
        env = {**env, "PYTHONPATH": str(BASE_DIR)}
    with tempfile.TemporaryDirectory(prefix="gunicorn-") as logs:
        server = LiveServer(f"http://127.0.0.1:{port}")
        server.log_path = Path(logs) / "gunicorn.log"
        with server.log_path.open("w") as log:
            server.process = subprocess.Popen(
                command, cwd=BASE_DIR if config else logs, env={**env, "ENV_FILE": ""}, stdout=log, stderr=log
            )
        try:
            wait_until_up(server, ready_path)
            yield server
        finally:
            server.process.terminate()
            server.process.wait(timeout=15)


@contextmanager
def gunicorn(workers: int = 2, **env: str) -> Iterator[LiveServer]:
    """Serve the app on the test database, as production does, with the tests' secret key and token."""
    with serve(live_server_env(**env), workers) as server:
        yield server


def live_server_env(**env: str) -> dict[str, str]:
    """The environment of `gunicorn()`: the test database, the tests' secret key and token."""
    return {
        **os.environ,
        "DATABASE_URL": live_database_url(),
        "DEBUG": "False",
        "SECRET_KEY": settings.SECRET_KEY,  # So the tests can read the sessions it signs.
        "TWILIO_AUTH_TOKEN": TOKEN,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "SECURE_SSL_REDIRECT": "False",  # Plain HTTP on loopback, no TLS proxy in front.
        "SESSION_COOKIE_SECURE": "False",
        **env,
    }


def wait_until_up(server: LiveServer, ready_path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log()}")
        try:
            with urlopen(f"{server}{ready_path}", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not come up within 30 seconds:\n{server.log()}")
