"""A staff page to text the app as any pair, through the same webhook Twilio calls.

Each text is delivered by `edge.send_as_twilio()`, signed when a token is set. The pair's
cookies are kept the way Twilio keeps them, in the staff user's own session (never in the
browser's cookies, where they would replace the staff login).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from phonenumber_field.phonenumber import to_python

from conversations.edge import DEFAULT_RECIPIENT, DEFAULT_SENDER, CookieJars, Rejected, send_as_twilio
from conversations.models import Caller, Conversation, Message
from conversations.phone import e164_or_none

JARS_KEY = "simulator_cookie_jars"
PAIR_KEY = "simulator_pair"
THREAD_LENGTH = 100


def address(value: str) -> str:
    """A number as people type it, in E.164; sender IDs and whatsapp: addresses as they are."""
    if ":" in value:
        return value  # A channel address (whatsapp:+1…) goes to the webhook as Twilio sends it.
    number = to_python(value)
    return number.as_e164 if number and number.is_valid() else value


class PairForm(forms.Form):
    # Known Callers are offered by name from the page's <datalist id="sim-callers">.
    sender = forms.CharField(
        label="From",
        max_length=64,
        widget=forms.TextInput(attrs={"list": "sim-callers", "autocomplete": "off"}),
    )
    recipient = forms.CharField(label="To", max_length=64)

    def clean_sender(self) -> str:
        return address(self.cleaned_data["sender"])

    def clean_recipient(self) -> str:
        return address(self.cleaned_data["recipient"])


class TextForm(PairForm):
    body = forms.CharField(
        label="Text",
        max_length=1600,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Text message", "autofocus": True}),
    )


@staff_member_required
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
    jars = CookieJars(request.session.get(JARS_KEY))
    try:
        send_as_twilio(form.cleaned_data["body"], sender, recipient, jars=jars)
    except Rejected as error:
        messages.error(request, f"Not delivered: {error}")
    # Reassigned, not changed in place, so the session knows to save it.
    request.session[JARS_KEY] = jars.to_dict(time.time())
    # Back to the thread with a GET, so a reload never sends the text again.
    query = urlencode({"sender": sender, "recipient": recipient})
    return HttpResponseRedirect(f"{reverse('simulator')}?{query}")


def _default_pair() -> dict[str, str]:
    return {"sender": DEFAULT_SENDER, "recipient": DEFAULT_RECIPIENT}


def _page(request: HttpRequest, pair: PairForm, form: TextForm, status: int = 200) -> HttpResponse:
    sender, recipient = form["sender"].value() or "", form["recipient"].value() or ""
    context = {
        **admin.site.each_context(request),
        "title": "SMS simulator",
        "is_nav_sidebar_enabled": False,  # Room for the phone, as on the admin's index.
        "pair": pair,
        "form": form,
        "sender_name": _names([sender]).get(sender),
        "thread": _thread(sender, recipient),
        "callers": Caller.objects.order_by("name")[:500],
        "recent": _recent(),
        "signed": bool(settings.TWILIO_AUTH_TOKEN),
    }
    return render(request, "conversations/simulator/page.html", context, status=status)


def _thread(sender: str, recipient: str) -> list[Message]:
    """The pair's latest texts and replies, oldest first, as a phone shows them."""
    latest = Message.objects.filter(conversation__sender=sender, conversation__recipient=recipient).order_by(
        "-created_at", "-pk"
    )[:THREAD_LENGTH]
    return list(reversed(latest))


def _recent() -> list[dict[str, Any]]:
    conversations = list(
        Conversation.objects.filter(last_activity__isnull=False)
        .order_by("-last_activity")
        .values("sender", "recipient", "last_activity")[:10]
    )
    names = _names([c["sender"] for c in conversations])
    for conversation in conversations:
        conversation["name"] = names.get(conversation["sender"])
        conversation["query"] = urlencode(
            {"sender": conversation["sender"], "recipient": conversation["recipient"]}
        )
    return conversations


def _names(senders: list[str]) -> dict[str, str]:
    """Caller names by sender, looked up as the webhook looks them up."""
    numbers = {sender: e164_or_none(sender) for sender in senders}
    callers = Caller.objects.filter(phone_number__in=[n for n in numbers.values() if n])
    by_number = {caller.phone_number.as_e164: caller.name for caller in callers}
    return {sender: by_number[number] for sender, number in numbers.items() if number in by_number}
