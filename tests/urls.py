"""Small apps on the conversation machinery, to test it apart from the counter bot."""

import time

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from conversations.webhook import signed_by_twilio, sms_conversation


@csrf_exempt
@sms_conversation
def echo(request: HttpRequest) -> str:
    # Appended in place, never reassigned: the machinery saves the session every time.
    request.session.setdefault("bodies", []).append(request.text.body)
    return " / ".join(request.session["bodies"])


@csrf_exempt
@sms_conversation
def silent(request: HttpRequest) -> None:
    request.session["heard"] = request.session.get("heard", 0) + 1


@csrf_exempt
@sms_conversation
def broken(request: HttpRequest) -> str:
    request.session["half"] = "done"
    raise RuntimeError("the handler failed")


@csrf_exempt
@sms_conversation
def slow(request: HttpRequest) -> str:
    time.sleep(float(request.text.body))  # A handler that takes as long as the text says.
    request.session["slept"] = True
    return "Done."


# Behind Twilio's gate but not CSRF-exempt: twilio_webhook_middleware leaves it to every middleware.
@signed_by_twilio
def not_exempt(request: HttpRequest) -> HttpResponse:
    return HttpResponse("Served.")


urlpatterns = [
    path("echo/", echo),
    path("silent/", silent),
    path("broken/", broken),
    path("slow/", slow),
    path("not-exempt/", not_exempt),
]
