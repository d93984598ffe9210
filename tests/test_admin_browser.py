"""The admin pages where staff act, in a real browser: Debian's Chromium, driven by Playwright."""

import os
import unittest
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conversations.models import Caller, Conversation, Message
from tests.factories import superuser
from tests.test_simulator_browser import CHROMIUM, CHROMIUM_ARGS
from tests.twilio import SENDER, TOKEN, Twilio

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "conversation-page.png"
PASSWORD = "a-browser-test-password"


@unittest.skipUnless(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium")
@override_settings(SMS_BACKEND="console", TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
@pytest.mark.slow
class AdminBrowserTestCase(StaticLiveServerTestCase):
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
        superuser("admin", password=PASSWORD)

    def log_in(self, path: str) -> Page:
        context = self.browser.new_context(viewport={"width": 1100, "height": 1000})
        self.addCleanup(context.close)
        page = context.new_page()
        page.goto(f"{self.live_server_url}{path}")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{self.live_server_url}{path}")
        return page

    def a_conversation(self) -> Conversation:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        twilio = Twilio()
        twilio.text("Hi! Is the shop open on Sunday?")
        twilio.text("Here is the part I need", NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME1")
        return Conversation.objects.get()

    def test_it_sends_a_text_from_the_conversation_page(self) -> None:
        conversation = self.a_conversation()
        page = self.log_in(f"/admin/conversations/conversation/{conversation.pk}/change/")

        page.fill("#send-text textarea", "Yes, 10 to 4. We have that part in stock.")
        page.click("#send-text input[type=submit]")

        expect(page.locator(".messagelist")).to_contain_text("Sent the text to +14155551234.")
        newest = page.locator(".thread-list li").first
        expect(newest).to_contain_text("Yes, 10 to 4. We have that part in stock.")
        expect(newest).to_contain_text("sent by admin")
        expect(newest).to_have_class("bubble outbound")
        message = Message.objects.get(direction=Message.Direction.OUTBOUND)
        self.assertEqual(message.sent_by.username, "admin")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOT, full_page=True)

    def test_it_ends_the_conversation_from_its_page(self) -> None:
        conversation = self.a_conversation()
        page = self.log_in(f"/admin/conversations/conversation/{conversation.pk}/change/")
        expect(page.locator(".field-current_window")).to_contain_text("2")

        page.click("#end-conversation input[type=submit]")

        expect(page.locator(".messagelist")).to_contain_text("Ended the conversation")
        expect(page.locator(".field-current_window")).to_contain_text("0")
        conversation.refresh_from_db()
        self.assertEqual((conversation.session_id, conversation.window_count), (None, 0))

    def test_it_previews_a_csv_import_and_applies_it_on_confirm(self) -> None:
        Caller.objects.create(phone_number="+14155552222", name="Rey", blocked=True)
        page = self.log_in("/admin/conversations/caller/import/")

        page.set_input_files(
            "#id_file",
            files=[
                {
                    "name": "crm-export.csv",
                    "mimeType": "text/csv",
                    "buffer": b"Phone Number,Name\r\n(415) 555-2222,Rey Skywalker\r\n415-555-3333,Finn\r\n",
                }
            ],
        )
        page.click("input[type=submit]")

        expect(page.locator("#import-summary")).to_contain_text("1 caller to create")
        expect(page.locator("#import-summary")).to_contain_text("1 caller to update")
        expect(page.locator("#import-updated")).to_contain_text("name: Rey → Rey Skywalker")
        self.assertEqual(Caller.objects.count(), 1)

        page.click("input[name=confirm]")

        expect(page.locator(".messagelist")).to_contain_text("Imported 2 callers: 1 new, 1 updated.")
        expect(page.locator("#result_list")).to_contain_text("Finn")
        callers = {str(c.phone_number): (c.name, c.blocked) for c in Caller.objects.all()}
        self.assertEqual(callers, {"+14155552222": ("Rey Skywalker", True), "+14155553333": ("Finn", False)})
