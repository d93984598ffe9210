"""Messages: every text in and out, read-only, searchable."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from conversations.admin.conversation_admin import ReadOnlyAdmin
from conversations.models import Caller, Message, search_key
from conversations.phone import number_search


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
                conversation__sender__contains=number_search(search_term)
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
