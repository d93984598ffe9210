"""Conversations: read-only records, and the page where staff send, end and read the thread."""

from __future__ import annotations

from datetime import datetime
from typing import cast
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from conversations.admin.sending import FORCE_HINT, SendTextForm, send_text_action, staff_text_enqueue, when
from conversations.models import Caller, Conversation, ConversationQuerySet
from conversations.outbox import QuietHoursError, SendError
from conversations.pairs import bot_resume, conversation_end
from conversations.refusals import deliverable_mark

# Texts per page of a conversation's thread: 2,000 texts on one page made it 3.5 MB.
THREAD_PAGE_SIZE = 50


def _queued(their_number: str, send_at: datetime | None) -> str:
    if send_at is None:
        return f"Queued the text to {their_number}: the worker sends it."
    return (
        f"Scheduled the text to {their_number} for {when(send_at)}; "
        "until then “Cancel scheduled texts” in Messages cancels it."
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records staff read and act on, but never edit: they are what Twilio and callers said."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class HandoffFilter(admin.SimpleListFilter):
    title = "handoff"
    parameter_name = "handoff"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("needs_reply", "Needs reply"), ("paused", "Bot paused")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        conversations = cast(ConversationQuerySet, queryset)
        if self.value() == "needs_reply":
            return conversations.needs_reply(timezone.now())
        if self.value() == "paused":
            return conversations.bot_paused(timezone.now())
        return queryset


class UndeliverableFilter(admin.SimpleListFilter):
    title = "deliverable"
    parameter_name = "undeliverable"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Undeliverable"), ("no", "Deliverable")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
        if self.value() == "yes":
            return queryset.exclude(undeliverable_reason="")
        if self.value() == "no":
            return queryset.filter(undeliverable_reason="")
        return queryset


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
        "undeliverable",
    )
    list_filter = (HandoffFilter, "opted_out", UndeliverableFilter, "last_activity", "recipient")
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
        "undeliverable",
    )
    fields = readonly_fields
    actions = ("end_conversation", "send_text", "mark_deliverable")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return cast(ConversationQuerySet, super().get_queryset(request)).with_caller()

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
            path(
                "<path:object_id>/resume/",
                self.admin_site.admin_view(require_POST(self.resume_view)),
                name="conversations_conversation_resume",
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
            "bot_paused_until": (
                conversation.bot_paused_until if conversation.bot_paused(timezone.now()) else None
            ),
            "can_redact": request.user.has_perm("conversations.redact_message"),
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
                self.message_user(
                    request, f"Not sent: {' '.join(str(error) for error in errors)}", messages.ERROR
                )
            return self._back_to(conversation)
        try:
            message = staff_text_enqueue(
                self,
                request,
                conversation.recipient,
                conversation.sender,
                form.cleaned_data["body"],
                force=form.cleaned_data.get("force", False),
                send_at=form.cleaned_data.get("send_at"),
            )
        except QuietHoursError as error:
            self.message_user(request, f"Not sent: {error} {FORCE_HINT}", messages.ERROR)
        except SendError as error:
            self.message_user(request, f"Not sent: {error}", messages.ERROR)
        else:
            # Its time, which quiet hours where they are may have moved to their morning.
            self.message_user(request, _queued(conversation.sender, message.send_at), messages.SUCCESS)
        return self._back_to(conversation)

    def end_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        conversation = self._acted_on(request, object_id)
        conversation_end(conversation)
        self.log_change(request, conversation, "Ended the conversation")
        self.message_user(request, "Ended the conversation: the next text starts at 1.", messages.SUCCESS)
        return self._back_to(conversation)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        conversation = self._acted_on(request, object_id)
        bot_resume(conversation)
        self.log_change(request, conversation, "Resumed the bot")
        self.message_user(request, "Resumed the bot: it answers the next text.", messages.SUCCESS)
        return self._back_to(conversation)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            queryset |= cast(ConversationQuerySet, self.get_queryset(request)).matching(search_term)
        return queryset, may_have_duplicates

    @admin.display(description="Caller", ordering="caller_name")
    def caller_name(self, conversation: Conversation) -> str:
        return conversation.caller_name or "—"

    @admin.display(description="Undeliverable", ordering="undeliverable_since")
    def undeliverable(self, conversation: Conversation) -> str:
        if not conversation.undeliverable_reason:
            return "—"
        since = timezone.localtime(conversation.undeliverable_since or timezone.now())
        return f"{conversation.undeliverable_reason} (since {since:%Y-%m-%d %H:%M})"

    @admin.display(description="Texts this window", ordering="window_count")
    def current_window(self, conversation: Conversation) -> int:
        # Once the window has ended, the next text starts at 1.
        return conversation.window_count if conversation.window_live(timezone.now()) else 0

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

    @admin.action(description="Mark the numbers deliverable again", permissions=["send"])
    def mark_deliverable(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        for conversation in queryset.exclude(undeliverable_reason=""):
            self.log_change(request, conversation, "Marked the number deliverable again")
        cleared = deliverable_mark(queryset)
        self.message_user(
            request,
            f"Cleared the undeliverable mark of {cleared} conversation{'' if cleared == 1 else 's'}.",
            messages.SUCCESS,
        )

    @admin.action(description="Send a text", permissions=["send"])
    def send_text(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> HttpResponse | None:
        pairs = list(queryset.values_list("recipient", "sender"))
        return send_text_action(self, request, SendTextForm, pairs)
