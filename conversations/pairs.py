"""The operations on a pair: lock it, take a text, record a text the app sent, end a window.

A pair is one To/From pair of phone addresses, and everything the spec promises of its state
happens here, for the webhook, the admin, the commands and outbound sending alike:

- Texts of one pair are serialized: on PostgreSQL by row locks on the conversation and its
  session (pair_sql.py), on SQLite by BEGIN IMMEDIATE behind a file lock (locks.py). Every
  wait ends by the text's deadline; what is not committed by then is rolled back.
- The window is the pair's session. The conversation row points at the session of its
  current window; a session past its expiry starts a new window at count 1, and each text
  slides the expiry by CONVERSATION_TIMEOUT.
- The pair's own session is used whatever cookie came with the text, so a missing, garbage,
  expired or foreign cookie never changes which state a text sees.
- A repeated MessageSid gets the first reply back, and nothing is counted or recorded again.
- The answer is computed inside the transaction, with the locked session, and is returned
  only once the text and the new state are committed.
- A text staff send hands the conversation to them for HANDOFF_PAUSE: its texts meanwhile
  are counted and kept, the handler keeps its state, but the bot's reply is not sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from conversations import outbox_sql, pair_sql
from conversations.locks import DeadlinePassed, postgres_waits_until, sqlite_waits_until, writer_lock
from conversations.metrics import lock_waited
from conversations.models import Conversation, Message
from conversations.phone import number_of
from conversations.refusals import stop_received
from conversations.sessions import PairSessionStore
from conversations.texts import BadText, InboundText, Keyword

T = TypeVar("T")
Outcome = Message.Outcome
# Computes the reply to a counted text from its locked conversation and window session.
Answer = Callable[[Conversation, PairSessionStore], str | None]

# A failed attempt means another text of the pair committed first (the pair's first
# conversation row, or the same MessageSid); the next attempt sees its work.
ATTEMPTS = 3


@dataclasses.dataclass
class Turn:
    """What became of one text: the outcome for the log (a recorded Message.Outcome, or
    "repeat"), the reply, the window's session."""

    outcome: str
    reply: str | None = None
    session_key: str | None = None


def in_pair_transaction(work: Callable[[], T], *, deadline: float | None = None) -> T:
    """Run work that locks pairs in a transaction, again if another text got there first.

    With a deadline (time.monotonic()), every lock wait ends by it, and work that finishes
    after it is rolled back: DeadlinePassed, and nothing committed.
    """
    for attempt in range(ATTEMPTS):
        try:
            with writer_lock(deadline=deadline) as lock, sqlite_waits_until(deadline), transaction.atomic():
                # Unlocked first once committed: the rest of the on-commit work (copies to
                # the cache) may wait on the network, and the next text must not.
                transaction.on_commit(lock.release)
                postgres_waits_until(deadline)
                result = work()
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlinePassed("the text was ready only after its deadline")
                return result
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
        except DatabaseError:
            # A connection that failed (read-only, lost, locked out) is not reused: the
            # next text opens a fresh one, so the app heals once the database does.
            if not connection.in_atomic_block:
                connection.close()
            raise
    raise AssertionError("unreachable")


def text_receive(text: InboundText, answer: Answer, *, deadline: float | None = None) -> Turn:
    """Take one inbound text: count it and answer it, or record why not."""
    # A simulated text must never land in a real customer's conversation (a STOP from the
    # simulator would opt them out). Only simulated texts pay for this query.
    if text.simulated and Message.objects.from_twilio(text.sender).exists():
        raise BadText(f"{text.sender} has texted this app through Twilio: it cannot be simulated.")
    return in_pair_transaction(partial(_receive_locked, text, answer), deadline=deadline)


def _receive_locked(text: InboundText, answer: Answer) -> Turn:
    now = timezone.now()
    conversation = _lock_pair(text.sender, text.recipient, sid=text.sid, now=now)
    if conversation.message_seen:
        return _repeat(conversation, text)
    conversation.last_activity = now
    uncounted = _why_not_counted(conversation, text)
    if uncounted:
        pair_sql.update_conversation(conversation)
        if uncounted == Outcome.OPTED_OUT:
            stop_received(conversation)  # Texts waiting for them would be refused.
        _record(conversation, text, None, uncounted, now)
        return Turn(uncounted)

    store = _window_session(conversation, now)
    conversation.window_count += 1
    conversation.lifetime_count += 1
    reply = answer(conversation, store)
    outcome = Outcome.COUNTED
    if conversation.bot_paused(now):
        # Staff have the conversation: the handler's state moves on with the count, so the
        # bot picks up where the pair is when it resumes, but its words are not sent.
        reply, outcome = None, Outcome.PAUSED
    store.save()
    conversation.session_id = store.session_key
    pair_sql.update_conversation(conversation)
    _record(conversation, text, reply, outcome, now)
    return Turn(outcome, reply=reply, session_key=store.session_key)


