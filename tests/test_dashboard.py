"""The admin dashboard: each series against seeded rows, its links, its permissions, its queries."""

from __future__ import annotations

import unittest
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpResponse
from django.test import TestCase, override_settings
from django.utils import timezone

from conversations import dashboard
from conversations.dashboard import DAYS, Day
from conversations.models import Broadcast, Conversation, DailyCount, Message
from conversations.sessions import uses_cache
from tests.factories import staff_with, superuser
from tests.twilio import RECIPIENT, SENDER

URL = "/admin/dashboard/"
ZONE = "America/New_York"  # Five hours behind UTC in winter: 23:30 there is 04:30 UTC the next day.
IN, OUT = Message.Direction.INBOUND, Message.Direction.OUTBOUND
UNREACHABLE = "Twilio error 30003: Unreachable destination handset"
FILTERED = "Twilio error 30007: Message filtered"
OPTED_OUT = "Twilio refused the text: Attempt to send to unsubscribed recipient (Twilio error 21610)"
GAVE_UP = "Twilio did not answer (gave up after 5 attempts)"


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """That local time (TIME_ZONE) on the day `days_ago` days before today."""
    return timezone.make_aware(datetime.combine(day(days_ago), time(hour, minute)))


def day(days_ago: int) -> date:
    return timezone.localdate() - timedelta(days=days_ago)


