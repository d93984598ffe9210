"""Pages in a real browser: Debian's Chromium, headless, driven by Playwright."""

from __future__ import annotations

import os
import unittest
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.staticfiles.testing import StaticLiveServerTestCase
from playwright.sync_api import Browser, Page, expect, sync_playwright

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
PASSWORD = "a-browser-test-password"
DESKTOP = {"width": 1100, "height": 1000}


@unittest.skipUnless(CHROMIUM.exists(), "needs Debian's chromium at /usr/bin/chromium")
@pytest.mark.slow
class BrowserTestCase(StaticLiveServerTestCase):
    """A live server and one Chromium for the class; each test logs in a context of its own."""

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

    def log_in(
        self,
        path: str,
        username: str = "admin",
        *,
        viewport: dict[str, int] | None = None,
        java_script: bool = True,
    ) -> Page:
        """A fresh browser context, logged in through the admin's form, on `path`."""
        context = self.browser.new_context(viewport=viewport or DESKTOP, java_script_enabled=java_script)
        self.addCleanup(context.close)
        page = context.new_page()
        page.goto(f"{self.live_server_url}{path}")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page).to_have_url(f"{self.live_server_url}{path}")
        return page
