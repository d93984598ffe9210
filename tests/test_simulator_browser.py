"""The simulator in a real browser: Debian's Chromium, driven by Playwright."""

import os
import unittest
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from django.test import override_settings
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from conversations.models import Caller, Conversation, Message
from tests.factories import superuser

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
PHONE_SCREENSHOT = Path(settings.BASE_DIR) / "var" / "simulator-phone.png"
PHONE = {"width": 390, "height": 844}  # An iPhone 12 to 15's screen, in CSS pixels.
PASSWORD = "a-browser-test-password"


@unittest.skipUnless(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium")
@override_settings(SIMULATOR_ENABLED=True)
@pytest.mark.slow
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
        superuser("admin", password=PASSWORD)
        Caller.objects.create(phone_number="+14155550001", name="Rey")

    def log_in(self, java_script: bool = True, viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(
            viewport=viewport or {"width": 1100, "height": 820}, java_script_enabled=java_script
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

    def test_it_fits_a_phone_screen(self) -> None:
        page = self.log_in(viewport=PHONE)
        self.open_pair(page, "+14155550001")

        self.send(page, "Hello there")
        expect(page.locator("#sim-thread")).to_contain_text("Rey has messaged +15005550006 1 time.")
        self.send(page, "HELP")
        expect(page.locator("#sim-thread")).to_contain_text("HELP and INFO are answered by Twilio itself")

        self.assertLessEqual(page.evaluate("document.documentElement.scrollWidth"), PHONE["width"])
        self.assertTrue(page.locator("#sim-compose button[type=submit]").is_visible())
        PHONE_SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=PHONE_SCREENSHOT)

    def test_it_shows_a_javascript_media_url_as_text_that_runs_nothing(self) -> None:
        conversation = Conversation.objects.create(sender="+14155550001", recipient="+15005550006")
        Message.objects.create(
            conversation=conversation, direction="inbound", media_urls=["javascript:window.pwned=true"]
        )
        page = self.log_in()

        self.open_pair(page, "+14155550001")
        media = page.locator(".sim-media", has_text="javascript:window.pwned=true")
        expect(media).to_be_visible()
        self.assertEqual(page.locator("#sim-thread a").count(), 0)
        media.click()

        self.assertIsNone(page.evaluate("window.pwned"))

    def fail_posts(self, page: Page, fail: Callable[[Route], None]) -> None:
        def handle(route: Route) -> None:
            if route.request.method == "POST":
                fail(route)
            else:
                route.continue_()

        page.route("**/simulator/*", handle)

    def assert_it_recovers(self, page: Page, message: str) -> None:
        expect(page.locator("#sim-failure")).to_contain_text(message)
        expect(page.locator("#id_body")).to_have_value("Hello there")
        expect(page.locator("#sim-compose button[type=submit]")).to_be_enabled()
        expect(page.locator(".sim-pending")).to_have_count(0)
        page.unroute("**/simulator/*")

        page.click("#sim-compose button[type=submit]")

        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 1 time.")
        expect(page.locator("#sim-failure")).to_be_hidden()
        self.assertEqual(Message.objects.count(), 1)

    def test_it_lets_a_text_be_sent_again_after_a_network_error(self) -> None:
        page = self.log_in()
        self.fail_posts(page, lambda route: route.abort("connectionrefused"))

        self.send(page, "Hello there")

        self.assert_it_recovers(page, "the app could not be reached")

    def test_it_lets_a_text_be_sent_again_after_a_server_error(self) -> None:
        page = self.log_in()
        self.fail_posts(page, lambda route: route.fulfill(status=500, body="Server Error (500)"))

        self.send(page, "Hello there")

        self.assert_it_recovers(page, "the app answered 500")

    def test_it_counts_segments_as_the_text_is_typed_even_after_a_text_is_sent(self) -> None:
        page = self.log_in()
        self.send(page, "Hello there")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 1 time.")

        page.locator("#id_body").press_sequentially("“Hi”")

        expect(page.locator("#sim-compose .segments")).to_contain_text("4 characters · UCS-2 · 1 segment")
        expect(page.locator("#sim-compose .segments-warning")).to_contain_text("““” (U+201C)")
