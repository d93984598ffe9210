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
from django.utils.crypto import constant_time_compare, salted_hmac
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
    # Twilio's signature is base64; compare_digest() raises on a str that is not ASCII.
    if not signature or not signature.isascii():
        return False
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    url, params = webhook_url(request), signed_params(request)
    # validate() signs twice, with and without the port; try the URL as called first.
    if compare_digest(validator.compute_signature(url, params), signature):
        return True
    return validator.validate(url, params, signature)


# Twilio's SIDs: two letters for the kind, 32 hex digits (Twilio's own API spec allows either case).
MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-fA-F]{32}")


def not_from_twilio(params: QueryDict) -> str | None:
    """Why signed parameters cannot be a request of Twilio's, or None when they can be.

    Twilio's signature runs names and values together without separators, so whoever has
    one signed request can move the boundaries between them (fold MessageSid into
    FromZip's value, say) and the signature still holds. What Twilio always sends, in
    the shape it always has, cannot go missing that way.
    """
    if not MESSAGE_SID.fullmatch(params.get("MessageSid", "")):
        return "Missing or malformed MessageSid."
    account = settings.TWILIO_ACCOUNT_SID
    if account and params.get("AccountSid") != account:
        return "AccountSid is not this app's account."
    return None


# The parameter that marks a text as simulated (Twilio never sends it). Its value is an
# HMAC of the text's MessageSid, From and To keyed with TWILIO_AUTH_TOKEN: being inside the
# signed form is not enough, since boundaries can be moved (see above) to make a
# "SimulatorMark" out of a Body, but no one without the token can make its value.
SIMULATOR_MARK = "SimulatorMark"


def simulator_mark(sid: str, sender: str, recipient: str) -> str:
    return salted_hmac(
        SIMULATOR_MARK, f"{sid}\n{sender}\n{recipient}", secret=settings.TWILIO_AUTH_TOKEN, algorithm="sha256"
    ).hexdigest()


def simulator_mark_matches(params: QueryDict) -> bool:
    sid = params.get("MessageSid", "")
    expected = simulator_mark(sid, params.get("From", "").strip(), params.get("To", "").strip())
    return bool(sid) and constant_time_compare(params.get(SIMULATOR_MARK, ""), expected)


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
    """Answer 400 to unreadable requests, 403 to unsigned ones and 400 to signed ones that
    Twilio cannot have sent, before the view runs."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        try:
            if _undecodable(request):
                return HttpResponseBadRequest("Parameters are not valid UTF-8.")
        except RequestDataTooBig:
            return HttpResponseBadRequest("Request body too large.")
        if not settings.TWILIO_REQUIRE_SIGNATURE:
            return view(request)
        if not is_signed_by_twilio(request):
            logger.warning(
                "Rejected %s %s: missing or invalid X-Twilio-Signature", request.method, request.path
            )
            return HttpResponseForbidden("Missing or invalid X-Twilio-Signature.")
        reason = not_from_twilio(request.POST if request.method == "POST" else request.GET)
        if reason:
            logger.warning("Rejected %s %s: %s", request.method, request.path, reason)
            return HttpResponseBadRequest(reason)
        return view(request)

    return wrapper
