"""The Callers list's "Send a text": a page that counts who will be texted, then on Confirm a
Broadcast, each answered at once for 1,000 callers (a fixed number of statements)."""

from __future__ import annotations

import math
from datetime import timedelta

from django.contrib.admin.models import LogEntry
from django.db import connection
from django.http import HttpResponse
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Broadcast, Caller, Conversation, Message
from conversations.outbox import BATCH
from conversations.refusals import BATCH as REFUSALS_BATCH
from tests.factories import staff_with, superuser
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, TwilioTestCase

CHANGELIST = "/admin/conversations/caller/"


def refusal_lookups(rows: int) -> int:
    """Blocked callers, and numbers opted out or undeliverable: two reads per batch of numbers."""
    return 2 * math.ceil(rows / REFUSALS_BATCH)


def callers(count: int, start: int = 0) -> list[int]:
    made = [Caller(phone_number=f"+1415555{n:04d}", name=f"Caller {n}") for n in range(start, start + count)]
    return [caller.pk for caller in Caller.objects.bulk_create(made)]


@override_settings(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_FROM_NUMBER=RECIPIENT)
class AdminBulkSendTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        self.api = FakeTwilioApi()

    def action(
        self, pks: list[int], *, every_caller: bool = False, query: str = "", **form: str
    ) -> tuple[HttpResponse, int]:
        """The action posted from the list (`form` empty), or its page's form (Confirm);
        the answer and how many SQL statements it took. `every_caller`: "Select all N
        callers" across the list's pages (those the filter and search in `query` match)."""
        # The browser sends the rows ticked on the page, even with "Select all N".
        pks = pks or [Caller.objects.order_by("pk").values_list("pk", flat=True).first()]
        data = {"action": "send_text", "_selected_action": pks, "index": "0", **form}
        data["select_across"] = "1" if every_caller else "0"
        with self.api.serving(), CaptureQueriesContext(connection) as queries:
            response = self.client.post(CHANGELIST + query, data)
        self.assertEqual(self.api.requests, [])  # No web request calls Twilio: the worker does.
        return response, len(queries)

    def confirm(self, pks: list[int], *, every_caller: bool = False, **form: str) -> tuple[HttpResponse, int]:
        """The page's form filled in and confirmed."""
        form = {"confirm": "1", "body": "Open at 9.", "our_number": RECIPIENT, **form}
        return self.action(pks, every_caller=every_caller, **form)

    def test_its_page_counts_who_will_be_texted_and_who_will_not(self) -> None:
        pks = callers(20)
        Caller.objects.filter(pk__in=pks[:2]).update(blocked=True)
        for n in range(2, 5):
            Conversation.objects.create(sender=f"+1415555{n:04d}", recipient=RECIPIENT, opted_out=True)
        Conversation.objects.create(
            sender="+14155550005", recipient=RECIPIENT, undeliverable_reason="Twilio error 30006: Landline"
        )

        response, _ = self.action(pks)

        self.assertContains(
            response, "20 selected, 14 will be texted: 3 opted out, 2 blocked, 1 undeliverable"
        )
        self.assertContains(response, 'value="Confirm: text 14 callers"')
        self.assertContains(response, "data-segments")  # The counter as staff type.
        self.assertContains(response, 'type="datetime-local" name="send_at"')
        self.assertFalse(Broadcast.objects.exists())

    def test_every_caller_means_those_the_search_matches_on_every_page(self) -> None:
        callers(150)
        Caller.objects.filter(phone_number="+14155550042").update(name="Rey")

        response, _ = self.action([], every_caller=True, query="?q=rey")
        self.assertContains(response, "1 selected, 1 will be texted")

        response, _ = self.action([], every_caller=True)
        self.assertContains(response, "150 selected, 150 will be texted")

    def test_it_counts_1000_callers_without_a_query_per_caller(self) -> None:
        self.action(callers(10), every_caller=True)  # Warm: content types are cached.
        _, few = self.action([], every_caller=True)
        callers(1000, start=10)
        _, many = self.action([], every_caller=True)

        self.assertEqual(many, few + refusal_lookups(1010) - refusal_lookups(10))

    def test_it_creates_a_broadcast_for_1000_callers_without_a_query_per_caller(self) -> None:
        self.confirm(callers(10), every_caller=True)  # Warm.
        _, few = self.confirm([], every_caller=True)
        callers(1000, start=10)
        _, many = self.confirm([], every_caller=True)

        self.assertEqual(Message.objects.filter(status="pending").count(), 10 + 10 + 1010)
        # The same statements for 10 callers as for 1,010, but for the batches (SQLite's limit
        # of variables in a statement): per BATCH recipients the refusals (two reads) and the
        # texts (one INSERT … SELECT); the missing conversations, three variables a row.
        per_insert = min(BATCH, ((connection.features.max_query_params or 3000) - 2) // 3)
        extra = 3 * (math.ceil(1010 / BATCH) - 1) + math.ceil(1010 / per_insert) - 1
        self.assertEqual(many, few + extra)

    def test_confirm_creates_the_broadcast_and_goes_to_its_page(self) -> None:
        pks = callers(3)
        Caller.objects.filter(pk=pks[0]).update(blocked=True)

        response, _ = self.confirm(pks)

        broadcast = Broadcast.objects.get()
        self.assertRedirects(
            response, f"/admin/conversations/broadcast/{broadcast.pk}/change/", fetch_redirect_response=False
        )
        self.assertEqual(
            (broadcast.body, broadcast.sent_by, broadcast.send_at), ("Open at 9.", self.staff, None)
        )
        self.assertEqual((broadcast.selected, broadcast.blocked, broadcast.messages.count()), (3, 1, 2))
        entry = LogEntry.objects.get(object_id=str(broadcast.pk), content_type__model="broadcast")
        self.assertEqual(entry.get_change_message(), "Created for 3 selected, 2 will be texted: 1 blocked")
        shown = [str(m) for m in self.client.get(response["Location"]).context["messages"]]
        self.assertEqual(
            shown,
            ["Created the broadcast: 3 selected, 2 will be texted: 1 blocked. The worker sends it now."],
        )

    def test_it_schedules_the_broadcast_for_a_time_to_come(self) -> None:
        at = timezone.localtime() + timedelta(days=1)

        self.confirm(callers(2), send_at=f"{at:%Y-%m-%dT%H:%M}")

        broadcast = Broadcast.objects.get()
        self.assertEqual(broadcast.send_at, at.replace(second=0, microsecond=0))
        self.assertEqual(set(broadcast.messages.values_list("status", flat=True)), {"scheduled"})

    def test_a_time_in_the_past_is_a_form_error_and_the_page_says_what_the_text_costs(self) -> None:
        past = timezone.localtime() - timedelta(minutes=5)

        response, _ = self.action(
            callers(2),
            confirm="1",
            body="Ouvert à 9h ✓",
            our_number=RECIPIENT,
            send_at=f"{past:%Y-%m-%dT%H:%M}",
        )

        self.assertContains(response, "has passed; give a time to come, or leave it empty.")
        self.assertContains(response, "13 characters · UCS-2 · 1 segment each, 2 segments in all.")
        self.assertFalse(Broadcast.objects.exists())
        self.assertFalse(Message.objects.exists())

    def test_staff_without_the_broadcast_permission_get_no_such_action(self) -> None:
        pks = callers(2)
        self.client.force_login(staff_with("editor", "view_caller", "change_caller"))

        listed = self.client.get(CHANGELIST)
        response, _ = self.confirm(pks)

        offered = [name for name, _ in listed.context["action_form"].fields["action"].choices]
        self.assertNotIn("send_text", offered)
        self.assertIn("export_csv", offered)
        self.assertEqual(response.status_code, 302)  # The list again: "No action selected."
        self.assertFalse(Broadcast.objects.exists())

    def test_staff_with_it_get_the_action(self) -> None:
        callers(1)
        self.client.force_login(staff_with("sender", "view_caller", "send_broadcast"))

        listed = self.client.get(CHANGELIST)

        offered = [name for name, _ in listed.context["action_form"].fields["action"].choices]
        self.assertIn("send_text", offered)
        self.assertEqual(
            dict(listed.context["action_form"].fields["action"].choices)["send_text"],
            "Send a text to the selected callers (a broadcast)",
        )
