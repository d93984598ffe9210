"""The test suite's settings: the app's own, on a fixed development environment.

Nothing here or in the app's settings reads the local .env, so a developer's TWILIO_AUTH_TOKEN
or DEBUG=False there cannot change what the tests see. The environment still wins (CI sets
DATABASE_URL and REDIS_URL).
"""

import os
import secrets

# The processes the tests start (gunicorn, manage.py) inherit this and read no .env either.
os.environ["ENV_FILE"] = ""
os.environ.setdefault("DEBUG", "True")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
# Texts leave as fast as the tests can send them, unless a test is about the pace.
os.environ.setdefault("SMS_SEND_RATE", "1000")

from smsproject.settings import *  # noqa: F403
