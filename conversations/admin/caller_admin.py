"""Callers: the list staff search, CSV import with a preview, and export."""

from __future__ import annotations

import io
import secrets
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from conversations.admin.broadcast_sending import broadcast_action
from conversations.caller_csv import (
    CallerCsvError,
    CallerRow,
    ImportPlan,
    callers_import,
    import_plan,
    read_callers,
    write_callers,
)
from conversations.models import Caller
from conversations.names import search_key
from conversations.phone import number_search

# How many created and changed callers an import preview lists by name (all are counted).
PREVIEW_ROWS = 200
# Where a previewed import waits in the staff user's session for its Confirm.
PENDING_IMPORT = "caller_import"


def callers_label(count: int) -> str:
    return f"{count} caller{'' if count == 1 else 's'}"


class CallerImportForm(forms.Form):
    file = forms.FileField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = (
            "CSV, UTF-8, at most "
            f"{filesizeformat(settings.CALLER_IMPORT_MAX_BYTES)}, with a phone_number column and "
            "optionally name and blocked (yes/no)."
        )

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        # Refused before a byte is read: the upload's size is known from the request.
        if file.size > settings.CALLER_IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {filesizeformat(settings.CALLER_IMPORT_MAX_BYTES)}; "
                "split it into smaller files."
            )
        return file


def _changes(changes: dict[str, tuple[Any, Any]]) -> str:
    """ "name: Rey → Rey Skywalker; blocked: yes → no", for the import preview."""

    def shown(value: Any) -> str:
        return ("yes" if value else "no") if isinstance(value, bool) else str(value)

    return "; ".join(f"{name}: {shown(now)} → {shown(after)}" for name, (now, after) in changes.items())


def conversations_url(number: str) -> str:
    """The Conversations list narrowed to a number's pairs, SMS and WhatsApp."""
    return reverse("admin:conversations_conversation_changelist") + "?" + urlencode({"sender_number": number})


@admin.register(Caller)
class CallerAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "name", "blocked", "updated_at", "conversations")
    list_filter = ("blocked", "created_at")
    search_fields = ("name", "phone_number")
    readonly_fields = ("conversations", "created_at", "updated_at")
    actions = ("export_csv", "send_text")
    change_list_template = "admin/conversations/caller/change_list.html"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Caller], search_term: str
    ) -> tuple[QuerySet[Caller], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            queryset |= self.model.objects.filter(phone_number__contains=number_search(search_term))
            queryset |= self.model.objects.filter(name_search__contains=search_key(search_term))
        return queryset, may_have_duplicates

    @admin.display(description="Conversations")
    def conversations(self, caller: Caller) -> str:
        if caller.pk is None:
            return "—"
        return format_html('<a href="{}">Conversations</a>', conversations_url(str(caller.phone_number)))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("import/", self.admin_site.admin_view(self.import_view), name="conversations_caller_import"),
            path("export/", self.admin_site.admin_view(self.export_view), name="conversations_caller_export"),
        ]
        return own + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return HttpResponse("You may not import callers.", status=403)
        if "confirm" in request.POST:
            return self._import_confirm(request)
        form = CallerImportForm(request.POST or None, request.FILES or None)
        problems: list[str] = []
        if form.is_valid():
            try:
                rows = read_callers(form.cleaned_data["file"])
                plan = import_plan(rows)
            except CallerCsvError as error:
                problems = error.problems
            else:
                return self._import_preview(request, rows, plan)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import callers",
            "form": form,
            "problems": problems,
            "max_bytes": settings.CALLER_IMPORT_MAX_BYTES,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/conversations/caller/import.html", context)

    def _import_preview(self, request: HttpRequest, rows: list[CallerRow], plan: ImportPlan) -> HttpResponse:
        # The rows wait in the staff user's session, so that Confirm applies exactly what was
        # previewed, without the file being sent (or read) again.
        token = secrets.token_urlsafe(16)
        request.session[PENDING_IMPORT] = {"token": token, "rows": [row.as_list() for row in rows]}
        context = {
            **self.admin_site.each_context(request),
            "title": "Import callers: preview",
            "plan": plan,
            "created": plan.created[:PREVIEW_ROWS],
            "updated": [(row, _changes(changes)) for row, changes in plan.updated[:PREVIEW_ROWS]],
            "created_more": max(len(plan.created) - PREVIEW_ROWS, 0),
            "updated_more": max(len(plan.updated) - PREVIEW_ROWS, 0),
            "created_label": callers_label(len(plan.created)),
            "updated_label": callers_label(len(plan.updated)),
            "unchanged_label": callers_label(plan.unchanged),
            "token": token,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/conversations/caller/import_preview.html", context)

    def _import_confirm(self, request: HttpRequest) -> HttpResponse:
        pending = request.session.get(PENDING_IMPORT) or {}
        if not secrets.compare_digest(str(pending.get("token", "")), request.POST.get("token", "")):
            self.message_user(
                request, "That preview is no longer pending; upload the file again.", messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:conversations_caller_import"))
        del request.session[PENDING_IMPORT]
        try:
            plan = callers_import([CallerRow.from_list(values) for values in pending["rows"]])
        except CallerCsvError as error:
            self.message_user(request, " ".join(error.problems), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:conversations_caller_import"))
        changed = len(plan.created) + len(plan.updated)
        summary = f"Imported {callers_label(changed)}: {len(plan.created)} new, {len(plan.updated)} updated"
        if plan.unchanged:
            summary += f"; {callers_label(plan.unchanged)} already up to date"
        self.message_user(request, summary + ".", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:conversations_caller_changelist"))

    def export_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            return HttpResponse("You may not export callers.", status=403)
        return self._csv_response(Caller.objects.order_by("name"))

    @admin.action(description="Export selected callers as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Caller]) -> HttpResponse:
        return self._csv_response(queryset.order_by("name"))

    def _csv_response(self, callers: QuerySet[Caller]) -> HttpResponse:
        out = io.StringIO()
        write_callers(callers.iterator(), out)
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return HttpResponse(
            out.getvalue(),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="callers-{stamp}.csv"'},
        )

    # Texting callers in bulk is a broadcast: its own permission, apart from editing callers.
    def has_broadcast_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.send_broadcast")

    @admin.action(description="Send a text to the selected callers (a broadcast)", permissions=["broadcast"])
    def send_text(self, request: HttpRequest, queryset: QuerySet[Caller]) -> HttpResponse | None:
        return broadcast_action(self, request, queryset)
