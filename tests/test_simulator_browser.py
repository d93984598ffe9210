"""The simulator in a real browser: Debian's Chromium, driven by Playwright."""

import os
import unittest
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conversations.models import Caller

CHROMIUM = Path("/usr/bin/chromium")
# The machine reaches no network beyond package registries: keep Chromium from trying.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start.
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(settings.BASE_DIR) / "var" / "simulator.png"
PASSWORD = "a-browser-test-password"


@unittest.skipUnless(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium")
class SimulatorBrowserTestCase(StaticLiveServerTestCase):
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
        User.objects.create_superuser("admin", password=PASSWORD)
        Caller.objects.create(phone_number="+14155550001", name="Rey")

    def log_in(self, java_script: bool = True) -> Page:
        context = self.browser.new_context(
            viewport={"width": 1100, "height": 820}, java_script_enabled=java_script
        )
        self.addCleanup(context.close)
        page = context.new_page()
        page.goto(f"{self.live_server_url}/simulator/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{self.live_server_url}/simulator/")
        return page

    def open_pair(self, page: Page, sender: str) -> None:
        page.fill("#pair_sender", sender)
        page.click("#sim-pair button[type=submit]")
        expect(page.locator(".sim-phone-header")).to_contain_text(sender)

    def send(self, page: Page, text: str) -> None:
        page.fill("#id_body", text)
        page.click("#sim-compose button[type=submit]")

    def test_it_chats_as_two_pairs_and_keeps_their_threads_apart(self) -> None:
        page = self.log_in()
        page.evaluate("window.sameDocument = true")  # Gone if a text or a switch reloads the page.
        thread = page.locator("#sim-thread")

        self.open_pair(page, "+14155550001")
        self.send(page, "Hello there")
        expect(thread).to_contain_text("Rey has messaged +15005550006 1 time.")
        self.send(page, "Me again")
        expect(thread).to_contain_text("Rey has messaged +15005550006 2 times.")

        self.open_pair(page, "+14155550002")
        expect(thread).not_to_contain_text("Rey has messaged")
        self.send(page, "Hi, who is this?")
        expect(thread).to_contain_text("Friend has messaged +15005550006 1 time.")

        self.open_pair(page, "+14155550001")
        expect(thread).to_contain_text("Me again")
        expect(thread).to_contain_text("Rey has messaged +15005550006 2 times.")
        expect(thread).not_to_contain_text("Friend has messaged")
        self.assertIs(page.evaluate("window.sameDocument"), True)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=SCREENSHOT)

    def test_it_works_without_javascript(self) -> None:
        page = self.log_in(java_script=False)

        self.send(page, "Hello")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 1 time.")
        self.send(page, "Hello again")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 2 times.")
