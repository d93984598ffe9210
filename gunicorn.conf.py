"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (see `make serve`)."""

import multiprocessing
import os
from pathlib import Path

import environ

# The same .env as Django's settings, so WEB_CONCURRENCY and BIND can live there too.
environ.Env.read_env(Path(__file__).resolve().parent / ".env")

wsgi_app = "smsproject.wsgi:application"
bind = os.environ.get("BIND", "0.0.0.0:8000")
# Sync workers, one per core: a webhook is short and mostly waits on the database, whose
# writes are serialized per pair (and, on SQLite, per database) anyway.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# Twilio gives up on a webhook after 15 seconds; a worker stuck longer is restarted.
timeout = 15
graceful_timeout = 10
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = 10000
max_requests_jitter = 1000
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
# The TLS proxy in front of us sets X-Forwarded-*; Django reads them with USE_X_FORWARDED.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server: object) -> None:
    """Refuse to start on a configuration Django's checks reject (e.g. no TWILIO_AUTH_TOKEN
    with DEBUG off): failing here beats answering every webhook with an error."""
    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsproject.settings")
    django.setup()
    call_command("check")
