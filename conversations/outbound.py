"""Texts the app starts, sent through the backend that SMS_BACKEND names.

`twilio` sends through Twilio's REST API. `console` only logs the text and records it as
sent, with a generated MessageSid, for development and demos without a Twilio account; the
record and the conversation window are the same as for a text Twilio accepted.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import requests
from django.conf import settings
from django.contrib.auth.models import User
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from conversations.models import Message
from conversations.pairs import outbound_record
from conversations.phone import mask

logger = logging.getLogger(__name__)


class SendError(Exception):
    """The text did not go out; the message says why, in words staff can act on."""


@dataclass(frozen=True)
class Accepted:
    sid: str
    status: str


class Refused(Exception):
    """The backend refused the text; recorded as failed, with the reason."""


Backend = Callable[[str, str, str, str | None], Accepted]


def status_callback_url() -> str | None:
    """Where Twilio should report delivery, when the app's public URL is known."""
    if not settings.TWILIO_WEBHOOK_BASE_URL:
        return None
    return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + "/sms/status/"


def message_send(
    *,
    our_number: str,
    their_number: str,
    body: str,
    status_callback: str | None = None,
    sent_by: User | None = None,
) -> Message:
    """Send a text, record it, and open or refresh the pair's conversation window.

    The backend is called before the pair is locked, so that texts arriving meanwhile are
    not held up by Twilio's latency. A refused text is recorded as failed, then raised.
    """
    send = backend()
    try:
        accepted = send(our_number, their_number, body, status_callback or status_callback_url())
    except Refused as refusal:
        reason = str(refusal)
        outbound_record(
            our_number=our_number,
            their_number=their_number,
            body=body,
            sid=None,
            status="failed",
            error=reason,
            sent_by=sent_by,
        )
        logger.warning("send from=%s to=%s failed: %s", mask(our_number), mask(their_number), reason)
        raise SendError(reason) from refusal
    return outbound_record(
        our_number=our_number,
        their_number=their_number,
        body=body,
        sid=accepted.sid,
        status=accepted.status,
        sent_by=sent_by,
    )


def backend() -> Backend:
    backends: dict[str, Backend] = {"twilio": twilio_send, "console": console_send}
    try:
        return backends[settings.SMS_BACKEND]
    except KeyError:
        raise SendError(f"SMS_BACKEND must be twilio or console, not {settings.SMS_BACKEND!r}.") from None


def twilio_send(our_number: str, their_number: str, body: str, status_callback: str | None) -> Accepted:
    if not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN:
        # Nothing was attempted, so there is nothing to record.
        raise SendError(
            "Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send texts (or SMS_BACKEND=console)."
        )
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    try:
        sent = client.messages.create(
            from_=our_number, to=their_number, body=body, status_callback=status_callback
        )
    except (TwilioException, requests.RequestException) as failure:
        raise Refused(_reason(failure)) from failure
    logger.info(
        "send sid=%s from=%s to=%s status=%s", sent.sid, mask(our_number), mask(their_number), sent.status
    )
    return Accepted(sid=sent.sid, status=sent.status or "queued")


def console_send(our_number: str, their_number: str, body: str, status_callback: str | None) -> Accepted:
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


def _reason(failure: Exception) -> str:
    if isinstance(failure, TwilioRestException):
        code = f" (Twilio error {failure.code})" if failure.code else ""
        message = failure.msg.removeprefix("Unable to create record: ")  # The library's own words.
        return f"Twilio refused the text: {message}{code}"[:200]
    if isinstance(failure, requests.RequestException):
        return "Could not reach Twilio's API; check the network and try again."
    return f"Twilio client error: {failure}"[:200]
