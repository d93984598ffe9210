"""The production profile: gunicorn config, `check --deploy`, static files, HTTPS."""

import os
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings

from tests.server import BASE_DIR

PRODUCTION_ENV = {
    "DEBUG": "False",
    "SECRET_KEY": "k7#Vq9!pZ2@rT5^wX8&yB3*nM6(cF1)hJ4-dG0_sL9+aQ2=eR5{uI8}oP3[vC6]",
    "ALLOWED_HOSTS": "sms.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://sms.example.com",
    "TWILIO_AUTH_TOKEN": "f0e1d2c3b4a5968778695a4b3c2d1e0f",
    "USE_X_FORWARDED": "True",
    "SECURE_HSTS_PRELOAD": "True",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


class DeployCheckTestCase(SimpleTestCase):
    def test_it_passes_check_deploy_without_a_warning_under_a_production_env(self) -> None:
        result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("System check identified no issues (0 silenced).", result.stdout)

    def test_it_refuses_to_start_gunicorn_without_a_token(self) -> None:
        result = start_gunicorn(TWILIO_AUTH_TOKEN="", BIND="127.0.0.1:0")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("TWILIO_AUTH_TOKEN is not set", result.stderr)

    def test_it_refuses_to_start_gunicorn_with_a_placeholder_secret_key(self) -> None:
        result = start_gunicorn(SECRET_KEY="change-me-to-a-long-random-string", BIND="127.0.0.1:0")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("conversations.E002", result.stderr)
        self.assertIn("SECRET_KEY is a placeholder, but DEBUG is off.", result.stderr)

    def test_it_refuses_to_start_gunicorn_with_metrics_and_no_token(self) -> None:
        result = start_gunicorn(METRICS_ENABLED="True", METRICS_TOKEN="", BIND="127.0.0.1:0")

        self.assertNotEqual(result.returncode, 0)
        self.assertIn("conversations.E021", result.stderr)


class GunicornConfigTestCase(SimpleTestCase):
    def config(self, **env: str) -> dict[str, object]:
        clean = {key: value for key, value in os.environ.items() if key not in {"BIND", "WEB_CONCURRENCY"}}
        with mock.patch.dict(os.environ, {**clean, "ENV_FILE": "", **env}, clear=True):
            return runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))

    def test_it_listens_on_loopback_unless_told_otherwise(self) -> None:
        self.assertEqual(self.config()["bind"], "127.0.0.1:8000")
        self.assertEqual(self.config(BIND="0.0.0.0:9000")["bind"], "0.0.0.0:9000")

    def test_it_runs_the_buffering_worker_as_many_times_as_web_concurrency_says(self) -> None:
        config = self.config(WEB_CONCURRENCY="3")

        self.assertEqual(config["worker_class"], "smsproject.buffering_worker.BufferingWorker")
        self.assertEqual(config["workers"], 3)

    def test_a_master_started_again_may_bind_beside_its_orphaned_workers(self) -> None:
        self.assertIs(self.config()["reuse_port"], True)

    def test_a_worker_gone_is_marked_dead_for_prometheus_and_its_counts_kept(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            for name in ("gauge_livesum_4242.db", "counter_4242.db", "gauge_livesum_4343.db"):
                (Path(directory) / name).write_bytes(b"")
            child_exit = self.config()["child_exit"]

            with mock.patch.dict(os.environ, {"PROMETHEUS_MULTIPROC_DIR": directory}):
                child_exit(None, SimpleNamespace(pid=4242))  # type: ignore[operator]

            self.assertEqual(sorted(os.listdir(directory)), ["counter_4242.db", "gauge_livesum_4343.db"])


@override_settings(SECURE_SSL_REDIRECT=True)
class HttpsTestCase(TestCase):
    def test_it_redirects_plain_http_to_https(self) -> None:
        response = self.client.get("/admin/login/")

        self.assertEqual(response.status_code, 301)
        self.assertEqual(response["Location"], "https://testserver/admin/login/")

    def test_it_answers_healthz_over_plain_http(self) -> None:
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_it_serves_collected_static_files_through_whitenoise(self) -> None:
        with tempfile.TemporaryDirectory() as static_root, override_settings(STATIC_ROOT=static_root):
            call_command("collectstatic", "--no-input", verbosity=0)
            response = self.client.get(
                "/static/admin/css/base.css", secure=True, headers={"Accept-Encoding": "gzip"}
            )

        self.assertEqual(response.status_code, 200)
        self.assertIn("text/css", response["Content-Type"])
        self.assertEqual(response["Content-Encoding"], "gzip")


def start_gunicorn(**env: str) -> subprocess.CompletedProcess[str]:
    """Start gunicorn as production does, with these settings changed; it must stop by itself."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=BASE_DIR,
        env={**os.environ, **PRODUCTION_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
