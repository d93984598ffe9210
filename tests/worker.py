"""The outbox's worker as a real process (`manage.py outbox_worker`: db_worker, or an RQ
worker with TASKS_BACKEND=rq) against the test database, its Twilio API a fake on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from tests.server import BASE_DIR, live_database_url
from tests.twilio import RECIPIENT, TOKEN

ACCOUNT = "AC" + "0" * 32
# The test process's side of what the workers it starts are set to: texts go through Twilio's
# (fake) API from our number, and the webhook checks signatures.
sending_through_twilio = override_settings(
    SMS_BACKEND="twilio",
    TWILIO_ACCOUNT_SID=ACCOUNT,
    TWILIO_AUTH_TOKEN=TOKEN,
    TWILIO_REQUIRE_SIGNATURE=True,
    TWILIO_FROM_NUMBER=RECIPIENT,
)


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log_path = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("a") as log:
            command = [sys.executable, "manage.py", "outbox_worker", "--interval", "0.1"]
            # A session of its own: RQ's worker forks its scheduler, which the kill must take
            # too, as systemd's stop of the unit's control group would.
            self.process = subprocess.Popen(
                command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=log, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL: no goodbye, its task left RUNNING, whatever it was sending in flight."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # Whatever it forked, if left.

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def worker_env(api_url: str, **env: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "FAKE_TWILIO_API": api_url,
        "DATABASE_URL": live_database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": settings.TWILIO_FROM_NUMBER,
        "TWILIO_WEBHOOK_BASE_URL": "http://testserver",
        "TWILIO_TIMEOUT": "1",
        "OUTBOX_POLL": "1",
        "LOG_LEVEL": "WARNING",
        **env,
    }


@contextmanager
def workers(api_url: str, count: int = 1, **env: str) -> Iterator[list[Worker]]:
    """`count` worker processes, stopped (SIGTERM) when the block ends."""
    with tempfile.TemporaryDirectory(prefix="outbox-worker-") as logs:
        started = [Worker(worker_env(api_url, **env), Path(logs) / f"worker-{n}.log") for n in range(count)]
        for worker in started:
            worker.start()
        try:
            yield started
        finally:
            for worker in started:
                worker.stop()
            if os.environ.get("OUTBOX_WORKER_LOGS"):
                for worker in started:
                    print(worker.log())


def wait_for(condition: Callable[[], bool], within: float, what: str, log: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not so within {within} s\n{log()}")
