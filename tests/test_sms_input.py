"""What the SMS webhook takes: signed, Twilio-shaped texts; anything else is refused."""

from django.http import HttpResponse
from django.test import override_settings

from conversations.as_twilio import twilio_params
from conversations.models import Caller, Conversation, Message
from conversations.simulated import simulator_mark
from tests.twilio import RECIPIENT, SENDER, TOKEN, TwilioTestCase, reply_of, sid_of, sign


class SmsSignatureTestCase(TwilioTestCase):
    params = {"From": SENDER, "To": RECIPIENT, "Body": "Hi", "MessageSid": sid_of(1)}

    def test_it_rejects_a_text_without_signature_and_records_nothing(self) -> None:
        response = self.client.post("/sms/", self.params)

        self.assertEqual(response.status_code, 403)
        self.assertIn(b"X-Twilio-Signature", response.content)
        self.assertFalse(Conversation.objects.exists())
        self.assertFalse(Message.objects.exists())

    def test_it_rejects_a_signature_made_with_another_token(self) -> None:
        signature = sign("http://testserver/sms/", self.params, token="another-token")

        response = self.client.post("/sms/", self.params, headers={"X-Twilio-Signature": signature})

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Message.objects.exists())

    def test_it_rejects_a_text_changed_after_signing(self) -> None:
        signature = sign("http://testserver/sms/", self.params)

        response = self.client.post(
            "/sms/", {**self.params, "Body": "Changed"}, headers={"X-Twilio-Signature": signature}
        )

        self.assertEqual(response.status_code, 403)

    def test_it_rejects_a_signature_of_another_url(self) -> None:
        signature = sign("https://example.com/sms/", self.params)

        response = self.client.post("/sms/", self.params, headers={"X-Twilio-Signature": signature})

        self.assertEqual(response.status_code, 403)

    @override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        USE_X_FORWARDED_HOST=True,
        ALLOWED_HOSTS=["sms.example.com"],
    )
    def test_it_checks_the_url_a_tls_proxy_forwarded(self) -> None:
        signature = sign("https://sms.example.com/sms/", self.params)

        response = self.client.post(
            "/sms/",
            self.params,
            headers={
                "X-Twilio-Signature": signature,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "sms.example.com",
            },
        )

        self.assertEqual(response.status_code, 200)
        self.assertIs(response.cookies["sessionid"]["secure"], True)

    @override_settings(TWILIO_WEBHOOK_BASE_URL="https://abc123.ngrok.app")
    def test_it_accepts_a_signature_of_the_url_with_its_default_port(self) -> None:
        signature = sign("https://abc123.ngrok.app:443/sms/", self.params)

        response = self.client.post("/sms/", self.params, headers={"X-Twilio-Signature": signature})

        self.assertEqual(response.status_code, 200)

    @override_settings(TWILIO_WEBHOOK_BASE_URL="https://abc123.ngrok.app/")
    def test_it_checks_the_configured_public_url(self) -> None:
        signature = sign("https://abc123.ngrok.app/sms/?campaign=7", self.params)

        response = self.client.post(
            "/sms/?campaign=7", self.params, headers={"X-Twilio-Signature": signature}
        )

        self.assertEqual(response.status_code, 200)

    @override_settings(TWILIO_REQUIRE_SIGNATURE=False, TWILIO_AUTH_TOKEN="")
    def test_it_takes_unsigned_texts_when_signatures_are_off(self) -> None:
        response = self.client.post("/sms/", self.params)

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")


