"""Serving the app as production does: gunicorn with the repo's config, 2 workers."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

from bench.database import BASE_DIR

WORKERS = 2


@dataclasses.dataclass
class Server:
    base_url: str
    log_path: Path
    pid: int

    def public_url(self, path: str) -> str:
        """What Twilio calls, and signs: https, which the TLS proxy wrk plays turns into http."""
        return self.base_url.replace("http://", "https://", 1) + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def workers_booted(self) -> int:
        """Workers started so far; beyond the first WORKERS, gunicorn recycled some (max_requests)."""
        return self.log().count("Booting worker")

    def problems(self) -> list[str]:
        """Log lines that say something went wrong in the server."""
        markers = ("Traceback", "ERROR", "CRITICAL", "WORKER TIMEOUT", "Internal Server Error")
        return [line for line in self.log().splitlines() if any(marker in line for marker in markers)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """Serve bench.wsgi (the app plus the no-op view) on a free port until the block ends."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "-w",
        str(WORKERS),
        "-b",
        f"127.0.0.1:{port}",
        # After the config file, so that it replaces the config's wsgi_app.
        "bench.wsgi:application",
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env={**os.environ, **env}, stdout=log, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", log_path, process.pid)
    try:
        _wait_until_up(server, process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_until_up(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log()}")
        try:
            with urlopen(f"{server.base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not come up within 30 seconds:\n{server.log()}")
