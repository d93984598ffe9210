"""Redacting a text a customer should not have sent (a card number, a password).

The body gives way to "[redacted]" wherever the app kept it: the Message row, its media
URLs (a photo of the card), the bot's replies that echoed it, and the pair's session, in the
database and in the cache's copy. It happens under the pair's lock, so a text of the pair
being answered at that moment cannot write the original back.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.models import Session

from conversations import pair_sql
from conversations.models import Conversation, Message
from conversations.pairs import in_pair_transaction
from conversations.sessions import PairSessionStore

REDACTED = "[redacted]"


def message_redact(message: Message) -> bool:
    """Redact the message's body and media; False when there was nothing left to redact."""

    def work() -> bool:
        conversation = Conversation.objects.select_for_update().get(pk=message.conversation_id)
        locked = Message.objects.select_for_update().get(pk=message.pk)
        original = locked.body
        if original in ("", REDACTED) and not locked.media_urls:
            return False
        Message.objects.filter(pk=locked.pk).update(body=REDACTED, media_urls=[])
        if original and original != REDACTED:
            # Bots echo what they were sent ("You said: …"), in this text's reply or later ones.
            conversation.messages.filter(reply__contains=original).update(reply=REDACTED)
            _session_scrub(conversation, original)
        return True

    redacted = in_pair_transaction(work)
    message.refresh_from_db()
    return redacted


def _session_scrub(conversation: Conversation, original: str) -> None:
    """Take the text out of the pair's session, which a handler may have kept it in."""
    if conversation.session_id is None:
        return
    store = PairSessionStore(conversation.session_id)
    row = Session.objects.filter(pk=conversation.session_id).first()
    if row is not None:
        data = store.decode(row.session_data)
        scrubbed = _scrubbed(data, original)
        if scrubbed != data:
            # The window keeps its expiry: redacting is not a text of the pair.
            pair_sql.update_session_data(row.session_key, store.encode(scrubbed), row.expire_date)
    # Whatever the database held, no copy in the cache may outlive the original.
    store.drop_cached_copy()


def _scrubbed(value: Any, original: str) -> Any:
    if isinstance(value, str):
        return REDACTED if original in value else value
    if isinstance(value, list):
        return [_scrubbed(item, original) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, original) for key, item in value.items()}
    return value
