from datetime import timedelta

from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, reply_of

CHANGELIST = "/admin/conversations/conversation/"


class ConversationAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.client.force_login(User.objects.create(username="staff", is_staff=True, is_superuser=True))
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text("Hello", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1")
        self.twilio.text("Again")
        self.twilio.text("Other", sender="whatsapp:+14155559999")
        self.conversation = Conversation.objects.get(sender=SENDER)

    def test_it_lists_each_pair_with_its_counts(self) -> None:
        response = self.client.get(CHANGELIST)

        row = next(r for r in response.context["cl"].result_list if r.sender == SENDER)
        self.assertEqual(row.caller, "Rey")
        self.assertContains(response, '<td class="field-current_window">2</td>', html=False)
        self.assertContains(response, '<td class="field-lifetime_count">2</td>', html=False)
        self.assertContains(response, "whatsapp:+14155559999")

    def test_it_shows_the_window_count_as_zero_once_the_window_ended(self) -> None:
        Session.objects.filter(pk=self.conversation.session_id).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )

        response = self.client.get(CHANGELIST)

        self.assertContains(response, '<td class="field-current_window">0</td>', html=False)

    def test_it_finds_conversations_by_number_or_caller_name(self) -> None:
        for query in ("rey", "555-1234", "(415) 555-1234", SENDER):
            with self.subTest(query=query):
                response = self.client.get(CHANGELIST, {"q": query})
                self.assertEqual([c.sender for c in response.context["cl"].result_list], [SENDER])

    def test_it_filters_opted_out_conversations(self) -> None:
        self.twilio.text("STOP", sender="whatsapp:+14155559999")

        response = self.client.get(CHANGELIST, {"opted_out__exact": "1"})

        self.assertEqual([c.sender for c in response.context["cl"].result_list], ["whatsapp:+14155559999"])

    def test_it_shows_the_history_in_order_on_the_detail_page(self) -> None:
        response = self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/")

        content = response.content.decode()
        self.assertLess(content.index("Hello"), content.index("Again"))
        self.assertContains(response, "Rey has messaged +15005550006 2 times.")
        self.assertContains(
            response, '<a href="https://api.twilio.com/media/ME1" target="_blank" rel="noopener">media 1</a>'
        )
        self.assertNotContains(response, 'name="_save"')

    def test_it_ends_a_conversation_so_the_next_text_counts_from_one(self) -> None:
        response = self.client.post(
            CHANGELIST, {"action": "end_conversation", "_selected_action": [self.conversation.pk]}
        )

        self.assertEqual(response.status_code, 302)
        self.conversation.refresh_from_db()
        self.assertEqual((self.conversation.session_id, self.conversation.window_count), (None, 0))
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 1 time.")

    def test_it_lets_staff_without_change_permission_read_but_not_end(self) -> None:
        viewer = User.objects.create(username="viewer", is_staff=True)
        viewer.user_permissions.add(Permission.objects.get(codename="view_conversation"))
        self.client.force_login(viewer)

        response = self.client.get(CHANGELIST)

        self.assertEqual(response.status_code, 200)
        offered = [
            name for name, _ in response.context["cl"].model_admin.get_action_choices(response.wsgi_request)
        ]
        self.assertNotIn("end_conversation", offered)
        self.assertNotIn("send_text", offered)

    def test_it_cannot_add_or_delete_conversations(self) -> None:
        self.assertEqual(self.client.get(f"{CHANGELIST}add/").status_code, 403)
        self.assertEqual(self.client.post(f"{CHANGELIST}{self.conversation.pk}/delete/").status_code, 403)

    @override_settings(TWILIO_ACCOUNT_SID="AC" + "0" * 32)
    def test_it_sends_a_text_that_continues_the_conversation(self) -> None:
        api = FakeTwilioApi()
        api.accepts(sid="SM" + "e" * 32)
        selection = {"action": "send_text", "_selected_action": [self.conversation.pk]}

        form_page = self.client.post(CHANGELIST, selection)
        with api.serving():
            response = self.client.post(CHANGELIST, {**selection, "send": "1", "body": "We're open!"})

        self.assertContains(form_page, "To: +14155551234")
        self.assertEqual(response.status_code, 302)
        self.assertEqual((api.requests[0].data["From"], api.requests[0].data["To"]), (RECIPIENT, SENDER))
        outbound = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual((outbound.body, outbound.conversation_id), ("We're open!", self.conversation.pk))
        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Rey has messaged +15005550006 3 times.")
