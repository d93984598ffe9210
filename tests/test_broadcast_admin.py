"""A broadcast's admin: the list, the page staff watch it on, its progress JSON, Pause, Resume
and Cancel, who may do what, and each action in its history."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.models import LogEntry
from django.test import override_settings

from conversations.admin.broadcast_admin import duration
from conversations.broadcast_control import broadcast_create
from conversations.models import Broadcast, Conversation, Message
from conversations.outbox_worker import outbox_drain
from tests.factories import staff_with, superuser
from tests.twilio import RECIPIENT, TwilioTestCase

BROADCASTS = "/admin/conversations/broadcast/"
NUMBERS = [f"+1415555{n:04d}" for n in range(6)]
UNREACHABLE = "Twilio error 30003: Unreachable destination handset"


def history_of(broadcast: Broadcast) -> list[str]:
    entries = LogEntry.objects.filter(object_id=str(broadcast.pk), content_type__model="broadcast")
    return [entry.get_change_message() for entry in entries.order_by("action_time", "pk")]


@override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1)
class BroadcastAdminTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.staff = superuser()
        self.client.force_login(self.staff)
        Conversation.objects.create(sender=NUMBERS[5], recipient=RECIPIENT, opted_out=True)
        # Six numbers and one of them again: five get a text, one opted out, one duplicate.
        self.broadcast = broadcast_create(
            body="The shop opens at 9 tomorrow.",
            their_numbers=[*NUMBERS, "(415) 555-0000"],
            sent_by=self.staff,
        )
        self.page = f"{BROADCASTS}{self.broadcast.pk}/change/"

    def settle(self, *statuses: tuple[str, str]) -> None:
        """Give its first texts these (status, error), the way the worker and Twilio would."""
        rows = list(self.broadcast.messages.order_by("pk"))
        for message, (status, error) in zip(rows, statuses, strict=False):
            Message.objects.filter(pk=message.pk).update(status=status, error=error)

    def post(self, name: str) -> list[str]:
        response = self.client.post(f"{BROADCASTS}{self.broadcast.pk}/{name}/", follow=True)
        self.broadcast.refresh_from_db()
        return [str(message) for message in response.context["messages"]]

    def test_its_page_shows_the_bar_the_counts_the_excluded_and_the_time_left(self) -> None:
        self.settle(("delivered", ""), ("sent", ""), ("failed", UNREACHABLE))

        response = self.client.get(self.page)

        self.assertContains(response, '<div class="broadcast-bar-done" style="width: 60%"></div>', html=True)
        self.assertContains(response, '<strong class="broadcast-percent">60 %</strong> of 5 texts done')
        for name, count in {
            "pending": 2,
            "sent": 1,
            "delivered": 1,
            "failed": 1,
            "canceled": 0,
            "unknown": 0,
        }.items():
            self.assertContains(
                response, f'<span class="count" data-count="{name}">{count}</span> {name}', html=True
            )
        self.assertContains(response, "7 selected, 5 will be texted: 1 opted out, 1 duplicate.")
        self.assertContains(response, f'data-progress-url="{BROADCASTS}{self.broadcast.pk}/progress/"')
        self.assertContains(response, "conversations/broadcast.js")  # Which polls it.
        # Two texts of one segment left at SMS_SEND_RATE=1 a second.
        self.assertContains(response, 'time left: <span class="broadcast-eta">under a minute</span>')
        with override_settings(SMS_SEND_RATE=0.01):  # 200 s.
            self.assertContains(self.client.get(self.page), '<span class="broadcast-eta">about 3 min</span>')

    def test_its_page_lists_the_failures_with_their_reasons_and_links_to_its_messages(self) -> None:
        self.settle(("failed", UNREACHABLE), ("delivered", ""))
        failed = self.broadcast.messages.get(status="failed")

        response = self.client.get(self.page)

        self.assertContains(response, UNREACHABLE)
        self.assertContains(response, f"/admin/conversations/conversation/{failed.conversation_id}/change/")
        not_sent = self.client.get(response.context["failures_url"])
        self.assertEqual([m.pk for m in not_sent.context["cl"].result_list], [failed.pk])
        listed = self.client.get(response.context["messages_url"])
        self.assertEqual(
            {m.pk for m in listed.context["cl"].result_list},
            set(self.broadcast.messages.values_list("pk", flat=True)),
        )

    def test_its_progress_json_is_counted_from_the_rows(self) -> None:
        self.assertEqual(self.client.get(f"{BROADCASTS}{self.broadcast.pk}/progress/").json()["percent"], 0)

        outbox_drain()  # The worker sends them all (console backend).

        data = self.client.get(f"{BROADCASTS}{self.broadcast.pk}/progress/").json()
        self.assertEqual(
            data,
            {
                "status": "completed",
                "status_label": "Completed",
                "counts": {
                    "pending": 0,
                    "sending": 0,
                    "sent": 5,
                    "delivered": 0,
                    "failed": 0,
                    "canceled": 0,
                    "unknown": 0,
                },
                "total": 5,
                "percent": 100,
                "eta": "none",
                "running": False,
            },
        )

    def test_staff_pause_resume_and_cancel_it_and_each_is_in_its_history(self) -> None:
        self.assertEqual(self.post("pause"), ["Paused: no new text of it goes out until you resume it."])
        self.assertEqual(self.broadcast.status, "paused")
        outbox_drain()
        self.assertEqual(self.broadcast.progress().counts["pending"], 5)  # Paused: nothing went.
        paused = self.client.get(self.page)
        self.assertContains(paused, 'id="resume-broadcast"')
        self.assertContains(paused, '<span class="broadcast-eta">under a minute once resumed</span>')

        self.assertEqual(self.post("resume"), ["Resumed: the worker goes on where it stopped."])
        self.assertEqual(self.broadcast.status, "scheduled")
        self.settle(("sent", ""), ("sent", ""))

        self.assertEqual(self.post("cancel"), ["Canceled: 3 texts will not be sent; those sent stay sent."])
        self.assertEqual(self.broadcast.status, "canceled")
        counts = self.broadcast.progress().counts
        self.assertEqual((counts["sent"], counts["canceled"], counts["pending"]), (2, 3, 0))
        self.assertEqual(
            history_of(self.broadcast),
            ["Paused the broadcast", "Resumed the broadcast", "Canceled the broadcast (3 texts not sent)"],
        )
        response = self.client.get(self.page)
        self.assertNotContains(response, 'id="pause-broadcast"')
        self.assertNotContains(response, "data-progress-url")  # Finished: nothing more to watch.

    def test_pausing_a_finished_broadcast_says_so_and_changes_nothing(self) -> None:
        outbox_drain()

        self.assertEqual(self.post("pause"), ["It is completed: nothing to pause."])
        self.assertEqual(self.post("resume"), ["It is completed: nothing to resume."])
        self.assertEqual(self.broadcast.status, "completed")
        self.assertEqual(history_of(self.broadcast), [])

    def test_the_buttons_are_posts_only(self) -> None:
        response = self.client.get(f"{BROADCASTS}{self.broadcast.pk}/cancel/")

        self.assertEqual(response.status_code, 405)
        self.broadcast.refresh_from_db()
        self.assertEqual(self.broadcast.status, "scheduled")

    def test_the_list_shows_each_broadcast_with_its_progress_and_filters_by_status(self) -> None:
        self.settle(("sent", ""), ("sent", ""))
        done = broadcast_create(body="Closed today.", their_numbers=NUMBERS[:2])
        done.messages.update(status="delivered")
        Broadcast.objects.filter(pk=self.broadcast.pk).update(status="paused")

        response = self.client.get(BROADCASTS)

        self.assertContains(response, "The shop opens at 9 tomorrow.")
        self.assertContains(
            response, '<progress max="100" value="40" style="width: 6rem;"></progress> 40 % of 5', html=False
        )
        self.assertContains(response, "100 % of 2")
        paused = self.client.get(BROADCASTS, {"status__exact": "paused"})
        self.assertEqual([b.pk for b in paused.context["cl"].result_list], [self.broadcast.pk])
        self.assertNotEqual(done.pk, self.broadcast.pk)

    def test_there_is_no_add_form(self) -> None:
        self.assertEqual(self.client.get(f"{BROADCASTS}add/").status_code, 403)
        self.assertNotContains(self.client.get(BROADCASTS), f'href="{BROADCASTS}add/"')

    def test_the_conversation_shows_which_broadcast_a_text_came_from(self) -> None:
        message = self.broadcast.messages.first()
        assert message is not None

        response = self.client.get(f"/admin/conversations/conversation/{message.conversation_id}/change/")

        self.assertContains(
            response,
            f'<a href="{self.page}" class="broadcast-link">broadcast {self.broadcast.pk}</a>',
            html=True,
        )


@override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT)
class BroadcastPermissionsTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.broadcast = broadcast_create(body="Closed today.", their_numbers=NUMBERS[:3])
        self.page = f"{BROADCASTS}{self.broadcast.pk}/change/"

    def test_staff_who_may_view_see_the_progress_but_no_buttons_and_get_403_on_posting(self) -> None:
        self.client.force_login(staff_with("reader", "view_broadcast"))

        response = self.client.get(self.page)

        self.assertContains(response, "broadcast-bar")
        self.assertNotContains(response, 'id="pause-broadcast"')
        self.assertNotContains(response, 'id="cancel-broadcast"')
        self.assertEqual(self.client.get(f"{BROADCASTS}{self.broadcast.pk}/progress/").status_code, 200)
        for name in ("pause", "resume", "cancel"):
            with self.subTest(name=name):
                self.assertEqual(
                    self.client.post(f"{BROADCASTS}{self.broadcast.pk}/{name}/").status_code, 403
                )
        self.broadcast.refresh_from_db()
        self.assertEqual(self.broadcast.status, "scheduled")
        self.assertEqual(history_of(self.broadcast), [])

    def test_staff_with_the_permission_get_the_buttons(self) -> None:
        self.client.force_login(staff_with("sender", "view_broadcast", "send_broadcast"))

        self.assertContains(self.client.get(self.page), 'id="pause-broadcast"')
        self.client.post(f"{BROADCASTS}{self.broadcast.pk}/pause/")

        self.broadcast.refresh_from_db()
        self.assertEqual(self.broadcast.status, "paused")

    def test_staff_without_the_view_permission_get_no_progress(self) -> None:
        self.client.force_login(staff_with("other", "view_caller"))

        self.assertEqual(self.client.get(f"{BROADCASTS}{self.broadcast.pk}/progress/").status_code, 403)
        self.assertEqual(self.client.get(self.page).status_code, 403)


class DurationTestCase(TwilioTestCase):
    def test_it_says_the_time_left_as_people_do(self) -> None:
        cases = {0: "none", 40: "under a minute", 170: "about 3 min", 3900: "about 1 h 05 min"}
        for seconds, said in cases.items():
            with self.subTest(seconds=seconds):
                self.assertEqual(duration(timedelta(seconds=seconds)), said)
