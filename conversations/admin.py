from __future__ import annotations

import io
import secrets
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from phonenumber_field.phonenumber import to_python

from conversations.caller_csv import (
    CallerCsvError,
    CallerRow,
    ImportPlan,
    callers_import,
    import_plan,
    read_callers,
    write_callers,
)
from conversations.models import Caller, Conversation, Message, search_key
from conversations.outbound import SendError, message_send
from conversations.pairs import conversation_end
from conversations.phone import digits_of, number_of

admin.site.site_header = "SMS Conversations"
admin.site.site_title = "SMS Conversations"
admin.site.index_title = "Callers, conversations and messages"

# Texts per page of a conversation's thread: 2,000 texts on one page made it 3.5 MB.
THREAD_PAGE_SIZE = 50
# How many created and changed callers an import preview lists by name (all are counted).
PREVIEW_ROWS = 200
# Where a previewed import waits in the staff user's session for its Confirm.
PENDING_IMPORT = "caller_import"


def callers(count: int) -> str:
    return f"{count} caller{'' if count == 1 else 's'}"


def texts(count: int) -> str:
    return f"{count} text{'' if count == 1 else 's'}"


class SendTextForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=1600)


class SendFromForm(SendTextForm):
    our_number = forms.CharField(
        label="From",
        help_text="Your Twilio number, in E.164 (+15005550006).",
        initial=lambda: settings.TWILIO_FROM_NUMBER,
    )

    def clean_our_number(self) -> str:
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
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action": request.POST["action"],
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/conversations/send_text.html", context)
    sent = 0
    for our_number, their_number in pairs:
        our_number = form.cleaned_data.get("our_number") or our_number
        try:
            text_send(modeladmin, request, our_number, their_number, form.cleaned_data["body"])
            sent += 1
        except SendError as error:
            modeladmin.message_user(request, f"{their_number}: {error}", messages.ERROR)
    if sent:
        modeladmin.message_user(request, f"Sent {texts(sent)}.", messages.SUCCESS)
    return None


def text_send(
    modeladmin: admin.ModelAdmin, request: HttpRequest, our_number: str, their_number: str, body: str
) -> Message:
    """Send one text as the staff user, and note it in the conversation's admin history."""
    message = message_send(our_number=our_number, their_number=their_number, body=body, sent_by=request.user)
    modeladmin.log_change(request, message.conversation, "Sent a text")
    return message


