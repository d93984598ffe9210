"""The outbox for in-process tests: queue a text as the app does, then run the worker's tick."""

from __future__ import annotations

from typing import Any

from conversations.models import Message
from conversations.outbox import text_enqueue
from conversations.outbox_worker import outbox_drain


def sent(**text: Any) -> Message:
    """Queue one text (text_enqueue's arguments), send it as the worker does, return its row."""
    message = text_enqueue(**text)
    outbox_drain()
    message.refresh_from_db()
    return message
