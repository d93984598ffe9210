"""The counter as a Django developer would first write it: the bench's third reference.

A new project's defaults (`startproject`'s middleware, database sessions, a connection per
request, SQLite's own journal), one view that counts in `request.session`: no signature
check, no lock (overlapping texts of a pair lose counts), no record of the texts. It is its own
settings module, URLconf and WSGI app, served by plain `gunicorn -w 2` (bench/cli.py).
"""

import os

import environ
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from twilio.twiml.messaging_response import MessagingResponse

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ["ALLOWED_HOSTS"].split(",")
ROOT_URLCONF = __name__
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
DATABASES = {"default": environ.Env.db_url_config(os.environ["NAIVE_DATABASE_URL"])}
USE_TZ = True

CALLERS = {
    "+14158675308": "Rey",
    "+12349013030": "Finn",
    "+12348134522": "Chewy",
}


@csrf_exempt
def sms(request: HttpRequest) -> HttpResponse:
    counter = request.session.get("counter", 0) + 1
    request.session["counter"] = counter
    name = CALLERS.get(request.POST.get("From", ""), "Friend")
    response = MessagingResponse()
    response.message(f"{name} has messaged {request.POST.get('To')} {counter} times.")
    return HttpResponse(str(response), content_type="text/xml")


urlpatterns = [path("", sms)]

if os.environ.get("DJANGO_SETTINGS_MODULE") == __name__:
    application = get_wsgi_application()
