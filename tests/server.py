"""Running the app under gunicorn, as production does, against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO
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
    """The base URL of a running gunicorn, with a handle on its master process."""

    process: subprocess.Popen[str]

    def reload_workers(self) -> None:
        """Replace every worker, as a deploy does: new processes, new database connections."""
        self.process.send_signal(signal.SIGHUP)


@contextmanager
def gunicorn(workers: int = 2, **env: str) -> Iterator[LiveServer]:
    """Serve the app with the production gunicorn config; yield its base URL."""
    port = free_port()
    server_env = {
        **os.environ,
        "ENV_FILE": "",  # Never the developer's .env.
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
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
    ]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=server_env, stdout=log, stderr=log, text=True)
        base_url = LiveServer(f"http://127.0.0.1:{port}")
        base_url.process = process
        try:
            _wait_until_up(base_url, process, log)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=15)


def _wait_until_up(base_url: str, process: subprocess.Popen[str], log: IO[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"gunicorn exited:\n{log.read()}")
        try:
            with urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not come up within 30 seconds")
