from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.test import TestCase, override_settings

from conversations.models import Caller


class CallerTestCase(TestCase):
    def test_it_stores_numbers_in_e164(self) -> None:
        caller = Caller(phone_number="(415) 555-2222", name="Rey")
        caller.full_clean()
        caller.save()

        self.assertEqual(Caller.objects.values_list("phone_number", flat=True).get(), "+14155552222")

    @override_settings(PHONENUMBER_DEFAULT_REGION="GB")
    def test_it_reads_national_numbers_in_the_default_region(self) -> None:
        caller = Caller(phone_number="020 7946 0018", name="Finn")
        caller.full_clean()
        caller.save()

        self.assertEqual(Caller.objects.values_list("phone_number", flat=True).get(), "+442079460018")

    def test_it_rejects_invalid_numbers(self) -> None:
        for number in ("hello", "555", "+1 415 555"):
            with self.subTest(number=number), self.assertRaises(ValidationError) as error:
                Caller(phone_number=number, name="Poe").full_clean()
            self.assertIn("phone_number", error.exception.message_dict)

    def test_it_allows_one_caller_per_number(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey")

        with self.assertRaises(IntegrityError):
            Caller.objects.create(phone_number="(415) 555-2222", name="Rey again")

    def test_it_shows_name_and_number(self) -> None:
        self.assertEqual(str(Caller(phone_number="+14155552222", name="Rey")), "Rey (+14155552222)")
