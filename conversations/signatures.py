"""Only Twilio may call the webhooks: checking X-Twilio-Signature on each request."""

import logging
import re
from collections.abc import Callable
from functools import wraps
from hmac import compare_digest
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, QueryDict
from twilio.request_validator import RequestValidator

logger = logging.getLogger(__name__)

View = Callable[[HttpRequest], HttpResponse]


def webhook_url(request: HttpRequest) -> str:
    """The URL Twilio called, which is what it signed."""
    if settings.TWILIO_WEBHOOK_BASE_URL:
        return settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/") + request.get_full_path()
    # Behind a TLS proxy, scheme and host come from X-Forwarded-* (USE_X_FORWARDED).
    return request.build_absolute_uri()


def signed_params(request: HttpRequest) -> QueryDict:
    """The parameters Twilio signs: the form body of a POST, none for a GET."""
    return request.POST if request.method == "POST" else QueryDict()


def is_signed_by_twilio(request: HttpRequest) -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    url, params = webhook_url(request), signed_params(request)
    # validate() signs twice, with and without the port; try the URL as called first.
    if compare_digest(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


NON_ASCII_ESCAPE = re.compile(rb"%[89a-fA-F][0-9a-fA-F]")


def _undecodable(request: HttpRequest) -> bool:
    # Django decodes form data leniently, swapping bad bytes for U+FFFD; a text must not be
    # recorded garbled, so check the raw parameters strictly first.
    # WSGI hands the query string over as latin-1 text; undo that to get the raw bytes.
    raw = request.body if request.method == "POST" else request.META.get("QUERY_STRING", "").encode("latin-1")
    if raw.isascii() and not NON_ASCII_ESCAPE.search(raw):
        return False  # Only ASCII, escaped or not: nothing that can fail to decode.
    try:
        parse_qsl(raw.decode(), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return True
    return False


def signed_by_twilio(view: View) -> View:
    """Answer 400 to unreadable requests and 403 to unsigned ones, before the view runs."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        try:
            if _undecodable(request):
                return HttpResponseBadRequest("Parameters are not valid UTF-8.")
        except RequestDataTooBig:
            return HttpResponseBadRequest("Request body too large.")
        if settings.TWILIO_REQUIRE_SIGNATURE and not is_signed_by_twilio(request):
            logger.warning(
                "Rejected %s %s: missing or invalid X-Twilio-Signature", request.method, request.path
            )
            return HttpResponseForbidden("Missing or invalid X-Twilio-Signature.")
        return view(request)

    return wrapper
