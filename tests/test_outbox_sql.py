"""The worker's claim in SQL (conversations/outbox_sql.py), held to the ORM's rules: the text
MessageQuerySet.ready() puts first in the worker's order, and every refusal flagged."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from conversations.models import Broadcast, Conversation, Message
from conversations.outbox_sql import claim, next_claimable
from conversations.refusals import sending_refusals
from tests import factories

OURS = "+15005550006"
OTHER_OURS = "+15005550007"
NOW = timezone.now()
Status = Message.Status


def pair(sender: str, recipient: str = OURS, **fields: object) -> Conversation:
    return Conversation.objects.create(sender=sender, recipient=recipient, **fields)


def outbound(conversation: Conversation, **fields: object) -> Message:
    values: dict[str, object] = {
        "direction": Message.Direction.OUTBOUND,
        "body": "Hi",
        "status": Status.PENDING,
    }
    return Message.objects.create(conversation=conversation, **{**values, **fields})


class NextClaimableTestCase(TestCase):
    def claimed_in_order(self) -> list[int]:
        """The texts next_claimable() returns one after the other, each claimed then sent."""
        order = []
        while (found := next_claimable(NOW)) is not None:
            order.append(found.message.pk)
            Message.objects.filter(pk=found.message.pk).update(status=Status.SENT)
        return order

    def ready_in_order(self) -> list[int]:
        return list(Message.objects.ready(NOW).order_by("-priority", "pk").values_list("pk", flat=True))

    def test_it_finds_the_texts_ready_sends_in_the_workers_order(self) -> None:
        people = [pair(f"+1415555{n:04d}") for n in range(4)]
        running = Broadcast.objects.create(body="We open at 9", status=Broadcast.Status.SENDING)
        for status in (Broadcast.Status.PAUSED, Broadcast.Status.CANCELED, Broadcast.Status.COMPLETED):
            outbound(people[0], broadcast=Broadcast.objects.create(body="No", status=status))
        outbound(people[0], broadcast=running)
        outbound(people[1], status=Status.SCHEDULED, send_at=NOW - timedelta(minutes=1))
        outbound(people[1], status=Status.SCHEDULED, send_at=NOW + timedelta(minutes=1))  # Not yet.
        outbound(people[2], send_at=NOW + timedelta(seconds=30))  # Backing off after a 429.
        outbound(people[2], priority=Message.Priority.PERSON)
        outbound(people[3])
        for status in (Status.SENDING, Status.QUEUED, Status.UNKNOWN, Status.FAILED, Status.CANCELED):
            outbound(people[3], status=status)
        Message.objects.create(conversation=people[3], direction=Message.Direction.INBOUND, body="Hey")
        expected = self.ready_in_order()

        self.assertEqual(len(expected), 4)
        self.assertEqual(self.claimed_in_order(), expected)

    def test_it_reads_the_text_and_its_pair_as_the_worker_needs_them(self) -> None:
        conversation = pair(factories.SENDER)
        text = outbound(conversation, body="Your table is ready", num_segments=2, attempts=1)

        found = next_claimable(NOW)

        assert found is not None
        message = found.message
        with self.assertNumQueries(0):
            self.assertEqual(
                (message.pk, message.body, message.num_segments, message.attempts, message.broadcast_id),
                (text.pk, "Your table is ready", 2, 1, None),
            )
            self.assertEqual(
                (message.conversation.pk, message.conversation.sender, message.conversation.recipient),
                (conversation.pk, factories.SENDER, OURS),
            )
        self.assertIs(found.maybe_refused, False)

    def test_a_claim_marks_it_sending_with_one_more_attempt(self) -> None:
        text = outbound(pair(factories.SENDER), attempts=2)
        found = next_claimable(NOW)
        assert found is not None

        claim(found.message, NOW)

        text.refresh_from_db()
        self.assertEqual((text.status, text.attempts, text.claimed_at), (Status.SENDING, 3, NOW))
        self.assertEqual(found.message.attempts, 3)
        self.assertIsNone(next_claimable(NOW))


class MaybeRefusedTestCase(TestCase):
    """The flag may say yes for a text that goes (sending_refusals() then says so), never no
    for one that would be refused."""

    def flags(self) -> dict[tuple[str, str], bool]:
        """Each ready text's (our number, their number), and whether the claim flagged it."""
        found: dict[tuple[str, str], bool] = {}
        with transaction.atomic():
            while (claimable := next_claimable(NOW)) is not None:
                conversation = claimable.message.conversation
                found[conversation.recipient, conversation.sender] = claimable.maybe_refused
                Message.objects.filter(pk=claimable.message.pk).update(status=Status.SENT)
            transaction.set_rollback(True)
        return found

    def setUp(self) -> None:
        factories.caller("+14155550666", "Kylo", blocked=True)
        opted_out = pair("+14155550001", opted_out=True)
        marked = {"undeliverable_reason": "Unknown destination", "undeliverable_since": NOW}
        texts = [
            pair("+14155550000"),  # Nothing against it.
            opted_out,
            pair("+14155550001", OTHER_OURS),  # Opted out of our other number only.
            pair("+14155550666"),  # A blocked Caller.
            pair("whatsapp:+14155550666"),  # The blocked Caller, on another channel.
            pair("+14155550002"),
            pair("+14155550003", **marked),
            pair("whatsapp:+14155550004"),
            pair("ACME"),  # A sender ID: no number.
            pair("ACME", OTHER_OURS, opted_out=True),
        ]
        pair("+14155550002", OTHER_OURS, **marked)  # Undeliverable, known from another pair.
        pair("+14155550004", **marked)  # ... or from the number's SMS pair.
        for conversation in texts:
            outbound(conversation)

    def test_every_text_sending_refusals_refuses_is_flagged(self) -> None:
        for through_service in (False, True):
            with self.subTest(through_service=through_service):
                flags = self.flags()
                refused = sending_refusals(flags, through_service=through_service)

                self.assertEqual(len(flags), 10)
                self.assertGreaterEqual(len(refused), 6)
                self.assertEqual({key for key in refused if not flags[key]}, set())

    def test_a_text_nothing_is_known_against_is_not_flagged(self) -> None:
        flags = self.flags()

        self.assertIs(flags[OURS, "+14155550000"], False)
