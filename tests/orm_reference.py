"""The rules of a text, written plainly with the ORM: the yardstick for the raw-SQL webhook.

Nothing here is fast or clever. It reads and writes the same rows the webhook does, one
obvious query at a time, so that tests can send the same texts through both and compare.
The rules it states again are the webhook's own order of them (pairs.py) and what its SQL
does (pair_sql.py); the rules written once elsewhere it calls: Twilio's keywords
(texts.keyword_of()), the model's bot_paused() and window_live().
"""

from __future__ import annotations

import types
from collections.abc import Callable

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.phone import number_of
from conversations.texts import Keyword, keyword_of


class ReferenceStore(SessionStore):
    """Django's plain database store, signed like the app's, lasting CONVERSATION_TIMEOUT."""

    key_salt = "django.contrib.sessions.SessionStore"

    def get_session_cookie_age(self) -> int:
        return settings.CONVERSATION_TIMEOUT


def receive(params: dict[str, str], handler: Callable[[object], str | None]) -> str | None:
    """Take one text as the webhook would; return the reply (None: an empty <Response/>)."""
    sender, recipient, body = params["From"], params["To"], params.get("Body", "")
    sid = params.get("MessageSid")
    now = timezone.now()
    with transaction.atomic():
        conversation, _ = Conversation.objects.select_for_update().get_or_create(
            sender=sender, recipient=recipient, defaults={"sender_number": number_of(sender) or ""}
        )
        earlier = Message.objects.filter(sid=sid).first() if sid else None
        if earlier is not None:
            return earlier.reply or None
        caller = Caller.objects.filter(phone_number=conversation.sender_number).first()
        conversation.last_activity = now
        keyword = keyword_of(body, params.get("OptOutType", "").strip().upper())
        if keyword is Keyword.OPT_OUT:
            conversation.opted_out = True
            return _uncounted(conversation, params, Message.Outcome.OPTED_OUT, now)
        if keyword is Keyword.OPT_IN:
            conversation.opted_out = False
        if caller and caller.blocked:
            return _uncounted(conversation, params, Message.Outcome.BLOCKED, now)
        if keyword is Keyword.HELP:
            return _uncounted(conversation, params, Message.Outcome.HELP, now)
        if conversation.opted_out:
            return _uncounted(conversation, params, Message.Outcome.IGNORED_OPTED_OUT, now)

        if conversation.window_live(now):
            store = ReferenceStore(conversation.session_id)
        else:
            Session.objects.filter(pk=conversation.session_id).delete()
            conversation.window_count, conversation.window_started_at = 0, now
            store = ReferenceStore()
        conversation.window_count += 1
        conversation.lifetime_count += 1
        request = types.SimpleNamespace(
            session=store,
            conversation=conversation,
            caller_name=caller.name if caller else settings.UNKNOWN_CALLER_NAME,
            text=types.SimpleNamespace(sender=sender, recipient=recipient, body=body, sid=sid),
        )
        reply = handler(request)
        outcome = Message.Outcome.COUNTED
        if conversation.bot_paused(now):
            # Staff have the conversation: counted, state kept, nothing sent.
            reply, outcome = None, Message.Outcome.PAUSED
        store.save()
        conversation.session_id = store.session_key
        conversation.save()
        _record(conversation, params, reply or "", outcome, now)
        return reply


def _uncounted(conversation: Conversation, params: dict[str, str], outcome: str, now: object) -> None:
    conversation.save()
    _record(conversation, params, "", outcome, now)
    return None


def _record(
    conversation: Conversation, params: dict[str, str], reply: str, outcome: str, now: object
) -> None:
    count = int(params.get("NumMedia", "0"))
    Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.INBOUND,
        sid=params.get("MessageSid"),
        body=params.get("Body", ""),
        media_urls=[params[f"MediaUrl{i}"] for i in range(count)],
        reply=reply,
        status=Message.Status.RECEIVED,
        outcome=outcome,
        num_segments=_num_segments(params.get("NumSegments", "")),
    )


def _num_segments(value: str) -> int | None:
    return int(value) if value.isdigit() and 1 <= int(value) <= 255 else None
