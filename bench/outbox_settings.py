"""Settings for the outbox workers `make bench --outbox` starts: production's (bench.settings),
with the twilio library's HTTP client sending to the fake API at FAKE_TWILIO_API
(tests/twilio_api_server.py) instead of api.twilio.com. The client is otherwise the real one:
its timeout, connection pool, requests and urllib3 do what they do in production."""

import os

from twilio.http.http_client import TwilioHttpClient

from bench.settings import *  # noqa: F403

_FAKE_API = os.environ["FAKE_TWILIO_API"]
_request = TwilioHttpClient.request


def _to_the_fake_api(
    self: TwilioHttpClient, method: str, url: str, *args: object, **kwargs: object
) -> object:
    return _request(self, method, url.replace("https://api.twilio.com", _FAKE_API), *args, **kwargs)  # type: ignore[arg-type]


TwilioHttpClient.request = _to_the_fake_api  # type: ignore[method-assign]
