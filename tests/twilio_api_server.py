"""Twilio's REST API as an HTTP server on loopback, for worker processes (and `make bench`).

It keeps every POST (when it came, to whom, from which sender) and answers each as a script
says, with Twilio's own payloads: 201 and a Message resource, 429 with error 20429, 400 with a
refusal, an answer later than the client waits for, or a connection dropped once the request
was read. A worker started with tests/worker_settings.py sends its requests here.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock
from urllib.parse import parse_qs

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

ACCEPT, TOO_MANY, OPTED_OUT, SLOW, DROP = "accept", "429", "21610", "slow", "drop"


@dataclass
class Post:
    at: float  # time.time() when the request was read
    to: str
    sender: str  # From, or the MessagingServiceSid
    body: str
    status_callback: str


class TwilioApiServer:
    def __init__(self, latency: float = 0.0, slow: float = 3.0) -> None:
        self.latency, self.slow = latency, slow  # Every answer's delay; a SLOW answer's.
        self.posts: list[Post] = []
        self.script: dict[str, list[str]] = {}  # To -> what to answer its next POSTs (then ACCEPT).
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, to: str, *answers: str) -> None:
        self.script.setdefault(to, []).extend(answers)

    def posts_to(self) -> Counter[str]:
        with self.lock:
            return Counter(post.to for post in self.posts)

    def _next(self, post: Post) -> str:
        with self.lock:
            self.posts.append(post)
            queued = self.script.get(post.to)
            return queued.pop(0) if queued else ACCEPT


def _handler(api: TwilioApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The headers and the body go out as two writes: with Nagle's algorithm on, the body
        # waits for the client's delayed ACK (40 ms on Linux) once a keep-alive connection has
        # left quick-ACK mode, a stall that Twilio's API does not have.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
            post = Post(
                time.time(),
                form.get("To", ""),
                form.get("From") or form.get("MessagingServiceSid", ""),
                form.get("Body", ""),
                form.get("StatusCallback", ""),
            )
            answer = api._next(post)
            time.sleep(api.latency + (api.slow if answer == SLOW else 0))
            if answer == DROP:
                self.close_connection = True
                self.connection.close()  # Read, never answered: the client cannot know.
                return
            if answer == TOO_MANY:
                self._json(429, _error(20429, "Too Many Requests", 429))
            elif answer == OPTED_OUT:
                self._json(400, _error(21610, "Attempt to send to unsubscribed recipient", 400))
            else:
                self._json(201, _message(form))

        def _json(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # The client gave up waiting (TWILIO_TIMEOUT).

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _error(code: int, message: str, status: int) -> dict[str, object]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _message(form: dict[str, str]) -> dict[str, object]:
    """A Message resource as Twilio answers a create (the fields the twilio library reads)."""
    return {
        "sid": f"SM{uuid.uuid4().hex}",
        "status": "queued",
        "from": form.get("From"),
        "to": form.get("To"),
        "body": form.get("Body"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_segments": "1",
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
    }


@contextmanager
def twilio_api_server(latency: float = 0.0, slow: float = 3.0) -> Iterator[TwilioApiServer]:
    api = TwilioApiServer(latency, slow)
    thread = threading.Thread(target=api.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.server.shutdown()
        api.server.server_close()


def twilio_library_redirect(api_url: str) -> None:
    """Send the twilio library's HTTP client to the fake API at `api_url` instead of
    api.twilio.com, in a worker process's settings. The client is otherwise the real one: its
    timeout, its connection pool, requests and urllib3 all do what they do in production."""
    TwilioHttpClient.request = _to_the_fake_api(TwilioHttpClient.request, api_url)  # type: ignore[method-assign]


@contextmanager
def twilio_library_redirected(api_url: str) -> Iterator[None]:
    """twilio_library_redirect() for the time of a `with` block, in the test's own process."""
    with mock.patch.object(TwilioHttpClient, "request", _to_the_fake_api(TwilioHttpClient.request, api_url)):
        yield


def _to_the_fake_api(request: Callable[..., Response], api_url: str) -> Callable[..., Response]:
    def to_the_fake_api(self: TwilioHttpClient, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return request(self, method, url.replace("https://api.twilio.com", api_url), *args, **kwargs)

    return to_the_fake_api