@override_settings(TIME_ZONE=ZONE)
class DashboardTestCase(TestCase):
    def setUp(self) -> None:
        self.client.force_login(superuser())
        self.conversation = Conversation.objects.create(sender=SENDER, recipient=RECIPIENT)

    def text(self, direction: str, at: datetime, count: int = 1, **fields: Any) -> list[Message]:
        """`count` texts recorded at `at` (created_at is set on creation, so it is set after)."""
        fields.setdefault("conversation", self.conversation)
        made = Message.objects.bulk_create(Message(direction=direction, **fields) for _ in range(count))
        Message.objects.filter(pk__in=[m.pk for m in made]).update(created_at=at)
        return made

    def page(self) -> HttpResponse:
        response = self.client.get(URL)
        self.assertEqual(response.status_code, 200)
        return response

    def days(self) -> dict[date, Day]:
        return {d.day: d for d in self.page().context["texts"].days}

    def listed(self, url: str) -> list[int]:
        """The pks of the Messages list a link of the page leads to."""
        response = self.client.get(url)
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("e", response.context["cl"].params)  # Django's "?e=1": a lookup it refused.
        return sorted(m.pk for m in response.context["cl"].queryset)

    def test_it_counts_texts_in_out_and_failed_per_local_day_and_days_with_nothing_show_0(self) -> None:
        self.text(IN, local(3, 9), 4, status="received")
        self.text(OUT, local(3, 10), 3, status="delivered")
        self.text(OUT, local(3, 11), 2, status="undelivered", error=UNREACHABLE)
        self.text(OUT, local(5, 12), 1, status="failed", error=OPTED_OUT)
        self.text(OUT, local(5, 12), 1, status="canceled")  # Not a failure: staff canceled it.
        self.text(IN, local(DAYS, 12), 7, status="received")  # 31 days ago counting today: not shown.

        days = self.days()

        self.assertEqual(list(days), [day(n) for n in range(DAYS - 1, -1, -1)])
        shown = {on: (d.inbound, d.outbound, d.failed) for on, d in days.items() if d.inbound or d.outbound}
        self.assertEqual(shown, {day(3): (4, 5, 2), day(5): (0, 2, 1)})
        self.assertEqual((days[day(0)].inbound, days[day(DAYS - 1)].outbound), (0, 0))

    def test_a_text_at_23_30_local_time_counts_on_its_local_day_not_utcs(self) -> None:
        self.text(IN, local(2, 23, 30), status="received")
        self.text(IN, local(1, 0, 30), status="received")

        days = self.days()

        self.assertEqual([days[day(n)].inbound for n in (3, 2, 1, 0)], [0, 1, 1, 0])

    def test_it_counts_opt_outs_and_opt_ins_per_day(self) -> None:
        self.text(IN, local(4, 8), 2, body="STOP", outcome=Message.Outcome.OPTED_OUT)
        self.text(IN, local(4, 9), body="stop", outcome=Message.Outcome.IGNORED_OPTED_OUT)  # Already out.
        self.text(IN, local(2, 8), body=" start ", outcome=Message.Outcome.COUNTED)
        self.text(IN, local(2, 9), body="Unstop", outcome=Message.Outcome.COUNTED)
        self.text(IN, local(1, 9), body="YES please", outcome=Message.Outcome.COUNTED)  # Not a keyword.
        self.text(OUT, local(1, 9), body="START", status="sent")  # Ours, not theirs.

        days = self.days()

        shown = {on: (d.opt_outs, d.opt_ins) for on, d in days.items() if d.opt_outs or d.opt_ins}
        self.assertEqual(shown, {day(4): (2, 0), day(2): (0, 2)})

    def test_it_counts_the_outbound_outcomes_of_the_last_7_days_by_status(self) -> None:
        self.text(OUT, local(6, 1), 3, status="delivered")
        self.text(OUT, local(0, 0, 1), status="undelivered", error=UNREACHABLE)
        self.text(OUT, local(7, 23, 59), 5, status="delivered")  # Eight days ago counting today.
        self.text(IN, local(1, 1), status="received")

        outcomes = self.page().context["outcomes"]

        self.assertEqual([(label, n) for label, n, _ in outcomes], [("Delivered", 3), ("Undelivered", 1)])
        delivered = self.listed(outcomes[0][2])
        self.assertEqual(len(delivered), 3)

    def test_it_sums_the_failures_by_twilio_code_with_twilios_words(self) -> None:
        self.text(OUT, local(1, 9), 3, status="undelivered", error=UNREACHABLE)
        self.text(OUT, local(2, 9), 2, status="failed", error=OPTED_OUT)
        self.text(OUT, local(2, 9), 1, status="undelivered", error="Twilio error 30007")  # No words kept.
        self.text(OUT, local(3, 9), 1, status="failed", error=GAVE_UP)
        self.text(OUT, local(9, 9), 4, status="failed", error=OPTED_OUT)  # Before the 7 days.

        response = self.page()

        rows = [(f.code, f.words, f.count) for f, _ in response.context["failures"]]
        self.assertEqual(
            rows,
            [
                (30003, "Unreachable destination handset", 3),
                (21610, "Attempt to send to unsubscribed recipient", 2),
                (30007, "Message filtered", 1),
                (None, "No Twilio error code (see each text)", 1),
            ],
        )
        self.assertContains(response, "Attempt to send to unsubscribed recipient")

    def test_each_failure_code_links_to_the_messages_list_of_exactly_its_texts(self) -> None:
        unreachable = self.text(OUT, local(1, 9), 2, status="undelivered", error=UNREACHABLE)
        opted_out = self.text(OUT, local(6, 0, 5), 1, status="failed", error=OPTED_OUT)
        self.text(OUT, local(7, 23), 1, status="failed", error=OPTED_OUT)  # Before the 7 days.
        self.text(OUT, local(1, 9), 1, status="delivered", error=FILTERED)  # An error, but delivered.
        gave_up = self.text(OUT, local(1, 9), 1, status="failed", error=GAVE_UP)

        links = {f.code: url for f, url in self.page().context["failures"]}

        self.assertEqual(self.listed(links[30003]), sorted(m.pk for m in unreachable))
        self.assertEqual(self.listed(links[21610]), [opted_out[0].pk])
        self.assertIsNone(links[None])  # No filter names "no code": the list of all failures has it.
        every = self.listed(self.page().context["all_failures_url"])
        self.assertEqual(every, sorted(m.pk for m in [*unreachable, *opted_out, *gave_up]))

    def test_it_shows_the_outbox_backlog_and_how_long_the_oldest_has_been_due(self) -> None:
        now = timezone.now()
        self.text(OUT, now - timedelta(minutes=30), 2, status="pending")
        self.text(OUT, now - timedelta(hours=2), status="scheduled", send_at=now - timedelta(minutes=10))
        self.text(OUT, now - timedelta(hours=3), status="scheduled", send_at=now + timedelta(hours=1))
        self.text(OUT, now - timedelta(hours=4), status="delivered")

        response = self.page()

        backlog = response.context["backlog"]
        self.assertEqual(backlog.waiting, 3)
        self.assertAlmostEqual(backlog.oldest.total_seconds(), 30 * 60, delta=60)
        self.assertContains(response, "about 30 min")

    def test_it_shows_the_broadcasts_going_out_with_their_progress(self) -> None:
        sending = Broadcast.objects.create(body="We open at 9", status=Broadcast.Status.SENDING)
        Broadcast.objects.create(body="Old news", status=Broadcast.Status.COMPLETED)
        self.text(OUT, local(0, 0, 1), 3, status="delivered", broadcast=sending)
        self.text(OUT, local(0, 0, 1), 1, status="pending", broadcast=sending)

        response = self.page()

        [(broadcast, data)] = response.context["broadcasts"]
        self.assertEqual((broadcast, data["percent"], data["total"]), (sending, 75, 4))
        self.assertContains(response, f"/admin/conversations/broadcast/{sending.pk}/change/")
        self.assertNotContains(response, "Old news")

    def test_it_shows_how_many_conversations_need_a_reply(self) -> None:
        now = timezone.now()
        self.conversation.bot_paused_until = now + timedelta(hours=1)
        self.conversation.save()
        self.text(IN, now - timedelta(minutes=1), status="received")
        Conversation.objects.create(sender="+14155550000", recipient=RECIPIENT)  # Not paused.

        response = self.page()

        self.assertEqual(response.context["needing_reply"], 1)
        self.assertContains(response, "?handoff=needs_reply")

    def test_it_draws_each_chart_as_inline_svg_with_its_title_and_a_table_of_the_numbers(self) -> None:
        self.text(IN, local(1, 9), 12, status="received")

        response = self.page()

        self.assertContains(response, '<svg class="chart"', count=2)
        self.assertContains(response, '<title id="texts-chart-title">Texts in and out per day</title>')
        self.assertContains(response, "12 in, 0 out, 0 failed.")
        self.assertContains(response, '<table id="texts-table">')
        self.assertContains(response, "conversations/dashboard.css")
        self.assertNotContains(response, 'src="http')  # No CDN: the app serves all it needs.

    def test_its_query_count_does_not_grow_with_the_days_or_the_rows(self) -> None:
        broadcast = Broadcast.objects.create(body="Hi all", status=Broadcast.Status.SENDING)
        for n in range(DAYS):
            self.text(IN, local(n, 12), 2, status="received", body="START")
            self.text(OUT, local(n, 13), 2, status="undelivered", error=UNREACHABLE, broadcast=broadcast)
        # The first view counts the days before yesterday and keeps them (DailyCount).
        self.page()

        # The session (unless Redis holds it: cached_db), its user, and the dashboard's 8: the
        # days kept, yesterday's and today's texts, the opt-ins, the failures, the backlog, the
        # conversations needing a reply, the live broadcasts and their progress.
        with self.assertNumQueries(9 if uses_cache() else 10):
            self.page()

    def test_it_counts_a_day_before_yesterday_once_and_yesterday_and_today_on_each_view(self) -> None:
        self.text(IN, local(3, 9), 2, status="received")
        self.page()
        self.text(IN, local(3, 10), 1, status="received")  # After it was counted: not seen.
        self.text(IN, local(1, 23, 59), 1, status="received")
        self.text(IN, local(0, 0, 0), 1, status="received")

        days = self.days()

        self.assertEqual([days[day(n)].inbound for n in (3, 1, 0)], [2, 1, 1])
        self.assertEqual(DailyCount.objects.filter(day=day(3), direction="inbound").get().n, 2)
        self.assertFalse(DailyCount.objects.filter(day__gte=day(1)).exists())

    def test_the_admin_index_links_to_it(self) -> None:
        response = self.client.get("/admin/")

        self.assertContains(response, f'<a href="{URL}">Dashboard</a>')


