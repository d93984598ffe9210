from datetime import timedelta
from zoneinfo import ZoneInfo

from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import staff_with, superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, reply_of

CHANGELIST = "/admin/conversations/conversation/"


def history_of(conversation: Conversation) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(conversation.pk), content_type__model="conversation")
    return [entry.get_change_message() for entry in entries.order_by("action_time", "pk")]


class ConversationAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.rey = Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text("Hello", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1")
        self.twilio.text("Again")
        self.twilio.text("Other", sender="whatsapp:+14155559999")
        self.conversation = Conversation.objects.get(sender=SENDER)

    def test_it_lists_each_pair_with_its_counts(self) -> None:
        response = self.client.get(CHANGELIST)

        row = next(r for r in response.context["cl"].result_list if r.sender == SENDER)
        self.assertEqual(row.caller_name, "Rey")
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

    def page(self, **params: str) -> str:
        response = self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/", params)
        self.assertEqual(response.status_code, 200)
        return response.content.decode()

    def test_it_shows_the_thread_newest_first_like_a_chat(self) -> None:
        content = self.page()

        self.assertLess(content.index("Again"), content.index("Hello"))
        self.assertLess(content.index("Rey has messaged +15005550006 2 times."), content.index("Again"))
        self.assertEqual(content.count('class="bubble inbound"'), 2)
        self.assertEqual(content.count('class="bubble outbound reply"'), 2)
        self.assertIn(
            '<a class="media" href="https://api.twilio.com/media/ME1" target="_blank" rel="noopener noreferrer">',
            content,
        )
        self.assertNotIn('name="_save"', content)

    def test_it_shows_media_that_is_not_http_as_text_never_as_a_link(self) -> None:
        self.twilio.text("Click", NumMedia="1", MediaUrl0="javascript:alert(document.domain)")

        content = self.page()

        self.assertIn("media 1: javascript:alert(document.domain)", content)
        self.assertNotIn('href="javascript:', content)

    @override_settings(TIME_ZONE="America/Los_Angeles")
    def test_it_shows_times_in_the_sites_time_zone(self) -> None:
        sent = timezone.now().astimezone(ZoneInfo("America/Los_Angeles")).replace(hour=9, minute=30)
        Message.objects.filter(body="Again").update(created_at=sent)

        content = self.page()

        self.assertIn(sent.strftime("%Y-%m-%d 09:30 %Z"), content)

    def test_it_shows_the_delivery_status_and_who_on_staff_sent_a_text(self) -> None:
        Message.objects.create(
            conversation=self.conversation,
            direction=Message.Direction.OUTBOUND,
            body="We're open",
            status="delivered",
            sent_by=self.staff,
        )

        content = self.page()

        self.assertIn('class="bubble outbound"', content)
        self.assertIn("· delivered", content)
        self.assertIn("· sent by staff", content)

    def test_it_shows_how_many_segments_twilio_counted(self) -> None:
        self.twilio.text("a" * 200, NumSegments="2")

        self.assertIn("· 2 segments", self.page())

    def test_it_pages_the_thread_fifty_texts_at_a_time_newest_first(self) -> None:
        start = timezone.now()
        Message.objects.bulk_create(
            Message(
                conversation=self.conversation,
                direction=Message.Direction.INBOUND,
                body=f"text {number}",
                created_at=start + timedelta(seconds=number),
            )
            for number in range(120)
        )

        first, last = self.page(), self.page(page="3")

        self.assertEqual(first.count('class="bubble inbound"'), 50)
        self.assertIn("text 119<", first)
        self.assertNotIn("text 69<", first)
        self.assertIn("Page 1 of 3 (122 texts)", first)
        self.assertEqual(last.count('class="bubble inbound"'), 22)
        self.assertIn("Hello<", last)

    def test_it_links_to_the_messages_of_this_conversation(self) -> None:
        url = f"/admin/conversations/message/?conversation__id__exact={self.conversation.pk}"
        self.assertIn(f'href="{url}"', self.page().replace("&amp;", "&"))

        response = self.client.get(url)

        self.assertEqual(sorted(m.body for m in response.context["cl"].result_list), ["Again", "Hello"])

    def test_it_links_to_the_caller_and_the_caller_back_to_their_conversations(self) -> None:
        self.assertIn(f'href="/admin/conversations/caller/{self.rey.pk}/change/"', self.page())

        caller_page = self.client.get(f"/admin/conversations/caller/{self.rey.pk}/change/")
        self.assertContains(caller_page, "?sender_number=%2B14155551234")
        Conversation.objects.create(sender=f"whatsapp:{SENDER}", recipient=RECIPIENT)
        Conversation.objects.create(sender="+14155550000", recipient=RECIPIENT)
        listed = self.client.get(CHANGELIST, {"sender_number": SENDER})

        self.assertEqual(
            sorted(c.sender for c in listed.context["cl"].result_list), [SENDER, f"whatsapp:{SENDER}"]
        )

    def test_it_offers_to_add_an_unknown_sender_as_a_caller(self) -> None:
        self.rey.delete()

        self.assertIn('href="/admin/conversations/caller/add/?phone_number=%2B14155551234"', self.page())

    def test_it_finds_conversations_by_caller_name_regardless_of_case_and_accents(self) -> None:
        Caller.objects.filter(pk=self.rey.pk).update(name="Chloé")
        Caller.objects.get(pk=self.rey.pk).save()

        for query in ("chloe", "CHLOÉ", "Chloe"):
            with self.subTest(query=query):
                response = self.client.get(CHANGELIST, {"q": query})
                self.assertEqual([c.sender for c in response.context["cl"].result_list], [SENDER])

    @override_settings(SMS_BACKEND="console", HANDOFF_PAUSE=0)  # The bot answers the reply.
    def test_it_sends_a_text_from_the_page_and_records_who_sent_it(self) -> None:
        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/send/", {"body": "We're open!"})

        self.assertRedirects(response, f"{CHANGELIST}{self.conversation.pk}/change/")
        queued = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual((queued.status, queued.priority), ("pending", Message.Priority.PERSON))
        self.assertContains(self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/"), "· pending")
        outbox_drain()  # The worker's part.
        outbound = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual(
            (outbound.body, outbound.sent_by, outbound.status), ("We're open!", self.staff, "sent")
        )
        self.assertEqual(history_of(self.conversation), ["Queued a text"])
        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Rey has messaged +15005550006 3 times.")

    @override_settings(SMS_BACKEND="console")
    def test_it_sends_nothing_when_the_text_is_empty(self) -> None:
        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/send/", {"body": ""})

        self.assertEqual(response.status_code, 302)
        self.assertFalse(Message.objects.filter(direction=Message.Direction.OUTBOUND).exists())
        self.assertEqual(history_of(self.conversation), [])

    def test_it_ends_the_conversation_from_the_page_and_notes_it_in_the_history(self) -> None:
        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/end/")

        self.assertRedirects(response, f"{CHANGELIST}{self.conversation.pk}/change/")
        self.conversation.refresh_from_db()
        self.assertEqual((self.conversation.session_id, self.conversation.window_count), (None, 0))
        self.assertEqual(history_of(self.conversation), ["Ended the conversation"])
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 1 time.")

    def test_it_takes_send_and_end_only_as_post(self) -> None:
        for action in ("send", "end"):
            with self.subTest(action=action):
                self.assertEqual(
                    self.client.get(f"{CHANGELIST}{self.conversation.pk}/{action}/").status_code, 405
                )

    def test_the_end_action_notes_it_in_the_history(self) -> None:
        self.client.post(
            CHANGELIST, {"action": "end_conversation", "_selected_action": [self.conversation.pk]}
        )

        self.assertEqual(history_of(self.conversation), ["Ended the conversation"])

    def test_view_only_staff_see_the_thread_but_cannot_send_or_end(self) -> None:
        viewer = staff_with("viewer", "view_conversation")
        self.client.force_login(viewer)
        window = (self.conversation.session_id, self.conversation.window_count)

        content = self.page()
        sent = self.client.post(f"{CHANGELIST}{self.conversation.pk}/send/", {"body": "Hi"})
        ended = self.client.post(f"{CHANGELIST}{self.conversation.pk}/end/")
        self.client.post(
            CHANGELIST, {"action": "end_conversation", "_selected_action": [self.conversation.pk]}
        )
        self.client.post(
            CHANGELIST,
            {"action": "send_text", "_selected_action": [self.conversation.pk], "send": "1", "body": "Hi"},
        )

        self.assertIn("Again", content)
        self.assertNotIn('id="send-text"', content)
        self.assertNotIn('id="end-conversation"', content)
        self.assertEqual((sent.status_code, ended.status_code), (403, 403))
        self.conversation.refresh_from_db()
        self.assertEqual((self.conversation.session_id, self.conversation.window_count), window)
        self.assertFalse(Message.objects.filter(direction=Message.Direction.OUTBOUND).exists())
        self.assertEqual(history_of(self.conversation), [])

    def test_it_ends_a_conversation_so_the_next_text_counts_from_one(self) -> None:
        response = self.client.post(
            CHANGELIST, {"action": "end_conversation", "_selected_action": [self.conversation.pk]}
        )

        self.assertEqual(response.status_code, 302)
        self.conversation.refresh_from_db()
        self.assertEqual((self.conversation.session_id, self.conversation.window_count), (None, 0))
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 1 time.")

    def test_it_lets_staff_without_change_permission_read_but_not_end(self) -> None:
        viewer = staff_with("viewer", "view_conversation")
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

    @override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, HANDOFF_PAUSE=0)
    def test_it_sends_a_text_that_continues_the_conversation(self) -> None:
        api = FakeTwilioApi()
        api.accepts(sid="SM" + "e" * 32)
        selection = {"action": "send_text", "_selected_action": [self.conversation.pk]}

        form_page = self.client.post(CHANGELIST, selection)
        with api.serving():
            response = self.client.post(CHANGELIST, {**selection, "send": "1", "body": "We're open!"})
            self.assertEqual(api.requests, [])  # The admin only queues it.
            outbox_drain()

        self.assertContains(form_page, "To: +14155551234")
        self.assertEqual(response.status_code, 302)
        self.assertEqual((api.requests[0].data["From"], api.requests[0].data["To"]), (RECIPIENT, SENDER))
        outbound = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual((outbound.body, outbound.conversation_id), ("We're open!", self.conversation.pk))
        self.assertEqual(outbound.sent_by, self.staff)
        self.assertEqual(history_of(self.conversation), ["Queued a text"])
        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Rey has messaged +15005550006 3 times.")
