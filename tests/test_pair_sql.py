from datetime import timedelta

from django.contrib.sessions.models import Session
from django.test import TestCase
from django.utils import timezone

from conversations import pair_sql
from conversations.models import Caller, Conversation, Message
from tests.twilio import RECIPIENT, SENDER


class PairSqlTestCase(TestCase):
    def setUp(self) -> None:
        self.now = timezone.now()
        self.session = Session.objects.create(
            session_key="k" * 32, session_data="data", expire_date=self.now + timedelta(hours=1)
        )
        self.conversation = Conversation.objects.create(
            sender=SENDER,
            recipient=RECIPIENT,
            sender_number=SENDER,
            session=self.session,
            window_count=2,
            lifetime_count=5,
        )

    def lock(self, sender: str = SENDER, sid: str | None = None) -> Conversation | None:
        return Conversation.objects.locked_for_text(sender, RECIPIENT, sid=sid, now=self.now)

    def test_it_reads_the_conversation_and_its_live_session(self) -> None:
        conversation = self.lock()

        self.assertIsInstance(conversation, Conversation)
        self.assertEqual(conversation.window_data, "data")
        self.assertEqual((conversation.pk, conversation.session_id), (self.conversation.pk, "k" * 32))
        self.assertEqual((conversation.window_count, conversation.lifetime_count), (2, 5))
        self.assertEqual((conversation.caller_name, conversation.caller_blocked), (None, False))
        self.assertIs(conversation.message_seen, False)

    def test_it_says_when_the_window_has_ended(self) -> None:
        Session.objects.update(expire_date=self.now - timedelta(seconds=1))

        self.assertIsNone(self.lock().window_data)

    def test_it_finds_nothing_for_a_new_pair_or_a_conversation_without_session(self) -> None:
        self.assertIsNone(self.lock(sender="+14155550000"))
        Conversation.objects.update(session=None)
        self.assertIsNone(self.lock())

    def test_it_reads_the_caller_and_whether_the_sid_was_seen(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey", blocked=True)
        Message.objects.create(conversation=self.conversation, direction="inbound", sid="SM1")

        conversation = self.lock(sid="SM1")

        self.assertEqual((conversation.caller_name, conversation.caller_blocked), ("Rey", True))
        self.assertIs(conversation.message_seen, True)
        Conversation.objects.update(sender_number="")  # A sender ID has no Caller.
        self.assertIsNone(self.lock().caller_name)

    def test_it_writes_times_the_orm_reads_back(self) -> None:
        expire = self.now + timedelta(hours=4)

        pair_sql.update_session_data("k" * 32, "new", expire)
        pair_sql.insert_inbound_message(
            self.conversation.pk,
            sid="SM2",
            body="hi",
            media_urls=["https://m/1"],
            reply="r",
            outcome=Message.Outcome.COUNTED,
            now=self.now,
        )

        self.assertEqual(Session.objects.get().expire_date, expire)
        message = Message.objects.get(sid="SM2")
        self.assertEqual(
            (message.created_at, message.media_urls, message.status, message.outcome),
            (self.now, ["https://m/1"], Message.Status.RECEIVED, Message.Outcome.COUNTED),
        )
        self.assertTrue(Session.objects.filter(expire_date__gt=self.now).exists())

    def test_it_reads_a_whole_conversation_as_the_orm_would(self) -> None:
        started = self.now - timedelta(minutes=5)
        Conversation.objects.update(window_started_at=started, last_activity=self.now, opted_out=True)

        conversation = self.lock()

        self.assertEqual(conversation.window_started_at, started)
        self.assertEqual(conversation.last_activity, self.now)
        self.assertEqual(conversation.first_activity, self.conversation.first_activity)
        self.assertIs(conversation.opted_out, True)
        self.assertEqual((conversation.sender, conversation.recipient), (SENDER, RECIPIENT))

    def test_it_saves_what_a_text_changes(self) -> None:
        conversation = self.lock()
        conversation.window_count, conversation.last_activity, conversation.opted_out = 3, self.now, True

        pair_sql.update_conversation(conversation)

        self.conversation.refresh_from_db()
        self.assertEqual((self.conversation.window_count, self.conversation.last_activity), (3, self.now))
        self.assertIs(self.conversation.opted_out, True)

    def test_it_locks_a_conversation_by_its_key_as_the_orm_reads_it(self) -> None:
        Conversation.objects.update(window_started_at=self.now, last_activity=self.now, opted_out=True)
        fields = [field.attname for field in Conversation._meta.concrete_fields]

        locked = pair_sql.fetch_locked_by_key(self.conversation.pk)

        assert locked is not None
        read = Conversation.objects.get()
        self.assertEqual([getattr(locked, name) for name in fields], [getattr(read, name) for name in fields])
        self.assertIsNone(pair_sql.fetch_locked_by_key(self.conversation.pk + 1))

    def test_a_new_windows_session_is_inserted_unless_its_key_is_taken(self) -> None:
        expires = self.now + timedelta(hours=4)

        inserted = pair_sql.insert_session("n" * 32, "new", expires)
        again = pair_sql.insert_session("n" * 32, "other", expires)

        self.assertEqual((inserted, again), (True, False))
        self.assertEqual(Session.objects.get(session_key="n" * 32).session_data, "new")  # Kept.
        self.assertEqual(Session.objects.get(session_key="n" * 32).expire_date, expires)
