"""`make bench BENCH_ARGS=--seed`'s pieces at a tiny size: the seeding SQL on this database, and
the dashboard timed on what it made."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Count, Max, Min
from django.test import TestCase
from django.utils import timezone

from bench import seed
from conversations.models import Broadcast, Conversation, Message
from conversations.sessions import uses_cache

CONVERSATIONS, MESSAGES = 300, 2000


class SeedTests(TestCase):
    def setUp(self) -> None:
        # Without the planner's statistics: they would outlive these rows in the test database.
        seed.seed(CONVERSATIONS, MESSAGES, statistics=False)

    def test_it_makes_the_rows_asked_for_over_the_last_60_days(self) -> None:
        self.assertEqual((Conversation.objects.count(), Message.objects.count()), (CONVERSATIONS, MESSAGES))
        span = Message.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
        now = timezone.now()
        self.assertGreater(span["first"], now - timedelta(days=seed.SEED_DAYS, minutes=5))
        self.assertGreater(span["last"], now - timedelta(hours=1))
        self.assertEqual(Message.objects.filter(conversation__isnull=True).count(), 0)

    def test_it_mixes_kinds_statuses_error_codes_and_opt_outs(self) -> None:
        statuses = dict(Message.objects.values_list("status").annotate(n=Count("*")))
        self.assertGreater(statuses["received"], MESSAGES * 0.45)
        self.assertGreater(statuses["delivered"], statuses["undelivered"] + statuses["failed"])
        self.assertGreater(statuses["pending"], 0)
        failures = Message.objects.filter(status__in=["failed", "undelivered"])
        self.assertTrue(failures.filter(error__contains="Twilio error 30003").exists())
        self.assertTrue(failures.filter(error__contains="Twilio error 21610").exists())
        self.assertTrue(Message.objects.filter(outcome="opted_out", body="STOP").exists())
        self.assertTrue(Message.objects.filter(direction="inbound", body="START").exists())
        self.assertTrue(Conversation.objects.filter(bot_paused_until__gt=timezone.now()).exists())
        self.assertEqual(Broadcast.objects.filter(status__in=["sending", "paused"]).count(), 2)

    def test_it_times_the_dashboard_as_a_logged_in_superuser(self) -> None:
        timing = seed.time_dashboard(requests=3)

        self.assertEqual(len(timing.seconds), 3)  # After the first, which counts the days past.
        self.assertLessEqual(timing.best, timing.median)
        self.assertGreater(timing.first, 0)
        # The steady page's (the first counts past days); its session from Redis with cached_db.
        self.assertEqual(len(timing.statements), 9 if uses_cache() else 10)
        self.assertTrue(User.objects.get(username="bench-admin").is_superuser)
