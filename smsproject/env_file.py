"""The local .env file, read by the entry points (manage.py, wsgi.py, asgi.py), never by settings.

Settings read only the process environment, so the test suite, which starts from settings
of its own, cannot pick up a developer's .env (a TWILIO_AUTH_TOKEN, DEBUG=False, ...).
"""

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent


def read_env_file() -> None:
    """Load .env (or the file ENV_FILE names; none when ENV_FILE is empty) into os.environ.

    Variables already in the environment win over the file, so deployments and CI can
    override it.
    """
    path = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
    if path:
        environ.Env.read_env(path)
