"""Texts as Twilio sends them: signed form posts from many To/From pairs, cookie kept per pair.

wrk's Lua cannot compute Twilio's HMAC-SHA1 signature, so every request wrk sends is made
here first and written to a file, one line per request (see `write_requests`).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import secrets
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote_plus

from twilio.request_validator import RequestValidator

# Twilio's test number; the no-op view's fixed reply names it too.
RECIPIENT = "+15005550006"
# Every benchmark sender is +1 415 555 xxxx; the seeded data stays clear of that block.
SENDER_PREFIX = "+1415555"
MAX_PAIRS = 10_000
ACCOUNT_SID = "AC" + "0" * 32
# Set by the TLS proxy in front of the app; bench/wrk.lua sends it too.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
# Ordinary texts only: no opt-out, opt-in or help keyword, which would change the count.
BODIES = (
    "Hello",
    "Are you open today?",
    "Thanks, see you at 6",
    "Can I move my appointment to Friday?",
    "ok",
    "What's the address again?",
)


@dataclasses.dataclass(frozen=True)
class Pair:
    index: int
    sender: str
    recipient: str = RECIPIENT


def make_pairs(count: int) -> list[Pair]:
    if count > MAX_PAIRS:
        raise ValueError(f"at most {MAX_PAIRS:,} pairs (one +1 415 555 xxxx block)")
    return [Pair(index, f"{SENDER_PREFIX}{index:04d}") for index in range(count)]


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def twilio_params(pair: Pair, body: str, sid: str) -> dict[str, str]:
    """The parameters of Twilio's incoming-message webhook (all of them are signed)."""
    return {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "",
        "FromZip": "94105",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": pair.recipient,
        "ToZip": "",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": pair.sender,
        "ApiVersion": "2010-04-01",
    }


class _Params(dict[str, str]):
    """A dict with the multi-dict methods RequestValidator looks for first.

    For a plain dict, compute_signature() catches two AttributeErrors per parameter, which
    costs more than the HMAC; the signature is the same either way.
    """

    def getall(self, key: str) -> list[str]:
        return [self[key]]


class Signer:
    def __init__(self, token: str, url: str) -> None:
        self.validator = RequestValidator(token)
        self.url = url

    def sign(self, params: dict[str, str]) -> str:
        return self.validator.compute_signature(self.url, _Params(params))


# Most values repeat from request to request, so their quoting is cached: this file is
# written between two wrk runs, and tens of thousands of urlencode() calls add up.
_quote = functools.lru_cache(maxsize=1024)(quote_plus)


def form_body(params: dict[str, str]) -> str:
    """The same as urlencode(params), faster."""
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in params.items())


def send_text(url: str, signer: Signer, pair: Pair, cookie: str | None) -> tuple[int, str | None]:
    """POST one signed text to `url`; return the status and the session cookie the reply set."""
    params = twilio_params(pair, BODIES[0], new_sid())
    headers = {
        **PROXY_HEADERS,
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signer.sign(params),
    }
    if cookie:
        headers["Cookie"] = f"sessionid={cookie}"
    request = urllib.request.Request(url, data=form_body(params).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, session_cookie(response.headers.get_all("Set-Cookie") or [])
    except urllib.error.HTTPError as error:
        return error.code, None


def session_cookie(set_cookie_headers: list[str]) -> str | None:
    for header in set_cookie_headers:
        morsel = SimpleCookie(header).get("sessionid")
        if morsel is not None:
            return morsel.value
    return None


def write_requests(
    path: Path, signer: Signer, pairs: list[Pair], cookies: dict[int, str], count: int
) -> None:
    """Write `count` requests for wrk, each from a pair picked at random, each with a fresh MessageSid.

    Line format (tab-separated): pair index, path, X-Twilio-Signature, sessionid cookie, form
    body. Pairs are picked at random, as texts arrive: a pair may have two texts in flight.
    """
    url_path = "/" + signer.url.split("/", 3)[3]
    with path.open("w") as file:
        for pair, body in _texts(pairs, count):
            params = twilio_params(pair, body, new_sid())
            cookie = cookies.get(pair.index, "")
            file.write(f"{pair.index}\t{url_path}\t{signer.sign(params)}\t{cookie}\t{form_body(params)}\n")


def _texts(pairs: list[Pair], count: int) -> Iterator[tuple[Pair, str]]:
    rng = random.Random(count)  # Reproducible order; the sids are fresh anyway.
    for _ in range(count):
        yield rng.choice(pairs), rng.choice(BODIES)
