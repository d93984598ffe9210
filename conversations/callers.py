"""The people who text the app, as staff know them: a name, and whether to answer them."""

from __future__ import annotations

from typing import Any

from django.db import models
from phonenumber_field.modelfields import PhoneNumberField

from conversations.names import search_key, validate_printable


class Caller(models.Model):
    phone_number = PhoneNumberField(unique=True, help_text="Stored in E.164, e.g. +14155552222.")
    name = models.CharField(max_length=100, validators=[validate_printable])
    # The name as search_key() folds it, kept by save() (and by bulk writes that bypass it).
    name_search = models.TextField(blank=True, editable=False)
    blocked = models.BooleanField(
        default=False, help_text="A blocked caller's texts are recorded but not answered."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone_number})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_search = search_key(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_search"}
        super().save(*args, **kwargs)
