"""Phone addresses as Twilio sends them: E.164 numbers, channel prefixes, sender IDs."""

import re
from functools import lru_cache

import phonenumbers

CHANNEL_SEPARATOR = ":"


@lru_cache(maxsize=10_000)  # Parsing costs ~45 µs a text; a number keeps texting.
def e164_or_none(address: str) -> str | None:
    """Return the E.164 number behind a Twilio address, or None for sender IDs and short codes."""
    number = address.rpartition(CHANNEL_SEPARATOR)[2].strip()  # "whatsapp:+1415…" -> "+1415…"
    if not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(address: str) -> str:
    """Hide the last four digits, for logs: +14155551234 -> +1415555****."""
    if len(address) <= 4:
        return "*" * len(address)
    return address[:-4] + "****"


def digits_of(search: str) -> str | None:
    """The digits of a search typed like a (partial) number, "555-1234" -> "5551234"."""
    digits = re.sub(r"[\s().-]", "", search)
    return digits if re.fullmatch(r"\+?\d{3,}", digits) else None
