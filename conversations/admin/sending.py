"""Texting from the admin: the forms, and texts queued in the outbox and noted in the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from conversations import quiet_hours
from conversations.models import Conversation, Message
from conversations.outbox import SendError, text_enqueue, texts_enqueue
from conversations.phone import number_of


def texts_phrase(count: int) -> str:
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

    send_at = forms.DateTimeField(
        label="Send at",
        required=False,
        # datetime-local sends 2026-12-24T09:00; Django reads ISO 8601 in TIME_ZONE unless the
        # value carries its own offset.
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Empty: now. Otherwise ISO 8601 (2026-12-24T09:00), in TIME_ZONE unless an offset is given.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if quiet_hours.configured() is None:
            del self.fields["force"]  # Nothing to force.
        self.fields["send_at"].help_text = self.fields["send_at"].help_text.replace(
            "TIME_ZONE", f"TIME_ZONE ({timezone.get_current_timezone_name()})"
        )

    def clean_body(self) -> str:
        # Browsers send a textarea's line breaks as CRLF: two characters, where one does.
        return self.cleaned_data["body"].replace("\r\n", "\n")

    def clean_send_at(self) -> datetime | None:
        send_at = self.cleaned_data["send_at"]
        if send_at is not None and send_at <= timezone.now():
            raise forms.ValidationError(
                f"{when(send_at)} has passed; give a time to come, or leave it empty."
            )
        return send_at


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


def send_text_action(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    form_class: type[SendTextForm],
    pairs: list[tuple[str, str]],
) -> HttpResponse | None:
    """The intermediate page of a "Send a text" action, then one text per (our, their) pair,
    committed to the outbox at once (the worker sends them) and noted in each history."""
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
    our_number = form.cleaned_data.get("our_number")
    try:
        result = texts_enqueue(
            pairs=[(our_number or our, their) for our, their in pairs],
            body=form.cleaned_data["body"],
            sent_by=staff_of(request),
            force=form.cleaned_data.get("force", False),
            send_at=form.cleaned_data.get("send_at"),
        )
    except SendError as error:
        modeladmin.message_user(request, f"Not sent: {error}", messages.ERROR)
        return None
    for their_number, why in result.held:
        modeladmin.message_user(request, f"Not sent to {their_number}: {why} {FORCE_HINT}", messages.ERROR)
    for their_number, why in result.refused:
        modeladmin.message_user(request, f"Not sent to {their_number}: {why}", messages.ERROR)
    if result.messages:
        _history_note(request, [message.conversation_id for message in result.messages])
        modeladmin.message_user(
            request, f"Queued {texts_phrase(len(result.messages))}: the worker sends them.", messages.SUCCESS
        )
    return None


def staff_text_enqueue(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    our_number: str,
    their_number: str,
    body: str,
    *,
    force: bool,
    send_at: datetime | None = None,
) -> Message:
    """Queue one text from the staff user, ahead of bulk texts (or for a time to come), and
    note it in the history."""
    message = text_enqueue(
        our_number=our_number,
        their_number=their_number,
        body=body,
        sent_by=staff_of(request),
        force=force,
        send_at=send_at,
    )
    note = f"Scheduled a text for {when(message.send_at)}" if message.send_at else "Queued a text"
    modeladmin.log_change(request, message.conversation, note)
    return message


def when(moment: datetime) -> str:
    """ "2026-12-24 09:00 CET": a time as staff read it, in TIME_ZONE."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M %Z")


def staff_of(request: HttpRequest) -> User | None:
    # Admin views let only staff in: the user is a real one, never the anonymous user.
    return request.user if isinstance(request.user, User) else None


def _history_note(request: HttpRequest, conversation_ids: list[int]) -> None:
    # One INSERT for every conversation, however many were texted.
    conversations = list(Conversation.objects.filter(pk__in=conversation_ids))
    LogEntry.objects.log_actions(request.user.pk or 0, conversations, CHANGE, "Queued a text")
