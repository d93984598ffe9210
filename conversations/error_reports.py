"""Error reports to Sentry (optional, SENTRY_DSN), without phone numbers or message bodies.

Texts arrive as form fields or query parameters (From, To, Body), so the request's data,
query string and cookies never leave; neither do local variables, which hold the text being
handled. Numbers that reach an exception message or a log line are cut out of the event;
neither do the numbers and body of the text being handled, wherever they appear. The
masked numbers and the MessageSid the log adds stay, to trace an error to its text.
"""

from __future__ import annotations

import re
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration

from conversations.logs import current_text

FILTERED = "[Filtered]"
# E.164 and national formats, +14155551234, (415) 555-1234, 415.555.1234; a masked number
# (+1415555****) keeps too few digits to match, dates do not look like one either. Not
# inside words such as a MessageSid.
PHONE_NUMBER = re.compile(
    r"(?<![\w+])(?:\+(?:\d[\s().-]{0,2}){7,14}\d|\(?\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4})(?!\w)"
)
# Request parts that carry the text itself, on a POST (form data) or a GET (query string).
DROPPED_REQUEST_PARTS = ("data", "query_string", "cookies")
DROPPED_HEADERS = frozenset({"cookie", "x-twilio-signature", "authorization"})
# Shorter values of the current text (a body of "Hi") would cut ordinary words out of reports.
SHORTEST_CUT_VALUE = 4
# Where free text of an event is: messages, exception values, log records and breadcrumbs.
SCRUBBED_PARTS = ("message", "logentry", "exception", "breadcrumbs", "extra", "tags", "transaction")


def init_sentry(dsn: str, **options: Any) -> None:
    # send_default_pii stays unset, which is off: no user, IP address or SQL parameters (this
    # SDK deprecates passing it in favour of data_collection; the tests pin the outcome).
    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration()],
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        **options,
    )


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        for part in DROPPED_REQUEST_PARTS:
            request.pop(part, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() not in DROPPED_HEADERS}
        if isinstance(request.get("url"), str):
            request["url"] = request["url"].split("?", 1)[0]
    text = current_text()
    private = [value for value in (text.private if text else ()) if len(value) >= SHORTEST_CUT_VALUE]
    for part in SCRUBBED_PARTS:
        if part in event:
            event[part] = _scrub(event[part], private)
    if text is not None:  # Which text the error happened to, as the log line says it.
        event["tags"] = {**(event.get("tags") or {}), **text.log_fields()}
    return event


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    text = current_text()
    return _scrub(
        crumb, [value for value in (text.private if text else ()) if len(value) >= SHORTEST_CUT_VALUE]
    )


def _scrub(value: Any, private: list[str]) -> Any:
    if isinstance(value, str):
        for secret in private:
            value = value.replace(secret, FILTERED)
        return PHONE_NUMBER.sub(FILTERED, value)
    if isinstance(value, dict):
        # "vars" are a stack frame's local variables.
        return {key: _scrub(item, private) for key, item in value.items() if key != "vars"}
    if isinstance(value, list | tuple):
        return [_scrub(item, private) for item in value]
    return value
