"""The admin's "Send a text" on many callers: queued in one go, answered at once."""

from __future__ import annotations

import math

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.db.models import Model
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from conversations.models import Caller, Conversation, Message
from conversations.outbox import BATCH
from tests.factories import superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, TwilioTestCase

CHANGELIST = "/admin/conversations/caller/"


def batches(model: type[Model], rows: int) -> int:
    """The INSERTs of a bulk_create: the outbox's own batches of at most BATCH rows."""
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    size = connection.ops.bulk_batch_size(fields, [None] * rows)
    return math.ceil(rows / (size if model is LogEntry else min(BATCH, size)))


def lookups(rows: int) -> int:
    """The outbox's reads by BATCH numbers: the refusals (two) and the conversations (one)."""
    return 3 * math.ceil(rows / BATCH)


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_FROM_NUMBER=RECIPIENT)
class AdminBulkSendTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(superuser())

    def callers(self, count: int, start: int = 0) -> list[int]:
        callers = [
            Caller(phone_number=f"+1415555{n:04d}", name=f"Caller {n}") for n in range(start, start + count)
        ]
        return [caller.pk for caller in Caller.objects.bulk_create(callers)]

    def send_to(self, pks: list[int], *, every_caller: bool = False) -> int:
        """The action's form, sent; how many SQL statements the request ran. `every_caller`:
        "Select all N callers" across the list's pages, as staff texting everyone do."""
        form = {"action": "send_text", "_selected_action": pks, "send": "1", "body": "Open at 9."}
        form |= {"our_number": RECIPIENT, "select_across": "1" if every_caller else "0", "index": "0"}
        api = FakeTwilioApi()
        with api.serving(), CaptureQueriesContext(connection) as queries:
            response = self.client.post(CHANGELIST, form)
        self.assertEqual(response.status_code, 302)
        self.assertEqual(api.requests, [])  # No web request calls Twilio: the worker does.
        return len(queries)

    def test_it_queues_a_text_for_each_of_1000_callers_without_a_query_per_caller(self) -> None:
        self.send_to(self.callers(10), every_caller=True)  # Warm: content types are cached.
        few = self.send_to([Caller.objects.first().pk], every_caller=True)  # type: ignore[union-attr]
        many = self.send_to(self.callers(1000, start=10)[:1], every_caller=True)

        self.assertEqual(Message.objects.filter(status="pending").count(), 10 + 10 + 1010)
        # The same statements for 10 callers as for 1,010, but for the batches that bulk
        # inserts are cut into where the database limits a statement's parameters (SQLite).
        extra = sum(batches(model, 1010) - batches(model, 10) for model in (Conversation, Message, LogEntry))
        extra += lookups(1010) - lookups(10)
        self.assertEqual(many, few + extra)

    def test_it_records_the_refused_and_queues_the_rest(self) -> None:
        pks = self.callers(3)
        Caller.objects.filter(pk=pks[0]).update(blocked=True)
        Conversation.objects.create(sender="+14155550001", recipient=RECIPIENT, opted_out=True)

        self.send_to(pks)

        statuses = dict(Message.objects.values_list("conversation__sender", "status"))
        self.assertEqual(
            statuses, {"+14155550000": "canceled", "+14155550001": "canceled", "+14155550002": "pending"}
        )
        self.assertIn("is a blocked caller", Message.objects.get(conversation__sender="+14155550000").error)
