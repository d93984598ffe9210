"""The dashboard in a real browser (Chromium, Playwright): its charts drawn, at a desktop's width
and at a phone's, where nothing may stick out sideways."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from conversations.models import Broadcast, Conversation, Message
from tests.browser import PASSWORD, BrowserTestCase
from tests.factories import superuser
from tests.server import BASE_DIR
from tests.twilio import RECIPIENT

# Saved where the other browser tests save theirs; docs/dashboard.png is copied from the first
# (README, "Tests").
SCREENSHOTS = {
    "desktop": Path(BASE_DIR) / "var" / "dashboard.png",
    "phone": Path(BASE_DIR) / "var" / "dashboard-phone.png",
}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ERRORS = (
    "Twilio error 30003: Unreachable destination handset",
    "Twilio refused the text: Attempt to send to unsubscribed recipient (Twilio error 21610)",
    "Twilio error 30007: Message filtered",
)


def a_month_of_texts(conversation: Conversation) -> None:
    """Texts on each of the last 30 days, in amounts that vary like a real month's."""
    for days_ago in range(30):
        day = timezone.localdate() - timedelta(days=days_ago)
        at = timezone.make_aware(datetime.combine(day, time(12)))
        inbound = 30 + (days_ago * 37) % 25 + (15 if day.weekday() < 5 else 0)
        kinds = [("inbound", "received", "", "Are you open?", "counted")] * inbound
        kinds += [("outbound", "delivered", "", "Yes, 9 to 5.", "")] * (inbound - 4)
        kinds += [("outbound", "undelivered", ERRORS[days_ago % 3], "Yes", "")] * (1 + days_ago % 4)
        kinds += [("inbound", "received", "", "STOP", "opted_out")] * (days_ago % 3)
        kinds += [("inbound", "received", "", "START", "counted")] * (days_ago % 5 == 0)
        made = Message.objects.bulk_create(
            Message(conversation=conversation, direction=d, status=s, error=e, body=b, outcome=o)
            for d, s, e, b, o in kinds
        )
        Message.objects.filter(pk__in=[m.pk for m in made]).update(created_at=at)


@override_settings(SMS_SEND_RATE=1)  # A US long code's: the broadcast's time left is minutes.
class DashboardBrowserTestCase(BrowserTestCase):
    def setUp(self) -> None:
        superuser("admin", password=PASSWORD)
        now = timezone.now()
        conversation = Conversation.objects.create(
            sender="+14155550100", recipient=RECIPIENT, bot_paused_until=now + timedelta(hours=1)
        )
        a_month_of_texts(conversation)
        broadcast = Broadcast.objects.create(body="We open at 9 tomorrow.", status=Broadcast.Status.SENDING)
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                direction="outbound",
                body=broadcast.body,
                broadcast=broadcast,
                status="delivered" if n < 140 else "pending",
            )
            for n in range(200)
        )
        # The customer texted last, in a conversation staff have taken over: it needs a reply.
        Message.objects.create(conversation=conversation, direction="inbound", status="received", body="Hi?")

    def assert_charts_drawn(self, page: Page) -> None:
        charts = page.locator("svg.chart")
        expect(charts).to_have_count(2)
        for n in range(2):
            box = charts.nth(n).bounding_box()
            assert box is not None
            self.assertGreater(box["height"], 100)
        expect(page.locator("svg.chart polyline")).to_have_count(3)
        self.assertGreater(page.locator("svg.chart rect").count(), 30)

    def test_it_draws_its_charts_at_a_desktops_width(self) -> None:
        page = self.log_in("/admin/dashboard/", viewport=DESKTOP)

        self.assert_charts_drawn(page)
        expect(page.locator("#failures")).to_contain_text("Unreachable destination handset")
        expect(page.locator("#broadcasts")).to_contain_text("70 % of 200")
        SCREENSHOTS["desktop"].parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS["desktop"]), full_page=True)

    def test_on_a_phone_it_fits_the_width_and_its_charts_are_drawn(self) -> None:
        page = self.log_in("/admin/dashboard/", viewport=PHONE)

        self.assert_charts_drawn(page)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        self.assertLessEqual(overflow, 0)
        chart_width = page.locator("svg.chart").first.bounding_box()
        assert chart_width is not None
        self.assertLessEqual(chart_width["width"], PHONE["width"])
        page.screenshot(path=str(SCREENSHOTS["phone"]), full_page=True)
