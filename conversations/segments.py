"""How many SMS segments a text costs, by Twilio's rules (GSM 03.38 and UCS-2).

A text made only of the GSM-7 alphabet costs one septet a character (two for the extension
table, which is sent as an escape and the character), 160 septets in a single segment and 153
in each part of a longer one (the rest of each part holds the header that joins them). One
character outside the alphabet sends the whole text as UCS-2: 70 UTF-16 units in a single
segment, 67 a part, and a character outside the Basic Multilingual Plane (most emoji) is two
units. A character is never split across two parts, so a part may end a unit short.

The admin's and the simulator's counters (static/conversations/segments.js) count with the
same tables, given to them by `charset()`, so the page and this module agree.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Any

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

# GSM 03.38's basic table, in code order (0x1B, the escape to the extension table, left out).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Its extension table: each costs two septets (the escape, then the character).
GSM_EXTENSION = "\f^{}\\[~]|€"

# Units a single segment holds, and each part of a longer text.
SINGLE = {GSM_7: 160, UCS_2: 70}
PART = {GSM_7: 153, UCS_2: 67}

_BASIC = frozenset(GSM_BASIC)
_EXTENSION = frozenset(GSM_EXTENSION)


@dataclasses.dataclass(frozen=True)
class Segments:
    encoding: str  # GSM_7 or UCS_2
    characters: int  # Septets (GSM-7) or UTF-16 units (UCS-2): what the limits count.
    count: int
    switched_by: str = ""  # The first character that made the text UCS-2.

    @property
    def switched_by_name(self) -> str:
        """ "“ (U+201C LEFT DOUBLE QUOTATION MARK)", for a warning staff can act on."""
        if not self.switched_by:
            return ""
        char = self.switched_by
        name = unicodedata.name(char, "")
        return f"{char} (U+{ord(char):04X}{' ' + name if name else ''})"


def segments_of(text: str) -> Segments:
    switched_by = next((char for char in text if char not in _BASIC and char not in _EXTENSION), "")
    encoding = UCS_2 if switched_by else GSM_7
    units = [_units(char, encoding) for char in text]
    characters = sum(units)
    if characters <= SINGLE[encoding]:
        return Segments(encoding, characters, 1 if text else 0, switched_by)
    count, room = 1, PART[encoding]
    for size in units:
        if size > room:  # An escape and its character, or a surrogate pair, stay together.
            count, room = count + 1, PART[encoding]
        room -= size
    return Segments(encoding, characters, count, switched_by)


def _units(char: str, encoding: str) -> int:
    if encoding == GSM_7:
        return 2 if char in _EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def charset() -> dict[str, Any]:
    """The tables and limits, for the pages' counters (json_script)."""
    return {
        "basic": GSM_BASIC,
        "extension": GSM_EXTENSION,
        "single": SINGLE,
        "part": PART,
    }
