"""Segments and encoding of a text, against Twilio's rules; the table is shared with the
browser test that holds the pages' counter to the same answers."""

from django.test import SimpleTestCase

from conversations.segments import GSM_7, UCS_2, Segments, segments_of

# (text, encoding, characters, segments): each row is a rule that is easy to get wrong.
TRICKY = [
    ("", GSM_7, 0, 0),
    ("Hello", GSM_7, 5, 1),
    ("a" * 160, GSM_7, 160, 1),
    ("a" * 161, GSM_7, 161, 2),
    ("a" * 306, GSM_7, 306, 2),
    ("a" * 307, GSM_7, 307, 3),
    # The GSM alphabet's own non-ASCII letters cost one septet.
    ("Ça coûte 5£, señor?", UCS_2, 19, 1),  # û is not in it: the whole text is UCS-2.
    ("Ça coute 5£, señor? ¿Dónde?", UCS_2, 27, 1),
    ("Ça coute 5£, señor? Où?", GSM_7, 23, 1),
    ("Price: 5€", GSM_7, 10, 1),
    ("^", GSM_7, 2, 1),
    ("{[~]}|\\", GSM_7, 14, 1),
    ("a" * 158 + "€", GSM_7, 160, 1),
    ("a" * 159 + "€", GSM_7, 161, 2),
    # 152 septets, then € (2): it does not fit the first part's last septet, so moves on.
    ("a" * 152 + "€" + "a" * 152, GSM_7, 306, 3),
    ("a" * 151 + "€" + "a" * 153, GSM_7, 306, 2),
    ("It’s here", UCS_2, 9, 1),  # noqa: RUF001 (the curly quote is the point)
    ("“Quoted”", UCS_2, 8, 1),
    ("Hi 😀", UCS_2, 5, 1),  # The emoji is a surrogate pair: two units.
    ("é" * 70, GSM_7, 70, 1),
    ("ê" * 70, UCS_2, 70, 1),
    ("ê" * 71, UCS_2, 71, 2),
    ("ê" * 134, UCS_2, 134, 2),
    ("ê" * 135, UCS_2, 135, 3),
    ("😀" * 35, UCS_2, 70, 1),
    ("😀" * 36, UCS_2, 72, 2),
    # 66 units, then an emoji (2): it is never split across parts.
    ("ê" * 66 + "😀" + "ê" * 66, UCS_2, 134, 3),
    ("Tab\there", UCS_2, 8, 1),  # Tab is not in GSM-7's basic table.
    ("Line\nbreak\r\n", GSM_7, 12, 1),
]


class SegmentsTestCase(SimpleTestCase):
    def test_it_counts_the_tricky_table_as_twilio_does(self) -> None:
        for text, encoding, characters, count in TRICKY:
            with self.subTest(text=text[:20], length=len(text)):
                found = segments_of(text)
                self.assertEqual(
                    (found.encoding, found.characters, found.count), (encoding, characters, count)
                )

    def test_it_names_the_character_that_switches_the_text_to_ucs2(self) -> None:
        found = segments_of("Your table’s ready 😀")  # noqa: RUF001 (the curly quote is the point)

        self.assertEqual(found.switched_by, "’")  # noqa: RUF001 (the curly quote is the point)
        self.assertEqual(found.switched_by_name, "’ (U+2019 RIGHT SINGLE QUOTATION MARK)")  # noqa: RUF001 (the curly quote is the point)

    def test_a_gsm_text_names_no_character(self) -> None:
        self.assertEqual(segments_of("Your table's ready €5"), Segments(GSM_7, 22, 1, ""))
