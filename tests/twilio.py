"""Sending texts to the app the way Twilio does, for the tests."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from http.cookies import SimpleCookie

from django.conf import settings
from django.http import HttpResponse
from django.test import Client, TestCase, override_settings
from twilio.request_validator import RequestValidator

TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
SENDER = "+14155551234"
RECIPIENT = "+15005550006"


def new_sid() -> str:
    """A MessageSid as Twilio makes them: SM and 32 hex digits."""
    return f"SM{uuid.uuid4().hex}"


def sid_of(number: int) -> str:
    """A well-formed MessageSid that a test can name: sid_of(1) == "SM000…0001"."""
    return f"SM{number:032x}"


def sign(url: str, params: dict[str, str] | None = None, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params or {})


def reply_of(response: HttpResponse) -> str | None:
    """The text of the TwiML <Message>, or None for an empty <Response/>."""
    root = ET.fromstring(response.content)
    assert root.tag == "Response", response.content
    message = root.find("Message")
    return None if message is None else message.text


class Twilio:
    """A fake Twilio edge: signs each webhook and keeps one cookie jar per To/From pair."""

    def __init__(self, client: Client | None = None, base_url: str = "http://testserver") -> None:
        self.client = client or Client()
        self.base_url = base_url
        self.jars: dict[tuple[str, str], str] = {}

    def text(
        self,
        body: str = "Hello",
        *,
        sender: str = SENDER,
        recipient: str = RECIPIENT,
        sid: str | None = None,
        cookie: str | None = None,
        path: str = "/sms/",
        **extra: str,
    ) -> HttpResponse:
        # Like Twilio, a fresh MessageSid for each text (sid="" sends none) and the AccountSid.
        params = {
            "AccountSid": settings.TWILIO_ACCOUNT_SID or f"AC{'0' * 32}",
            "From": sender,
            "To": recipient,
            "Body": body,
            **extra,
        }
        if sid != "":
            params["MessageSid"] = sid or new_sid()
        pair = (sender, recipient)
        jar = self.jars.get(pair, "") if cookie is None else cookie
        response = self.client.post(
            path,
            params,
            secure=self.base_url.startswith("https:"),  # Twilio calls the scheme it was given.
            headers={
                "X-Twilio-Signature": sign(self.base_url + path, params),
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={jar}" if jar else "",
            },
        )
        self._keep_cookie(pair, response)
        return response

    def _keep_cookie(self, pair: tuple[str, str], response: HttpResponse) -> None:
        self.client.cookies = SimpleCookie()  # Twilio has no jar shared across pairs.
        morsel = response.cookies.get(settings.SESSION_COOKIE_NAME)
        if morsel is not None:
            self.jars[pair] = morsel.value


@override_settings(TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
class TwilioTestCase(TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.twilio = Twilio()
