from django.http import HttpResponse
from django.test import TestCase, override_settings

from conversations.models import Caller, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import superuser
from tests.twilio import SENDER, Twilio, reply_of

CHANGELIST = "/admin/conversations/caller/"


class CallerAdminTestCase(TestCase):
    def setUp(self) -> None:
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.rey = Caller.objects.create(phone_number="+14155552222", name="Rey")
        self.kylo = Caller.objects.create(phone_number="+14155553333", name="Kylo", blocked=True)

    def test_it_lists_number_name_and_blocked(self) -> None:
        response = self.client.get("/admin/conversations/caller/")

        self.assertContains(response, "+14155552222")
        self.assertContains(response, "Rey")
        self.assertContains(response, '<th scope="col" class="sortable column-blocked">', html=False)

    def test_it_searches_by_name(self) -> None:
        response = self.client.get("/admin/conversations/caller/", {"q": "rey"})

        self.assertEqual(list(response.context["cl"].result_list), [self.rey])

    def test_it_searches_by_number_as_people_write_it(self) -> None:
        for query in ("+14155553333", "5553333", "(415) 555-3333"):
            with self.subTest(query=query):
                response = self.client.get("/admin/conversations/caller/", {"q": query})
                self.assertEqual(list(response.context["cl"].result_list), [self.kylo])

    def test_it_searches_names_regardless_of_case_and_accents(self) -> None:
        chloe = Caller.objects.create(phone_number="+14155554444", name="Chloé Zoë")

        for query in ("chloe", "CHLOÉ", "zoe", "Chloé Zoë"):
            with self.subTest(query=query):
                response = self.client.get("/admin/conversations/caller/", {"q": query})
                self.assertEqual(list(response.context["cl"].result_list), [chloe])

    def test_it_keeps_the_folded_name_when_a_name_is_edited(self) -> None:
        self.client.post(
            f"/admin/conversations/caller/{self.rey.pk}/change/",
            {"phone_number": "+14155552222", "name": "Rey Ñandú", "blocked": ""},
        )

        self.rey.refresh_from_db()
        self.assertEqual(self.rey.name_search, "rey nandu")

    def test_it_links_each_caller_to_their_conversations(self) -> None:
        response = self.client.get("/admin/conversations/caller/")

        self.assertContains(
            response,
            '<a href="/admin/conversations/conversation/?sender_number=%2B14155552222">Conversations</a>',
        )

    def test_it_filters_by_blocked(self) -> None:
        response = self.client.get("/admin/conversations/caller/", {"blocked__exact": "1"})

        self.assertEqual(list(response.context["cl"].result_list), [self.kylo])

    def test_it_normalizes_a_number_typed_in_the_add_form(self) -> None:
        response = self.client.post(
            "/admin/conversations/caller/add/", {"phone_number": "(415) 555-4444", "name": "Finn"}
        )

        self.assertEqual(response.status_code, 302)
        self.assertEqual(str(Caller.objects.get(name="Finn").phone_number), "+14155554444")

    def test_it_refuses_an_invalid_number_and_saves_nothing(self) -> None:
        response = self.client.post(
            "/admin/conversations/caller/add/", {"phone_number": "555-CALL-NOW", "name": "Poe"}
        )

        self.assertEqual(response.status_code, 200)
        self.assertFormError(
            response.context["adminform"].form,
            "phone_number",
            "Enter a valid phone number (e.g. (201) 555-0123) or a number with an international call prefix.",
        )
        self.assertFalse(Caller.objects.filter(name="Poe").exists())

    def test_it_refuses_a_number_that_is_already_a_caller(self) -> None:
        response = self.client.post(
            "/admin/conversations/caller/add/", {"phone_number": "415-555-2222", "name": "Rey twin"}
        )

        self.assertEqual(response.status_code, 200)
        self.assertFalse(Caller.objects.filter(name="Rey twin").exists())

    def test_it_uses_an_edited_name_on_the_very_next_reply(self) -> None:
        caller = Caller.objects.create(phone_number=SENDER, name="Rose")
        twilio = Twilio()
        twilio.text()

        self.client.post(
            f"/admin/conversations/caller/{caller.pk}/change/",
            {"phone_number": SENDER, "name": "Rose Tico", "blocked": ""},
        )

        self.assertEqual(reply_of(twilio.text()), "Rose Tico has messaged +15005550006 2 times.")

    def send_text(self, *, our_number: str, body: str) -> HttpResponse:
        """The "Send a text" action on Rey, its page filled in and confirmed."""
        form = {"action": "send_text", "_selected_action": [self.rey.pk], "confirm": "1"}
        response = self.client.post(CHANGELIST, {**form, "our_number": our_number, "body": body})
        outbox_drain()  # The worker's part.
        return response

    @override_settings(SMS_BACKEND="console")
    def test_it_sends_a_text_to_selected_callers_as_the_staff_member(self) -> None:
        response = self.send_text(our_number="+15005550006", body="Your table is ready")

        message = Message.objects.get()
        self.assertRedirects(
            response,
            f"/admin/conversations/broadcast/{message.broadcast_id}/change/",
            fetch_redirect_response=False,
        )
        self.assertEqual(
            (message.body, message.sent_by, message.status), ("Your table is ready", self.staff, "sent")
        )
        self.assertEqual(str(message.conversation.sender), "+14155552222")

    @override_settings(
        SMS_BACKEND="console", TWILIO_FROM_NUMBER="", TWILIO_MESSAGING_SERVICE_SID="MG" + "5" * 32
    )
    def test_it_needs_no_from_number_with_a_messaging_service(self) -> None:
        response = self.send_text(our_number="", body="Hi")

        self.assertEqual(response.status_code, 302)
        self.assertEqual(Message.objects.get().body, "Hi")

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER="")
    def test_it_needs_a_from_number_without_a_messaging_service(self) -> None:
        response = self.send_text(our_number="", body="Hi")

        self.assertContains(response, "This field is required.")
        self.assertFalse(Message.objects.exists())

    def test_it_refuses_control_characters_in_a_name(self) -> None:
        # They would make the TwiML reply that echoes the name malformed XML.
        for name in ("Rey\x07", "\x1b[31mKylo"):
            with self.subTest(name=name):
                response = self.client.post(
                    "/admin/conversations/caller/add/", {"phone_number": "(415) 555-4444", "name": name}
                )
                self.assertEqual(response.status_code, 200)
                self.assertFormError(
                    response.context["adminform"].form,
                    "name",
                    "Remove the control characters (tabs, line breaks, escapes).",
                )
        self.assertFalse(Caller.objects.filter(phone_number="+14155554444").exists())
