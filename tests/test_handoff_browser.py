"""Handing a conversation to staff and redacting a text, in a real browser (Chromium, Playwright)."""

import os
import unittest
from unittest import mock

import pytest
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conversations.models import Caller, Conversation, Message
from tests.factories import staff_with, superuser
from tests.test_simulator_browser import CHROMIUM, CHROMIUM_ARGS
from tests.twilio import SENDER, TOKEN, Twilio, reply_of

PASSWORD = "a-browser-test-password"
CARD = "My card is 4111 1111 1111 1111"


@unittest.skipUnless(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium")
@override_settings(
    SMS_BACKEND="console", TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True, HANDOFF_PAUSE=1800
)
@pytest.mark.slow
class HandoffBrowserTestCase(StaticLiveServerTestCase):
    browser: Browser

    @classmethod
    def setUpClass(cls) -> None:
        # Playwright's sync API keeps an event loop in this thread, which Django's guard
        # against the ORM in async code mistakes for async code; the test's own queries are sync.
        cls.enterClassContext(mock.patch.dict(os.environ, {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}))
        super().setUpClass()
        playwright = sync_playwright().start()
        cls.addClassCleanup(playwright.stop)
        cls.browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        cls.addClassCleanup(cls.browser.close)
        expect.set_options(timeout=15_000)

    def setUp(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        self.twilio = Twilio()
        self.twilio.text("Is my order ready?")
        self.conversation = Conversation.objects.get()
        self.page_url = f"/admin/conversations/conversation/{self.conversation.pk}/change/"

    def log_in(self, path: str, username: str = "admin") -> Page:
        context = self.browser.new_context(viewport={"width": 1100, "height": 1000})
        self.addCleanup(context.close)
        page = context.new_page()
        page.goto(f"{self.live_server_url}{path}")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{self.live_server_url}{path}")
        return page

    def test_staff_take_over_see_it_waiting_for_them_and_hand_back_to_the_bot(self) -> None:
        superuser("admin", password=PASSWORD)
        page = self.log_in(self.page_url)
        expect(page.locator("#handoff")).to_have_count(0)

        page.fill("#send-text textarea", "Let me check with the kitchen.")
        page.click("#send-text input[type=submit]")

        expect(page.locator("#handoff")).to_contain_text("the bot answers none of its texts until")
        self.assertIsNone(reply_of(self.twilio.text("Thanks, I'll wait")))

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
