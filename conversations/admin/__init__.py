"""The admin, where staff work: callers, conversations and messages."""

from django.contrib import admin

from conversations.admin import caller_admin, conversation_admin, message_admin  # noqa: F401  (registers them)

admin.site.site_header = "SMS Conversations"
admin.site.site_title = "SMS Conversations"
admin.site.index_title = "Callers, conversations and messages"
