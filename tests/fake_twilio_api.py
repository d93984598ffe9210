"""Twilio's REST API, faked at the twilio library's HTTP layer: nothing leaves the machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import requests
from twilio.http.response import Response
from urllib3.exceptions import MaxRetryError, NewConnectionError


@dataclass
class ApiRequest:
    method: str
    url: str
    data: dict[str, Any]
    auth: tuple[str, str] | None


class FakeTwilioApi:
    """Answers the requests twilio's client makes, as Twilio would, and keeps them."""

    def __init__(self) -> None:
        self.requests: list[ApiRequest] = []
        self.answers: list[Response | Exception] = []

    def accepts(
        self, sid: str = "SM" + "1" * 32, status: str = "queued", from_: str | None = None, to: str = ""
    ) -> None:
        """A Message resource as Twilio answers a create: the sender it used (null while a
        Messaging Service has yet to pick one), the recipient, and how it will be sent."""
        self.answers.append(
            Response(
                201,
                json.dumps(
                    {
                        "sid": sid,
                        "status": status,
                        "from": from_,
                        "to": to,
                        "num_segments": "1",
                        "error_code": None,
                        "error_message": None,
                    }
                ),
            )
        )

    def refuses(self, status: int, code: int, message: str) -> None:
        body = {
            "code": code,
            "message": message,
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        }
        self.answers.append(Response(status, json.dumps(body)))

    def refuses_opted_out(self) -> None:
        """21610: the recipient replied STOP to the sender, here or through any other app."""
        self.refuses(400, 21610, "Attempt to send to unsubscribed recipient")

    def refuses_invalid_number(self, number: str) -> None:
        self.refuses(400, 21211, f"The 'To' number {number} is not a valid phone number.")

    def refuses_not_mobile(self, number: str) -> None:
        self.refuses(400, 21614, f"To number: {number}, is not a mobile number")

    def refuses_unregistered(self) -> None:
        """30034: US carriers block 10DLC traffic from a number no A2P campaign registered."""
        self.refuses(400, 30034, "US A2P 10DLC - Message from an Unregistered Number")

    def too_many_requests(self) -> None:
        """20429: Twilio's concurrency limit, "not processed, safe to retry after backing off"."""
        self.refuses(429, 20429, "Too Many Requests")

    def times_out(self) -> None:
        """The request went out and no answer came within TWILIO_TIMEOUT: Twilio may have it."""
        self.answers.append(requests.ReadTimeout("Read timed out. (read timeout=10)"))

    def refuses_connections(self) -> None:
        """Nothing listens (or the name did not resolve): the request never left."""
        reason = NewConnectionError(
            None, "Failed to establish a new connection: [Errno 111] Connection refused"
        )  # type: ignore[arg-type]
        self.answers.append(requests.ConnectionError(MaxRetryError(None, "/Messages.json", reason)))  # type: ignore[arg-type]

    def __call__(
        self, method: str, url: str, params: Any = None, data: Any = None, auth: Any = None, **kwargs: Any
    ) -> Response:
        self.requests.append(ApiRequest(method, url, dict(data or {}), auth))
        assert self.answers, f"Twilio's API was not expected to be called: {method} {url} {data}"
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @contextmanager
    def serving(self) -> Iterator[FakeTwilioApi]:
        with mock.patch("twilio.http.http_client.TwilioHttpClient.request", new=self):
            yield self
