"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (see `make serve`)."""

import multiprocessing
import os
import socket
import struct
from pathlib import Path

import environ

# The same .env as manage.py (or the file ENV_FILE names, none when empty), so that
# WEB_CONCURRENCY, BIND and the app's settings can live there too.
_env_file = os.environ.get("ENV_FILE", str(Path(__file__).resolve().parent / ".env"))
if _env_file:
    environ.Env.read_env(_env_file)

wsgi_app = "smsproject.wsgi:application"
# Loopback only: the TLS proxy in front of us is what the world talks to.
bind = os.environ.get("BIND", "127.0.0.1:8000")
# Worker processes, one per core by default.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
# Threaded workers: a connection that is slow to send its request ties up one thread, not a
# whole process, so a few stalled clients cannot take every worker (with sync workers two
# of them held both workers until the timeout). Each thread has its own database
# connection; on SQLite a process's threads queue for the one writer (conversations/locks.py).
# Behind a buffering proxy, `--threads 1` is faster on SQLite (docs/benchmarks.md);
# `--threads` or GUNICORN_CMD_ARGS changes the number.
worker_class = "gthread"
threads = 4
# Twilio gives up on a webhook after 15 seconds; a worker stuck longer is restarted.
timeout = 15
graceful_timeout = 10
# Seconds a connection may stay silent while sending its request or reading the answer.
SOCKET_TIMEOUT = 10
# Recycle workers now and then so that a slow leak cannot grow without bound.
max_requests = 10000
max_requests_jitter = 1000
accesslog = os.environ.get("ACCESS_LOG") or None
errorlog = "-"
# Only these peers (the TLS proxy) may set X-Forwarded-Proto, which gunicorn turns into the
# request's scheme; Django applies the same list to X-Forwarded-Host (conversations/proxies.py).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def on_starting(server: object) -> None:
    """Refuse to start on a configuration Django's checks reject (e.g. no TWILIO_AUTH_TOKEN
    or an unsafe SECRET_KEY with DEBUG off): failing here beats answering every request
    with an error."""
    import django
    from django.core.management import call_command

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsproject.settings")
    django.setup()
    call_command("check")


def when_ready(server: object) -> None:
    """Give up on a client that stops sending (or reading) for SOCKET_TIMEOUT seconds.

    A gthread worker reads a request's headers in one of its threads, with no time limit of
    its own: a client that sends half its headers and stalls would hold that thread for as
    long as it keeps the connection open. Connections inherit these kernel timeouts from
    the listening socket, so such a read fails, and the thread is freed, instead.
    """
    timeout = struct.pack("ll", SOCKET_TIMEOUT, 0)
    for listener in server.LISTENERS:  # type: ignore[attr-defined]
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
