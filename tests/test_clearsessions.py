from datetime import timedelta

from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from conversations.models import Conversation
from tests.twilio import TwilioTestCase, reply_of


class ClearSessionsTestCase(TwilioTestCase):
    def test_it_clears_ended_windows_and_the_next_text_starts_at_one(self) -> None:
        self.twilio.text(sender="+14155550001")
        self.twilio.text(sender="+14155550001")
        self.twilio.text(sender="+14155550002")
        ended = Conversation.objects.get(sender="+14155550001")
        Session.objects.filter(pk=ended.session_id).update(expire_date=timezone.now() - timedelta(minutes=1))

        call_command("clearsessions")

        ended.refresh_from_db()
        self.assertIsNone(ended.session_id)
        self.assertEqual(Session.objects.count(), 1)
        self.assertEqual(
            reply_of(self.twilio.text(sender="+14155550001")), "Friend has messaged +15005550006 1 time."
        )
        self.assertEqual(
            reply_of(self.twilio.text(sender="+14155550002")), "Friend has messaged +15005550006 2 times."
        )

    def test_it_clears_expired_staff_logins_too(self) -> None:
        staff = SessionStore()
        staff.set_expiry(-60)
        staff.save()

        call_command("clearsessions")

        self.assertFalse(Session.objects.filter(pk=staff.session_key).exists())
