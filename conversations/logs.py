"""Logging: one stderr handler, plain or JSON, that tells which text a record is about.

- Every record written while the SMS webhook handles a text carries the text's MessageSid
  and its masked From and To (the webhook view names the text, a middleware forgets it when
  the request ends), so a traceback can be traced to the text that caused it.
- Values from requests cannot forge log lines: control characters in the message and in
  the text's fields are escaped (a From of "+1\\n... outcome=counted" is logged as
  "+1\\\\n... outcome=counted", on one line).
"""

from __future__ import annotations

import dataclasses
import logging
import logging.config
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from conversations.phone import mask

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators, which some log
# viewers also break lines at.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(value: str) -> str:
    r"""Escape control characters the way Python writes them: "a\nb" -> "a\\nb"."""
    return CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], value)


@dataclasses.dataclass(frozen=True)
class TextFields:
    """What the log may say about the text being handled: its SID and masked numbers."""

    message_sid: str
    sms_from: str
    sms_to: str
    # The raw numbers and body: never logged, only known so error reports can cut them out.
    private: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def log_fields(self) -> dict[str, str]:
        return {"message_sid": self.message_sid, "sms_from": self.sms_from, "sms_to": self.sms_to}


_current_text: ContextVar[TextFields | None] = ContextVar("current_text", default=None)


def describe_text(sid: str | None, sender: str, recipient: str, body: str = "") -> None:
    """Name the text this request handles, for every record logged until the request ends."""
    _current_text.set(
        TextFields(
            escape(sid or "-"),
            escape(mask(sender)),
            escape(mask(recipient)),
            private=tuple(value for value in (sender, recipient, body) if value),
        )
    )


def current_text() -> TextFields | None:
    return _current_text.get()


def text_context_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable:
    """Scope describe_text() to one request. Outermost, so that Django's "Internal Server
    Error" record, written after the view has raised, still knows the text; and a worker
    thread's next request starts knowing none."""

    def middleware(request: HttpRequest) -> HttpResponse:
        token = _current_text.set(None)
        try:
            return get_response(request)
        finally:
            _current_text.reset(token)

    return middleware


class TextContextFilter(logging.Filter):
    """Escape the record's message and add the current text's fields to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # Leave a malformed record to the handler's own error reporting.
            return True
        record.msg, record.args = escape(message), None
        text = _current_text.get()
        if text is not None:
            for name, value in text.log_fields().items():
                setattr(record, name, value)
        return True


class PlainFormatter(logging.Formatter):
    """One line per record; warnings and errors about a text end with its SID and numbers."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        sid = getattr(record, "message_sid", None)
        if sid is not None and record.levelno >= logging.WARNING:
            line += f" [sid={sid} from={record.sms_from} to={record.sms_to}]"  # type: ignore[attr-defined]
        return line


LOG_FORMATS = ("plain", "json")


def configure(config: dict[str, Any]) -> None:
    """LOGGING_CONFIG: dictConfig, once LOG_FORMAT and LOG_LEVEL are known to be good.

    Django configures logging before any system check runs, and dictConfig's own words for
    a bad formatter or level ("Unable to configure handler 'stderr'") name neither setting:
    so they are refused here, in every process, with a message that does.
    """
    fmt, level = getattr(settings, "LOG_FORMAT", "plain"), getattr(settings, "LOG_LEVEL", "INFO")
    if fmt not in LOG_FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {fmt!r}.")
    if level not in logging.getLevelNamesMapping():
        raise ImproperlyConfigured(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {level!r}."
        )
    logging.config.dictConfig(config)
