"""Twilio's form body parsed flat (conversations/form_bodies.py): the QueryDict Django makes."""

from django.core.exceptions import TooManyFieldsSent
from django.http import QueryDict
from django.test import SimpleTestCase, override_settings

from conversations.form_bodies import parse_form
from conversations.models import Message
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, sid_of, sign

BODIES = [
    b"",
    b"From=%2B14155550001&To=%2B15005550006&Body=Hello+there&MessageSid=SM0&NumMedia=0",
    b"a=1&b=&a=2&c&a=3",  # Repeated keys, a blank value, a key without "=".
    b"Body=%3C%26%3E%22%27+%F0%9F%8E%89&Emoji=\xf0\x9f\x8e\x89",  # Escaped and raw UTF-8.
    b"Body=%FF%FE&Raw=\xff",  # Bytes that are not UTF-8: replaced, as Django does.
    b"k%5B%5D=1&k%5B%5D=2&=empty&x=a%2Bb+c;d=e",
]


class ParseFormTests(SimpleTestCase):
    def test_it_makes_the_querydict_django_makes(self) -> None:
        for body in BODIES:
            with self.subTest(body=body):
                expected = QueryDict(body, encoding="utf-8")

                form = parse_form(body)

                self.assertEqual(list(form.lists()), list(expected.lists()))
                self.assertEqual(form.encoding, expected.encoding)
                self.assertEqual(form.urlencode(), expected.urlencode())

    def test_it_is_immutable_like_djangos(self) -> None:
        form = parse_form(b"a=1")

        with self.assertRaises(AttributeError):
            form["a"] = "2"

    @override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
    def test_it_refuses_too_many_fields_as_django_does(self) -> None:
        with self.assertRaises(TooManyFieldsSent):
            QueryDict(b"a=1&b=2&c=3&d=4")
        with self.assertRaises(TooManyFieldsSent):
            parse_form(b"a=1&b=2&c=3&d=4")


class TooManyFieldsTestCase(TwilioTestCase):
    params = {"From": SENDER, "To": RECIPIENT, "Body": "Hi", "MessageSid": sid_of(1)}

    @override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
    def test_an_unsigned_text_with_too_many_fields_is_still_refused_for_its_signature(self) -> None:
        response = self.client.post("/sms/", self.params)

        self.assertEqual(response.status_code, 403)

    @override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=3)
    def test_a_signed_text_with_too_many_fields_is_refused_and_not_recorded(self) -> None:
        signature = sign("http://testserver/sms/", self.params)

        response = self.client.post("/sms/", self.params, headers={"X-Twilio-Signature": signature})

        self.assertEqual(response.status_code, 400)
        self.assertFalse(Message.objects.exists())
