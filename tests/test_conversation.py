from datetime import timedelta

from django.contrib.sessions.models import Session
from django.test import TestCase
from django.utils import timezone

from conversations import pair_sql
from conversations.models import Caller, Conversation, Message
from tests.twilio import RECIPIENT, SENDER


class ConversationTestCase(TestCase):
    def setUp(self) -> None:
        self.now = timezone.now()
        self.session = Session.objects.create(
            session_key="k" * 32, session_data="data", expire_date=self.now + timedelta(minutes=5)
        )
        self.conversation = Conversation.objects.create(
            sender=f"whatsapp:{SENDER}", recipient=RECIPIENT, session=self.session
        )

    def test_it_is_paused_until_the_pause_ends(self) -> None:
        self.assertIs(self.conversation.bot_paused(self.now), False)
        self.conversation.bot_paused_until = self.now + timedelta(minutes=1)

        self.assertIs(self.conversation.bot_paused(self.now), True)
        self.assertIs(self.conversation.bot_paused(self.now + timedelta(minutes=1)), False)

    def test_it_lists_paused_conversations_as_the_model_tells_them(self) -> None:
        Conversation.objects.update(bot_paused_until=self.now + timedelta(minutes=1))

        self.assertEqual(list(Conversation.objects.bot_paused(self.now)), [self.conversation])
        self.assertEqual(list(Conversation.objects.bot_paused(self.now + timedelta(minutes=1))), [])

    def test_its_window_is_live_until_the_session_expires(self) -> None:
        self.assertIs(self.conversation.window_live(self.now), True)
        self.assertIs(self.conversation.window_live(self.now + timedelta(minutes=5)), False)
        self.conversation.session = None
        self.assertIs(self.conversation.window_live(self.now), False)

    def test_its_steady_statement_reads_the_window_as_window_live_does(self) -> None:
        for now in (self.now, self.now + timedelta(minutes=5)):
            locked = Conversation.objects.locked_for_text(
                self.conversation.sender, RECIPIENT, sid=None, now=now
            )

            self.assertEqual(locked.window_data is not None, self.conversation.window_live(now))

    def test_it_finds_the_caller_by_the_senders_number_on_any_channel(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey", blocked=True)

        conversation = Conversation.objects.with_caller().get()
        locked = Conversation.objects.locked_for_text(conversation.sender, RECIPIENT, sid=None, now=self.now)

        self.assertEqual((conversation.caller_name, conversation.caller_blocked), ("Rey", True))
        self.assertEqual((locked.caller_name, locked.caller_blocked), ("Rey", True))

    def test_it_needs_a_reply_while_paused_with_the_customer_texting_last(self) -> None:
        Conversation.objects.update(bot_paused_until=self.now + timedelta(minutes=1))
        Message.objects.create(conversation=self.conversation, direction=Message.Direction.OUTBOUND)
        self.assertEqual(list(Conversation.objects.needs_reply(self.now)), [])

        Message.objects.create(conversation=self.conversation, direction=Message.Direction.INBOUND)

        self.assertEqual(list(Conversation.objects.needs_reply(self.now)), [self.conversation])
        self.assertEqual(list(Conversation.objects.needs_reply(self.now + timedelta(minutes=1))), [])

    def test_a_texts_update_writes_its_text_changes_and_nothing_else(self) -> None:
        locked = Conversation.objects.locked_for_text(
            self.conversation.sender, RECIPIENT, sid=None, now=self.now
        )
        locked.window_count, locked.lifetime_count, locked.opted_out = 3, 7, True
        locked.window_started_at = locked.last_activity = self.now
        locked.session_id = None
        locked.bot_paused_until = self.now  # Not a text's to change: staff's.

        pair_sql.update_conversation(locked)

        self.conversation.refresh_from_db()
        self.assertEqual(
            [getattr(self.conversation, name) for name in Conversation.TEXT_CHANGES],
            [None, 3, 7, self.now, self.now, True],
        )
        self.assertIsNone(self.conversation.bot_paused_until)
