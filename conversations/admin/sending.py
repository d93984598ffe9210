"""Sending texts from the admin: the forms, and one text sent and noted in the history."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from conversations import quiet_hours
from conversations.models import Message
from conversations.outbound import QuietHoursError, SendError, message_send
from conversations.phone import number_of


def texts(count: int) -> str:
    return f"{count} text{'' if count == 1 else 's'}"


FORCE_HINT = "Tick “Send during quiet hours” to send it now."


class SendTextForm(forms.Form):
    # data-segments: the page counts characters, encoding and segments as staff type.
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60, "data-segments": ""}), max_length=1600
    )
    force = forms.BooleanField(
        label="Send during quiet hours",
        required=False,
        help_text="Send even if it is within QUIET_HOURS where the recipient is.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if quiet_hours.configured() is None:
            del self.fields["force"]  # Nothing to force.

    def clean_body(self) -> str:
        # Browsers send a textarea's line breaks as CRLF: two characters, where one does.
        return self.cleaned_data["body"].replace("\r\n", "\n")


class SendFromForm(SendTextForm):
    our_number = forms.CharField(
        label="From",
        help_text="Your Twilio number, in E.164 (+15005550006).",
        initial=lambda: settings.TWILIO_FROM_NUMBER,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            # The Messaging Service picks the sender; a number here only names the pair.
            self.fields["our_number"].required = False

    def clean_our_number(self) -> str:
        if not self.cleaned_data["our_number"] and settings.TWILIO_MESSAGING_SERVICE_SID:
            return ""
        number = number_of(self.cleaned_data["our_number"])
        if number is None:
            raise forms.ValidationError("Enter your Twilio number in E.164 form, e.g. +15005550006.")
        return number


def send_texts(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    form_class: type[SendTextForm],
    pairs: list[tuple[str, str]],
) -> HttpResponse | None:
    """The intermediate page of a "Send a text" action, then one text per (our, their) pair."""
    form = form_class(request.POST if "send" in request.POST else None)
    if not form.is_valid():
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": "Send a text",
            "form": form,
            "recipients": [their for _, their in pairs],
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action": request.POST["action"],
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/conversations/send_text.html", context)
    sent = 0
    for our_number, their_number in pairs:
        our_number = form.cleaned_data.get("our_number") or our_number
        try:
            text_send(
                modeladmin,
                request,
                our_number,
                their_number,
                form.cleaned_data["body"],
                force=form.cleaned_data.get("force", False),
            )
            sent += 1
        except QuietHoursError as error:
            modeladmin.message_user(
                request, f"Not sent to {their_number}: {error} {FORCE_HINT}", messages.ERROR
            )
        except SendError as error:
            modeladmin.message_user(request, f"Not sent to {their_number}: {error}", messages.ERROR)
    if sent:
        modeladmin.message_user(request, f"Sent {texts(sent)}.", messages.SUCCESS)
    return None


def text_send(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    our_number: str,
    their_number: str,
    body: str,
    *,
    force: bool = False,
) -> Message:
    """Send one text as the staff user, and note it in the conversation's admin history."""
    # Admin views let only staff in: the user is a real one, never the anonymous user.
    staff = request.user if isinstance(request.user, User) else None
    message = message_send(
        our_number=our_number, their_number=their_number, body=body, sent_by=staff, force=force
    )
    modeladmin.log_change(request, message.conversation, "Sent a text")
    return message
