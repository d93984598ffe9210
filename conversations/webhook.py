"""The HTTP side of a text: Twilio's webhook in, TwiML and the pair's cookie out.

`signed_by_twilio` is the gate in front of every Twilio webhook (texts and status
callbacks). It lives here, with the rest of the HTTP answers, rather than beside the
checks it calls, because what it adds is their order and their answers: 400 for
parameters that cannot be read strictly (checked here: raw bytes are HTTP's business),
403 without Twilio's signature (signatures.py), 400 for signed parameters that are not
Twilio-shaped (texts.not_from_twilio).

`sms_conversation` makes a view of a handler. The view parses Twilio's parameters once
(texts.py), hands the text to the pair's operations (pairs.py), and answers: TwiML with the
reply and the window's cookie, 400 for what cannot be a text, 503 when nothing could be
committed in time.

`twilio_webhook_middleware` serves the views behind the gate without the browser middlewares
(sessions, CSRF, logins, messages, static files, security headers), which do nothing for Twilio.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import cast
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, QueryDict
from django.urls import Resolver404, ResolverMatch, URLResolver, get_resolver

from conversations.form_bodies import parse_post
from conversations.locks import DeadlinePassed
from conversations.logs import describe_text, escape
from conversations.metrics import text_answered
from conversations.models import Conversation
from conversations.pairs import text_receive
from conversations.phone import mask
from conversations.sessions import PairSessionStore
from conversations.signatures import is_signed_by_twilio, signed_params
from conversations.texts import BadText, InboundText, not_from_twilio

logger = logging.getLogger(__name__)
# The gate's rejections keep the logger name they have always been logged under.
rejections = logging.getLogger("conversations.signatures")


# What XML 1.0 allows in a document: Twilio refuses a reply that is not well-formed XML, and
# a Caller name or a handler's reply may hold control characters.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


View = Callable[[HttpRequest], HttpResponse]

NON_ASCII_ESCAPE = re.compile(rb"%[89a-fA-F][0-9a-fA-F]")


def signed_by_twilio(view: View) -> View:
    """Answer 400 to unreadable requests, 403 to unsigned ones and 400 to signed ones that
    Twilio cannot have sent, before the view runs."""

    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        _drop_session(request)  # A rejected request must not touch a pair's session either.
        try:
            if _undecodable(request):
                return HttpResponseBadRequest("Parameters are not valid UTF-8.")
        except RequestDataTooBig:
            return HttpResponseBadRequest("Request body too large.")
        parse_post(request)
        if not settings.TWILIO_REQUIRE_SIGNATURE:
            return view(request)
        if not is_signed_by_twilio(request):
            rejections.warning(
                "Rejected %s %s: missing or invalid X-Twilio-Signature", request.method, request.path
            )
            return HttpResponseForbidden("Missing or invalid X-Twilio-Signature.")
        reason = not_from_twilio(request.POST if request.method == "POST" else request.GET)
        if reason:
            rejections.warning("Rejected %s %s: %s", request.method, request.path, reason)
            return HttpResponseBadRequest(reason)
        return view(request)

    # Read through the decorators above it (functools.wraps copies it): twilio_webhook_middleware.
    wrapper.twilio_webhook = True  # type: ignore[attr-defined]
    return wrapper


def twilio_webhook_middleware(get_response: View) -> View:
    """Serve Twilio's webhooks here, past the middlewares below, which are for browsers.

    It comes right after the log and proxy middlewares, whose work every request needs. A view
    behind signed_by_twilio and csrf_exempt is one for Twilio, and what the rest would do for
    it is nothing, or nothing Twilio reads, at a cost of about a tenth of a text's CPU:
    sessions (the pair's is read under its lock, and _drop_session gives the middleware none),
    CSRF (exempt), logins, lockouts and messages (no user), static files (not under
    STATIC_URL), the headers that tell browsers how to frame, sniff, refer and keep to HTTPS,
    and CommonMiddleware's redirects (which would lose the POST and its signature). Status,
    body, Content-Type, Content-Length and the pair's cookie are what they were.

    Kept from them: ALLOWED_HOSTS (400), and SECURE_SSL_REDIRECT: a webhook over plain HTTP
    goes down the whole stack, so SecurityMiddleware redirects it (or serves an exempt path) as
    it always has. Every other request, and any view without both marks, takes every middleware.
    """
    https_only = settings.SECURE_SSL_REDIRECT  # Read once, as SecurityMiddleware reads it.

    def middleware(request: HttpRequest) -> HttpResponse:
        match = _twilio_view_of(request)
        if match is None or (https_only and not request.is_secure()):
            return get_response(request)
        request.get_host()  # Checks ALLOWED_HOSTS, as CommonMiddleware does for every request.
        request.resolver_match = match  # What Django's handler sets before calling a view.
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        if not response.streaming and not response.has_header("Content-Length"):
            # As CommonMiddleware sets it: without it, gunicorn would send the TwiML chunked.
            response.headers["Content-Length"] = str(len(response.content))
        return response

    return middleware


def _twilio_view_of(request: HttpRequest) -> ResolverMatch | None:
    return _twilio_match(get_resolver(getattr(request, "urlconf", None)), request.path_info)


# What a path resolves to depends only on the URLconf, whose resolver is a new object whenever
# it changes (clear_url_caches()): so the paths Twilio calls are resolved once per process, not
# on every text (about 20 µs each). The matches are shared, and never changed once made.
# (With i18n_patterns it would depend on the active language too; this project has none.)
@lru_cache(maxsize=256)
def _twilio_match(resolver: URLResolver, path: str) -> ResolverMatch | None:
    try:
        match = resolver.resolve(path)
    except Resolver404:
        return None  # The whole stack answers (CommonMiddleware may redirect to a slash).
    view = match.func
    # Not exempt, the CSRF middleware would refuse its POSTs: so it keeps every middleware.
    if getattr(view, "twilio_webhook", False) and getattr(view, "csrf_exempt", False):
        return match
    return None


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


class TextRequest(HttpRequest):
    """What a handler gets: the request, with the pair's locked session and its text."""

    session: PairSessionStore
    conversation: Conversation
    caller_name: str
    text: InboundText


Handler = Callable[[TextRequest], str | None]


def sms_conversation(handler: Handler) -> Callable[[HttpRequest], HttpResponse]:
    """Make a view of a handler that turns a pair's texts into replies.

    The handler gets the request with `session` (locked and bound to the pair),
    `conversation`, `caller_name` and `text` (the InboundText), and returns the reply text,
    or None to answer nothing.
    """

    @wraps(handler)
    def view(request: HttpRequest) -> HttpResponse:
        _drop_session(request)
        try:
            return _answer(handler, request)
        finally:
            _drop_session(request)  # The handler's was the pair's locked store: saved already.

    return view


def _drop_session(request: HttpRequest) -> None:
    """Give the session middleware no session for a webhook request.

    A pair's session is read and saved only under the pair's lock, and its cookie is set
    by set_pair_cookie() alone: the middleware must do neither, whatever SESSION_* says. A
    store it loaded from Twilio's cookie and saved on the way out (SESSION_SAVE_EVERY_REQUEST)
    could write back a count that a text of the pair has moved on meanwhile, on any answer,
    a 403 included; its cookie would replace the pair's. Given no session, it does nothing.
    """
    vars(request).pop("session", None)


def _answer(handler: Handler, request: HttpRequest) -> HttpResponse:
    started = time.perf_counter()
    deadline = arrived_at(request) + settings.WEBHOOK_DEADLINE
    try:
        text = InboundText.from_params(_params(request))
        describe_text(text.sid, text.sender, text.recipient, text.body)
        turn = text_receive(text, _answer_with(handler, request, text), deadline=deadline)
    except BadText as error:
        return HttpResponseBadRequest(str(error))
    except (DeadlinePassed, DatabaseError) as error:
        return _unavailable(text, error, started)
    response = twiml(turn.reply)
    cookie = _cookie_state(request, turn.session_key)
    if turn.session_key:
        set_pair_cookie(response, request, turn.session_key)
    _log(text, turn.outcome, started, cookie)
    return response


def arrived_at(request: HttpRequest) -> float:
    """When the text reached the server (time.monotonic()), queueing for a worker included.

    The production worker stamps each request with the time its bytes reached the kernel
    (smsproject/buffering_worker.py); any other server, only the time the view starts.
    """
    stamped = request.META.get("smsproject.arrived_at")
    return min(stamped, time.monotonic()) if isinstance(stamped, float) else time.monotonic()


def _answer_with(handler: Handler, request: HttpRequest, text: InboundText) -> Callable[..., str | None]:
    def answer(conversation: Conversation, session: PairSessionStore) -> str | None:
        text_request = cast(TextRequest, request)
        text_request.session = session
        text_request.conversation = conversation
        text_request.caller_name = conversation.caller_name or settings.UNKNOWN_CALLER_NAME
        text_request.text = text
        return handler(text_request)

    return answer


# The bytes twilio's MessagingResponse writes (tests/test_webhook.py holds us to them),
# without building an ElementTree for one element per reply.
TWIML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
NO_REPLY = f"{TWIML_DECLARATION}<Response />"


def twiml(reply: str | None) -> HttpResponse:
    reply = NOT_XML.sub("", reply or "")
    if reply:
        # ElementTree escapes text content exactly so: &, < and >.
        body = reply.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        document = f"{TWIML_DECLARATION}<Response><Message>{body}</Message></Response>"
    else:
        document = NO_REPLY
    return HttpResponse(document, content_type="text/xml; charset=utf-8")


def set_pair_cookie(response: HttpResponse, request: HttpRequest, session_key: str) -> None:
    """The window's cookie, for Twilio to keep for the pair: the only place it is set.

    It lives as long as a window (Twilio keeps it 4 hours at most), and is Secure on HTTPS
    even where SESSION_COOKIE_SECURE is off, for local tunnels.
    """
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        session_key,
        max_age=settings.CONVERSATION_TIMEOUT,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
        httponly=settings.SESSION_COOKIE_HTTPONLY,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def _unavailable(text: InboundText, error: Exception, started: float) -> HttpResponse:
    """503: nothing of the text was committed, and Twilio may deliver it again."""
    late = isinstance(error, DeadlinePassed) or _is_lock_timeout(error)
    if late:
        _log(text, "deadline", started)
    else:
        logger.exception("sms sid=%s from=%s: database error", text.sid or "-", mask(text.sender))
        _log(text, "database_error", started)
    response = HttpResponse("Try again shortly.\n", status=503, content_type="text/plain")
    response["Retry-After"] = "1" if late else "5"
    return response


def _is_lock_timeout(error: Exception) -> bool:
    # PostgreSQL's lock_timeout (55P03) and SQLite's busy timeout: waits, not faults.
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) == "55P03" or "database is locked" in str(error)


def _params(request: HttpRequest) -> QueryDict:
    return signed_params(request) if request.method == "POST" else request.GET


def _cookie_state(request: HttpRequest, session_key: str | None) -> str:
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie:
        return "missing"
    return "used" if cookie == session_key else "ignored"


def _log(text: InboundText, outcome: str, started: float, cookie: str = "missing") -> None:
    seconds = time.perf_counter() - started
    text_answered(outcome, seconds)  # The metrics say what the log line says.
    # Escaped here too, not only by the handler's filter: whatever handler gets this record
    # (a test's, Sentry's breadcrumbs) must not see a forged line.
    logger.info(
        "sms sid=%s outcome=%s from=%s to=%s cookie=%s duration_ms=%.1f",
        escape(text.sid or "-"),
        outcome,
        escape(mask(text.sender)),
        escape(mask(text.recipient)),
        cookie,
        seconds * 1000,
    )
