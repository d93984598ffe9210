"""The simulator in a real browser: Debian's Chromium, driven by Playwright."""

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.test import override_settings
from playwright.sync_api import Page, Route, expect

from conversations.models import Caller, Conversation, Message
from tests.browser import PASSWORD, BrowserTestCase
from tests.factories import superuser

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "simulator.png"
PHONE_SCREENSHOT = Path(settings.BASE_DIR) / "var" / "simulator-phone.png"
SIMULATOR = "/simulator/"
PHONE = {"width": 390, "height": 844}  # An iPhone 12 to 15's screen, in CSS pixels.


@override_settings(SIMULATOR_ENABLED=True)
class SimulatorBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        superuser("admin", password=PASSWORD)
        Caller.objects.create(phone_number="+14155550001", name="Rey")

    def open_pair(self, page: Page, sender: str) -> None:
        page.fill("#pair_sender", sender)
        page.click("#sim-pair button[type=submit]")
        expect(page.locator(".sim-phone-header")).to_contain_text(sender)

    def send(self, page: Page, text: str) -> None:
        page.fill("#id_body", text)
        page.click("#sim-compose button[type=submit]")

    def test_it_chats_as_two_pairs_and_keeps_their_threads_apart(self) -> None:
        page = self.log_in(SIMULATOR)
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
        page = self.log_in(SIMULATOR, java_script=False)

        self.send(page, "Hello")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 1 time.")
        self.send(page, "Hello again")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 2 times.")

    def test_it_fits_a_phone_screen(self) -> None:
        page = self.log_in(SIMULATOR, viewport=PHONE)
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
        page = self.log_in(SIMULATOR)

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
        page = self.log_in(SIMULATOR)
        self.fail_posts(page, lambda route: route.abort("connectionrefused"))

        self.send(page, "Hello there")

        self.assert_it_recovers(page, "the app could not be reached")

    def test_it_lets_a_text_be_sent_again_after_a_server_error(self) -> None:
        page = self.log_in(SIMULATOR)
        self.fail_posts(page, lambda route: route.fulfill(status=500, body="Server Error (500)"))

        self.send(page, "Hello there")

        self.assert_it_recovers(page, "the app answered 500")

    def test_it_counts_segments_as_the_text_is_typed_even_after_a_text_is_sent(self) -> None:
        page = self.log_in(SIMULATOR)
        self.send(page, "Hello there")
        expect(page.locator("#sim-thread")).to_contain_text("Friend has messaged +15005550006 1 time.")

        page.locator("#id_body").press_sequentially("“Hi”")

        expect(page.locator("#sim-compose .segments")).to_contain_text("4 characters · UCS-2 · 1 segment")
        expect(page.locator("#sim-compose .segments-warning")).to_contain_text("““” (U+201C)")