class SmsBadInputTestCase(TwilioTestCase):
    def test_it_refuses_other_methods(self) -> None:
        for method in ("put", "delete", "patch", "options"):
            with self.subTest(method=method):
                response = getattr(self.client, method)("/sms/")
                self.assertEqual(response.status_code, 405)

    def test_it_needs_from_and_to(self) -> None:
        for params, reason in (
            ({"To": RECIPIENT, "Body": "Hi", "MessageSid": sid_of(1)}, b"Missing From."),
            ({"From": SENDER, "Body": "Hi", "MessageSid": sid_of(2)}, b"Missing To."),
            ({"From": " ", "To": "", "Body": "Hi", "MessageSid": sid_of(3)}, b"Missing From and To."),
        ):
            with self.subTest(params=params):
                signature = sign("http://testserver/sms/", params)
                response = self.client.post("/sms/", params, headers={"X-Twilio-Signature": signature})
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.content, reason)
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_addresses_longer_than_twilio_sends(self) -> None:
        response = self.twilio.text(sender="+1" + "5" * 70)

        self.assertEqual(response.status_code, 400)

    @override_settings(TWILIO_REQUIRE_SIGNATURE=False)
    def test_it_refuses_a_message_sid_longer_than_twilio_sends(self) -> None:
        response = self.twilio.text(sid="SM" + "0" * 100)

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.content, b"MessageSid must be at most 64 characters.")

    def test_it_refuses_nul_characters_that_no_database_stores(self) -> None:
        for response in (
            self.twilio.text("a\x00b"),
            self.twilio.text(sender="+1415555\x001234"),
            self.twilio.text(NumMedia="1", MediaUrl0="https://media.example/\x00"),
        ):
            self.assertEqual(response.status_code, 400)
            self.assertEqual(response.content, b"Parameters must not contain NUL characters.")
        self.assertFalse(Message.objects.exists())

    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    def test_it_refuses_a_body_over_the_upload_limit(self) -> None:
        response = self.twilio.text("x" * 2000)

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.content, b"Request body too large.")
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_bytes_that_are_not_utf8(self) -> None:
        body = "From=%2B14155551234&To=%2B15005550006&Body=%FF%FE"

        response = self.client.post(
            "/sms/",
            body,
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": "x"},
        )

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.content, b"Parameters are not valid UTF-8.")
        self.assertFalse(Message.objects.exists())


class SmsOnlyWhatTwilioSendsTestCase(TwilioTestCase):
    def post(self, params: dict[str, str], signature: str | None = None) -> HttpResponse:
        signature = signature or sign("http://testserver/sms/", params)
        return self.client.post("/sms/", params, headers={"X-Twilio-Signature": signature})

    def test_it_refuses_a_text_without_message_sid(self) -> None:
        response = self.twilio.text(sid="")

        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.content, b"Missing or malformed MessageSid.")
        self.assertFalse(Conversation.objects.exists())

    def test_it_refuses_a_malformed_message_sid(self) -> None:
        for sid in ("SM0001", "SM" + "g" * 32, "XX" + "a" * 32, "SM" + "a" * 33, "SM" + "a" * 31 + "\n"):
            with self.subTest(sid=sid):
                self.assertEqual(self.twilio.text(sid=sid).status_code, 400)
        self.assertFalse(Message.objects.exists())

    def test_it_takes_sms_and_mms_sids(self) -> None:
        for sid in ("SM" + "0123456789abcdef" * 2, "MM" + "0123456789ABCDEF" * 2):
            with self.subTest(sid=sid):
                self.assertEqual(self.twilio.text(sid=sid).status_code, 200)

    @override_settings(TWILIO_ACCOUNT_SID="AC" + "1" * 32)
    def test_it_refuses_a_text_for_another_account(self) -> None:
        for account in ("AC" + "2" * 32, ""):
            with self.subTest(account=account):
                response = self.twilio.text(AccountSid=account)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.content, b"AccountSid is not this app's account.")
        self.assertFalse(Message.objects.exists())
        self.assertEqual(reply_of(self.twilio.text()), "Friend has messaged +15005550006 1 time.")

    def test_it_refuses_a_replay_reshaped_to_drop_the_message_sid(self) -> None:
        original = twilio_form()
        signature = sign("http://testserver/sms/", original)
        self.post(original, signature)
        # Twilio signs names and values run together, so folding MessageSid…SmsStatus into
        # FromZip's value keeps the very same signature, and the text has no MessageSid left.
        folded = ["MessageSid", "NumMedia", "NumSegments", "SmsMessageSid", "SmsSid", "SmsStatus"]
        reshaped = {name: value for name, value in original.items() if name not in folded}
        reshaped["FromZip"] += "".join(name + original[name] for name in folded)
        self.assertEqual(sign("http://testserver/sms/", reshaped), signature)

        for _ in range(3):
            response = self.post(reshaped, signature)
            self.assertEqual(response.status_code, 400)

        self.assertEqual(Message.objects.count(), 1)
        self.assertEqual(Conversation.objects.get().window_count, 1)

    def test_it_rejects_a_signature_that_is_not_ascii(self) -> None:
        response = self.post(twilio_form(), signature="é" * 28)

        self.assertEqual(response.status_code, 403)
        self.assertFalse(Message.objects.exists())

    def test_it_answers_well_formed_xml_whatever_a_caller_name_holds(self) -> None:
        # Written straight to the database, past the admin's validation.
        Caller.objects.create(phone_number=SENDER, name="R\x07ey\x1b[0m\ufffe")

        response = self.twilio.text("bell\x07 escape\x1b")

        self.assertEqual(response.status_code, 200)
        self.assertEqual(reply_of(response), "Rey[0m has messaged +15005550006 1 time.")
        self.assertEqual(Message.objects.get().body, "bell\x07 escape\x1b")


