"""Handing a conversation to staff and redacting a text, in a real browser (Chromium, Playwright)."""

from django.test import override_settings
from playwright.sync_api import expect

from conversations.models import Caller, Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.browser import PASSWORD, BrowserTestCase
from tests.factories import staff_with, superuser
from tests.twilio import SENDER, TOKEN, Twilio, reply_of

CARD = "My card is 4111 1111 1111 1111"


@override_settings(
    SMS_BACKEND="console", TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True, HANDOFF_PAUSE=1800
)
class HandoffBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio = Twilio()
        self.twilio.text("Is my order ready?")
        self.conversation = Conversation.objects.get()
        self.page_url = f"/admin/conversations/conversation/{self.conversation.pk}/change/"

    def test_staff_take_over_see_it_waiting_for_them_and_hand_back_to_the_bot(self) -> None:
        superuser("admin", password=PASSWORD)
        page = self.log_in(self.page_url)
        expect(page.locator("#handoff")).to_have_count(0)

        page.fill("#send-text textarea", "Let me check with the kitchen.")
        page.click("#send-text input[type=submit]")
        expect(page.locator(".messagelist")).to_contain_text("Queued the text")
        # Handed to staff the moment the text is queued, before the worker has sent it: a
        # customer's text meanwhile gets no reply from the bot.
        expect(page.locator("#handoff")).to_contain_text("the bot answers none of its texts until")
        self.assertEqual(Message.objects.get(body="Let me check with the kitchen.").status, "pending")
        self.assertIsNone(reply_of(self.twilio.text("Thanks, I'll wait")))
        outbox_drain()  # The worker sends it; the conversation stays with staff.
        page.reload()
        expect(page.locator("#handoff")).to_contain_text("the bot answers none of its texts until")

        page.goto(f"{self.live_server_url}/admin/")
        page.click("#needs-reply a")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        expect(page.locator("#result_list")).to_contain_text(SENDER)

        page.goto(f"{self.live_server_url}{self.page_url}")
        page.click("#resume-bot input[type=submit]")

        expect(page.locator(".messagelist")).to_contain_text("Resumed the bot")
        expect(page.locator("#handoff")).to_have_count(0)
        self.assertEqual(reply_of(self.twilio.text()), "Rey has messaged +15005550006 3 times.")

    def test_staff_with_the_permission_redact_a_text_from_its_bubble(self) -> None:
        staff_with("privacy", "view_conversation", "redact_message", password=PASSWORD)
        self.twilio.text(CARD)
        message = Message.objects.get(body=CARD)
        page = self.log_in(self.page_url, username="privacy")
        bubble = page.locator(f"#message-{message.pk}")

        bubble.locator("summary").click()
        bubble.locator("input[type=submit]").click()

        expect(page.locator(".messagelist")).to_contain_text("Redacted the text")
        expect(page.locator(f"#message-{message.pk} .text")).to_have_text("[redacted]")
        expect(page.locator(".thread-list")).not_to_contain_text("4111")
        message.refresh_from_db()
        self.assertEqual(message.body, "[redacted]")
