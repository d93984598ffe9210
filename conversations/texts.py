"""A text as Twilio delivers it: its parameters, checked and typed once per request, the
shape Twilio always gives them, and the keyword Twilio sees in it."""

from __future__ import annotations

import dataclasses
import enum
import re

from django.conf import settings
from django.http import QueryDict

from conversations.simulated import SIMULATOR_MARK, simulator_mark_matches

# Twilio's standard opt-out keywords: a single word, any case. Twilio itself answers them
# (and HELP/INFO), and refuses to deliver replies to an opted-out number.
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})


class BadText(ValueError):
    """A webhook whose parameters cannot be a text; answered with 400."""


# Twilio's SIDs: two letters for the kind, 32 hex digits (Twilio's own API spec allows either case).
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


def not_from_twilio(params: QueryDict) -> str | None:
    """Why signed parameters cannot be a request of Twilio's, or None when they can be.

    Twilio's signature runs names and values together without separators, so whoever has
    one signed request can move the boundaries between them (fold MessageSid into
    FromZip's value, say) and the signature still holds. What Twilio always sends, in
    the shape it always has, cannot go missing that way.
    """
    if not MESSAGE_SID.fullmatch(params.get("MessageSid", "")):
        return "Missing or malformed MessageSid."
    account = settings.TWILIO_ACCOUNT_SID
    if account and params.get("AccountSid") != account:
        return "AccountSid is not this app's account."
    return None


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
    num_segments: int | None = None  # Twilio's NumSegments: what the text cost to receive.

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
        media = [url for i in range(_media_count(params)) if (url := params.get(f"MediaUrl{i}"))]
        text = cls(
            sender=sender,
            recipient=recipient,
            body=params.get("Body", ""),
            sid=sid,
            media_urls=media,
            opt_out_type=params.get("OptOutType", "").strip().upper(),
            simulated=SIMULATOR_MARK in params,
            num_segments=_num_segments(params),
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


def _num_segments(params: QueryDict) -> int | None:
    value = params.get("NumSegments", "")
    # A count Twilio would never send is not worth refusing the text over: it is left out.
    return int(value) if value.isdigit() and 0 < int(value) <= 255 else None


def _media_count(params: QueryDict) -> int:
    try:
        return min(int(params.get("NumMedia", "0")), 10)  # Twilio sends at most 10.
    except ValueError:
        return 0
