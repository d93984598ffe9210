from django import template
from django.contrib.auth.models import AnonymousUser, User

from conversations.simulator import is_open_to

register = template.Library()


@register.filter
def can_use_simulator(user: User | AnonymousUser) -> bool:
    """Whether to link to the simulator: it is switched on and the user may use it."""
    return is_open_to(user)
