"""Phone addresses as Twilio sends them: E.164 numbers, channel prefixes, sender IDs."""

import re
from functools import lru_cache

import phonenumbers
from django.conf import settings

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


def address_from_input(value: str) -> str:
    """An address as a person types it, as Twilio would send it.

    "(415) 555-0142" -> "+14155550142" (numbers without a country code are read in
    PHONE_DEFAULT_REGION, as the admin reads them), "whatsapp:(415) 555-0142" ->
    "whatsapp:+14155550142"; sender IDs, short codes and anything else stay as typed.
    """
    value = value.strip()
    channel, separator, number = value.rpartition(CHANNEL_SEPARATOR)
    try:
        parsed = phonenumbers.parse(number, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(parsed):
        return value
    return channel + separator + phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def mask(address: str) -> str:
    """Hide the last four digits, for logs: +14155551234 -> +1415555****."""
    if len(address) <= 4:
        return "*" * len(address)
    return address[:-4] + "****"


def digits_of(search: str) -> str | None:
    """The digits of a search typed like a (partial) number, "555-1234" -> "5551234"."""
    digits = re.sub(r"[\s().-]", "", search)
    return digits if re.fullmatch(r"\+?\d{3,}", digits) else None