def _lock_pair(sender: str, recipient: str, *, sid: str | None = None, now: datetime) -> Conversation:
    """Lock the pair's conversation, creating it on its first text, and read its window."""
    started = time.perf_counter()
    conversation = Conversation.objects.locked_for_text(sender, recipient, sid=sid, now=now)
    if connection.vendor == "postgresql":
        # Its row locks are waited for inside this statement (SQLite's lock: locks.py).
        lock_waited(time.perf_counter() - started)
    if conversation is not None:
        return conversation
    # The pair's first text, or its session is gone: make sure the row exists, lock it
    # alone, then read the session in a statement of its own, which sees what the
    # previous holder of the lock committed.
    Conversation.objects.bulk_create(
        [Conversation(sender=sender, recipient=recipient, sender_number=number_of(sender) or "")],
        ignore_conflicts=True,
    )
    pair = Conversation.objects.for_pair(sender, recipient).with_caller().with_message_seen(sid)
    return _read_window(pair.select_for_update().get(), now)


def _read_window(conversation: Conversation, now: datetime) -> Conversation:
    """Read the locked pair's live window (window_data), in a statement of its own: one that
    sees what the previous holder of the lock committed."""
    session = conversation.session if conversation.window_live(now) else None  # Read by window_live.
    conversation.window_data = session.session_data if session is not None else None
    return conversation


def _why_not_counted(conversation: Conversation, text: InboundText) -> Outcome | None:
    """The outcome of a text that gets no count and no reply; None for one that does.

    Opt-out keywords change the conversation first, as Twilio applies them whoever sends them.
    """
    keyword = text.keyword
    if keyword is Keyword.OPT_OUT:
        conversation.opted_out = True
        return Outcome.OPTED_OUT
    if keyword is Keyword.OPT_IN:
        conversation.opted_out = False
    if conversation.caller_blocked:
        return Outcome.BLOCKED
    if keyword is Keyword.HELP:
        return Outcome.HELP  # Twilio answers HELP itself.
    if conversation.opted_out:
        return Outcome.IGNORED_OPTED_OUT  # Twilio would refuse to deliver a reply anyway.
    return None


def _window_session(conversation: Conversation, now: datetime) -> PairSessionStore:
    """The session of the pair's current window, starting a new window when it has ended."""
    if conversation.session_id and conversation.window_data is not None:
        return PairSessionStore.from_data(conversation.session_id, conversation.window_data)
    if conversation.session_id:
        PairSessionStore().delete(conversation.session_id)  # Over; its cookie will be ignored.
    conversation.window_count = 0
    conversation.window_started_at = now
    return PairSessionStore.start()


def _repeat(conversation: Conversation, text: InboundText) -> Turn:
    first = Message.objects.get(sid=text.sid)
    if first.conversation_id != conversation.pk:
        raise BadText("MessageSid belongs to another conversation.")
    return Turn("repeat", reply=first.reply or None, session_key=conversation.session_id)


def _record(
    conversation: Conversation, text: InboundText, reply: str | None, outcome: Outcome, now: datetime
) -> None:
    pair_sql.insert_inbound_message(
        conversation.pk,
        sid=text.sid,
        body=text.body,
        media_urls=text.media_urls,
        reply=reply or "",
        outcome=outcome,
        now=now,
        simulated=text.simulated,
        num_segments=text.num_segments,
    )


def outbound_accepted(message: Message, *, sid: str, status: str, our_number: str = "") -> None:
    """Record Twilio's yes to a text of the outbox: its SID and status, and the pair's window
    opened or refreshed, so that the reply, which comes without a cookie, continues the
    conversation. (A text staff send paused the bot when it was queued: outbox.py.)

    A text queued under the Messaging Service's SID (no number of ours known) moves to the
    pair with the number Twilio picked. A status callback that got here first keeps its status.
    """
    queued_under = message.conversation
    their_number, ours = queued_under.sender, queued_under.recipient
    if our_number and ours == settings.TWILIO_MESSAGING_SERVICE_SID:
        ours = our_number

    def work() -> None:
        now = timezone.now()
        conversation = _lock_queued_pair(queued_under, now) if ours == queued_under.recipient else None
        if conversation is None:
            conversation = _lock_pair(their_number, ours, now=now)
        store = _window_session(conversation, now)
        store.save()
        conversation.session_id = store.session_key
        conversation.last_activity = now
        pair_sql.update_conversation(conversation)
        if not outbox_sql.record_accepted(message, sid=sid, status=status, conversation_id=conversation.pk):
            row = Message.objects.filter(pk=message.pk)
            row.filter(sid__isnull=True).update(sid=sid)
            row.update(conversation=conversation)
        if conversation.pk != queued_under.pk:
            Conversation.objects.filter(pk=queued_under.pk, messages__isnull=True).delete()

    in_pair_transaction(work)


def _lock_queued_pair(conversation: Conversation, now: datetime) -> Conversation | None:
    """Lock the pair a text was queued under, by its key, and read its window; None if the row
    is gone. The worker's path: the texts it sends have their pair's row already, and need no
    Caller (_lock_pair reads one for the webhook's reply, in three statements for a pair with
    no window, as a bulk text's usually is)."""
    locked = pair_sql.fetch_locked_by_key(conversation.pk)
    return None if locked is None else _read_window(locked, now)


def conversation_end(conversation: Conversation) -> None:
    """End the pair's current window: its next text starts again at count 1."""

    def work() -> None:
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.session_id:
            PairSessionStore().delete(locked.session_id)
        Conversation.objects.filter(pk=locked.pk).update(session=None, window_count=0)

    in_pair_transaction(work)


def bot_resume(conversation: Conversation) -> None:
    """End staff's hold on the conversation: the bot answers its next text again."""
    in_pair_transaction(lambda: Conversation.objects.filter(pk=conversation.pk).update(bot_paused_until=None))
