import os
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from conversations.tasks import outbox_rouse


class Command(BaseCommand):
    help = (
        "Run the worker that sends the outbox's texts, for TASKS_BACKEND: django-tasks-db's db_worker "
        "(db), or an RQ worker with its scheduler (rq). It wakes the outbox first, so texts that "
        "waited while no worker ran go at once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reload", action="store_true", help="Restart on code changes (db only).")
        parser.add_argument("--interval", default="1", help="Seconds between looks for tasks (db only).")

    def handle(self, *args: Any, reload: bool, interval: str, **options: Any) -> None:
        # Behind the web server for the CPU (settings.OUTBOX_WORKER_NICE); inherited by the
        # processes it starts (--reload's child, RQ's work horses).
        os.nice(settings.OUTBOX_WORKER_NICE)
        outbox_rouse()
        if settings.TASKS_BACKEND == "rq":
            # SimpleWorker runs each tick in this process instead of a fork per task: a tick is
            # short and idempotent, and a fork per tick would leave Prometheus a file set per
            # forked pid (multiprocess mode) that every scrape reads until the web server starts.
            call_command(
                "rqworker",
                "default",
                "--with-scheduler",
                "--job-class",
                "django_tasks_rq.Job",
                "--worker-class",
                "rq.worker.SimpleWorker",
            )
        else:
            flags = ["--reload" if reload else "--no-reload", "--no-startup-delay", "--interval", interval]
            call_command("db_worker", *flags)
