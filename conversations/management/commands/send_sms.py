from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.outbox import QuietHoursError, SendError, text_enqueue
from conversations.phone import number_of


class Command(BaseCommand):
    help = (
        "Queue a text in the outbox: the worker (manage.py db_worker) sends it through Twilio and opens "
        "the pair's conversation, so the reply continues it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("body", help="The text to send.")
        parser.add_argument(
            "--from",
            dest="our_number",
            default=settings.TWILIO_FROM_NUMBER,
            help=(
                "Your Twilio number, in E.164 (default: TWILIO_FROM_NUMBER; optional with "
                "TWILIO_MESSAGING_SERVICE_SID, whose pool then picks the sender)."
            ),
        )
        parser.add_argument("--to", dest="their_number", required=True, help="The recipient, in E.164.")
        parser.add_argument("--force", action="store_true", help="Send even in the recipient's QUIET_HOURS.")

    def handle(self, *args: Any, body: str, our_number: str, their_number: str, **options: Any) -> None:
        if not our_number and not settings.TWILIO_MESSAGING_SERVICE_SID:
            raise CommandError("Give --from or set TWILIO_FROM_NUMBER (or TWILIO_MESSAGING_SERVICE_SID).")
        numbers = (
            (("--from", our_number), ("--to", their_number)) if our_number else (("--to", their_number),)
        )
        for label, number in numbers:
            if number_of(number) is None:
                raise CommandError(f"{label} {number!r} is not a phone number in E.164 form (+14155551234).")
        try:
            message = text_enqueue(
                our_number=our_number, their_number=their_number, body=body, force=options["force"]
            )
        except QuietHoursError as error:
            raise CommandError(f"Not sent: {error} Add --force to send it now.") from error
        except SendError as error:
            raise CommandError(f"Not sent: {error}") from error
        self.stdout.write(
            f"Queued text {message.pk} to {their_number} ({message.status}): the worker sends it."
        )
