from django import template
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from conversations.models import Conversation

register = template.Library()


@register.simple_tag
def needing_reply(user: User | AnonymousUser) -> int | None:
    """How many conversations staff have taken over and owe an answer; None for who cannot see them."""
    if not (
        user.has_perm("conversations.view_conversation") or user.has_perm("conversations.change_conversation")
    ):
        return None
    return Conversation.objects.needs_reply(timezone.now()).count()
