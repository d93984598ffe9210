"""Which SMS_BACKEND the settings choose, read as a fresh process reads them."""

import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

PRINT_BACKEND = "from django.conf import settings; print(settings.SMS_BACKEND)"


class SmsBackendSettingTestCase(SimpleTestCase):
    def backend_with(self, command: str = "", **environment: str) -> subprocess.CompletedProcess[str]:
        """Run `command` (manage.py …), else print the SMS_BACKEND a fresh process reads."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DEBUG", "TWILIO_ACCOUNT_SID", "SMS_BACKEND", "TWILIO_AUTH_TOKEN"}
        }
        # Values set here win over any local .env, which only fills in what is missing.
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "smsproject.settings",
                "SECRET_KEY": "a-long-enough-secret-key-for-these-settings-only-0123456789",
                "TWILIO_AUTH_TOKEN": "token",
                "TWILIO_ACCOUNT_SID": "",
                **environment,
            }
        )
        return subprocess.run(
            [sys.executable, *(command.split() or ["-c", f"import django; django.setup(); {PRINT_BACKEND}"])],
            capture_output=True,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
            timeout=60,
        )

    def test_it_defaults_to_the_console_in_development_without_an_account(self) -> None:
        self.assertEqual(self.backend_with(DEBUG="True").stdout.strip(), "console")

    def test_it_defaults_to_twilio_with_an_account_sid(self) -> None:
        result = self.backend_with(DEBUG="True", TWILIO_ACCOUNT_SID="AC" + "0" * 32)
        self.assertEqual(result.stdout.strip(), "twilio")

    def test_it_defaults_to_twilio_in_production(self) -> None:
        self.assertEqual(self.backend_with(DEBUG="False").stdout.strip(), "twilio")

    def test_it_takes_the_backend_it_is_given(self) -> None:
        self.assertEqual(self.backend_with(DEBUG="False", SMS_BACKEND="console").stdout.strip(), "console")

    def test_manage_py_check_refuses_an_unknown_backend(self) -> None:
        result = self.backend_with(DEBUG="True", SMS_BACKEND="carrier-pigeon", command="manage.py check")

        self.assertEqual(result.returncode, 1)
        self.assertIn("conversations.E003", result.stderr)
        self.assertIn("SMS_BACKEND must be twilio or console, not 'carrier-pigeon'.", result.stderr)
