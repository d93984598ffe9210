"""From a stateless Twilio webhook to a turn in a conversation.

Everything section 3 of the spec promises happens here, in `receive()`:

- The pair is the key. Texts of one To/From pair are serialized: on PostgreSQL by row
  locks on the conversation and its session (pair_sql.py), on SQLite by BEGIN IMMEDIATE
  behind a file lock (locks.py).
- The window is the pair's session. The conversation row points at the session of its
  current window; a session past its expiry starts a new window at count 1, and each text
  slides the expiry by CONVERSATION_TIMEOUT.
- The cookie is only a hint. Twilio's cookie is compared with the pair's own session and
  ignored (and logged) when it differs, so a missing, garbage, expired or foreign cookie
  never changes which state a text sees.
- A repeated MessageSid gets the first reply back, and nothing is counted or recorded again.
- The handler runs inside the transaction with a locked, pair-bound `request.session`, and
  the 200 goes out only after the text and the new state are committed.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial, wraps
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.utils import timezone
from twilio.twiml.messaging_response import MessagingResponse

from conversations import pair_sql
from conversations.locks import DeadlinePassed, postgres_waits_until, sqlite_waits_until, writer_lock
from conversations.logs import describe_text, escape
from conversations.models import Conversation, Message
from conversations.pair_sql import LockedPair
from conversations.phone import e164_or_none, mask
from conversations.sessions import PairSessionStore
from conversations.signatures import SIMULATOR_MARK, signed_params, simulator_mark_matches

logger = logging.getLogger(__name__)

Handler = Callable[[HttpRequest], str | None]
T = TypeVar("T")

# A failed attempt means another text of the pair committed first (the pair's first
# conversation row, or the same MessageSid); the next attempt sees its work.
ATTEMPTS = 3


# Twilio's standard opt-out keywords: a single word, any case. Twilio itself answers them
# (and HELP/INFO), and refuses to deliver replies to an opted-out number.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# What XML 1.0 allows in a document: Twilio refuses a reply that is not well-formed XML, and
# a Caller name or a handler's reply may hold control characters.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class BadText(ValueError):
    """A webhook whose parameters cannot be a text; answered with 400."""


class Keyword(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclasses.dataclass(frozen=True)
class InboundText:
    sender: str
    recipient: str
    body: str
    sid: str | None
    media_urls: list[str]
    opt_out_type: str = ""
    simulated: bool = False  # Sent by the simulator or `manage.py sms`, not by Twilio.

    @property
    def keyword(self) -> Keyword | None:
        return keyword_of(self.body, self.opt_out_type)

    @classmethod
    def from_params(cls, params: QueryDict) -> InboundText:
        sender, recipient = params.get("From", "").strip(), params.get("To", "").strip()
        missing = [name for name, value in (("From", sender), ("To", recipient)) if not value]
        if missing:
            raise BadText(f"Missing {' and '.join(missing)}.")
        if len(sender) > 64 or len(recipient) > 64:
            raise BadText("From and To must be at most 64 characters.")
        sid = params.get("MessageSid") or params.get("SmsSid") or None
        if sid and len(sid) > 64:
            raise BadText("MessageSid must be at most 64 characters.")
        media = [params[f"MediaUrl{i}"] for i in range(_media_count(params)) if params.get(f"MediaUrl{i}")]
        text = cls(
            sender=sender,
            recipient=recipient,
            body=params.get("Body", ""),
            sid=sid,
            media_urls=media,
            opt_out_type=params.get("OptOutType", "").strip().upper(),
            simulated=SIMULATOR_MARK in params,
        )
        # Valid UTF-8, but no database text column takes it (PostgreSQL refuses it outright).
        if any("\x00" in value for value in (sender, recipient, text.body, sid or "", *media)):
            raise BadText("Parameters must not contain NUL characters.")
        if text.simulated and not simulator_mark_matches(params):
            raise BadText(f"{SIMULATOR_MARK} does not match.")
        return text


def keyword_of(body: str, opt_out_type: str = "") -> Keyword | None:
    """The keyword Twilio sees in a text: a single word, any case, or Twilio's OptOutType."""
    word = body.strip().upper()
    if opt_out_type == "STOP" or word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if opt_out_type == "START" or word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if opt_out_type == "HELP" or word in HELP_WORDS:
        return Keyword.HELP
    return None


