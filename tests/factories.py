"""The people and callers tests need, made one way.

Users get no password unless a test logs in through the form: force_login() needs none,
and hashing one costs most of a fast test's time.
"""

from __future__ import annotations

from django.contrib.auth.models import Permission, User

from conversations.models import Caller
from tests.twilio import SENDER


def superuser(username: str = "staff", password: str | None = None) -> User:
    user = User(username=username, is_staff=True, is_superuser=True)
    user.set_password(password) if password else user.set_unusable_password()
    user.save()
    return user


def staff_with(username: str, *codenames: str, password: str | None = None) -> User:
    """A staff member with only these permissions of the conversations app."""
    user = User(username=username, is_staff=True)
    user.set_password(password) if password else user.set_unusable_password()
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="conversations", codename__in=codenames)
    )
    return user


def caller(phone_number: str = SENDER, name: str = "Rey", *, blocked: bool = False) -> Caller:
    return Caller.objects.create(phone_number=phone_number, name=name, blocked=blocked)
