"""Settings for the worker processes the tests start: the tests' own, with twilio's HTTP client
sending to the fake API at FAKE_TWILIO_API (tests/twilio_api_server.py)."""

import os

from tests.settings import *  # noqa: F403
from tests.twilio_api_server import twilio_library_redirect

twilio_library_redirect(os.environ["FAKE_TWILIO_API"])
