"""The Callers list's "Send a text": the page that counts who will be texted, and on Confirm a
Broadcast (its page then shows the progress)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from conversations.admin.sending import SendFromForm, staff_of, when
from conversations.broadcast_control import broadcast_create, broadcast_preview, caller_numbers
from conversations.models import Broadcast, Caller
from conversations.outbox import SendError
from conversations.phone import number_of
from conversations.segments import segments_of


class BroadcastForm(SendFromForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # A broadcast waits out the recipient's quiet hours (their morning): nothing to force.
        self.fields.pop("force", None)


def broadcast_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, callers: QuerySet[Caller]
) -> HttpResponse | None:
    """The action's page (counts, the text with its encoding and segments, send-at), then on
    Confirm the Broadcast, and its page."""
    numbers = caller_numbers(callers)
    form = BroadcastForm(request.POST if "confirm" in request.POST else None)
    if form.is_valid():
        try:
            broadcast = broadcast_create(
                body=form.cleaned_data["body"],
                their_numbers=numbers,
                sent_by=staff_of(request),
                send_at=form.cleaned_data["send_at"],
                our_number=form.cleaned_data["our_number"],
            )
        except SendError as error:
            modeladmin.message_user(request, f"Not sent: {error}", messages.ERROR)
            return None
        modeladmin.log_addition(request, broadcast, f"Created for {broadcast.counts_label()}")
        modeladmin.message_user(request, _created(broadcast), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:conversations_broadcast_change", args=[broadcast.pk]))
    our_number = form.data.get("our_number", "") if form.is_bound else ""
    preview = broadcast_preview(their_numbers=numbers, our_number=number_of(our_number) or "")
    body = form.data.get("body", "").replace("\r\n", "\n") if form.is_bound else ""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Send a text to callers",
        "form": form,
        "preview": preview,
        "segments": segments_of(body) if body else None,
        "send_rate": settings.SMS_SEND_RATE,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action": request.POST["action"],
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/conversations/caller/broadcast.html", context)


def _created(broadcast: Broadcast) -> str:
    start = f"from {when(broadcast.send_at)}" if broadcast.send_at else "now"
    return f"Created the broadcast: {broadcast.counts_label()}. The worker sends it {start}."
