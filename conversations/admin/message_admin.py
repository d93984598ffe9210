"""Messages: every text in and out, read-only, searchable."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from conversations.admin.conversation_admin import ReadOnlyAdmin
from conversations.models import Conversation, Message
from conversations.outbox import SendError, text_cancel, texts_enqueue
from conversations.redaction import message_redact


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "conversation",
        "direction",
        "body_start",
        "reply_start",
        "status",
        "attempts",
        "outcome",
        "simulated",
    )
    list_filter = ("direction", "simulated", "created_at", "status", "outcome")
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
        "outcome",
        "error",
        "attempts",
        "priority",
        "send_at",
        "claimed_at",
        "sent_by",
        "broadcast",
    )
    readonly_fields = fields
    actions = ("cancel_waiting", "resend_unknown")

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/redact/",
                self.admin_site.admin_view(require_POST(self.redact_view)),
                name="conversations_message_redact",
            ),
        ]
        return own + super().get_urls()

    # Messages stay read-only; redacting one is a power of its own, apart from changing things.
    def has_redact_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.redact_message")

    def redact_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_redact_permission(request):
            raise PermissionDenied
        message = self.get_object(request, unquote(object_id))
        if message is None:
            raise Http404("No such message.")
        if message_redact(message):
            # Who and when, never what: the history must not keep the original either.
            self.log_change(request, message, "Redacted the body")
            self.message_user(request, "Redacted the text: its body and media are gone.", messages.SUCCESS)
        else:
            self.message_user(request, "That text was already redacted.", messages.WARNING)
        url = reverse("admin:conversations_conversation_change", args=[message.conversation_id])
        return HttpResponseRedirect(f"{url}#message-{message.pk}")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            matching = Conversation.objects.matching(search_term)
            queryset |= self.get_queryset(request).filter(conversation__in=matching)
        return queryset, may_have_duplicates

    @admin.action(
        description="Re-send texts in doubt (unknown): Twilio may have them already, so they may arrive twice",
        permissions=["resend"],
    )
    def resend_unknown(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        # Only staff know whether the customer got it; the worker never re-sends one by itself.
        doubtful = queryset.filter(status=Message.Status.UNKNOWN).select_related("conversation")
        staff = request.user if isinstance(request.user, User) else None
        again = [(m.conversation.recipient, m.conversation.sender, m.body) for m in doubtful]
        for our, their, body in again:
            texts_enqueue(pairs=[(our, their)], body=body, sent_by=staff, force=True)
        self.message_user(
            request,
            f"Queued {len(again)} text{'' if len(again) == 1 else 's'} again; each may arrive twice.",
            messages.WARNING,
        )

    @admin.action(
        description="Cancel scheduled texts (and those still waiting to be sent)", permissions=["resend"]
    )
    def cancel_waiting(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        staff = request.user if isinstance(request.user, User) else None
        canceled = 0
        waiting = queryset.filter(direction=Message.Direction.OUTBOUND, status__in=Message.READY)
        for message_id in waiting.values_list("pk", flat=True):
            try:
                message = text_cancel(message_id, by=staff)
            except SendError:
                continue  # The worker took it meanwhile: it stays as the worker leaves it.
            self.log_change(request, message, "Canceled the text before it was sent")
            canceled += 1
        left = queryset.count() - canceled
        self.message_user(
            request,
            f"Canceled {canceled} text{'' if canceled == 1 else 's'}"
            + (f"; {left} had been sent or settled already and stay as they are." if left else "."),
            messages.SUCCESS if canceled else messages.WARNING,
        )

    # Canceling or re-sending a text is staff work on the conversation: its change permission.
    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("conversations.change_conversation")

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
