from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.twilio import RECIPIENT, SENDER


class PruneMessagesTestCase(TestCase):
    def setUp(self) -> None:
        self.conversation = Conversation.objects.create(sender=SENDER, recipient=RECIPIENT, lifetime_count=7)
        for age in (1, 29, 31, 45, 100, 365, 400):
            message = Message.objects.create(
                conversation=self.conversation, direction="inbound", body=f"{age} days"
            )
            Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=age))

    def prune(self, *args: str) -> str:
        out = StringIO()
        call_command("prune_messages", *args, stdout=out)
        return out.getvalue()

    def test_it_deletes_messages_older_than_the_given_days(self) -> None:
        output = self.prune("--days", "30")

        self.assertEqual(sorted(Message.objects.values_list("body", flat=True)), ["1 days", "29 days"])
        self.assertIn("Deleted 5 messages older than 30 days.", output)

    def test_it_deletes_in_batches(self) -> None:
        output = self.prune("--days", "30", "--batch-size", "2", "--verbosity", "2")

        self.assertIn("Deleted 2 messages so far...", output)
        self.assertIn("Deleted 4 messages so far...", output)
        self.assertEqual(Message.objects.count(), 2)

    def test_it_keeps_the_conversation_and_its_counts(self) -> None:
        self.prune("--days", "1")

        self.conversation.refresh_from_db()
        self.assertEqual(self.conversation.lifetime_count, 7)

    def test_it_needs_a_positive_number_of_days(self) -> None:
        with self.assertRaisesMessage(CommandError, "--days and --batch-size must be at least 1."):
            self.prune("--days", "0")
        self.assertEqual(Message.objects.count(), 7)
