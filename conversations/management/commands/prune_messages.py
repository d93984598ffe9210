from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from conversations.locks import writer_lock
from conversations.models import Message


class Command(BaseCommand):
    help = "Delete messages older than --days, in small batches, while the webhook keeps answering."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, required=True, help="Keep the messages of the last N days.")
        parser.add_argument("--batch-size", type=int, default=1000, help="Messages deleted per transaction.")

    def handle(self, *args: Any, days: int, batch_size: int, **options: Any) -> None:
        if days < 1 or batch_size < 1:
            raise CommandError("--days and --batch-size must be at least 1.")
        cutoff = timezone.now() - timedelta(days=days)
        old = Message.objects.filter(created_at__lt=cutoff).order_by("pk")
        total = 0
        while True:
            # One short transaction per batch: webhooks waiting for the write lock get it
            # between batches instead of waiting for the whole prune.
            with writer_lock(), transaction.atomic():
                batch = list(old.values_list("pk", flat=True)[:batch_size])
                deleted, _ = Message.objects.filter(pk__in=batch).delete()
            total += deleted
            if len(batch) < batch_size:
                break
            if options["verbosity"] > 1:
                self.stdout.write(f"Deleted {total} messages so far...")
        self.stdout.write(f"Deleted {total} messages older than {days} days.")
