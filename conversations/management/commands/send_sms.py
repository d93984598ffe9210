from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from conversations.outbox import QuietHoursError, SendError, text_cancel, text_enqueue
from conversations.phone import number_of
from conversations.send_at import SendAtError, send_at_of


class Command(BaseCommand):
    help = (
        "Queue a text in the outbox: the worker (manage.py db_worker) sends it through Twilio and opens "
        "the pair's conversation, so the reply continues it. --at schedules it; --cancel ID cancels a "
        "text that has not gone yet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("body", nargs="?", help="The text to send.")
        parser.add_argument(
            "--from",
            dest="our_number",
            default=settings.TWILIO_FROM_NUMBER,
            help=(
                "Your Twilio number, in E.164 (default: TWILIO_FROM_NUMBER; optional with "
                "TWILIO_MESSAGING_SERVICE_SID, whose pool then picks the sender)."
            ),
        )
        parser.add_argument("--to", dest="their_number", help="The recipient, in E.164.")
        parser.add_argument("--force", action="store_true", help="Send even in the recipient's QUIET_HOURS.")
        parser.add_argument(
            "--at",
            help=(
                "Send it then: ISO 8601, e.g. 2026-12-24T09:00 (in TIME_ZONE) or 2026-12-24T09:00+01:00. "
                "In the recipient's quiet hours it waits for their morning."
            ),
        )
        parser.add_argument(
            "--cancel", type=int, metavar="ID", help="Cancel the text with this id, if it has not gone yet."
        )

    def handle(
        self, *args: Any, body: str | None, our_number: str, their_number: str | None, **options: Any
    ) -> None:
        if options["cancel"] is not None:
            try:
                message = text_cancel(options["cancel"])
            except SendError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(f"Canceled text {message.pk}.")
            return
        if not body or not their_number:
            raise CommandError("Give the text and --to (or --cancel ID).")
        if not our_number and not settings.TWILIO_MESSAGING_SERVICE_SID:
            raise CommandError("Give --from or set TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID).")
        numbers = (
            (("--from", our_number), ("--to", their_number)) if our_number else (("--to", their_number),)
        )
        for label, number in numbers:
            if number_of(number) is None:
                raise CommandError(f"{label} {number!r} is not a phone number in E.164 form (+14155551234).")
        try:
            send_at = send_at_of(options["at"]) if options["at"] else None
        except SendAtError as error:
            raise CommandError(f"--at: {error}") from error
        try:
            message = text_enqueue(
                our_number=our_number,
                their_number=their_number,
                body=body,
                force=options["force"],
                send_at=send_at,
            )
        except QuietHoursError as error:
            raise CommandError(f"Not sent: {error} Add --force to send it now.") from error
        except SendError as error:
            raise CommandError(f"Not sent: {error}") from error
        when = f" at {timezone.localtime(message.send_at):%Y-%m-%d %H:%M %Z}" if message.send_at else ""
        self.stdout.write(
            f"Queued text {message.pk} to {their_number} ({message.status}{when}): the worker sends it."
        )