def _number_search(search: str) -> str:
    """What to look for in stored E.164 numbers when staff type a number as people write it:
    "(415) 555-2222" finds +14155552222, and so does "555-2222"."""
    number = to_python(search)
    if number and number.is_valid():
        return number.as_e164
    return digits_of(search) or search


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
            queryset |= self.model.objects.filter(phone_number__contains=_number_search(search_term))
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
            "created_label": callers(len(plan.created)),
            "updated_label": callers(len(plan.updated)),
            "unchanged_label": callers(plan.unchanged),
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
        summary = f"Imported {callers(changed)}: {len(plan.created)} new, {len(plan.updated)} updated"
        if plan.unchanged:
            summary += f"; {callers(plan.unchanged)} already up to date"
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

    @admin.action(description="Send a text to the selected callers", permissions=["change"])
    def send_text(self, request: HttpRequest, queryset: QuerySet[Caller]) -> HttpResponse | None:
        pairs = [("", str(caller.phone_number)) for caller in queryset]
        return send_texts(self, request, SendFromForm, pairs)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records staff read and act on, but never edit: they are what Twilio and callers said."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = (
        "sender",
        "caller_name",
        "recipient",
        "current_window",
        "lifetime_count",
        "last_activity",
        "opted_out",
    )
    list_filter = ("opted_out", "last_activity", "recipient")
    search_fields = ("sender", "recipient")
    list_select_related = ("session",)
    date_hierarchy = "last_activity"
    ordering = ("-last_activity",)
    readonly_fields = (
        "sender",
        "caller_name",
        "recipient",
        "current_window",
        "lifetime_count",
        "window_started_at",
        "first_activity",
        "last_activity",
        "opted_out",
    )
    fields = readonly_fields
    actions = ("end_conversation", "send_text")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        names = Caller.objects.filter(phone_number=OuterRef("sender_number")).order_by().values("name")[:1]
        return super().get_queryset(request).annotate(caller=Subquery(names))

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/send/",
                self.admin_site.admin_view(require_POST(self.send_view)),
                name="conversations_conversation_send",
            ),
            path(
                "<path:object_id>/end/",
                self.admin_site.admin_view(require_POST(self.end_view)),
                name="conversations_conversation_end",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            return super().change_view(request, object_id, form_url, extra_context)
        thread = conversation.messages.select_related("sent_by").order_by("-created_at", "-pk")
        number = conversation.sender_number
        caller = Caller.objects.filter(phone_number=number).first() if number else None
        context = {
            "thread": Paginator(thread, THREAD_PAGE_SIZE).get_page(request.GET.get("page")),
            "messages_url": reverse("admin:conversations_message_changelist")
            + "?"
            + urlencode({"conversation__id__exact": conversation.pk}),
            "caller": caller,
            "add_caller_url": (
                reverse("admin:conversations_caller_add") + "?" + urlencode({"phone_number": number})
                if number and caller is None
                else None
            ),
            "can_act": self.has_send_permission(request),
            "send_form": SendTextForm(),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _acted_on(self, request: HttpRequest, object_id: str) -> Conversation:
        # The records stay read-only; texting a pair or ending its window is staff work that
        # needs the change permission, as the list actions do.
        if not self.has_send_permission(request):
            raise PermissionDenied
        conversation = self.get_object(request, unquote(object_id))
        if conversation is None:
            raise Http404("No such conversation.")
        return conversation

    def _back_to(self, conversation: Conversation) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:conversations_conversation_change", args=[conversation.pk])
        )

    def send_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        conversation = self._acted_on(request, object_id)
        form = SendTextForm(request.POST)
        if not form.is_valid():
            for errors in form.errors.values():
                self.message_user(request, f"Not sent: {' '.join(errors)}", messages.ERROR)
            return self._back_to(conversation)
        try:
            text_send(self, request, conversation.recipient, conversation.sender, form.cleaned_data["body"])
        except SendError as error:
            self.message_user(request, f"Not sent: {error}", messages.ERROR)
        else:
            self.message_user(request, f"Sent the text to {conversation.sender}.", messages.SUCCESS)
        return self._back_to(conversation)

    def end_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        conversation = self._acted_on(request, object_id)
        conversation_end(conversation)
        self.log_change(request, conversation, "Ended the conversation")
        self.message_user(request, "Ended the conversation: the next text starts at 1.", messages.SUCCESS)
        return self._back_to(conversation)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            named = Caller.objects.filter(name_search__contains=search_key(search_term)).values(
                "phone_number"
            )
            queryset |= self.get_queryset(request).filter(sender__in=named)
            queryset |= self.get_queryset(request).filter(sender__contains=_number_search(search_term))
        return queryset, may_have_duplicates

    @admin.display(description="Caller", ordering="caller")
    def caller_name(self, conversation: Conversation) -> str:
        return conversation.caller or "—"

    @admin.display(description="Texts this window", ordering="window_count")
    def current_window(self, conversation: Conversation) -> int:
        session = conversation.session
        if session is None or session.expire_date <= timezone.now():
            return 0  # The window has ended; the next text starts at 1.
        return conversation.window_count

    # The records are read-only, but ending a window or texting a pair is staff work that
    # needs the model's change permission.
    def has_end_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.change_conversation")

    has_send_permission = has_end_permission

    @admin.action(description="End conversation (the next text starts at 1)", permissions=["end"])
    def end_conversation(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset:
            conversation_end(conversation)
            self.log_change(request, conversation, "Ended the conversation")
        ended = len(queryset)
        self.message_user(
            request, f"Ended {ended} conversation{'' if ended == 1 else 's'}.", messages.SUCCESS
        )

    @admin.action(description="Send a text", permissions=["send"])
    def send_text(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse | None:
        pairs = list(queryset.values_list("recipient", "sender"))
        return send_texts(self, request, SendTextForm, pairs)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "conversation",
        "direction",
        "body_start",
        "reply_start",
        "status",
        "simulated",
    )
    list_filter = ("direction", "simulated", "created_at", "status")
    search_fields = ("body", "reply", "sid", "conversation__sender")
    list_select_related = ("conversation",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = (
        "conversation_link",
        "direction",
        "created_at",
        "sid",
        "body",
        "media_urls",
        "reply",
        "status",
        "error",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            # Numbers however staff write them, and the sender's Caller name in any case or accents.
            named = Caller.objects.filter(name_search__contains=search_key(search_term)).values(
                "phone_number"
            )
            queryset |= self.get_queryset(request).filter(conversation__sender__in=named)
            queryset |= self.get_queryset(request).filter(
                conversation__sender__contains=_number_search(search_term)
            )
        return queryset, may_have_duplicates

    @admin.display(description="Body")
    def body_start(self, message: Message) -> str:
        return message.body[:80]

    @admin.display(description="Reply")
    def reply_start(self, message: Message) -> str:
        return message.reply[:80]

    @admin.display(description="Conversation")
    def conversation_link(self, message: Message) -> str:
        url = reverse("admin:conversations_conversation_change", args=[message.conversation_id])
        return format_html('<a href="{}">{}</a>', url, message.conversation)
