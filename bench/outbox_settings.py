"""Settings for the outbox workers `make bench --outbox` starts: production's (bench.settings),
with the twilio library's HTTP client sending to the fake API at FAKE_TWILIO_API
(tests/twilio_api_server.py) instead of api.twilio.com."""

import os

from bench.settings import *  # noqa: F403
from tests.twilio_api_server import twilio_library_redirect

twilio_library_redirect(os.environ["FAKE_TWILIO_API"])