def twilio_form(body: str = "Hello", sid: str = sid_of(1), **extra: str) -> dict[str, str]:
    """Every parameter of Twilio's incoming-message webhook, as Twilio sends them."""
    return {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": SENDER,
        "FromCity": "SAN FRANCISCO",
        "FromCountry": "US",
        "FromState": "CA",
        "FromZip": "94105",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": RECIPIENT,
        "ToCountry": "US",
        **extra,
    }


def simulator_mark_with(token: str, sid: str, sender: str, recipient: str) -> str:
    with override_settings(TWILIO_AUTH_TOKEN=token):
        return simulator_mark(sid, sender, recipient)


class SmsSimulatedTestCase(TwilioTestCase):
    def post(self, params: dict[str, str]) -> HttpResponse:
        signature = sign("http://testserver/sms/", params)
        return self.client.post("/sms/", params, headers={"X-Twilio-Signature": signature})

    def simulated(self, body: str = "Hello", sender: str = SENDER) -> dict[str, str]:
        with override_settings(TWILIO_AUTH_TOKEN=TOKEN):
            return twilio_params(body, sender, RECIPIENT, media=[])

    def test_it_records_twilios_texts_as_not_simulated(self) -> None:
        self.twilio.text()

        self.assertIs(Message.objects.get().simulated, False)

    def test_it_records_a_text_with_the_simulator_mark_as_simulated(self) -> None:
        response = self.post(self.simulated(sender="+14155550001"))

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 1 time.")
        self.assertIs(Message.objects.get().simulated, True)

    def test_it_refuses_a_simulator_mark_made_without_the_token(self) -> None:
        for mark in ("1", simulator_mark_with("another-token", sid_of(1), "+14155550001", RECIPIENT)):
            with self.subTest(mark=mark):
                params = twilio_form(From="+14155550001", SimulatorMark=mark)
                response = self.post(params)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.content, b"SimulatorMark does not match.")
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_a_simulator_mark_folded_out_of_a_signed_body(self) -> None:
        # A body written to look like parameters: whoever captures its signed request can cut
        # it into a From, a MessageSid and a SimulatorMark without changing the signature.
        fake = sid_of(2)
        original = twilio_form(f"xFrom+14155550199MessageSid{fake}SimulatorMark1", sid=sid_of(1))
        original = {name: original[name] for name in ("AccountSid", "Body", "From", "MessageSid", "To")}
        reshaped = {
            "AccountSid": original["AccountSid"],
            "Body": "x",
            "From": "+14155550199",
            "MessageSid": fake,
            "SimulatorMark": f"1From{SENDER}MessageSid{sid_of(1)}",
            "To": RECIPIENT,
        }
        self.assertEqual(sign("http://testserver/sms/", reshaped), sign("http://testserver/sms/", original))

        response = self.post(reshaped)

        self.assertEqual(response.status_code, 400)
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_a_simulated_text_from_a_number_that_texted_through_twilio(self) -> None:
        self.twilio.text("I am real")

        for sender in (SENDER, f"whatsapp:{SENDER}"):
            with self.subTest(sender=sender):
                response = self.post(self.simulated("STOP", sender=sender))
                self.assertEqual(response.status_code, 400)
                self.assertIn(b"has texted this app through Twilio", response.content)
        self.assertEqual(Message.objects.count(), 1)
        self.assertIs(Conversation.objects.get().opted_out, False)

    def test_it_refuses_a_simulated_text_from_a_number_that_texted_on_whatsapp(self) -> None:
        self.twilio.text("I am real", sender=f"whatsapp:{SENDER}")

        self.assertEqual(self.post(self.simulated(sender=SENDER)).status_code, 400)

    def test_it_takes_simulated_texts_from_a_number_only_the_simulator_used(self) -> None:
        self.post(self.simulated(sender="+14155550001"))

        response = self.post(self.simulated(sender="+14155550001"))

        self.assertEqual(reply_of(response), "Friend has messaged +15005550006 2 times.")
