"""Texts as Twilio sends them: signed form posts from many To/From pairs, each pair keeping its cookie.

wrk's Lua cannot compute Twilio's HMAC-SHA1 signature, so every request wrk sends is made
here first and written to a file, one line per request (see `write_requests`).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus

import requests
from twilio.request_validator import RequestValidator

# Twilio's test number; the no-op view's fixed reply names it too.
RECIPIENT = "+15005550006"
SENDER_PREFIX = "+1415555"  # every sender is +1 415 555 xxxx
MAX_PAIRS = 10_000
ACCOUNT_SID = "AC" + "0" * 32
# The rest of what Twilio sends with each text: where the numbers are, the message's shape.
WHERE = dict(
    parse_qsl(
        "ToCountry=US&ToState=CA&ToCity=&ToZip=&FromCountry=US&FromState=CA&FromCity=SAN+FRANCISCO&"
        "FromZip=94105&NumMedia=0&NumSegments=1&SmsStatus=received&ApiVersion=2010-04-01",
        keep_blank_values=True,
    )
)
# Set by the TLS proxy in front of the app; bench/wrk.lua sends it too.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
# Ordinary texts only: no opt-out, opt-in or help keyword, which would change the count.
BODIES = ("Hello", "Are you open today?", "Thanks, see you at 6", "ok", "What's the address again?")


@dataclasses.dataclass(frozen=True)
class Pair:
    index: int
    sender: str
    recipient: str = RECIPIENT


def make_pairs(count: int) -> list[Pair]:
    return [Pair(index, f"{SENDER_PREFIX}{index:04d}") for index in range(count)]


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def twilio_params(pair: Pair, body: str, sid: str) -> dict[str, str]:
    """The parameters of Twilio's incoming-message webhook (all of them are signed)."""
    ids = {"SmsMessageSid": sid, "SmsSid": sid, "MessageSid": sid, "AccountSid": ACCOUNT_SID}
    return {**WHERE, **ids, "Body": body, "To": pair.recipient, "From": pair.sender}


class _Params(dict[str, str]):
    """A dict with the multi-dict method RequestValidator looks for first: for a plain dict it
    catches two AttributeErrors per parameter, which costs more than the HMAC."""

    def getall(self, key: str) -> list[str]:
        return [self[key]]


class Signer:
    """Signs for `url`, the public https URL Twilio calls (the TLS proxy wrk plays makes it http)."""

    def __init__(self, token: str, url: str) -> None:
        self.validator = RequestValidator(token)
        self.url = url

    def sign(self, params: dict[str, str]) -> str:
        return self.validator.compute_signature(self.url, _Params(params))


# Most values repeat from request to request: caching their quoting makes writing the
# request files between two wrk runs several times faster.
_quote = functools.lru_cache(maxsize=1024)(quote_plus)


def form_body(params: dict[str, str]) -> str:
    """The same as urlencode(params), faster."""
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in params.items())


def send_text(url: str, signer: Signer, pair: Pair, cookie_name: str) -> tuple[int, str]:
    """POST one signed text to `url`; return the status and the reply's cookie `cookie_name` as
    a Cookie header ("" if it set none)."""
    params = twilio_params(pair, BODIES[0], new_sid())
    headers = {**PROXY_HEADERS, "X-Twilio-Signature": signer.sign(params)}
    response = requests.post(url, data=params, headers=headers, timeout=15, allow_redirects=False)
    value = response.cookies.get(cookie_name)
    return response.status_code, f"{cookie_name}={value}" if value else ""


def write_requests(
    file: Path, path: str, signer: Signer, pairs: list[Pair], cookies: dict[int, str], count: int
) -> None:
    """Write `count` requests to `path` for wrk, each with a fresh MessageSid, from pairs picked at
    random as texts arrive (a pair may have two in flight): one line per request, tab-separated:
    pair index, path, X-Twilio-Signature, Cookie header, form body."""
    rng = random.Random(count)  # Reproducible order; the sids are fresh anyway.
    with file.open("w") as out:
        for _ in range(count):
            pair = rng.choice(pairs)
            params = twilio_params(pair, rng.choice(BODIES), new_sid())
            out.write(
                f"{pair.index}\t{path}\t{signer.sign(params)}\t{cookies[pair.index]}\t{form_body(params)}\n"
            )