def _media_count(params: QueryDict) -> int:
    try:
        return min(int(params.get("NumMedia", "0")), 10)  # Twilio sends at most 10.
    except ValueError:
        return 0


@dataclasses.dataclass
class Turn:
    """What became of one webhook, for the response and the log line."""

    outcome: str
    reply: str | None = None
    session_key: str | None = None
    cookie: str = "missing"


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


def receive(request: HttpRequest, text: InboundText, handler: Handler, deadline: float) -> Turn:
    # A simulated text must never land in a real customer's conversation (a STOP from the
    # simulator would opt them out). Only simulated texts pay for this query.
    if text.simulated and Message.objects.from_twilio(text.sender).exists():
        raise BadText(f"{text.sender} has texted this app through Twilio: it cannot be simulated.")
    return in_pair_transaction(partial(_receive_locked, request, text, handler), deadline=deadline)


def _receive_locked(request: HttpRequest, text: InboundText, handler: Handler) -> Turn:
    now = timezone.now()
    pair = _lock_pair(text.sender, text.recipient, sid=text.sid, now=now)
    conversation = pair.conversation
    if conversation.message_seen:
        return _repeat(conversation, text)
    conversation.last_activity = now
    uncounted = _why_not_counted(conversation, text)
    if uncounted:
        pair_sql.save_conversation(conversation)
        _record(conversation, text, None, now)
        return Turn(uncounted)

    store = _window_session(pair, now)
    conversation.window_count += 1
    conversation.lifetime_count += 1
    request.session = store
    request.conversation = conversation  # type: ignore[attr-defined]
    request.caller_name = conversation.caller_name or settings.UNKNOWN_CALLER_NAME  # type: ignore[attr-defined]
    request.sms = text  # type: ignore[attr-defined]
    reply = handler(request)

    store.save()
    conversation.session_id = store.session_key
    pair_sql.save_conversation(conversation)
    _record(conversation, text, reply, now)
    return Turn("counted", reply=reply, session_key=store.session_key)


def _lock_pair(sender: str, recipient: str, *, sid: str | None = None, now: datetime) -> LockedPair:
    """Lock the pair's conversation, creating it on its first text, and read its session."""
    caller_number = e164_or_none(sender)
    locked = pair_sql.lock_pair(sender, recipient, caller_number=caller_number, sid=sid, now=now)
    if locked is not None:
        return locked
    # The pair's first text, or its session is gone: make sure the row exists, lock it
    # alone, then read the session in a statement of its own, which sees what the
    # previous holder of the lock committed.
    Conversation.objects.bulk_create(
        [Conversation(sender=sender, recipient=recipient)], ignore_conflicts=True
    )
    pair = Conversation.objects.for_pair(sender, recipient).with_caller(caller_number).with_message_seen(sid)
    conversation = pair.select_for_update().get()
    if conversation.session_id is None:  # A new pair, or an ended conversation.
        return LockedPair(conversation, None)
    live = Session.objects.filter(pk=conversation.session_id, expire_date__gt=now).first()
    return LockedPair(conversation, live.session_data if live else None)


def _why_not_counted(conversation: Conversation, text: InboundText) -> str | None:
    """The outcome of a text that gets no count and no reply; None for one that does.

    Opt-out keywords change the conversation first, as Twilio applies them whoever sends them.
    """
    keyword = text.keyword
    if keyword is Keyword.OPT_OUT:
        conversation.opted_out = True
        return "opted_out"
    if keyword is Keyword.OPT_IN:
        conversation.opted_out = False
    if conversation.caller_blocked:
        return "blocked"
    if keyword is Keyword.HELP:
        return "help"  # Twilio answers HELP itself.
    if conversation.opted_out:
        return "ignored_opted_out"  # Twilio would refuse to deliver a reply anyway.
    return None


def _window_session(pair: LockedPair, now: datetime) -> PairSessionStore:
    """The session of the pair's current window, starting a new window when it has ended."""
    conversation = pair.conversation
    if pair.session_data is not None:
        return PairSessionStore.from_data(conversation.session_id, pair.session_data)
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


def _record(conversation: Conversation, text: InboundText, reply: str | None, now: datetime) -> None:
    pair_sql.insert_inbound(
        conversation.pk,
        sid=text.sid,
        body=text.body,
        media_urls=text.media_urls,
        reply=reply or "",
        now=now,
        simulated=text.simulated,
    )


