"""A staff page to text the app as a test pair, through the same webhook Twilio calls.

Each text is delivered by `as_twilio.send_as_twilio()`, signed when a token is set and marked as
simulated. The pair's cookies are kept the way Twilio keeps them, in the staff user's own
session (never in the browser's cookies, where they would replace the staff login).

The page is no back door: it is off in production unless SIMULATOR_ENABLED is set, it needs
the `use_simulator` permission, it shows only what the user may view in the admin, and it
never sends as a number that has texted the app through Twilio.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from itertools import pairwise
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.validators import URLValidator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from conversations.as_twilio import DEFAULT_RECIPIENT, DEFAULT_SENDER, CookieJars, Rejected, send_as_twilio
from conversations.models import Caller, Conversation, Message
from conversations.phone import address_from_input, number_of

JARS_KEY = "simulator_cookie_jars"
PAIR_KEY = "simulator_pair"
THREAD_LENGTH = 100
PERMISSION = "conversations.use_simulator"

View = Callable[[HttpRequest], HttpResponse]


def is_open_to(user: User | AnonymousUser) -> bool:
    return settings.SIMULATOR_ENABLED and user.is_active and user.is_staff and user.has_perm(PERMISSION)


def _enabled(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if not settings.SIMULATOR_ENABLED:
            raise Http404("The simulator is switched off (SIMULATOR_ENABLED).")
        return view(request)

    return wrapper


class PairForm(forms.Form):
    # Known Callers are offered by name from the page's <datalist id="sim-callers">.
    sender = forms.CharField(
        label="From",
        max_length=64,
        widget=forms.TextInput(attrs={"list": "sim-callers", "autocomplete": "off"}),
    )
    recipient = forms.CharField(label="To", max_length=64)

    def clean_sender(self) -> str:
        return address_from_input(self.cleaned_data["sender"])

    def clean_recipient(self) -> str:
        return address_from_input(self.cleaned_data["recipient"])


class TextForm(PairForm):
    body = forms.CharField(
        label="Text",
        max_length=1600,
        widget=forms.Textarea(
            attrs={"rows": 2, "placeholder": "Text message", "autofocus": True, "data-segments": ""}
        ),
    )
    # Not `media`: a form's `media` is its widgets' CSS and JS, and the field would be hidden.
    media_url = forms.URLField(
        label="Media URL",
        required=False,
        max_length=1000,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        widget=forms.URLInput(attrs={"placeholder": "Attach a media URL (MMS)"}),
    )

    def clean_sender(self) -> str:
        sender = super().clean_sender()
        # The webhook refuses it too; saying so here keeps the text in the box.
        if Message.objects.from_twilio(sender).exists():
            raise forms.ValidationError(
                f"{sender} has texted this app through Twilio: a real customer's number cannot be "
                "simulated. Pick another sender."
            )
        return sender


@never_cache
@_enabled
@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
@require_http_methods(["GET", "POST"])
def simulator(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _send(request)
    pair = PairForm(request.GET or request.session.get(PAIR_KEY, _default_pair()), auto_id="pair_%s")
    if not pair.is_valid():
        pair = PairForm(_default_pair(), auto_id="pair_%s")
        pair.is_valid()
    sender, recipient = pair.cleaned_data["sender"], pair.cleaned_data["recipient"]
    if request.session.get(PAIR_KEY) != {"sender": sender, "recipient": recipient}:
        request.session[PAIR_KEY] = {"sender": sender, "recipient": recipient}  # Reopened next time.
    return _page(request, pair, TextForm(initial={"sender": sender, "recipient": recipient}))


def _send(request: HttpRequest) -> HttpResponse:
    form = TextForm(request.POST)
    if not form.is_valid():
        return _page(request, PairForm(request.POST, auto_id="pair_%s"), form, status=400)
    sender, recipient = form.cleaned_data["sender"], form.cleaned_data["recipient"]
    media = [form.cleaned_data["media_url"]] if form.cleaned_data["media_url"] else []
    jars = CookieJars(request.session.get(JARS_KEY))
    try:
        send_as_twilio(form.cleaned_data["body"], sender, recipient, jars=jars, media=media)
    except Rejected as error:
        messages.error(request, f"Not delivered: {error}")
    # Reassigned, not changed in place, so the session knows to save it.
    request.session[JARS_KEY] = jars.to_dict(time.time())
    # Back to the thread with a GET, so a reload never sends the text again.
    query = urlencode({"sender": sender, "recipient": recipient})
    return HttpResponseRedirect(f"{reverse('simulator')}?{query}")


# Why the app did not answer a text, by the outcome the webhook recorded for it.
NO_REPLY_BECAUSE: dict[str, str] = {
    Message.Outcome.OPTED_OUT: "This text opted the conversation out: Twilio confirms it, the app stays silent until START.",
    Message.Outcome.BLOCKED: "The sender is blocked: the app records their texts but does not answer.",
    Message.Outcome.HELP: "HELP and INFO are answered by Twilio itself, not by the app.",
    Message.Outcome.IGNORED_OPTED_OUT: "This conversation is opted out: the app answers again after START.",
    Message.Outcome.PAUSED: (
        "Staff have taken over this conversation: the text was counted, and the bot answers "
        "again when the pause ends or staff resume it."
    ),
    Message.Outcome.COUNTED: "The app chose not to answer.",
}


def why_no_reply(message: Message) -> str:
    """Why the app did not answer a text, as the webhook recorded it."""
    return NO_REPLY_BECAUSE.get(message.outcome, "No reply.")


def _default_pair() -> dict[str, str]:
    return {"sender": DEFAULT_SENDER, "recipient": DEFAULT_RECIPIENT}


def _page(request: HttpRequest, pair: PairForm, form: TextForm, status: int = 200) -> HttpResponse:
    sender, recipient = form["sender"].value() or "", form["recipient"].value() or ""
    user = request.user
    # Each part of the page shows what the admin would show this user, and no more.
    may_view_callers = user.has_perm("conversations.view_caller")
    context = {
        **admin.site.each_context(request),
        "title": "SMS simulator",
        "is_nav_sidebar_enabled": False,  # Room for the phone, as on the admin's index.
        "pair": pair,
        "form": form,
        "sender_name": _caller_name(sender) if may_view_callers else None,
        "thread": (_thread(sender, recipient) if user.has_perm("conversations.view_message") else None),
        "callers": Caller.objects.order_by("name")[:500] if may_view_callers else None,
        "recent": (
            _recent(with_names=may_view_callers) if user.has_perm("conversations.view_conversation") else None
        ),
        "signed": bool(settings.TWILIO_AUTH_TOKEN),
    }
    return render(request, "conversations/simulator/page.html", context, status=status)


@dataclasses.dataclass(frozen=True)
class Entry:
    """A text of the thread, with what the page says around it."""

    message: Message
    window_began: bool  # A new conversation window began with this text.
    why_no_reply: str


def _thread(sender: str, recipient: str) -> list[Entry]:
    """The pair's latest texts and replies, oldest first, as a phone shows them."""
    latest = (
        Message.objects.filter(conversation__sender=sender, conversation__recipient=recipient)
        .select_related("sent_by")
        .order_by("-created_at", "-pk")[:THREAD_LENGTH]
    )
    messages_ = list(reversed(latest))
    started = (
        Conversation.objects.for_pair(sender, recipient).values_list("window_started_at", flat=True).first()
    )
    beginnings = _window_beginnings(messages_, started)
    return [Entry(message, message.pk in beginnings, why_no_reply(message)) for message in messages_]


