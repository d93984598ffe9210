"""Handoff in the admin: the pause a staff text starts, Resume bot, and Needs reply."""

from datetime import timedelta

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Caller, Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import staff_with, superuser
from tests.twilio import SENDER, TwilioTestCase, reply_of

CHANGELIST = "/admin/conversations/conversation/"
OTHER = "+14155559999"


def history_of(conversation: Conversation) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(conversation.pk), content_type__model="conversation")
    return [entry.get_change_message() for entry in entries.order_by("action_time", "pk")]


@override_settings(SMS_BACKEND="console", HANDOFF_PAUSE=1800)
class HandoffAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio.text("Is my order ready?")
        self.conversation = Conversation.objects.get(sender=SENDER)

    def send(self, body: str = "Let me check.", *, worker: bool = True) -> None:
        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/send/", {"body": body})
        self.assertEqual(response.status_code, 302)
        if worker:
            outbox_drain()  # The worker's part.

    def page(self) -> str:
        response = self.client.get(f"{CHANGELIST}{self.conversation.pk}/change/")
        self.assertEqual(response.status_code, 200)
        return response.content.decode()

    def listed(self, **params: str) -> list[str]:
        response = self.client.get(CHANGELIST, params)
        return [conversation.sender for conversation in response.context["cl"].result_list]

    def test_a_text_from_the_send_box_pauses_the_bot(self) -> None:
        self.send()

        self.conversation.refresh_from_db()
        self.assertIsNotNone(self.conversation.bot_paused_until)
        self.assertIsNone(reply_of(self.twilio.text("Thanks")))

    def test_the_send_box_pauses_the_bot_before_the_worker_has_sent_the_text(self) -> None:
        self.send(worker=False)

        self.assertEqual(Message.objects.get(body="Let me check.").status, "pending")
        self.assertIn('id="handoff"', self.page())
        self.assertIsNone(reply_of(self.twilio.text("Thanks")))

    def test_the_send_a_text_action_pauses_the_bot_too(self) -> None:
        self.client.post(
            CHANGELIST,
            {"action": "send_text", "_selected_action": [self.conversation.pk], "send": "1", "body": "Hi"},
        )
        outbox_drain()

        self.conversation.refresh_from_db()
        self.assertIsNotNone(self.conversation.bot_paused_until)

    def test_the_page_shows_the_pause_and_when_it_ends(self) -> None:
        self.send()
        self.conversation.refresh_from_db()
        until = timezone.localtime(self.conversation.bot_paused_until)

        content = self.page()

        self.assertIn('id="handoff"', content)
        self.assertIn(f"{until:%Y-%m-%d %H:%M}", content)
        self.assertIn('id="resume-bot"', content)

    def test_the_page_shows_no_pause_once_it_has_ended(self) -> None:
        Conversation.objects.update(bot_paused_until=timezone.now() - timedelta(seconds=1))

        self.assertNotIn('id="handoff"', self.page())

    def test_resume_bot_ends_the_pause_and_notes_it_in_the_history(self) -> None:
        self.send()

        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/resume/")

        self.assertRedirects(response, f"{CHANGELIST}{self.conversation.pk}/change/")
        self.conversation.refresh_from_db()
        self.assertIsNone(self.conversation.bot_paused_until)
        self.assertEqual(history_of(self.conversation), ["Queued a text", "Resumed the bot"])
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 2 times.")

    def test_resume_bot_takes_only_post(self) -> None:
        self.assertEqual(self.client.get(f"{CHANGELIST}{self.conversation.pk}/resume/").status_code, 405)

    def test_view_only_staff_see_the_pause_but_cannot_resume_the_bot(self) -> None:
        self.send()
        self.client.force_login(staff_with("viewer", "view_conversation"))

        content = self.page()
        response = self.client.post(f"{CHANGELIST}{self.conversation.pk}/resume/")

        self.assertIn('id="handoff"', content)
        self.assertNotIn('id="resume-bot"', content)
        self.assertEqual(response.status_code, 403)
        self.conversation.refresh_from_db()
        self.assertIsNotNone(self.conversation.bot_paused_until)

    def test_needs_reply_lists_paused_conversations_whose_latest_text_is_inbound(self) -> None:
        self.twilio.text("Hello?", sender=OTHER)
        other = Conversation.objects.get(sender=OTHER)
        self.send()  # Staff answered Rey: not waiting.
        self.client.post(f"{CHANGELIST}{other.pk}/send/", {"body": "One moment"})
        outbox_drain()
        self.twilio.text("Still waiting", sender=OTHER)  # The customer spoke last.

        self.assertEqual(self.listed(handoff="needs_reply"), [OTHER])
        self.assertEqual(sorted(self.listed(handoff="paused")), [SENDER, OTHER])

    def test_needs_reply_leaves_out_conversations_the_bot_answers(self) -> None:
        self.twilio.text("Hello?", sender=OTHER)  # Inbound last, but nobody paused the bot.

        self.assertEqual(self.listed(handoff="needs_reply"), [])

    def test_needs_reply_leaves_out_a_conversation_whose_pause_has_ended(self) -> None:
        self.send()
        self.twilio.text("Thanks")
        Conversation.objects.update(bot_paused_until=timezone.now() - timedelta(seconds=1))

        self.assertEqual(self.listed(handoff="needs_reply"), [])

    def test_needs_reply_counts_a_staff_text_that_failed_as_no_answer(self) -> None:
        self.send()
        self.twilio.text("Thanks")
        Message.objects.create(
            conversation=self.conversation, direction=Message.Direction.OUTBOUND, body="x", status="failed"
        )

        self.assertEqual(self.listed(handoff="needs_reply"), [SENDER])

    def test_needs_reply_is_one_query_however_many_conversations(self) -> None:
        for i in range(5):
            sender = f"+1415555{i:04d}"
            self.twilio.text("Hi", sender=sender)
            Conversation.objects.filter(sender=sender).update(
                bot_paused_until=timezone.now() + timedelta(minutes=5)
            )

        with CaptureQueriesContext(connection) as queries:
            waiting = list(Conversation.objects.needs_reply(timezone.now()))

        self.assertEqual(len(waiting), 5)
        self.assertEqual(len(queries), 1)

    def test_the_admin_index_says_how_many_conversations_need_a_reply(self) -> None:
        self.send()
        self.twilio.text("Thanks")

        response = self.client.get("/admin/")

        self.assertContains(response, "1 conversation needs a reply</a>", html=False)
        self.assertContains(response, f'href="{CHANGELIST}?handoff=needs_reply"', html=False)

    def test_the_admin_index_says_so_when_none_needs_a_reply(self) -> None:
        self.assertContains(self.client.get("/admin/"), "No conversation needs a reply</a>", html=False)

    def test_the_admin_index_shows_no_count_to_staff_who_cannot_see_conversations(self) -> None:
        self.client.force_login(staff_with("callers-only", "view_caller"))

        self.assertNotContains(self.client.get("/admin/"), 'id="needs-reply"', html=False)
