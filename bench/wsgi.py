"""The production WSGI app with bench/urls.py as its URLconf (gunicorn ... bench.wsgi:application)."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsproject.settings")
# Same settings and middleware as production; only the URLconf gains the no-op view.
settings.ROOT_URLCONF = "bench.urls"

application = get_wsgi_application()