@unittest.skipUnless(connection.vendor == "sqlite", "PostgreSQL plans by table size: bench --seed --verbose")
class DashboardPlansTestCase(TestCase):
    """SQLite plans a statement before it knows its bound values: a partial index serves only a
    query that states the index's terms with its constants. Each query must find its index."""

    def plan(self, queryset: QuerySet) -> str:
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            return " / ".join(row[-1] for row in cursor.fetchall())

    def test_on_sqlite_each_query_reads_its_index_not_the_table(self) -> None:
        now = timezone.now()
        cases = {
            "texts per day": (dashboard.texts_per_day(now), "COVERING INDEX message_created_at_kind"),
            "opt-ins": (dashboard.opt_ins_per_day(now), "INDEX message_opt_ins"),
            "failures": (dashboard.failures_by_error(now), "INDEX message_failures"),
            "backlog": (Message.objects.ready(now), "INDEX message_outbox"),
            "needing a reply": (Conversation.objects.needs_reply(now), "INDEX conversation_paused"),
        }
        for name, (queryset, index) in cases.items():
            with self.subTest(name):
                plan = self.plan(queryset)
                self.assertIn(index, plan)
                # A table read whole; a partial index may be (the backlog's holds only it).
                self.assertNotRegex(plan, r"SCAN conversations_\w+( /|$)")


@override_settings(TIME_ZONE=ZONE)
class DashboardPermissionsTestCase(TestCase):
    def get_as(self, user: User | None) -> HttpResponse:
        if user is not None:
            self.client.force_login(user)
        return self.client.get(URL)

    def test_who_is_not_staff_is_sent_to_the_admin_login(self) -> None:
        for user in (None, User.objects.create(username="customer")):
            with self.subTest(user=user):
                response = self.get_as(user)
                self.assertRedirects(response, f"/admin/login/?next={URL}")

    def test_staff_who_may_not_view_messages_get_403_and_no_link(self) -> None:
        staff = staff_with("helper", "view_conversation")

        self.assertEqual(self.get_as(staff).status_code, 403)
        self.assertNotContains(self.client.get("/admin/"), "Dashboard</a>")

    def test_panels_of_models_the_user_may_not_view_are_left_out(self) -> None:
        response = self.get_as(staff_with("reader", "view_message"))

        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'id="outbox"')
        self.assertNotContains(response, 'id="needs-reply-panel"')
        self.assertNotContains(response, 'id="broadcasts"')

    def test_each_view_permission_brings_its_panel(self) -> None:
        staff = staff_with("lead", "view_message", "view_conversation", "view_broadcast")

        response = self.get_as(staff)

        self.assertContains(response, 'id="needs-reply-panel"')
        self.assertContains(response, 'id="broadcasts"')
