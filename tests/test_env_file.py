"""The local .env configures `make run`, gunicorn and manage.py commands, never the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.test import SimpleTestCase

from tests.server import BASE_DIR

# What a developer may well have in .env, each of which used to turn the suite red.
HOSTILE_ENV_FILE = """\
DEBUG=False
SECRET_KEY=change-me
TWILIO_AUTH_TOKEN=0123456789abcdef0123456789abcdef
TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
LOG_FORMAT=json
LOG_LEVEL=CRITICAL
TIME_ZONE=Europe/Paris
"""
# The variables this suite sets for itself and for the processes it starts.
SUITE_VARIABLES = {"ENV_FILE", "DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}


@pytest.mark.slow
class EnvFileTestCase(SimpleTestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.project = Path(tempfile.mkdtemp()) / "project"
        shutil.copytree(
            BASE_DIR,
            cls.project,
            ignore=shutil.ignore_patterns(".git", ".venv", "var", "staticfiles", "*.sqlite3*", "__pycache__"),
        )
        (cls.project / ".env").write_text(HOSTILE_ENV_FILE)

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.project.parent)
        super().tearDownClass()

    def run_in_project(self, *command: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if key not in SUITE_VARIABLES}
        return subprocess.run(
            [sys.executable, *command], cwd=self.project, env=env, capture_output=True, text=True, timeout=300
        )

    def test_pytest_passes_whatever_the_env_file_says(self) -> None:
        result = self.run_in_project("-m", "pytest", "-q", "tests/test_sms.py")

        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])

    def test_manage_py_test_passes_whatever_the_env_file_says(self) -> None:
        result = self.run_in_project("manage.py", "test", "tests.test_sms", "-v", "0")

        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])

    def test_other_manage_py_commands_read_the_env_file(self) -> None:
        result = self.run_in_project(
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.TIME_ZONE, settings.DEBUG)",
        )

        self.assertEqual(result.stdout.strip().splitlines()[-1], "Europe/Paris False", result.stderr)
