"""Playing Twilio's part: delivering a text to the webhook the way Twilio's edge does.

`manage.py sms` and the simulator page both send through `send_as_twilio()`, so they exercise
what Twilio exercises: the whole middleware and URL stack (in-process, or over HTTP to a
running server), Twilio's parameters with a fresh MessageSid, an X-Twilio-Signature made with
TWILIO_AUTH_TOKEN over the URL called, and the pair's cookies kept the way Twilio keeps them:
one jar per To/From pair, honouring Max-Age, never longer than 4 hours. One parameter Twilio
never sends marks each text as simulated (simulated.py).
"""

from __future__ import annotations

import dataclasses
import mimetypes
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from contextlib import suppress
from email.message import Message as Headers
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.cookies import CookieError, Morsel, SimpleCookie
from typing import NamedTuple, TypedDict
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from conversations.segments import segments_of
from conversations.simulated import SIMULATOR_MARK, simulator_mark

# Twilio's own test number as the recipient ("To", the app's number) and a San Francisco sender.
DEFAULT_SENDER = "+14155551234"
DEFAULT_RECIPIENT = "+15005550006"

# Twilio keeps a pair's cookies for at most 4 hours, whatever Max-Age says.
COOKIE_LIFETIME = 4 * 60 * 60
# Twilio gives up on a webhook that has not answered within 15 seconds.
TIMEOUT = 15
USER_AGENT = "TwilioProxy/1.1"
FORM = "application/x-www-form-urlencoded"


class Rejected(Exception):
    """The app did not take the text; the message is a one-line reason."""


class KeptCookie(TypedDict):
    value: str
    expires: float  # Unix time.


Jar = dict[str, KeptCookie]


class CookieJars:
    """Twilio's cookie store: one jar per To/From pair, JSON-ready for a file or a session."""

    def __init__(self, data: Mapping[str, Mapping[str, Jar]] | None = None) -> None:
        # Nested by sender, then recipient: alphanumeric sender IDs may hold any character.
        self.data: dict[str, dict[str, Jar]] = {s: dict(jars) for s, jars in (data or {}).items()}

    def cookies(self, sender: str, recipient: str, now: float) -> dict[str, str]:
        jar = self.data.get(sender, {}).get(recipient, {})
        return {name: kept["value"] for name, kept in jar.items() if kept["expires"] > now}

    def keep(self, sender: str, recipient: str, set_cookies: SimpleCookie, now: float) -> None:
        jar = dict(self.data.get(sender, {}).get(recipient, {}))
        for name, morsel in set_cookies.items():
            lifetime = min(_lifetime(morsel, now), COOKIE_LIFETIME)
            if lifetime > 0:
                jar[name] = {"value": morsel.value, "expires": now + lifetime}
            else:
                jar.pop(name, None)  # Max-Age=0 or a past Expires: the app deleted it.
        self.data.setdefault(sender, {})[recipient] = jar

    def to_dict(self, now: float) -> dict[str, dict[str, Jar]]:
        """The jars without their expired cookies, so stores don't grow forever."""
        data: dict[str, dict[str, Jar]] = {}
        for sender, jars in self.data.items():
            for recipient, jar in jars.items():
                live = {name: kept for name, kept in jar.items() if kept["expires"] > now}
                if live:
                    data.setdefault(sender, {})[recipient] = live
        return data


def _lifetime(morsel: Morsel[str], now: float) -> float:
    if morsel["max-age"]:
        try:
            return int(morsel["max-age"])
        except ValueError:
            pass
    if morsel["expires"]:
        try:
            return parsedate_to_datetime(morsel["expires"]).timestamp() - now
        except (TypeError, ValueError):
            pass
    return COOKIE_LIFETIME  # A session cookie: Twilio's "session" is those 4 hours.


@dataclasses.dataclass(frozen=True)
class Delivery:
    sid: str  # The MessageSid it was sent with, to find what the app recorded.
    status: int
    twiml: str
    reply: str | None  # The <Message> texts, one a line; None for an empty <Response/>.


class WebhookResponse(NamedTuple):
    status: int
    content: bytes
    set_cookies: SimpleCookie


def send_as_twilio(
    body: str,
    sender: str,
    recipient: str,
    *,
    url: str | None = None,
    jars: CookieJars | None = None,
    media: Sequence[str] = (),
) -> Delivery:
    """Deliver a text to the webhook, in-process or at `url`, and return the app's answer.

    Raises Rejected when the app does not answer 200 with TwiML, or cannot be reached.
    """
    now = time.time()
    jars = jars if jars is not None else CookieJars()
    target = url or in_process_url()
    params = twilio_params(body, sender, recipient, media)
    headers = {"User-Agent": USER_AGENT}
    if settings.TWILIO_AUTH_TOKEN:
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
        headers["X-Twilio-Signature"] = validator.compute_signature(target, params)
    cookies = jars.cookies(sender, recipient, now)
    post = _post_over_http if url else _post_in_process
    answer = post(target, params, headers, cookies)
    # Twilio keeps the cookies of any answer, as a browser does.
    jars.keep(sender, recipient, answer.set_cookies, now)
    if answer.status != HTTPStatus.OK:
        raise Rejected(_reason(answer))
    twiml = answer.content.decode("utf-8", errors="replace")
    return Delivery(sid=params["MessageSid"], status=answer.status, twiml=twiml, reply=_reply(twiml))


