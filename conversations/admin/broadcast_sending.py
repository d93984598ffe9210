"""The Callers list's "Send a text": the page that counts who will be texted, and on Confirm a
Broadcast (its page then shows the progress)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import CharField, ExpressionWrapper, F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from conversations.admin.sending import SendFromForm, staff_of, when
from conversations.broadcast_control import broadcast_create
from conversations.models import Broadcast, Caller
from conversations.outbox import SendError
from conversations.phone import number_of
from conversations.refusals import Refusal, sending_refusals
from conversations.segments import segments_of


class BroadcastForm(SendFromForm):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # A broadcast waits out the recipient's quiet hours (their morning): nothing to force.
        self.fields.pop("force", None)


def broadcast_preview(their_numbers: Iterable[str], our_number: str = "") -> Broadcast:
    """An unsaved Broadcast with the counts broadcast_create() would give it: deduplicated by
    number, the blocked, opted-out and undeliverable counted. Two queries per 500 numbers."""
    preview = Broadcast()
    recipients: dict[str, None] = {}
    for their in their_numbers:
        preview.selected += 1
        number = number_of(their)
        if number is None:
            preview.undeliverable += 1
        elif number in recipients:
            preview.duplicates += 1
        else:
            recipients[number] = None
    ours = our_number or settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID
    refusals = sending_refusals(
        [(ours, their) for their in recipients], through_service=bool(settings.TWILIO_MESSAGING_SERVICE_SID)
    )
    kinds = Counter(refusal.kind for refusal in refusals.values())
    preview.blocked = kinds[Refusal.BLOCKED]
    preview.opted_out = kinds[Refusal.OPTED_OUT]
    preview.undeliverable += kinds[Refusal.UNDELIVERABLE]
    return preview


def broadcast_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, callers: QuerySet[Caller]
) -> HttpResponse | None:
    """The action's page (counts, the text with its encoding and segments, send-at), then on
    Confirm the Broadcast, and its page."""
    # As stored (E.164 text), as broadcast_create() reads callers: read as PhoneNumbers, each
    # would be parsed once more.
    stored = ExpressionWrapper(F("phone_number"), output_field=CharField())
    numbers = list(callers.annotate(stored_number=stored).values_list("stored_number", flat=True))
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
    preview = broadcast_preview(numbers, number_of(our_number) or "")
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
