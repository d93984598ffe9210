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
from conversations.quiet_hours import quiet_hours_refusal
from conversations.refusals import (
    OPTED_OUT,
    UNDELIVERABLE,
    opted_out_mark,
    sending_refusal,
    twilio_error,
    undeliverable_mark,
)

logger = logging.getLogger(__name__)


class SendError(Exception):
    """The text did not go out; the message says why, in words staff can act on."""


class QuietHoursError(SendError):
    """The recipient's local time is in QUIET_HOURS: the text may go later, or be forced."""


@dataclass(frozen=True)
class Accepted:
    sid: str
    status: str
    our_number: str = ""  # The sender Twilio names in its answer (a Messaging Service's pick).


class Refused(Exception):
    """The backend refused the text; recorded as failed, with the reason."""

    def __init__(self, reason: str, code: int | None = None, words: str = "") -> None:
        super().__init__(reason)
        self.code, self.words = code, words  # Twilio's error code and its own words.


Backend = Callable[[str, str, str, str | None], Accepted]


def status_callback_url() -> str | None:
    """Where Twilio should report delivery, when the app's public URL is known."""
    if not settings.TWILIO_WEBHOOK_BASE_URL:
        return None
    return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + "/sms/status/"


def message_send(
    *,
    our_number: str = "",
    their_number: str,
    body: str,
    status_callback: str | None = None,
    sent_by: User | None = None,
    force: bool = False,
) -> Message:
    """Send a text, record it, and open or refresh the pair's conversation window.

    Our number may be left out when a Messaging Service sends (TWILIO_MESSAGING_SERVICE_SID):
    the pair is then recorded with TWILIO_FROM_NUMBER, else the sender Twilio names. A text
    Twilio would refuse (opted out, undeliverable) or one in the recipient's quiet hours
    (unless forced) is refused here, before any request and with nothing recorded.

    The backend is called before the pair is locked, so that texts arriving meanwhile are
    not held up by Twilio's latency. A refused text is recorded as failed, then raised.
    """
    our_number = our_number or settings.TWILIO_FROM_NUMBER
    through_service = bool(settings.TWILIO_MESSAGING_SERVICE_SID)
    if not our_number and not through_service:
        raise SendError(
            "Give the number to send from, or set TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID."
        )
    if why_not := sending_refusal(their_number, our_number, through_service=through_service):
        raise SendError(why_not)
    if not force and (held := quiet_hours_refusal(their_number)):
        raise QuietHoursError(held)
    send = backend()
    try:
        accepted = send(our_number, their_number, body, status_callback or status_callback_url())
    except Refused as refusal:
        raise SendError(_refused(our_number, their_number, body, refusal, sent_by)) from refusal
    return outbound_record(
        # Without any number of ours known, the pair is kept under the service's SID.
        our_number=our_number or accepted.our_number or settings.TWILIO_MESSAGING_SERVICE_SID,
        their_number=their_number,
        body=body,
        sid=accepted.sid,
        status=accepted.status,
        sent_by=sent_by,
    )


def _refused(our_number: str, their_number: str, body: str, refusal: Refused, sent_by: User | None) -> str:
    """Record a refusal and what it says about the number; return why, for staff."""
    reason = str(refusal)
    if our_number:
        outbound_record(
            our_number=our_number,
            their_number=their_number,
            body=body,
            sid=None,
            status="failed",
            error=reason,
            sent_by=sent_by,
        )
    # One line, no traceback: a refusal is an answer, not a fault, and is never retried.
    logger.warning("send from=%s to=%s failed: %s", mask(our_number), mask(their_number), reason)
    if refusal.code == OPTED_OUT:
        opted_out_mark(their_number, our_number)
        return f"{reason}. {their_number} has replied STOP: marked opted out until they text START."
    if refusal.code in UNDELIVERABLE:
        undeliverable_mark(their_number, twilio_error(refusal.code, refusal.words))
        return f"{reason}. Marked the number undeliverable: texts to it will not be sent."
    return reason


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
    # Registered (A2P 10DLC) traffic goes through the Messaging Service, which picks the sender.
    sender: dict[str, str] = (
        {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
        if settings.TWILIO_MESSAGING_SERVICE_SID
        else {"from_": our_number}
    )
    try:
        sent = client.messages.create(to=their_number, body=body, status_callback=status_callback, **sender)
    except TwilioRestException as failure:
        words = failure.msg.removeprefix("Unable to create record: ")  # The library's own prefix.
        raise Refused(_reason(failure), code=_code(failure), words=words) from failure
    except (TwilioException, requests.RequestException) as failure:
        raise Refused(_reason(failure)) from failure
    logger.info(
        "send sid=%s from=%s to=%s status=%s",
        sent.sid,
        mask(sent.from_ or our_number),
        mask(their_number),
        sent.status,
    )
    return Accepted(sid=sent.sid, status=sent.status or "queued", our_number=sent.from_ or "")


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


def _code(failure: TwilioRestException) -> int | None:
    try:
        return int(failure.code) if failure.code else None
    except (TypeError, ValueError):
        return None


def _reason(failure: Exception) -> str:
    if isinstance(failure, TwilioRestException):
        code = f" (Twilio error {failure.code})" if failure.code else ""
        message = failure.msg.removeprefix("Unable to create record: ")  # The library's own words.
        return f"Twilio refused the text: {message}{code}"[:200]
    if isinstance(failure, requests.RequestException):
        return "Could not reach Twilio's API; check the network and try again."
    return f"Twilio client error: {failure}"[:200]
