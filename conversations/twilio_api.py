"""One text to Twilio's REST API (or the console), and what its answer means for the outbox.

Twilio has no idempotency key for creating a message, so each outcome is sorted by whether
Twilio may have the text:

- `Accepted`: it has it (SID and status).
- `Refused`: it answered no (4xx): the text fails, never to be retried.
- `TryLater`: it says nothing happened (HTTP 429 / error 20429, "not processed, safe to retry"),
  or the request never left (connection refused or timed out, DNS): retried with backoff.
- `InDoubt`: it may have it (a read timeout, a connection lost after the request went, a 5xx):
  the row becomes `unknown` and is never sent again by itself.

`SMS_BACKEND=console` only logs the text and accepts it with a SID of Twilio's shape.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProxyError

from conversations.phone import mask

logger = logging.getLogger(__name__)

TOO_MANY_REQUESTS = 20429


@dataclass(frozen=True)
class Accepted:
    sid: str
    status: str
    our_number: str = ""  # The sender Twilio names in its answer (a Messaging Service's pick).


class Refused(Exception):
    """Twilio answered no; the message says why, in words staff can act on."""

    def __init__(self, reason: str, code: int | None = None, words: str = "") -> None:
        super().__init__(reason)
        self.code, self.words = code, words  # Twilio's error code and its own words.


class TryLater(Exception):
    """Twilio did not process the request (or never got it): safe to send again later."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code  # Twilio's error code (20429), when it answered.


class InDoubt(Exception):
    """The request may have reached Twilio: sending it again could text the customer twice."""


@contextmanager
def twilio_session() -> Iterator[Client | None]:
    """One REST client for a run of texts (an outbox tick), closed when it ends.

    Its keep-alive connection spares each text after the first a new connection (TCP, and
    TLS with Twilio). A tick lasts seconds at most (outbox_worker.TICK_SECONDS); should Twilio
    close the idle connection meanwhile, urllib3 sees it dropped and opens another before
    sending. None for the console backend, or without credentials (every text is then
    refused with the reason, by text_post)."""
    if settings.SMS_BACKEND == "console" or not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN):
        yield None
        return
    # max_retries=0: requests' adapter must not send a request again on its own.
    http = TwilioHttpClient(timeout=settings.TWILIO_TIMEOUT, max_retries=0)
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http)
    _environment_once(http, client.get_hostname(client.api.base_url))
    try:
        yield client
    finally:
        if http.session is not None:
            http.session.close()


def _environment_once(http: TwilioHttpClient, api_url: str) -> None:
    """Read the proxy and CA settings of the environment (HTTPS_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE...) once for the session, not on every request as requests does: that
    took about a tenth of the worker's CPU per text."""
    if http.session is None:  # Without pooling, each request has a session of its own.
        return
    found = http.session.merge_environment_settings(api_url, {}, None, None, None)
    http.proxy, http.session.verify = found["proxies"], found["verify"]
    http.session.trust_env = False


def text_post(
    client: Client | None, *, our_number: str, their_number: str, body: str, status_callback: str | None
) -> Accepted:
    """POST one text, once, with the client of twilio_session(): no retries here (the worker
    decides), TWILIO_TIMEOUT per call."""
    if settings.SMS_BACKEND == "console":
        return _console(our_number, their_number, body)
    if client is None:
        raise Refused("Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send texts (or SMS_BACKEND=console).")
    # Registered (A2P 10DLC) traffic goes through the Messaging Service, which picks the sender.
    sender: dict[str, str] = (
        {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
        if settings.TWILIO_MESSAGING_SERVICE_SID
        else {"from_": our_number}
    )
    try:
        sent = client.messages.create(to=their_number, body=body, status_callback=status_callback, **sender)
    except TwilioRestException as failure:
        raise _sorted(failure) from failure
    except requests.RequestException as failure:
        if _never_sent(failure):
            raise TryLater(f"Could not connect to Twilio's API: {type(failure).__name__}") from failure
        raise InDoubt(
            f"No answer from Twilio's API ({type(failure).__name__}): it may have the text."
        ) from failure
    logger.info(
        "send sid=%s from=%s to=%s status=%s",
        sent.sid,
        mask(sent.from_ or our_number),
        mask(their_number),
        sent.status,
    )
    return Accepted(sid=sent.sid, status=sent.status or "queued", our_number=sent.from_ or "")


def _sorted(failure: TwilioRestException) -> Exception:
    code = _code(failure)
    words = failure.msg.removeprefix("Unable to create record: ")  # The library's own prefix.
    reason = f"Twilio refused the text: {words}{f' (Twilio error {code})' if code else ''}"[:200]
    if failure.status == 429 or code == TOO_MANY_REQUESTS:
        return TryLater(reason, code)
    if failure.status >= 500:
        return InDoubt(f"Twilio answered {failure.status}: it may have the text. {words}"[:200])
    return Refused(reason, code=code, words=words)


def _never_sent(failure: requests.RequestException) -> bool:
    """Whether the request failed before any of it reached Twilio."""
    if isinstance(failure, requests.ConnectTimeout):
        return True
    cause = failure.args[0] if failure.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else None
    if isinstance(reason, ProxyError):  # The environment's proxy (HTTPS_PROXY) in between.
        reason = reason.original_error
    # Refused, unreachable, or a name that did not resolve (NameResolutionError is one too).
    return isinstance(reason, NewConnectionError)


def _code(failure: TwilioRestException) -> int | None:
    try:
        return int(failure.code) if failure.code else None
    except (TypeError, ValueError):
        return None


def _console(our_number: str, their_number: str, body: str) -> Accepted:
    # A MessageSid of Twilio's shape, so that the record is like any other sent text.
    sid = "SM" + secrets.token_hex(16)
    logger.info(
        "send sid=%s from=%s to=%s status=sent backend=console body=%r",
        sid,
        mask(our_number),
        mask(their_number),
        body,
    )
    return Accepted(sid=sid, status="sent")