def in_process_url() -> str:
    """Where Twilio would call the webhook: the public base URL, else the first allowed host."""
    path = reverse("sms")
    if settings.TWILIO_WEBHOOK_BASE_URL:
        return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + path
    # Behind SECURE_SSL_REDIRECT a plain-HTTP call would only get a redirect, so call as HTTPS.
    scheme = "https" if settings.SECURE_SSL_REDIRECT else "http"
    return f"{scheme}://{_allowed_host()}{path}"


def _allowed_host() -> str:
    # ".example.com" allows example.com itself; "*" names no host, and localhost is then fine.
    concrete = [host.lstrip(".") for host in settings.ALLOWED_HOSTS if host != "*"]
    return concrete[0] if concrete else "localhost"


def twilio_params(body: str, sender: str, recipient: str, media: Sequence[str]) -> dict[str, str]:
    """The parameters of an incoming-message webhook, as Twilio names them, marked simulated."""
    sid = f"{'MM' if media else 'SM'}{uuid.uuid4().hex}"
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID or f"AC{'0' * 32}",
        "From": sender,
        "To": recipient,
        "Body": body,
        "NumMedia": str(len(media)),
        "NumSegments": str(max(segments_of(body).count, 1)),  # Twilio's count, by its rules.
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    for index, media_url in enumerate(media):
        params[f"MediaUrl{index}"] = media_url
        params[f"MediaContentType{index}"] = mimetypes.guess_type(media_url)[0] or "application/octet-stream"
    params[SIMULATOR_MARK] = simulator_mark(sid, sender, recipient)
    return params


def _post_in_process(
    url: str, params: dict[str, str], headers: dict[str, str], cookies: dict[str, str]
) -> WebhookResponse:
    parts = urlsplit(url)
    # A tunnel may reach the app under another name than TWILIO_WEBHOOK_BASE_URL's (the
    # signature is checked against that URL anyway), so send a Host the app accepts.
    domain, _ = split_domain_port(parts.netloc)
    host = parts.netloc if validate_host(domain, settings.ALLOWED_HOSTS) else _allowed_host()
    # The test client runs the full handler (middleware, URLconf, decorators) without a socket,
    # and unlike a bare WSGIHandler it leaves the caller's database connection open.
    client = Client(raise_request_exception=False)
    client.cookies = SimpleCookie(cookies)
    response = client.generic(
        "POST",
        parts.path + (f"?{parts.query}" if parts.query else ""),
        urlencode(params),
        content_type=FORM,
        secure=parts.scheme == "https",
        headers={**headers, "Host": host},
    )
    return WebhookResponse(response.status_code, response.content, response.cookies)


class _NoRedirects(HTTPRedirectHandler):
    # A redirected POST comes back as a GET without the text; report the redirect instead.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _post_over_http(
    url: str, params: dict[str, str], headers: dict[str, str], cookies: dict[str, str]
) -> WebhookResponse:
    request = Request(url, data=urlencode(params).encode(), headers={**headers, "Content-Type": FORM})
    if cookies:
        request.add_header(
            "Cookie", "; ".join(f"{m.key}={m.coded_value}" for m in SimpleCookie(cookies).values())
        )
    try:
        with build_opener(_NoRedirects).open(request, timeout=TIMEOUT) as response:
            return _webhook_response(response.status, response.headers, response.read())
    except HTTPError as error:
        with error:
            return _webhook_response(error.code, error.headers, error.read())
    except OSError as error:  # Refused, unresolvable, timed out: urllib wraps most in URLError.
        reason = getattr(error, "reason", error)
        reason = getattr(reason, "strerror", None) or reason
        raise Rejected(f"Could not reach {url}: {reason}") from error


def _webhook_response(status: int, headers: Headers, content: bytes) -> WebhookResponse:
    set_cookies = SimpleCookie()
    for header in headers.get_all("Set-Cookie") or []:
        # Twilio skips a cookie it cannot parse, and so does a browser.
        with suppress(CookieError):
            set_cookies.load(header)
    return WebhookResponse(status, content, set_cookies)


def _reason(answer: WebhookResponse) -> str:
    try:
        reason = f"{answer.status} {HTTPStatus(answer.status).phrase}"
    except ValueError:
        reason = f"HTTP {answer.status}"
    # A short text body says why (the webhook's 400s and 403s do); an HTML page would not fit.
    text = answer.content.decode("utf-8", errors="replace").strip()
    if text and not text.startswith("<"):
        reason += f": {text.splitlines()[0][:200]}"
    return reason


def _reply(twiml: str) -> str | None:
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as error:
        raise Rejected(f"200 OK, but the answer is not TwiML: {twiml[:80]!r}") from error
    if root.tag != "Response":
        raise Rejected(f"200 OK, but the answer is not TwiML: <{root.tag}>")
    texts = []
    for message in root.iter("Message"):
        # <Message>text</Message>, or the text in a nested <Body> beside <Media>.
        body = message.find("Body")
        texts.append((body.text if body is not None else message.text) or "")
    return "\n".join(texts) if texts else None
