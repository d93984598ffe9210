"""Text the app the way Twilio would, without Twilio, and print its reply."""

from __future__ import annotations

import json
import logging
import os
import time
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from conversations.as_twilio import DEFAULT_RECIPIENT, DEFAULT_SENDER, CookieJars, Rejected, send_as_twilio
from conversations.phone import address_from_input


def jar_path() -> Path:
    return Path(settings.SMS_COOKIE_JAR)


class Command(BaseCommand):
    help = (
        "Send TEXT to the webhook as Twilio would (signed when TWILIO_AUTH_TOKEN is set, with the "
        "pair's cookies kept between runs) and print the reply. -v 2 shows the webhook's log line."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("text", metavar="TEXT", help="The body of the text.")
        parser.add_argument(
            "--from",
            dest="sender",
            default=DEFAULT_SENDER,
            metavar="NUMBER",
            help="The texting party, as people type it: (415) 555-0142, +14155550142, whatsapp:+1…",
        )
        parser.add_argument(
            "--to", dest="recipient", default=DEFAULT_RECIPIENT, metavar="NUMBER", help="The app's number."
        )
        parser.add_argument(
            "--url", help="Call a running server, e.g. http://127.0.0.1:8000/sms/ (default: in-process)."
        )
        parser.add_argument("--raw", action="store_true", help="Print the TwiML instead of the reply text.")
        parser.add_argument(
            "--media", action="append", default=[], metavar="URL", help="Attach a media URL (repeatable)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = jar_path()
        jars = CookieJars(_load(path))
        try:
            with _quiet_webhook(in_process=not options["url"], verbosity=options["verbosity"]):
                delivery = send_as_twilio(
                    options["text"],
                    # "(415) 555-0142" is the pair of "+14155550142", as in the admin and the simulator.
                    address_from_input(options["sender"]),
                    address_from_input(options["recipient"]),
                    url=options["url"],
                    jars=jars,
                    media=options["media"],
                )
        except Rejected as error:
            raise CommandError(str(error)) from error
        finally:
            # Even a rejected answer may set or delete cookies, as it would for Twilio.
            _save(path, jars.to_dict(time.time()))
        if options["raw"]:
            self.stdout.write(delivery.twiml)
        else:
            self.stdout.write(delivery.reply if delivery.reply is not None else "(no reply)")


@contextmanager
def _quiet_webhook(*, in_process: bool, verbosity: int) -> Iterator[None]:
    """Keep the webhook's own log line (a server's business) off the terminal, unless -v 2."""
    logger = logging.getLogger("conversations")
    level = logger.level
    if in_process and verbosity < 2:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}  # No jar yet, or a damaged one: like Twilio losing a cookie, which it sometimes does.
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside and rename, so an interrupted run never leaves half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)
