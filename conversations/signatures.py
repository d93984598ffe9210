"""Twilio's signature: whether X-Twilio-Signature says Twilio made a request.

Only the check itself lives here. The HTTP gate that stands every Twilio webhook behind it
(and behind the checks that parameters are readable and Twilio-shaped) is
webhook.signed_by_twilio, which decides the answers and their order.
"""

from hmac import compare_digest

from django.conf import settings
from django.http import HttpRequest, QueryDict
from twilio.request_validator import RequestValidator


def webhook_url(request: HttpRequest) -> str:
    """The URL Twilio called, which is what it signed."""
    if settings.TWILIO_WEBHOOK_BASE_URL:
        return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + request.get_full_path()
    # Behind a TLS proxy, scheme and host come from X-Forwarded-* (USE_X_FORWARDED).
    return request.build_absolute_uri()


def signed_params(request: HttpRequest) -> QueryDict:
    """The parameters Twilio signs: the form body of a POST, none for a GET."""
    return request.POST if request.method == "POST" else QueryDict()


class _Lists(dict[str, list[str]]):
    """The parameters as RequestValidator reads them fastest: it tries getall() first, and
    given a QueryDict it catches an AttributeError for every parameter before getlist()."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def is_signed_by_twilio(request: HttpRequest) -> bool:
    # From the WSGI environ: request.headers would build a dict of every header for this one.
    signature = request.META.get("HTTP_X_TWILIO_SIGNATURE", "")
    # Twilio's signature is base64; compare_digest() raises on a str that is not ASCII.
    if not signature or not signature.isascii():
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    url, params = webhook_url(request), _Lists(signed_params(request).lists())
    # validate() signs twice, with and without the port; try the URL as called first.
    if compare_digest(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)
