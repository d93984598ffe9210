"""Phone addresses as Twilio sends them: E.164 numbers, channel prefixes, sender IDs."""

import re
from functools import lru_cache

import phonenumbers
from django.conf import settings

CHANNEL_SEPARATOR = ":"


def number_of(address: str) -> str | None:
    """The E.164 number behind an address however it is written, or None when it has none.

    "+14155550142", "whatsapp:+14155550142" and "(415) 555-0142" (read in
    PHONE_DEFAULT_REGION, as the admin reads it) -> "+14155550142"; an alphanumeric sender
    ID ("ACME") or a short code -> None. The one rule for a sender's number: Conversation,
    Caller lookups, the admin, the simulator and the commands all go through it.
    """
    return _number_of(address, settings.PHONE_DEFAULT_REGION)


@lru_cache(maxsize=65_536)  # Parsing costs ~45 µs; a number keeps texting; a broadcast reads each thrice.
def _number_of(address: str, region: str) -> str | None:
    number = address.rpartition(CHANNEL_SEPARATOR)[2].strip()  # "whatsapp:+1415…" -> "+1415…"
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    # Twilio sends only numbers its carriers delivered, in E.164: a possible one is enough.
    # A person's typing gets the full check, so that a short code stays a short code.
    usable = phonenumbers.is_possible_number if number.startswith("+") else phonenumbers.is_valid_number
    if not usable(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def address_from_input(value: str) -> str:
    """An address as a person types it, as Twilio would send it.

    "(415) 555-0142" -> "+14155550142", "whatsapp:(415) 555-0142" -> "whatsapp:+14155550142";
    sender IDs, short codes and anything else stay as typed.
    """
    value = value.strip()
    number = number_of(value)
    if number is None:
        return value
    channel, separator, _ = value.rpartition(CHANNEL_SEPARATOR)
    return channel + separator + number


def mask(address: str) -> str:
    """Hide the last four digits, for logs: +14155551234 -> +1415555****."""
    if len(address) <= 4:
        return "*" * len(address)
    return address[:-4] + "****"


def number_search(search: str) -> str:
    """What to look for in stored E.164 numbers when staff type a number as people write it:
    "(415) 555-2222" finds +14155552222, and so does "555-2222"."""
    return number_of(search) or digits_of(search) or search


def digits_of(search: str) -> str | None:
    """The digits of a search typed like a (partial) number, "555-1234" -> "5551234"."""
    digits = re.sub(r"[\s().-]", "", search)
    return digits if re.fullmatch(r"\+?\d{3,}", digits) else None
