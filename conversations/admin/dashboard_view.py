"""The dashboard: how the texts are going, at a glance, for staff who may view the messages.

Its numbers are conversations/dashboard.py's aggregates, its charts conversations/charts.py's
SVG. A panel whose rows the user may not view in the admin (conversations, broadcasts) is left
out, as the admin leaves out their lists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from conversations import dashboard
from conversations.admin.broadcast_admin import duration, progress_data
from conversations.charts import Series, day_chart
from conversations.indexes import FAILED
from conversations.models import Broadcast, Conversation, Message


def may_view(request: HttpRequest, model: type[Model]) -> bool:
    return admin.site.get_model_admin(model).has_view_permission(request)


def messages_url(**filters: str) -> str:
    """The Messages list filtered by its own query parameters (list filters and field lookups)."""
    return reverse("admin:conversations_message_changelist") + "?" + urlencode(filters)


def _dashboard(request: HttpRequest) -> HttpResponse:
    if not may_view(request, Message):
        raise PermissionDenied
    now = timezone.now()
    texts, backlog = dashboard.texts(now), dashboard.backlog(now)
    since = texts.since.isoformat()
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "texts": texts,
        "charts": charts(texts),
        "outcomes": [
            (Message.Status(status).label, n, messages_url(status__exact=status, created_at__gte=since))
            for status, n in texts.outcomes.items()
        ],
        "failures": [
            (
                failure,
                messages_url(
                    status__in=",".join(FAILED),
                    error__contains=f"Twilio error {failure.code}",
                    created_at__gte=since,
                )
                if failure.code is not None
                else None,
            )
            for failure in texts.failures
        ],
        "all_failures_url": messages_url(status__in=",".join(FAILED), created_at__gte=since),
        "backlog": backlog,
        # As the broadcast page says a time left; a wait under a second is still one.
        "oldest_wait": duration(max(backlog.oldest, timedelta(seconds=1))) if backlog.oldest else None,
        "time_zone": settings.TIME_ZONE,
        "outbox_url": messages_url(status__in=",".join(Message.READY)),
    }
    if may_view(request, Conversation):
        context["needing_reply"] = dashboard.needing_reply(now)
    if may_view(request, Broadcast):
        context["broadcasts"] = [
            (broadcast, progress_data(broadcast, progress))
            for broadcast, progress in dashboard.live_broadcasts()
        ]
    return render(request, "admin/dashboard.html", context)


def charts(texts: dashboard.Texts) -> dict[str, str]:
    days = [day.day for day in texts.days]
    return {
        "texts": day_chart(
            "texts-chart",
            "Texts in and out per day",
            days,
            [
                Series("In", [day.inbound for day in texts.days], "series-in"),
                Series("Out", [day.outbound for day in texts.days], "series-out"),
                Series("Failed", [day.failed for day in texts.days], "series-failed"),
            ],
        ),
        "opt": day_chart(
            "opt-chart",
            "Opt-outs and opt-ins per day",
            days,
            [
                Series("Opt-outs", [day.opt_outs for day in texts.days], "series-opt-out"),
                Series("Opt-ins", [day.opt_ins for day in texts.days], "series-opt-in"),
            ],
            bars=True,
        ),
    }


# Through the admin's own gate: staff only (others go to its login page), never cached.
dashboard_page = admin.site.admin_view(_dashboard)
