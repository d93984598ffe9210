"""The webhook's hot path is raw SQL (pair_sql.py); the rules are pinned to a plain ORM version.

The same texts, at the same times, go through the webhook and through tests/orm_reference.py,
each on an empty database; every field of every Conversation, Session and Message must agree.
"""

from __future__ import annotations

import inspect
from datetime import datetime, timedelta
from unittest import mock

from django.contrib.sessions.models import Session
from django.utils import timezone

from conversations import views
from conversations.models import Caller, Conversation, Message
from tests import orm_reference
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase

BLOCKED = "+14155550666"

# (minutes after the start, From, Body, MessageSid number, extra parameters, send the cookie?)
TEXTS: list[tuple[int, str, str, int, dict[str, str], bool]] = [
    (0, SENDER, "Hello", 1, {}, True),  # A new pair.
    (1, SENDER, "Again", 2, {"NumSegments": "1"}, True),  # Continued, with Twilio's cookie.
    (2, SENDER, "Again", 2, {}, True),  # Twilio retries the same MessageSid.
    (3, SENDER, "No cookie", 3, {}, False),  # Continued without a cookie.
    (
        4,
        SENDER,
        "Pictures",
        4,
        {"NumMedia": "2", "MediaUrl0": "https://a/1", "MediaUrl1": "https://a/2"},
        True,
    ),
    (5 * 60, SENDER, "Back", 5, {"NumSegments": "3"}, True),  # After 5 hours: a new window.
    (5 * 60 + 1, BLOCKED, "Let me in", 6, {}, True),  # A blocked caller.
    (5 * 60 + 2, SENDER, "stop", 7, {}, True),  # Opts out.
    (5 * 60 + 3, SENDER, "Anyone?", 8, {}, True),  # Opted out: recorded, not answered.
    (5 * 60 + 4, SENDER, "START", 9, {}, True),  # Opts back in, and is counted.
    (5 * 60 + 5, SENDER, "HELP", 10, {}, True),  # Twilio answers HELP itself.
    (5 * 60 + 6, SENDER, "", 11, {"OptOutType": "STOP"}, True),  # Twilio's own opt-out flag.
    (5 * 60 + 7, f"whatsapp:{SENDER}", "Hola", 12, {}, True),  # A channel address of a Caller.
    (5 * 60 + 8, "ACME", "Sender ID", 13, {}, True),  # An alphanumeric sender.
    (5 * 60 + 9, "ACME", "Again", 14, {}, False),
    (5 * 60 + 10, f"whatsapp:{SENDER}", "Anyone?", 15, {}, True),  # Staff have it: counted, unanswered.
    (5 * 60 + 50, f"whatsapp:{SENDER}", "Hello?", 16, {}, True),  # The pause is over.
    (5 * 60 + 51, BLOCKED, "help", 17, {}, True),  # Blocked before HELP.
    (5 * 60 + 52, BLOCKED, "STOP", 18, {}, True),  # STOP applies whoever sends it.
]
# Staff texted the pair just before the text with this MessageSid number: the bot pauses
# for so many minutes.
HANDED_TO_STAFF = {15: 30}


class RawSqlMatchesOrmTestCase(TwilioTestCase):
    def test_the_webhook_leaves_the_same_rows_as_the_plain_orm_rules(self) -> None:
        through_webhook = self.run_texts(self.send_to_webhook)
        self.empty_database()

        through_orm = self.run_texts(self.send_to_reference)

        self.assertEqual(through_webhook["replies"], through_orm["replies"])
        self.assertEqual(through_webhook["conversations"], through_orm["conversations"])
        self.assertEqual(through_webhook["messages"], through_orm["messages"])

    def run_texts(self, send: object) -> dict[str, list[object]]:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        Caller.objects.create(phone_number=BLOCKED, name="Kylo", blocked=True)
        start = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.get_current_timezone())
        replies = []
        for minutes, sender, body, sid, extra, with_cookie in TEXTS:
            params = {"From": sender, "To": RECIPIENT, "Body": body, "MessageSid": f"SM{sid:032x}", **extra}
            if sid in HANDED_TO_STAFF:
                until = start + timedelta(minutes=minutes + HANDED_TO_STAFF[sid])
                Conversation.objects.filter(sender=sender).update(bot_paused_until=until)
            with mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=minutes)):
                replies.append(send(params, with_cookie))  # type: ignore[operator]
        return {"replies": replies, "conversations": self.conversations(), "messages": self.messages()}

    def send_to_webhook(self, params: dict[str, str], with_cookie: bool) -> str | None:
        extra = {
            key: value for key, value in params.items() if key not in ("From", "Body", "MessageSid", "To")
        }
        response = self.twilio.text(
            params["Body"],
            sender=params["From"],
            sid=params["MessageSid"],
            cookie=None if with_cookie else "",
            **extra,
        )
        self.assertEqual(response.status_code, 200)
        message = response.content.decode()
        return message.split("<Message>")[1].split("</Message>")[0] if "<Message>" in message else None

    def send_to_reference(self, params: dict[str, str], with_cookie: bool) -> str | None:
        return orm_reference.receive(params, inspect.unwrap(views.sms))

    def empty_database(self) -> None:
        Message.objects.all().delete()
        Conversation.objects.all().delete()
        Session.objects.all().delete()
        Caller.objects.all().delete()

    def conversations(self) -> list[dict[str, object]]:
        rows = []
        for conversation in Conversation.objects.order_by("sender", "recipient"):
            row = {
                field.name: getattr(conversation, field.attname)
                for field in Conversation._meta.concrete_fields
            }
            del row["id"], row["session"]
            session = Session.objects.filter(pk=conversation.session_id).first()
            row["session"] = (session.get_decoded(), session.expire_date) if session else None
            rows.append(row)
        return rows

    def messages(self) -> list[dict[str, object]]:
        rows = []
        for message in Message.objects.select_related("conversation").order_by("created_at", "pk"):
            row = {field.name: getattr(message, field.attname) for field in Message._meta.concrete_fields}
            del row["id"], row["conversation"]
            row["pair"] = (message.conversation.sender, message.conversation.recipient)
            rows.append(row)
        return rows
