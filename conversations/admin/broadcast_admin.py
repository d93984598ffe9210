"""Broadcasts: the list, and the page where staff watch one go out, pause, resume or cancel it.

Everything shown is counted from its Message rows on each request (Broadcast.progress()), so
the page is right after any restart of the web server or the worker.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from conversations.admin.sending import staff_of, texts_phrase
from conversations.broadcast_control import broadcast_cancel, broadcast_pause, broadcast_resume
from conversations.broadcasts import Progress
from conversations.models import Broadcast, Message

# Failures listed by name on the page; the Messages list has them all.
FAILURES_SHOWN = 50
NOT_DONE = (*Message.READY, Message.Status.SENDING)


def duration(left: timedelta) -> str:
    """ "about 1 h 05 min", "about 3 min", "under a minute": the time left, as people say it."""
    seconds = int(left.total_seconds())
    if seconds < 60:
        return "under a minute" if seconds else "none"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes:02d} min" if hours else f"about {minutes} min"


def progress_data(broadcast: Broadcast, progress: Progress) -> dict[str, Any]:
    """What the page shows, as its JSON view gives it to the page's script."""
    return {
        "status": broadcast.status,
        "status_label": broadcast.get_status_display(),
        "counts": progress.counts,
        "total": progress.total,
        "percent": int(progress.done * 100),
        "eta": _time_left(broadcast, progress),
        "running": broadcast.status in Broadcast.RUNNING,
    }


def _time_left(broadcast: Broadcast, progress: Progress) -> str:
    if not progress.waiting:
        return "none"
    left = duration(progress.eta)
    return f"{left} once resumed" if broadcast.status == Broadcast.Status.PAUSED else left


def messages_url(broadcast: Broadcast, **filters: str) -> str:
    query = {"broadcast__id__exact": str(broadcast.pk), **filters}
    return reverse("admin:conversations_message_changelist") + "?" + urlencode(query)


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ("created_at", "body_start", "status", "progress", "sent_by")
    list_filter = ("status", "created_at")
    search_fields = ("body",)
    list_select_related = ("sent_by",)
    ordering = ("-created_at", "-pk")
    fields = ("body", "status", "sent_by", "created_at", "send_at", "started_at", "counts")
    readonly_fields = fields
    change_form_template = "admin/conversations/broadcast/change_form.html"

    # Created from the Callers list or the shell, never edited: only viewed, and controlled
    # through the buttons of its page.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_control_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.send_broadcast")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Broadcast]:
        # The list's progress column in the list's one query, whatever the page's length.
        return (
            super()
            .get_queryset(request)
            .annotate(
                texts=Count("messages"), waiting=Count("messages", filter=Q(messages__status__in=NOT_DONE))
            )
        )

    def get_urls(self) -> list[URLPattern]:
        def control(name: str, view: Any) -> URLPattern:
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(view)),
                name=f"conversations_broadcast_{name}",
            )

        own = [
            path(
                "<path:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="conversations_broadcast_progress",
            ),
            control("pause", self.pause_view),
            control("resume", self.resume_view),
            control("cancel", self.cancel_view),
        ]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        broadcast = self.get_object(request, unquote(object_id))
        if broadcast is None:
            return super().change_view(request, object_id, form_url, extra_context)
        progress = broadcast.progress()
        failures = broadcast.messages.filter(status__in=Message.NOT_SENT).select_related("conversation")
        context = {
            "progress": progress,
            "data": progress_data(broadcast, progress),
            "failures": failures.order_by("pk")[:FAILURES_SHOWN],
            "messages_url": messages_url(broadcast),
            "failures_url": messages_url(broadcast, status__in=",".join(Message.NOT_SENT)),
            "can_control": self.has_control_permission(request),
            "live": broadcast.status not in (Broadcast.Status.COMPLETED, Broadcast.Status.CANCELED),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _viewed(self, request: HttpRequest, object_id: str) -> Broadcast:
        broadcast = self.get_object(request, unquote(object_id))
        if broadcast is None:
            raise Http404("No such broadcast.")
        return broadcast

    def progress_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        broadcast = self._viewed(request, object_id)
        return JsonResponse(progress_data(broadcast, broadcast.progress()))

    def _controlled(self, request: HttpRequest, object_id: str) -> Broadcast:
        if not self.has_control_permission(request):
            raise PermissionDenied
        return self._viewed(request, object_id)

    def _back_to(self, broadcast: Broadcast) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:conversations_broadcast_change", args=[broadcast.pk]))

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        broadcast = self._controlled(request, object_id)
        if broadcast_pause(broadcast):
            self.log_change(request, broadcast, "Paused the broadcast")
            self.message_user(
                request, "Paused: no new text of it goes out until you resume it.", messages.SUCCESS
            )
        else:
            self.message_user(
                request,
                f"It is {broadcast.get_status_display().lower()}: nothing to pause.",
                messages.WARNING,
            )
        return self._back_to(broadcast)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        broadcast = self._controlled(request, object_id)
        if broadcast_resume(broadcast):
            self.log_change(request, broadcast, "Resumed the broadcast")
            self.message_user(request, "Resumed: the worker goes on where it stopped.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"It is {broadcast.get_status_display().lower()}: nothing to resume.",
                messages.WARNING,
            )
        return self._back_to(broadcast)

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        broadcast = self._controlled(request, object_id)
        was = broadcast.status
        canceled = broadcast_cancel(broadcast, by=staff_of(request))
        if was in (Broadcast.Status.COMPLETED, Broadcast.Status.CANCELED):
            self.message_user(
                request, f"It was {broadcast.get_status_display().lower()} already.", messages.WARNING
            )
        else:
            self.log_change(request, broadcast, f"Canceled the broadcast ({texts_phrase(canceled)} not sent)")
            self.message_user(
                request,
                f"Canceled: {texts_phrase(canceled)} will not be sent; those sent stay sent.",
                messages.SUCCESS,
            )
        return self._back_to(broadcast)

    @admin.display(description="Text")
    def body_start(self, broadcast: Broadcast) -> str:
        return broadcast.body[:60]

    @admin.display(description="Progress")
    def progress(self, broadcast: Broadcast) -> str:
        texts, waiting = getattr(broadcast, "texts", 0), getattr(broadcast, "waiting", 0)
        percent = 100 if not texts else int((texts - waiting) * 100 / texts)
        return format_html(
            '<progress max="100" value="{}" style="width: 6rem;"></progress> {} % of {}',
            percent,
            percent,
            f"{texts:,}",
        )

    @admin.display(description="Recipients")
    def counts(self, broadcast: Broadcast) -> str:
        return broadcast.counts_label()
