"""Texts the app starts, sent through Twilio's REST API."""

import logging

import requests
from django.conf import settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from conversations.models import Message
from conversations.phone import mask
from conversations.webhook import record_outbound

logger = logging.getLogger(__name__)


class SendError(Exception):
    """Twilio did not take the text; the message says why, in words staff can act on."""


def status_callback_url() -> str | None:
    """Where Twilio should report delivery, when the app's public URL is known."""
    if not settings.TWILIO_WEBHOOK_BASE_URL:
        return None
    return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + "/sms/status/"


def message_send(
    *, our_number: str, their_number: str, body: str, status_callback: str | None = None
) -> Message:
    """Send a text, record it, and open or refresh the pair's conversation window.

    The REST call happens before the pair is locked, so that texts arriving meanwhile are
    not held up by Twilio's latency. A refused text is recorded as failed, then raised.
    """
    if not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN:
        raise SendError("Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN to send texts.")
    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    try:
        sent = client.messages.create(
            from_=our_number,
            to=their_number,
            body=body,
            status_callback=status_callback or status_callback_url(),
        )
    except (TwilioException, requests.RequestException) as failure:
        reason = _reason(failure)
        record_outbound(
            our_number=our_number,
            their_number=their_number,
            body=body,
            sid=None,
            status="failed",
            error=reason,
        )
        logger.warning("send from=%s to=%s failed: %s", mask(our_number), mask(their_number), reason)
        raise SendError(reason) from failure
    logger.info(
        "send sid=%s from=%s to=%s status=%s", sent.sid, mask(our_number), mask(their_number), sent.status
    )
    return record_outbound(
        our_number=our_number,
        their_number=their_number,
        body=body,
        sid=sent.sid,
        status=sent.status or "queued",
    )


def _reason(failure: Exception) -> str:
    if isinstance(failure, TwilioRestException):
        code = f" (Twilio error {failure.code})" if failure.code else ""
        message = failure.msg.removeprefix("Unable to create record: ")  # The library's own words.
        return f"Twilio refused the text: {message}{code}"[:200]
    if isinstance(failure, requests.RequestException):
        return "Could not reach Twilio's API; check the network and try again."
    return f"Twilio client error: {failure}"[:200]
