"""The admin pages where staff act, in a real browser: Debian's Chromium, driven by Playwright."""

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.test import override_settings
from playwright.sync_api import expect

from conversations.models import Caller, Conversation, Message
from conversations.quiet_hours import QuietHours
from conversations.segments import segments_of
from tests.browser import PASSWORD, BrowserTestCase
from tests.factories import superuser
from tests.test_segments import TRICKY
from tests.twilio import SENDER, TOKEN, Twilio

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "conversation-page.png"


@override_settings(SMS_BACKEND="console", TWILIO_AUTH_TOKEN=TOKEN, TWILIO_REQUIRE_SIGNATURE=True)
class AdminBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        superuser("admin", password=PASSWORD)

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

        expect(page.locator(".messagelist")).to_contain_text(
            "Queued the text to +14155551234: the worker sends it."
        )
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

    def test_it_counts_segments_as_the_text_is_typed_and_names_the_character_that_costs_more(self) -> None:
        conversation = self.a_conversation()
        page = self.log_in(f"/admin/conversations/conversation/{conversation.pk}/change/")
        box = page.locator("#send-text textarea")
        counter = page.locator("#send-text .segments")

        box.press_sequentially("Your table is ready")
        expect(counter).to_have_text("19 characters · GSM-7 · 1 segment")
        box.fill("a" * 152 + "€")
        expect(counter).to_have_text("154 characters · GSM-7 · 1 segment")
        box.fill("a" * 159 + "€")
        expect(counter).to_have_text("161 characters · GSM-7 · 2 segments")

        box.fill("It’s ready")  # noqa: RUF001 (the curly quote is the point)
        expect(counter).to_contain_text("10 characters · UCS-2 · 1 segment")
        expect(counter.locator(".segments-warning")).to_have_text(
            " · “’” (U+2019) switches the whole text to UCS-2: 70 characters a segment instead of 160."  # noqa: RUF001 (the curly quote is the point)
        )

    def test_the_pages_counter_agrees_with_segments_of_on_the_tricky_table(self) -> None:
        conversation = self.a_conversation()
        page = self.log_in(f"/admin/conversations/conversation/{conversation.pk}/change/")
        texts = [text for text, *_ in TRICKY]
        page.wait_for_function("typeof window.segmentsOf === 'function'")  # A deferred script.

        counted = page.evaluate("(texts) => texts.map((text) => segmentsOf(text))", texts)

        for text, found in zip(texts, counted, strict=True):
            with self.subTest(text=text[:20], length=len(text)):
                expected = segments_of(text)
                self.assertEqual(
                    (found["encoding"], found["characters"], found["count"], found["switchedBy"]),
                    (expected.encoding, expected.characters, expected.count, expected.switched_by),
                )

    def test_it_counts_on_the_send_a_text_actions_page(self) -> None:
        Caller.objects.create(phone_number=SENDER, name="Rey")
        page = self.log_in("/admin/conversations/caller/")
        page.check("input[name=_selected_action]")
        page.select_option("select[name=action]", "send_text")
        page.click("button[name=index]")

        page.fill("#id_body", "😀 " * 40)

        expect(page.locator(".segments")).to_contain_text("120 characters · UCS-2 · 2 segments")
        expect(page.locator(".segments-warning")).to_contain_text("(U+1F600)")

    def test_it_holds_a_text_in_quiet_hours_until_the_box_is_ticked(self) -> None:
        # Quiet now in San Francisco, the sender's area code, whatever time the test runs.
        here = datetime.now(ZoneInfo("America/Los_Angeles"))
        quiet = QuietHours((here - timedelta(hours=1)).time(), (here + timedelta(hours=1)).time())
        conversation = self.a_conversation()
        with override_settings(QUIET_HOURS=str(quiet)):
            page = self.log_in(f"/admin/conversations/conversation/{conversation.pk}/change/")
            page.fill("#send-text textarea", "Your part is in.")
            page.click("#send-text input[type=submit]")

            expect(page.locator(".messagelist")).to_contain_text("there (America/Los_Angeles)")
            expect(page.locator(".messagelist")).to_contain_text(f"it may go after {quiet.end:%H:%M}.")
            self.assertFalse(Message.objects.filter(direction=Message.Direction.OUTBOUND).exists())

            page.fill("#send-text textarea", "Your part is in.")
            page.check("#send-text input[name=force]")
            page.click("#send-text input[type=submit]")

            expect(page.locator(".messagelist")).to_contain_text(
                "Queued the text to +14155551234: the worker sends it."
            )
        self.assertEqual(Message.objects.get(direction=Message.Direction.OUTBOUND).body, "Your part is in.")
