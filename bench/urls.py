"""The project's URLs plus a no-op view: the ceiling the webhook is measured against."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from smsproject.urls import urlpatterns as project_urlpatterns

# What the counter bot answers to a first text, so both views send the same bytes back.
NOOP_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    "<Response><Message>Friend has messaged +15005550006 1 time.</Message></Response>"
)


@csrf_exempt
@require_POST
def noop(request: HttpRequest) -> HttpResponse:
    """Fixed TwiML through the same middleware, without signature check or database."""
    return HttpResponse(NOOP_TWIML, content_type="text/xml; charset=utf-8")


urlpatterns = [*project_urlpatterns, path("noop/", noop)]
