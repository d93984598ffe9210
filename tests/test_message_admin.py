from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from tests.factories import staff_with, superuser
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, sid_of

CHANGELIST = "/admin/conversations/message/"


class MessageAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(superuser())
        self.twilio.text("Where is the falcon?", sid=sid_of(1))
        self.twilio.text("Never mind", sid=sid_of(2))
        conversation = Conversation.objects.get()
        self.outbound = Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            body="It's in the hangar",
            status="sent",
        )

    def listed(self, **params: str) -> list[str]:
        response = self.client.get(CHANGELIST, params)
        return sorted(message.body for message in response.context["cl"].result_list)

    def test_it_searches_bodies_and_replies(self) -> None:
        self.assertEqual(self.listed(q="falcon"), ["Where is the falcon?"])
        self.assertEqual(self.listed(q="2 times"), ["Never mind"])

    def test_it_finds_messages_by_number_however_it_is_written(self) -> None:
        self.twilio.text("From elsewhere", sender="+14155550142")

        for query in ("+14155550142", "(415) 555-0142", "415-555-0142", "415 555 0142"):
            with self.subTest(query=query):
                self.assertEqual(self.listed(q=query), ["From elsewhere"])

    def test_it_finds_messages_by_caller_name_regardless_of_case_and_accents(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Chloé Dupont")

        for query in ("chloe", "CHLOÉ", "chloé dupont", "Dupont"):
            with self.subTest(query=query):
                self.assertEqual(
                    self.listed(q=query), ["It's in the hangar", "Never mind", "Where is the falcon?"]
                )

    def test_it_filters_by_direction(self) -> None:
        self.assertEqual(self.listed(direction__exact="outbound"), ["It's in the hangar"])
        self.assertEqual(len(self.listed(direction__exact="inbound")), 2)

    def test_it_filters_by_date(self) -> None:
        Message.objects.filter(pk=self.outbound.pk).update(created_at=timezone.now() - timedelta(days=40))
        today = timezone.now()

        listed = self.listed(
            created_at__year=str(today.year),
            created_at__month=str(today.month),
            created_at__day=str(today.day),
        )

        self.assertEqual(listed, ["Never mind", "Where is the falcon?"])

    def test_it_shows_a_message_read_only_with_its_conversation(self) -> None:
        message = Message.objects.get(sid=sid_of(1))

        response = self.client.get(f"{CHANGELIST}{message.pk}/change/")

        self.assertContains(response, f"{SENDER} → {RECIPIENT}")
        self.assertContains(response, "Friend has messaged +15005550006 1 time.")
        self.assertNotContains(response, 'name="_save"')

    def test_it_cannot_add_change_or_delete_messages(self) -> None:
        message = Message.objects.get(sid=sid_of(1))

        self.assertEqual(self.client.get(f"{CHANGELIST}add/").status_code, 403)
        self.client.post(f"{CHANGELIST}{message.pk}/change/", {"body": "rewritten"})
        self.assertEqual(self.client.post(f"{CHANGELIST}{message.pk}/delete/").status_code, 403)
        message.refresh_from_db()
        self.assertEqual(message.body, "Where is the falcon?")

    def test_it_shows_and_filters_simulated_texts(self) -> None:
        Message.objects.filter(sid=sid_of(2)).update(simulated=True)

        response = self.client.get(CHANGELIST, {"simulated__exact": "1"})

        self.assertEqual([m.body for m in response.context["cl"].result_list], ["Never mind"])
        self.assertContains(response, '<td class="field-simulated">')
        self.assertEqual(self.listed(simulated__exact="0"), ["It's in the hangar", "Where is the falcon?"])

    def test_it_filters_texts_by_the_outcome_the_webhook_recorded(self) -> None:
        self.twilio.text("HELP", sid=sid_of(3))

        self.assertEqual(self.listed(outcome="help"), ["HELP"])
        self.assertEqual(self.listed(outcome="counted"), ["Never mind", "Where is the falcon?"])

    def outbox_row(self, status: str, body: str, **fields: object) -> Message:
        conversation = Conversation.objects.get()
        return Message.objects.create(
            conversation=conversation,
            direction=Message.Direction.OUTBOUND,
            body=body,
            status=status,
            **fields,
        )

    def test_it_filters_the_outbox_by_status(self) -> None:
        self.outbox_row("unknown", "In doubt", attempts=1)
        self.outbox_row("pending", "Waiting")
        self.outbox_row("failed", "Refused", attempts=1)

        self.assertEqual(self.listed(status__exact="unknown"), ["In doubt"])
        self.assertEqual(self.listed(status__exact="pending"), ["Waiting"])
        self.assertEqual(self.listed(status__exact="failed"), ["Refused"])

    def test_the_list_and_the_page_show_attempts_and_the_last_error(self) -> None:
        why = "Could not connect to Twilio's API: ConnectionError (gave up after 5 attempts)"
        failed = self.outbox_row("failed", "Gave up", attempts=5, error=why)

        listing = self.client.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
        page = self.client.get(f"{CHANGELIST}{failed.pk}/change/").content.decode()

        self.assertIn('<td class="field-attempts">5</td>', listing)
        self.assertIn(why.replace("'", "&#x27;"), page)
        self.assertIn("Attempts", page)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT)
    def test_staff_re_send_an_unknown_text_as_a_new_row_and_are_told_it_may_arrive_twice(self) -> None:
        doubtful = self.outbox_row("unknown", "Your table is ready", attempts=1)

        response = self.client.post(
            CHANGELIST,
            {"action": "resend_unknown", "_selected_action": [doubtful.pk, self.outbound.pk]},
            follow=True,
        )

        self.assertContains(response, "Queued 1 text again; each may arrive twice.")
        again = Message.objects.exclude(pk=doubtful.pk).get(body="Your table is ready")
        self.assertEqual((again.status, again.conversation_id), ("pending", doubtful.conversation_id))
        doubtful.refresh_from_db()
        self.assertEqual(doubtful.status, "unknown")  # Kept as it was: the record of the first try.
        self.assertEqual(Message.objects.filter(body="It's in the hangar").count(), 1)  # Sent: not again.

    def test_the_re_send_action_says_why_it_may_duplicate(self) -> None:
        response = self.client.get(CHANGELIST)

        self.assertContains(response, "Twilio may have them already, so they may arrive twice")

    def test_staff_who_cannot_change_conversations_are_not_offered_the_re_send(self) -> None:
        self.client.force_login(staff_with("reader", "view_message"))

        response = self.client.get(CHANGELIST)

        self.assertNotContains(response, "resend_unknown")
