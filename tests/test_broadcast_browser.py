"""A broadcast from the Callers list, in a real browser (Chromium, Playwright), sent by a real
worker process to a fake Twilio API on loopback, its page watched until the bar is full."""

from __future__ import annotations

import time
from pathlib import Path

from django.test import override_settings
from playwright.sync_api import expect

from conversations.models import Broadcast, Caller, Conversation
from tests.browser import PASSWORD, BrowserTestCase
from tests.factories import superuser
from tests.server import BASE_DIR
from tests.twilio import RECIPIENT, TOKEN
from tests.twilio_api_server import OPTED_OUT, twilio_api_server
from tests.worker import ACCOUNT, wait_for, workers

# Saved where the other browser tests save theirs; docs/broadcast-page.png is copied from it.
SCREENSHOT = Path(BASE_DIR) / "var" / "broadcast-page.png"
NUMBERS = [f"+1415555{n:04d}" for n in range(40)]


@override_settings(
    SMS_BACKEND="twilio",
    TWILIO_ACCOUNT_SID=ACCOUNT,
    TWILIO_AUTH_TOKEN=TOKEN,
    TWILIO_FROM_NUMBER=RECIPIENT,
    SMS_SEND_RATE=3,  # As the worker: the page estimates the time left from it.
)
class BroadcastBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        superuser("admin", password=PASSWORD)
        Caller.objects.bulk_create(Caller(phone_number=n, name=f"Guest {i}") for i, n in enumerate(NUMBERS))
        Caller.objects.filter(phone_number=NUMBERS[0]).update(blocked=True)
        Conversation.objects.create(sender=NUMBERS[1], recipient=RECIPIENT, opted_out=True)

    def test_staff_text_every_caller_pause_resume_and_watch_the_bar_reach_100_percent(self) -> None:
        page = self.log_in("/admin/conversations/caller/")
        page.check("#action-toggle")  # Every caller on the page (all 40 fit on one).
        page.select_option("select[name=action]", "send_text")
        page.click("button[name=index]")

        expect(page.locator("#broadcast-counts")).to_have_text(
            "40 selected, 38 will be texted: 1 opted out, 1 blocked."
        )
        page.fill("#id_body", "We open at 9 tomorrow. Reply here with any question.")
        expect(page.locator(".segments")).to_contain_text("GSM-7 · 1 segment")
        with twilio_api_server(latency=0.01) as api, workers(api.url, SMS_SEND_RATE="3") as [worker]:
            api.answer(NUMBERS[2], OPTED_OUT)  # Replied STOP elsewhere: Twilio refuses it.
            page.click("input[name=confirm]")
            expect(page.locator(".messagelist")).to_contain_text("Created the broadcast")
            bar = page.locator("#broadcast-progress [role=progressbar]")

            # Paused while it goes out (38 texts at 3 a second): the posts stop, within one.
            wait_for(lambda: len(api.posts) >= 2, 30, "the first texts sent", worker.log)
            page.click("#pause-broadcast input[type=submit]")
            expect(page.locator(".messagelist")).to_contain_text("Paused")
            posted = len(api.posts)
            time.sleep(2)  # Ticks and polls go on meanwhile.
            self.assertLessEqual(len(api.posts) - posted, 1)
            self.assertLess(len(api.posts), 38)
            expect(page.locator("#resume-broadcast")).to_be_visible()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.click("#resume-broadcast input[type=submit]")
            expect(page.locator(".messagelist")).to_contain_text("Resumed")
            resumed_at = int(bar.get_attribute("aria-valuenow") or 0)
            # The page polls its progress: the bar moves on the same page, no reload.
            page.evaluate("window.watched = true")
            page.wait_for_function(
                """(from) => {
                    const now = +document.querySelector("[role=progressbar]").getAttribute("aria-valuenow");
                    return window.watched === true && now > from && now < 100;
                }""",
                arg=resumed_at,
                timeout=60_000,
            )
            expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
            expect(page.locator(".broadcast-status")).to_have_text("Completed", timeout=15_000)
            self.assertEqual(api.posts_to(), {number: 1 for number in NUMBERS[2:]}, worker.log())

        expect(page.locator(".broadcast-percent")).to_have_text("100 %")
        expect(page.locator('[data-count="sent"]')).to_have_text("37")
        expect(page.locator('[data-count="failed"]')).to_have_text("1")
        expect(page.locator(".broadcast-failures")).to_contain_text(NUMBERS[2])
        expect(page.locator(".broadcast-failures")).to_contain_text("21610")
        expect(page.locator("#pause-broadcast")).to_have_count(0)  # Finished: nothing to control.
        self.assertEqual(Broadcast.objects.get().status, "completed")
