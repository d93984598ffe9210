"""Clients that never finish their request cannot take the app down with them."""

from __future__ import annotations

import socket
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
