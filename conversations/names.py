"""Names staff type: kept printable, and folded for searching."""

from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError

# Control characters (XML 1.0 forbids most of them) and the two non-characters: a name is
# echoed in TwiML replies, which Twilio rejects when they are not well-formed XML.
UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff]")


def validate_printable(value: str) -> None:
    if UNPRINTABLE.search(value):
        raise ValidationError(
            "Remove the control characters (tabs, line breaks, escapes).", code="unprintable"
        )


def search_key(text: str) -> str:
    """Text folded for searching: any case, accents dropped ("Chloé" and "CHLOE" -> "chloe").
    Done in Python so that SQLite and PostgreSQL (without the unaccent extension) agree."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))