def record_outbound(
    *,
    our_number: str,
    their_number: str,
    body: str,
    sid: str | None,
    status: str,
    error: str = "",
    sent_by: AbstractBaseUser | None = None,
) -> Message:
    """Record a text the app sent. One that Twilio accepted opens or refreshes the pair's
    window, so that the reply, which comes without a cookie, continues the conversation."""

    def work() -> Message:
        now = timezone.now()
        pair = _lock_pair(their_number, our_number, now=now)
        conversation = pair.conversation
        if not error:
            store = _window_session(pair, now)
            store.save()
            conversation.session_id = store.session_key
            conversation.last_activity = now
            pair_sql.save_conversation(conversation)
        return Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            sid=sid,
            body=body,
            status=status,
            error=error,
            sent_by=sent_by,
        )

    return in_pair_transaction(work)


def conversation_end(conversation: Conversation) -> None:
    """End the pair's current window: its next text starts again at count 1."""

    def work() -> None:
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if locked.session_id:
            PairSessionStore().delete(locked.session_id)
        Conversation.objects.filter(pk=locked.pk).update(session=None, window_count=0)

    in_pair_transaction(work)


def twiml(reply: str | None) -> HttpResponse:
    response = MessagingResponse()
    reply = NOT_XML.sub("", reply or "")
    if reply:
        response.message(reply)
    return HttpResponse(str(response), content_type="text/xml; charset=utf-8")


def conversation(handler: Handler) -> Callable[[HttpRequest], HttpResponse]:
    """Make a view of a handler that turns a pair's texts into replies.

    The handler gets the request with `session` (locked and bound to the pair),
    `conversation`, `caller_name` and `sms` (the InboundText), and returns the reply text,
    or None to answer nothing.
    """

    @wraps(handler)
    def view(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        deadline = time.monotonic() + settings.WEBHOOK_DEADLINE
        try:
            text = InboundText.from_params(_params(request))
            describe_text(text.sid, text.sender, text.recipient, text.body)
            turn = receive(request, text, handler, deadline)
        except BadText as error:
            return HttpResponseBadRequest(str(error))
        except (DeadlinePassed, DatabaseError) as error:
            return _unavailable(text, error, started)
        turn.cookie = _cookie_state(request, turn.session_key)
        response = twiml(turn.reply)
        if turn.session_key:
            # Hand the session middleware a saved store, so that on the way out it neither
            # saves it again nor deletes the cookie when Twilio's was garbage.
            request.session = PairSessionStore(turn.session_key)
            response.set_cookie(
                settings.SESSION_COOKIE_NAME,
                turn.session_key,
                max_age=settings.CONVERSATION_TIMEOUT,
                httponly=True,
                secure=request.is_secure(),
            )
        _log(text, turn, started)
        return response

    return view


def _unavailable(text: InboundText, error: Exception, started: float) -> HttpResponse:
    """503: nothing of the text was committed, and Twilio may deliver it again."""
    late = isinstance(error, DeadlinePassed) or _is_lock_timeout(error)
    if late:
        _log(text, Turn("deadline"), started)
    else:
        logger.exception("sms sid=%s from=%s: database error", text.sid or "-", mask(text.sender))
        _log(text, Turn("database_error"), started)
    response = HttpResponse("Try again shortly.\n", status=503, content_type="text/plain")
    response["Retry-After"] = "1" if late else "5"
    return response


def _is_lock_timeout(error: Exception) -> bool:
    # PostgreSQL's lock_timeout (55P03) and SQLite's busy timeout: waits, not faults.
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == "55P03" or "database is locked" in str(error)


def _params(request: HttpRequest) -> QueryDict:
    return signed_params(request) if request.method == "POST" else request.GET


def _cookie_state(request: HttpRequest, session_key: str | None) -> str:
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie:
        return "missing"
    return "used" if cookie == session_key else "ignored"


def _log(text: InboundText, turn: Turn, started: float) -> None:
    # Escaped here too, not only by the handler's filter: whatever handler gets this record
    # (a test's, Sentry's breadcrumbs) must not see a forged line.
    logger.info(
        "sms sid=%s outcome=%s from=%s to=%s cookie=%s duration_ms=%.1f",
        escape(text.sid or "-"),
        turn.outcome,
        escape(mask(text.sender)),
        escape(mask(text.recipient)),
        turn.cookie,
        (time.perf_counter() - started) * 1000,
    )
