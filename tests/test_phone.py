from django.test import SimpleTestCase, override_settings

from conversations.phone import address_from_input


class AddressFromInputTestCase(SimpleTestCase):
    def test_it_writes_numbers_as_people_type_them_in_e164(self) -> None:
        for typed in ("(415) 555-0142", "415-555-0142", "415.555.0142", "+1 415 555 0142", " +14155550142 "):
            with self.subTest(typed=typed):
                self.assertEqual(address_from_input(typed), "+14155550142")

    @override_settings(PHONE_DEFAULT_REGION="GB")
    def test_it_reads_national_numbers_in_the_default_region(self) -> None:
        self.assertEqual(address_from_input("020 7946 0958"), "+442079460958")
        self.assertEqual(address_from_input("+1 (415) 555-0142"), "+14155550142")

    def test_it_normalises_the_number_of_a_channel_address(self) -> None:
        self.assertEqual(address_from_input("whatsapp:(415) 555-0142"), "whatsapp:+14155550142")
        self.assertEqual(address_from_input("whatsapp:+14155550142"), "whatsapp:+14155550142")

    def test_it_keeps_sender_ids_short_codes_and_invalid_numbers_as_typed(self) -> None:
        for typed in ("ACME", "12345", "+1", "whatsapp:ACME", "555-CALL"):
            with self.subTest(typed=typed):
                self.assertEqual(address_from_input(typed), typed)
