"""Gunicorn settings for production: `gunicorn -c gunicorn.conf.py` (see `make serve`)."""

import multiprocessing
import os
from pathlib import Path
from typing import Any

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
# The worker (smsproject/buffering_worker.py) reads every connection without blocking and runs
# the app only on a request it holds whole, in the same thread. Why this one (figures in
# docs/benchmarks.md):
# - Slow clients: one stalled in its headers or its body holds a buffer, not a thread or a
#   process (sync workers were held by 2 such clients, gthread's 8 threads by 8; this worker
#   answers /healthz beside 16 + 16 of them).
# - Speed: a text is CPU-bound Python, so with 2 cores more threads per process only trade
#   the GIL back and forth (gthread served 13-31 % fewer texts than sync); this worker has
#   sync's single thread and, unlike sync, keeps connections alive. Side by side on a quiet
#   machine, one `make bench` each (docs/benchmarks.md, issue 20's fourth round), it served
#   1,367 texts/s at 1.25 ms of CPU each, against sync's 864 at 1.85 and gthread's (2 x 4
#   threads) 748 at 2.13. With 3 processes on 2 cores it served fewer (892 at 1.74, measured
#   before that round's lock change, against 1,170 for 2): so one process per core.
# - The deadline: it stamps each request with when its bytes reached the kernel, so time
#   spent queued behind other requests counts against WEBHOOK_DEADLINE.
# A request that waits for a lock (up to WEBHOOK_DEADLINE) holds its whole process, as with
# sync workers: the other workers go on, and on SQLite they would queue for the writer anyway.
worker_class = "smsproject.buffering_worker.BufferingWorker"
# Twilio gives up on a webhook after 15 seconds; a worker stuck longer is restarted.
timeout = 15
graceful_timeout = 10
# Idle kept-alive connections cost this worker a file descriptor, not a thread.
keepalive = 30
# A master started again after a crash binds beside the listener its orphaned workers still
# hold while they finish (they stop when it dies: PR_SET_PDEATHSIG), instead of failing.
# The price: a second server started on the same port by mistake shares it silently.
reuse_port = True
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
    # Before any worker counts: the directory made, an earlier run's files gone (metrics.py).
    from conversations.metrics import multiprocess_dir_prepare

    multiprocess_dir_prepare()


def child_exit(server: object, worker: Any) -> None:
    """A worker gone: prometheus_client's bookkeeping for it (its live gauges go; its counts
    stay, so that totals never drop while the server runs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # Set by the settings when METRICS_ENABLED.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
