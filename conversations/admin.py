from __future__ import annotations

import io

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Replace
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from phonenumber_field.phonenumber import to_python

from conversations.caller_csv import CallerCsvError, callers_import, read_callers, write_callers
from conversations.models import Caller, Conversation, Message
from conversations.outbound import SendError, message_send
from conversations.phone import digits_of, e164_or_none
from conversations.webhook import conversation_end

admin.site.site_header = "SMS Conversations"
admin.site.site_title = "SMS Conversations"
admin.site.index_title = "Callers, conversations and messages"


class SendTextForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 60}), max_length=1600)


class SendFromForm(SendTextForm):
    our_number = forms.CharField(
        label="From",
        help_text="Your Twilio number, in E.164 (+15005550006).",
        initial=lambda: settings.TWILIO_FROM_NUMBER,
    )

    def clean_our_number(self) -> str:
        number = e164_or_none(self.cleaned_data["our_number"])
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
            message_send(our_number=our_number, their_number=their_number, body=form.cleaned_data["body"])
            sent += 1
        except SendError as error:
            modeladmin.message_user(request, f"{their_number}: {error}", messages.ERROR)
    if sent:
        modeladmin.message_user(request, f"Sent {sent} text{'s' if sent != 1 else ''}.", messages.SUCCESS)
    return None


def _number_search(search: str) -> str:
    """What to look for in stored E.164 numbers when staff type a number as people write it:
    "(415) 555-2222" finds +14155552222, and so does "555-2222"."""
    number = to_python(search)
    if number and number.is_valid():
        return number.as_e164
    return digits_of(search) or search


class CallerImportForm(forms.Form):
    file = forms.FileField(help_text="CSV, UTF-8, with the columns phone_number, name and blocked (yes/no).")


@admin.register(Caller)
class CallerAdmin(admin.ModelAdmin):
    list_display = ("phone_number", "name", "blocked", "updated_at")
    list_filter = ("blocked", "created_at")
    search_fields = ("name", "phone_number")
    readonly_fields = ("created_at", "updated_at")
    actions = ("export_csv", "send_text")
    change_list_template = "admin/conversations/caller/change_list.html"

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Caller], search_term: str
    ) -> tuple[QuerySet[Caller], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            queryset |= self.model.objects.filter(phone_number__contains=_number_search(search_term))
        return queryset, may_have_duplicates

    def get_urls(self) -> list[URLPattern]:
        own = [
            path("import/", self.admin_site.admin_view(self.import_view), name="conversations_caller_import"),
            path("export/", self.admin_site.admin_view(self.export_view), name="conversations_caller_export"),
        ]
        return own + super().get_urls()

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request) or not self.has_change_permission(request):
            return HttpResponse("You may not import callers.", status=403)
        form = CallerImportForm(request.POST or None, request.FILES or None)
        problems: list[str] = []
        if form.is_valid():
            try:
                created, updated = callers_import(read_callers(form.cleaned_data["file"]))
            except CallerCsvError as error:
                problems = error.problems
            else:
                self.message_user(
                    request, f"Imported {created + updated} callers: {created} new, {updated} updated."
                )
                return HttpResponseRedirect(reverse("admin:conversations_caller_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import callers",
            "form": form,
            "problems": problems,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/conversations/caller/import.html", context)

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


class MessageInline(admin.TabularInline):
    model = Message
    fields = ("created_at", "direction", "body", "media_links", "reply", "status", "error", "sid")
    readonly_fields = fields
    ordering = ("created_at", "pk")
    extra = 0
    can_delete = False
    verbose_name_plural = "History"

    def has_add_permission(self, request: HttpRequest, obj: Conversation | None = None) -> bool:
        return False

    @admin.display(description="Media")
    def media_links(self, message: Message) -> str:
        return format_html_join(
            " ",
            '<a href="{}" target="_blank" rel="noopener">media {}</a>',
            ((url, number) for number, url in enumerate(message.media_urls, start=1)),
        )


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
    inlines = (MessageInline,)
    actions = ("end_conversation", "send_text")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        # The Caller is found by number: a WhatsApp sender's number follows its channel prefix.
        number = Replace(OuterRef("sender"), Value("whatsapp:"), Value(""))
        names = Caller.objects.filter(phone_number=number).order_by().values("name")[:1]
        return super().get_queryset(request).annotate(caller=Subquery(names))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            named = Caller.objects.filter(name__icontains=search_term).values("phone_number")
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
        self.message_user(request, f"Ended {len(queryset)} conversation(s).", messages.SUCCESS)

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
