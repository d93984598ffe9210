"""Twilio's REST API, faked at the twilio library's HTTP layer: nothing leaves the machine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from twilio.http.response import Response


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
        self.answers: list[Response] = []

    def accepts(self, sid: str = "SM" + "1" * 32, status: str = "queued") -> None:
        self.answers.append(Response(201, json.dumps({"sid": sid, "status": status})))

    def refuses(self, status: int, code: int, message: str) -> None:
        body = {
            "code": code,
            "message": message,
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        }
        self.answers.append(Response(status, json.dumps(body)))

    def __call__(
        self, method: str, url: str, params: Any = None, data: Any = None, auth: Any = None, **kwargs: Any
    ) -> Response:
        self.requests.append(ApiRequest(method, url, dict(data or {}), auth))
        return self.answers.pop(0)

    @contextmanager
    def serving(self) -> Iterator[FakeTwilioApi]:
        with mock.patch("twilio.http.http_client.TwilioHttpClient.request", new=self):
            yield self
