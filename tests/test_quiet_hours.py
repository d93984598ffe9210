"""QUIET_HOURS: a plain setting read where it is used, in the recipient's own time zone, on a frozen clock."""

import os
import subprocess
import sys
from datetime import UTC, datetime, time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings

from conversations.quiet_hours import QuietHours, configured, quiet_hours_of, quiet_hours_refusal, zone_of

NIGHT = quiet_hours_of("21:00-08:00")
# One moment: 23:10 in San Francisco, 02:10 in New York, 07:10 in London, 18:10 in Sydney.
MOMENT = datetime(2026, 1, 15, 7, 10, tzinfo=UTC)


class QuietHoursSettingTestCase(SimpleTestCase):
    def test_it_reads_hours_across_midnight(self) -> None:
        self.assertEqual(quiet_hours_of("21:00-08:00"), QuietHours(time(21), time(8)))
        self.assertEqual(quiet_hours_of(" 9:30 - 17:45 "), QuietHours(time(9, 30), time(17, 45)))

    def test_empty_is_off(self) -> None:
        self.assertIsNone(quiet_hours_of(""))

    def test_it_refuses_what_is_not_two_times(self) -> None:
        for value in ("21-08", "21:00", "25:00-08:00", "21:60-08:00", "9pm-8am", "21:00-21:00"):
            with (
                self.subTest(value=value),
                self.assertRaisesMessage(ImproperlyConfigured, "QUIET_HOURS must be"),
            ):
                quiet_hours_of(value)

    def test_manage_py_check_refuses_a_bad_value(self) -> None:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "smsproject.settings", "QUIET_HOURS": "9pm-8am"}
        env.setdefault("SECRET_KEY", "a-long-enough-secret-key-for-these-settings-only-0123456789")
        result = subprocess.run(
            [sys.executable, "manage.py", "check"],
            capture_output=True,
            text=True,
            env=env,
            cwd=settings.BASE_DIR,
            timeout=60,
        )

        self.assertEqual(result.returncode, 1)
        self.assertIn("conversations.E004", result.stderr)
        self.assertIn(
            "QUIET_HOURS must be two times on a 24-hour clock, like 21:00-08:00, not '9pm-8am'.",
            result.stderr,
        )

    def test_it_reads_the_setting_as_it_is_now(self) -> None:
        # Read once per value, yet never a value the setting no longer has.
        with override_settings(QUIET_HOURS="12:00-13:00"):
            self.assertEqual(configured(), QuietHours(time(12), time(13)))
        with override_settings(QUIET_HOURS=""):
            self.assertIsNone(configured())

    def test_hours_within_a_day_and_across_midnight(self) -> None:
        self.assertIs(NIGHT.cover(time(23, 10)), True)
        self.assertIs(NIGHT.cover(time(7, 59)), True)
        self.assertIs(NIGHT.cover(time(8, 0)), False)
        lunch = quiet_hours_of("12:00-13:00")
        self.assertEqual([lunch.cover(time(h, 30)) for h in (11, 12, 13)], [False, True, False])


@override_settings(QUIET_HOURS="21:00-08:00", TIME_ZONE="UTC")
class QuietHoursRefusalTestCase(SimpleTestCase):
    def test_it_reads_the_hours_in_the_recipients_time_zone(self) -> None:
        cases = {
            "+14155551234": "it is 23:10 there (America/Los_Angeles); it may go after 08:00.",
            "+12125551234": "it is 02:10 there (America/New_York); it may go after 08:00.",
            "+442071234567": "it is 07:10 there (Europe/London); it may go after 08:00.",
            "+61291234567": None,
        }
        for number, refusal in cases.items():
            with self.subTest(number=number):
                found = quiet_hours_refusal(number, now=MOMENT)
                if refusal is None:
                    self.assertIsNone(found)
                else:
                    self.assertEqual(found, f"Quiet hours (21:00-08:00) for {number}: {refusal}")

    @override_settings(TIME_ZONE="America/Chicago")
    def test_a_number_of_several_zones_or_none_is_read_in_the_sites(self) -> None:
        for number in ("+15005550006", "+79161234567", "+15555551234", "ACME"):
            with self.subTest(number=number):
                self.assertEqual(zone_of(number).key, "America/Chicago")
        self.assertIn("01:10 there (America/Chicago)", quiet_hours_refusal("+15005550006", now=MOMENT) or "")

    @override_settings(QUIET_HOURS="")
    def test_nothing_is_held_without_quiet_hours(self) -> None:
        self.assertIsNone(quiet_hours_refusal("+14155551234", now=MOMENT))
