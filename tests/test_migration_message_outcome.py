"""Migration 0008: inbound texts recorded before outcomes were kept get the ones their row tells."""

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import TransactionTestCase

BEFORE = [("conversations", "0007_handoff_refusals_segments")]
AFTER = [("conversations", "0008_message_outcome")]


class MessageOutcomeMigrationTestCase(TransactionTestCase):
    def setUp(self) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        apps = executor.loader.project_state(BEFORE).apps
        Conversation = apps.get_model("conversations", "Conversation")
        self.Message = apps.get_model("conversations", "Message")
        conversation = Conversation.objects.create(sender="+14155551234", recipient="+15005550006")
        for sid, body, reply in [
            ("SM1", "Hello", "Friend has messaged +15005550006 1 time."),
            ("SM2", "  stop \n", ""),
            ("SM3", "Anyone?", ""),
            ("SM4", "HELP", ""),
        ]:
            self.Message.objects.create(
                conversation=conversation, direction="inbound", sid=sid, body=body, reply=reply
            )
        self.Message.objects.create(conversation=conversation, direction="outbound", sid="SM5", body="Hi")

    def tearDown(self) -> None:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    def test_it_keeps_only_the_outcomes_a_row_alone_can_tell(self) -> None:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        Message = executor.loader.project_state(AFTER).apps.get_model("conversations", "Message")

        outcomes = dict(Message.objects.values_list("sid", "outcome"))

        # A reply means counted; STOP opted out before any other rule; the rest depended on
        # state that was not kept (blocked then? paused? opted out already?).
        self.assertEqual(outcomes, {"SM1": "counted", "SM2": "opted_out", "SM3": "", "SM4": "", "SM5": ""})
