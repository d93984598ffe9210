"""What `make bench` serves: the app's own settings, with the no-op view's URL added."""

from smsproject.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
