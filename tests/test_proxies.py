"""Forwarded headers count only from the trusted proxy (FORWARDED_ALLOW_IPS), under the
production gunicorn config: a client that reaches gunicorn directly cannot pass for HTTPS or
another host."""

from __future__ import annotations

import pytest
import requests
from django.test import TestCase, TransactionTestCase, override_settings

from tests.server import gunicorn
from tests.twilio import RECIPIENT, SENDER, sign

BEHIND_A_PROXY = {
    "USE_X_FORWARDED": "True",
    "SECURE_SSL_REDIRECT": "True",
    "SESSION_COOKIE_SECURE": "True",
    "ALLOWED_HOSTS": "127.0.0.1,sms.example.com",
}
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sms.example.com"}
PUBLIC_URL = "https://sms.example.com/sms/"


def signed_text(base_url: str) -> requests.Response:
    params = {"From": SENDER, "To": RECIPIENT, "Body": "Hello", "MessageSid": "SM" + "0" * 32}
    headers = {**FORWARDED, "X-Twilio-Signature": sign(PUBLIC_URL, params)}
    return requests.post(f"{base_url}/sms/", data=params, headers=headers, timeout=10, allow_redirects=False)


@pytest.mark.slow
class ForwardedHeadersUnderGunicornTestCase(TransactionTestCase):
    def test_it_ignores_forwarded_headers_from_a_peer_that_is_not_the_proxy(self) -> None:
        with gunicorn(**BEHIND_A_PROXY, FORWARDED_ALLOW_IPS="192.0.2.1") as base_url:
            page = requests.get(
                f"{base_url}/admin/login/", headers=FORWARDED, timeout=10, allow_redirects=False
            )
            text = signed_text(base_url)

        # Plain HTTP, redirected to HTTPS on the host the client connected to.
        self.assertEqual(page.status_code, 301)
        self.assertTrue(page.headers["Location"].startswith("https://127.0.0.1:"), page.headers["Location"])
        self.assertEqual(text.status_code, 301)

    def test_it_honours_forwarded_headers_from_the_proxy(self) -> None:
        with gunicorn(**BEHIND_A_PROXY, FORWARDED_ALLOW_IPS="127.0.0.1") as base_url:
            page = requests.get(
                f"{base_url}/admin/login/", headers=FORWARDED, timeout=10, allow_redirects=False
            )
            text = signed_text(base_url)

        self.assertEqual(page.status_code, 200)
        # The signature of the public HTTPS URL checks out, and the cookie is a secure one.
        self.assertEqual(text.status_code, 200, text.text)
        self.assertIn("messaged +15005550006 1 time", text.text)
        self.assertIn("secure", text.headers["Set-Cookie"].lower())


@override_settings(USE_X_FORWARDED_HOST=True, ALLOWED_HOSTS=["testserver", "sms.example.com"])
class ForwardedHostTestCase(TestCase):
    def host_seen_from(self, remote_addr: str) -> str:
        response = self.client.get(
            "/admin/login/", headers={"X-Forwarded-Host": "sms.example.com"}, REMOTE_ADDR=remote_addr
        )
        return response.wsgi_request.get_host()

    @override_settings(FORWARDED_ALLOW_IPS=["127.0.0.1", "10.0.0.0/8"])
    def test_it_takes_the_forwarded_host_from_a_trusted_address_or_network(self) -> None:
        self.assertEqual(self.host_seen_from("127.0.0.1"), "sms.example.com")
        self.assertEqual(self.host_seen_from("10.1.2.3"), "sms.example.com")

    @override_settings(FORWARDED_ALLOW_IPS=["127.0.0.1", "10.0.0.0/8"])
    def test_it_drops_the_forwarded_host_from_any_other_peer(self) -> None:
        self.assertEqual(self.host_seen_from("203.0.113.7"), "testserver")

    @override_settings(FORWARDED_ALLOW_IPS=["*"])
    def test_a_star_trusts_every_peer_as_gunicorn_does(self) -> None:
        self.assertEqual(self.host_seen_from("203.0.113.7"), "sms.example.com")

    def test_it_decides_again_for_the_same_peer_once_the_trusted_proxies_change(self) -> None:
        # Each peer's answer is kept (proxies.py), but only for the FORWARDED_ALLOW_IPS it was given.
        seen = []
        for allowed in (["127.0.0.1"], ["203.0.113.0/24"], ["127.0.0.1"]):
            with override_settings(FORWARDED_ALLOW_IPS=allowed):
                seen.append(self.host_seen_from("203.0.113.7"))

        self.assertEqual(seen, ["testserver", "sms.example.com", "testserver"])
