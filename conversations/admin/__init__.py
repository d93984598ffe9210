"""The admin, where staff work: callers, conversations and messages."""

from django.contrib import admin

from conversations.admin import (  # noqa: F401  (registers them)
    broadcast_admin,
    caller_admin,
    conversation_admin,
    message_admin,
)

admin.site.site_header = "SMS Conversations"
admin.site.site_title = "SMS Conversations"
admin.site.index_title = "Callers, conversations, messages and broadcasts"
