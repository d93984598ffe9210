"""Clients that never finish their request cannot take the app down with them."""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import pytest
import requests
from django.test import TransactionTestCase

from tests.server import gunicorn
from tests.twilio import RECIPIENT, SENDER, sign

WORKERS = 2
# Well below gunicorn's 15 s timeout, after which even sync workers are freed.
CLIENT_TIMEOUT = 8


def stalled_connection(base_url: str) -> socket.socket:
    """A client that sends part of its headers and then nothing more."""
    address = urlsplit(base_url)
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(b"POST /sms/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
    return sock


def stalled_body(base_url: str) -> socket.socket:
    """A client that sends its headers and part of the body they announce, then nothing more."""
    address = urlsplit(base_url)
    sock = socket.create_connection((address.hostname, address.port))
    sock.sendall(b"POST /sms/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nFrom=%2B1415")
    return sock


@pytest.mark.slow
class StalledClientsTestCase(TransactionTestCase):
    def test_more_stalled_connections_than_workers_leave_the_app_answering(self) -> None:
        params = {"From": SENDER, "To": RECIPIENT, "Body": "Hello", "MessageSid": "SM" + "1" * 32}
        with gunicorn(workers=WORKERS) as base_url, ExitStack() as stack:
            for _ in range(WORKERS + 1):
                stack.enter_context(stalled_connection(base_url))

            health = requests.get(f"{base_url}/healthz", timeout=CLIENT_TIMEOUT)
            text = requests.post(
                f"{base_url}/sms/",
                data=params,
                headers={"X-Twilio-Signature": sign(f"{base_url}/sms/", params)},
                timeout=CLIENT_TIMEOUT,
            )

        self.assertEqual(health.status_code, 200)
        self.assertEqual(text.status_code, 200)
        self.assertIn("messaged +15005550006 1 time", text.text)

    def test_it_answers_healthz_within_a_second_beside_sixteen_clients_stalled_in_headers_and_sixteen_in_body(
        self,
    ) -> None:
        with gunicorn(workers=WORKERS) as base_url, ExitStack() as stack:
            for _ in range(16):
                stack.enter_context(stalled_connection(base_url))
                stack.enter_context(stalled_body(base_url))
            started = time.monotonic()
            health = requests.get(f"{base_url}/healthz", timeout=CLIENT_TIMEOUT)
            took = time.monotonic() - started

        print(f"\n/healthz beside 16 + 16 stalled clients: {took:.3f} s")
        self.assertEqual(health.status_code, 200)
        # A correctness bound, not a speed figure: a held worker would take seconds.
        self.assertLess(took, 1.0)
