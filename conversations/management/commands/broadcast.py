from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conversations.broadcast_control import broadcast_create
from conversations.models import Caller
from conversations.outbox import SendError
from conversations.phone import number_of
from conversations.send_at import SendAtError, send_at_of


class Command(BaseCommand):
    help = (
        "Queue one text to many: the numbers given with --to, or every caller not blocked (--callers). "
        "It prints the broadcast's id and counts and returns at once; the worker sends the texts."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("body", help="The text to send.")
        to = parser.add_mutually_exclusive_group(required=True)
        to.add_argument(
            "--to", action="append", dest="their_numbers", metavar="NUMBER", help="A recipient (repeat it)."
        )
        to.add_argument("--callers", action="store_true", help="Every caller that is not blocked.")
        parser.add_argument("--from", dest="our_number", default="", help="Default: TWILIO_FROM_NUMBER.")
        parser.add_argument(
            "--at",
            help=(
                "Send it then: ISO 8601, e.g. 2026-12-24T09:00 (in TIME_ZONE) or 2026-12-24T09:00+01:00. "
                "Recipients in their quiet hours get it in their morning."
            ),
        )

    def handle(self, *args: Any, body: str, our_number: str, **options: Any) -> None:
        if our_number and number_of(our_number) is None:
            raise CommandError(f"--from {our_number!r} is not a phone number in E.164 form (+14155551234).")
        try:
            send_at = send_at_of(options["at"]) if options["at"] else None
        except SendAtError as error:
            raise CommandError(f"--at: {error}") from error
        recipients: dict[str, Any] = (
            {"callers": Caller.objects.filter(blocked=False)}
            if options["callers"]
            else {"their_numbers": options["their_numbers"]}
        )
        try:
            broadcast = broadcast_create(body=body, send_at=send_at, our_number=our_number, **recipients)
        except SendError as error:
            raise CommandError(f"Not sent: {error}") from error
        when = f" at {timezone.localtime(send_at):%Y-%m-%d %H:%M %Z}" if send_at else ""
        self.stdout.write(
            f"Broadcast {broadcast.pk} ({broadcast.status}{when}): {broadcast.counts_label()}. "
            "The worker sends the texts."
        )