def _window_beginnings(messages_: list[Message], current_started: datetime | None) -> set[int]:
    """The texts with which a conversation window began.

    The current window's start is recorded on the conversation. Earlier ones are not, but a
    window ends after CONVERSATION_TIMEOUT of silence, so a longer gap began a new one, and
    the pair's very first text began one.
    """
    timeout = timedelta(seconds=settings.CONVERSATION_TIMEOUT)
    beginnings: set[int] = set()
    if messages_ and len(messages_) < THREAD_LENGTH:  # The whole history: its first text.
        beginnings.add(messages_[0].pk)
    current = next((m for m in messages_ if current_started and m.created_at >= current_started), None)
    if current is not None:
        beginnings.add(current.pk)
    for previous, message in pairwise(messages_):
        if message.created_at - previous.created_at > timeout:
            beginnings.add(message.pk)
    return beginnings


def _recent(*, with_names: bool) -> list[dict[str, Any]]:
    conversations = list(
        Conversation.objects.filter(last_activity__isnull=False)
        .with_caller()
        .order_by("-last_activity")
        .values("sender", "recipient", "last_activity", "caller_name")[:10]
    )
    for conversation in conversations:
        conversation["name"] = conversation.pop("caller_name") if with_names else None
        conversation["query"] = urlencode(
            {"sender": conversation["sender"], "recipient": conversation["recipient"]}
        )
    return conversations


def _caller_name(sender: str) -> str | None:
    """The sender's Caller name, found as a conversation finds it (by its sender_number),
    whether or not the pair has texted yet."""
    number = number_of(sender)
    return (
        Caller.objects.filter(phone_number=number).values_list("name", flat=True).first() if number else None
    )
