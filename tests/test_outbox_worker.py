"""The worker's tick, in-process, against Twilio's API faked at its HTTP layer: what each of
Twilio's answers does to a row, and that no row is ever POSTed twice by itself."""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from typing import Any
from unittest import mock

import requests
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from twilio.http.http_client import TwilioHttpClient

from conversations.models import Conversation, Message, OutboxWake
from conversations.outbox import text_enqueue, texts_enqueue
from conversations.outbox_sql import next_claimable_statement
from conversations.outbox_worker import outbox_drain
from conversations.pairs import outbound_accepted
from conversations.tasks import outbox_help, outbox_tick
from tests.fake_twilio_api import FakeTwilioApi
from tests.twilio import RECIPIENT, SENDER, TwilioTestCase, reply_of, sign
from tests.twilio_api_server import TwilioApiServer, twilio_api_server, twilio_library_redirected

OTHER = "+14155559999"


@override_settings(
    SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_FROM_NUMBER=RECIPIENT, SEND_ATTEMPTS=3
)
class OutboxWorkerTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api = FakeTwilioApi()
        self.message = text_enqueue(their_number=SENDER, body="Your table is ready")

    def tick(self) -> Message:
        with self.api.serving():
            outbox_drain()
        self.message.refresh_from_db()
        return self.message

    def backoff_passes(self) -> None:
        Message.objects.filter(status="pending").update(send_at=timezone.now())

    def test_it_sends_a_queued_text_once(self) -> None:
        self.api.accepts(sid="SM" + "a" * 32)

        message = self.tick()
        self.tick()  # Another tick, or the same one run twice: nothing left to send.

        self.assertEqual((message.status, message.sid, message.attempts), ("queued", "SM" + "a" * 32, 1))
        self.assertEqual(len(self.api.requests), 1)

    @override_settings(TWILIO_TIMEOUT=2.5)
    def test_every_call_to_twilio_waits_at_most_twilio_timeout(self) -> None:
        self.api.accepts()
        made = mock.patch("conversations.twilio_api.TwilioHttpClient", wraps=TwilioHttpClient)

        with made as http_client:
            self.tick()

        # The client Twilio's library calls with, made for this call: no default (no timeout)
        # and no retry of its own. tests/test_outbox_worker_process.py sees the timeout cut a
        # real read short.
        http_client.assert_called_once_with(timeout=2.5, max_retries=0)
        self.assertEqual(len(self.api.requests), 1)

    def test_a_ticks_texts_share_one_client_closed_when_the_tick_ends(self) -> None:
        texts_enqueue(pairs=[("", OTHER), ("", "+14155550100")], body="News")
        for n in range(3):
            self.api.accepts(sid=f"SM{n:032x}")
        made = mock.patch("conversations.twilio_api.TwilioHttpClient", wraps=TwilioHttpClient)

        with made as http_client, mock.patch("requests.Session.close", autospec=True) as close:
            self.tick()

        # One keep-alive session for the tick's three texts (no handshake each), then closed.
        http_client.assert_called_once_with(timeout=settings.TWILIO_TIMEOUT, max_retries=0)
        self.assertEqual(len(self.api.requests), 3)
        close.assert_called_once()

    def tick_over_http(self, **environment: str) -> TwilioApiServer:
        """A tick whose requests go through requests and urllib3 to Twilio's API on loopback,
        in this environment (proxy variables)."""
        # Either case of each name: Python's proxy lookup prefers the lowercase one, even empty.
        names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
        given = {case(name): environment.get(name, "") for name in names for case in (str.upper, str.lower)}
        with (
            twilio_api_server() as api,
            twilio_library_redirected(api.url),
            mock.patch.dict(os.environ, given),
        ):
            outbox_drain()
        self.message.refresh_from_db()
        return api

    def test_a_tick_reads_the_proxy_settings_of_the_environment_once(self) -> None:
        texts_enqueue(pairs=[("", OTHER), ("", "+14155550100")], body="News")
        read = mock.patch("requests.sessions.get_environ_proxies", wraps=requests.utils.get_environ_proxies)

        with read as environ_proxies:
            api = self.tick_over_http()

        # requests reads them again for every request unless told not to: about a tenth of
        # the worker's CPU per text.
        self.assertEqual(len(api.posts), 3)
        environ_proxies.assert_called_once()

    def test_texts_go_through_the_proxy_the_environment_names(self) -> None:
        with socket.socket() as closed:  # A port nothing listens on: the proxy is down.
            closed.bind(("127.0.0.1", 0))
            proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"

        api = self.tick_over_http(HTTP_PROXY=proxy)

        # It never reached Twilio: tried again after a backoff, never in doubt.
        self.assertEqual((len(api.posts), self.message.status), (0, "pending"))
        self.assertIn("Could not connect", self.message.error)

        self.backoff_passes()
        api = self.tick_over_http(HTTP_PROXY=proxy, NO_PROXY="api.twilio.com")

        # (The fake API is at Twilio's address as far as the proxy settings are concerned.)
        self.assertEqual((len(api.posts), self.message.status), (1, "queued"))

    def test_it_retries_a_429_after_a_backoff_and_sends_it_once(self) -> None:
        self.api.too_many_requests()
        self.api.accepts()

        waiting = self.tick()
        self.assertEqual((waiting.status, waiting.attempts), ("pending", 1))
        self.assertGreater(waiting.send_at, timezone.now())  # Backing off, not spinning.
        self.assertIn("Too Many Requests (Twilio error 20429)", waiting.error)
        self.backoff_passes()

        self.assertEqual((self.tick().status, self.message.attempts), ("queued", 2))
        self.assertEqual(len(self.api.requests), 2)

    def test_it_retries_when_the_connection_was_never_made(self) -> None:
        self.api.refuses_connections()
        self.api.accepts()

        self.assertEqual(self.tick().status, "pending")
        self.backoff_passes()

        self.assertEqual(self.tick().status, "queued")

    def test_it_gives_up_after_send_attempts_with_the_last_error(self) -> None:
        for _ in range(3):
            self.api.too_many_requests()
            self.tick()
            self.backoff_passes()

        self.assertEqual((self.message.status, self.message.attempts), ("failed", 3))
        self.assertIn("(gave up after 3 attempts)", self.message.error)

    def test_a_read_timeout_makes_the_row_unknown_and_it_is_never_sent_again(self) -> None:
        self.api.times_out()

        with self.assertLogs("conversations.outbox_worker", "WARNING"):
            message = self.tick()
        self.tick()

        self.assertEqual((message.status, message.sid), ("unknown", None))
        self.assertIn("it may have the text", message.error)
        self.assertEqual(len(self.api.requests), 1)

    def test_a_server_error_makes_the_row_unknown(self) -> None:
        self.api.refuses(503, 20500, "Service Unavailable")

        with self.assertLogs("conversations.outbox_worker", "WARNING"):
            self.assertEqual(self.tick().status, "unknown")

    def test_a_late_status_callback_fills_in_an_unknown_row_and_opens_the_window(self) -> None:
        self.api.times_out()
        with self.assertLogs("conversations.outbox_worker", "WARNING"):
            self.tick()
        url = f"http://testserver/sms/status/?outbox={self.message.pk}"
        params = {"AccountSid": "AC" + "0" * 32, "MessageSid": "SM" + "f" * 32, "MessageStatus": "delivered"}

        response = self.client.post(url, params, headers={"X-Twilio-Signature": sign(url, params)})

        self.assertEqual(response.status_code, 204)
        self.message.refresh_from_db()
        self.assertEqual((self.message.status, self.message.sid), ("delivered", "SM" + "f" * 32))
        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Friend has messaged +15005550006 1 time.")
        self.assertIsNotNone(Conversation.objects.get().session_id)

    def test_a_row_a_dead_worker_left_sending_becomes_unknown_without_a_post(self) -> None:
        long_ago = timezone.now() - timedelta(minutes=5)
        Message.objects.filter(pk=self.message.pk).update(status="sending", attempts=1, claimed_at=long_ago)

        message = self.tick()

        self.assertEqual(message.status, "unknown")
        self.assertIn("The worker stopped while sending it", message.error)
        self.assertEqual(self.api.requests, [])

    def test_a_row_another_worker_is_sending_is_left_alone(self) -> None:
        Message.objects.filter(pk=self.message.pk).update(status="sending", claimed_at=timezone.now())

        self.assertEqual(self.tick().status, "sending")
        self.assertEqual(self.api.requests, [])

    def test_a_text_whose_recipient_opted_out_meanwhile_is_canceled(self) -> None:
        self.twilio.text("STOP")

        message = self.tick()

        self.assertEqual(message.status, "canceled")
        self.assertIn("replied STOP", message.error)  # Canceled by the STOP itself, or at the claim.
        self.assertEqual(self.api.requests, [])

    def test_a_stop_twilio_reports_fails_that_text_only_and_the_rest_go(self) -> None:
        texts_enqueue(pairs=[("", OTHER)], body="News")
        self.api.refuses_opted_out()
        self.api.accepts(to=OTHER)

        with self.assertLogs("conversations.outbox_worker", "WARNING"):
            self.assertEqual(self.tick().status, "failed")

        self.assertIs(Conversation.objects.get(sender=SENDER).opted_out, True)
        self.assertEqual(Message.objects.get(body="News").status, "queued")

    def test_a_staff_text_goes_ahead_of_bulk_texts(self) -> None:
        Message.objects.filter(pk=self.message.pk).update(status="canceled")
        texts_enqueue(pairs=[("", f"+1415555{n:04d}") for n in range(3)], body="Bulk")
        text_enqueue(their_number=OTHER, body="Someone waits for this")
        for n in range(4):
            self.api.accepts(sid=f"SM{n:032x}")

        self.tick()

        self.assertEqual(self.api.requests[0].data["Body"], "Someone waits for this")

    def test_a_scheduled_text_waits_for_its_time(self) -> None:
        Message.objects.filter(pk=self.message.pk).update(status="canceled")
        later = text_enqueue(their_number=SENDER, body="Later", send_at=timezone.now() + timedelta(hours=1))

        self.tick()

        later.refresh_from_db()
        self.assertEqual(later.status, "scheduled")
        self.assertEqual(self.api.requests, [])

    def test_twilios_yes_to_a_bulk_text_is_recorded_in_four_statements(self) -> None:
        Message.objects.filter(pk=self.message.pk).update(status="sending")
        sending = Message.objects.select_related("conversation").get(pk=self.message.pk)

        with CaptureQueriesContext(connection) as statements:
            outbound_accepted(sending, sid="SM" + "a" * 32, status="queued")

        # The pair's row locked by its key (no Caller, no lookup by numbers: the texts the
        # worker sends have their row already), the new window's session, the conversation,
        # the text: in the writer lock on SQLite, so every statement spared is the webhook's.
        done = [query["sql"].split()[0] for query in statements.captured_queries]
        self.assertEqual(
            [word for word in done if word not in ("SAVEPOINT", "RELEASE")],
            ["SELECT", "INSERT", "UPDATE", "UPDATE"],
        )
        self.assertEqual(reply_of(self.twilio.text(cookie="")), "Friend has messaged +15005550006 1 time.")


class OutboxIndexTestCase(TwilioTestCase):
    def setUp(self) -> None:
        super().setUp()
        now = timezone.now()
        self.queries: dict[str, QuerySet[Message] | tuple[str, dict[str, Any]]] = {
            "claim": next_claimable_statement(connection, now),  # in the writer lock for each text
            "due later": Message.objects.due_later(now),  # the tick that wakes for later texts
            "in flight": Message.objects.ready(now).union(Message.objects.sending()),  # a tick's start
        }

    def test_the_worker_reads_the_outbox_indexes_not_every_message(self) -> None:
        for name, query in self.queries.items():
            with self.subTest(name):
                self.assertNotRegex(self.plan(query), FULL_SCAN[connection.vendor])

    def test_the_worker_claims_the_next_text_without_sorting_the_backlog(self) -> None:
        texts_enqueue(pairs=[(RECIPIENT, f"+1415555{n:04d}") for n in range(2000)], body="News")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # Its planner weighs the rows it knows of.
                cursor.execute("ANALYZE conversations_message")

        plan = self.plan(self.queries["claim"])

        # The first waiting text in the outbox's order, found in its index: not all of them
        # read and sorted for each text (a 10,000-text broadcast made that 0.8 ms on SQLite).
        self.assertIn("message_outbox_order", plan)
        self.assertNotIn("TEMP B-TREE" if connection.vendor == "sqlite" else "Sort", plan)

    def plan(self, query: QuerySet[Message] | tuple[str, dict[str, Any]]) -> str:
        # SQLite takes a partial index only for a WHERE with its very terms (in_outbox() and
        # the claim's SQL write them out); without them it reads the whole table.
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The table is small enough to read whole: forbid it, to see that an index serves.
                cursor.execute("SET LOCAL enable_seqscan = off")
            if isinstance(query, QuerySet):
                return query.explain()
            sql, params = query
            cursor.execute(
                ("EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN ") + sql, params
            )
            return "\n".join(" ".join(str(column) for column in row) for row in cursor.fetchall())


# How each database says it read a whole table (the claim's SQL names it m).
FULL_SCAN = {
    "sqlite": r"SCAN (conversations_message|m)($|\n)",
    "postgresql": "Seq Scan on conversations_message",
}


class OutboxWakeTestCase(TwilioTestCase):
    """What wakes the worker: one tick for a burst of texts, not one each."""

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT)
    def test_a_burst_of_texts_enqueues_one_tick(self) -> None:
        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            for n in range(3):
                text_enqueue(their_number=f"+1415555{n:04d}", body="Hi")

        self.assertEqual(tick.using.return_value.enqueue.call_count, 1)
        self.assertIsNotNone(OutboxWake.objects.get().wake_at)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT)
    def test_a_tick_whose_time_has_passed_is_replaced(self) -> None:
        OutboxWake.objects.create(pk=1, wake_at=timezone.now() - timedelta(minutes=1))  # Lost, or killed.

        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            text_enqueue(their_number=SENDER, body="Hi")

        self.assertEqual(tick.using.return_value.enqueue.call_count, 1)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_a_tick_behind_the_pace_with_texts_waiting_enqueues_one_helper(self) -> None:
        texts_enqueue(pairs=[("", f"+1415555{n:04d}") for n in range(5)], body="Hi")

        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            outbox_drain()

        # The sender's slot was free when the first text asked for it, four more waited: one
        # more tick, for another worker process, however many texts this tick then sent.
        self.assertEqual(tick.using.return_value.enqueue.call_count, 1)
        self.assertEqual(Message.objects.filter(status="sent").count(), 5)

    def helpers_asked_for(self, batches: int) -> int:
        """Helper ticks enqueued by ticks behind the pace, each finding five texts waiting."""
        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            for batch in range(batches):
                texts_enqueue(pairs=[("", f"+141555{batch}{n:04d}") for n in range(5)], body="Hi")
                outbox_drain()
        return tick.using.return_value.enqueue.call_args_list.count(mock.call(helper=True))

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_no_second_helper_is_enqueued_while_one_waits_for_a_free_process(self) -> None:
        # Behind the pace twice: the helper the first tick asked for, which no process has
        # taken (all busy), is enough.
        self.assertEqual(self.helpers_asked_for(batches=2), 1)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_a_tick_behind_the_pace_asks_for_a_helper_at_most_once_a_second(self) -> None:
        OutboxWake.objects.create(pk=1, helper_at=timezone.now())  # One waits for a free process.
        texts_enqueue(pairs=[("", f"+1415555{n:04d}") for n in range(5)], body="Hi")

        with mock.patch("conversations.outbox_worker.outbox_help", wraps=outbox_help) as asked:
            outbox_drain()

        # Each text went late, in a few milliseconds: asking is a transaction in the writer
        # lock, and "no" holds for a while.
        self.assertEqual(Message.objects.filter(status="sent").count(), 5)
        asked.assert_called_once()

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_a_helper_that_began_lets_the_next_tick_behind_the_pace_ask_for_another(self) -> None:
        OutboxWake.objects.create(pk=1, helper_at=timezone.now())  # A helper waits.
        outbox_tick.call(helper=True)  # A free process took it.
        self.assertIsNone(OutboxWake.objects.get().helper_at)

        self.assertEqual(self.helpers_asked_for(batches=1), 1)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_a_helper_lost_before_it_began_is_replaced(self) -> None:
        OutboxWake.objects.create(pk=1, helper_at=timezone.now() - timedelta(minutes=1))

        self.assertEqual(self.helpers_asked_for(batches=1), 1)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=1000)
    def test_a_single_text_needs_no_helper(self) -> None:
        text_enqueue(their_number=SENDER, body="Someone waits for this")

        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            outbox_drain()

        self.assertEqual(tick.using.return_value.enqueue.call_count, 0)

    @override_settings(SMS_BACKEND="console", TWILIO_FROM_NUMBER=RECIPIENT, SMS_SEND_RATE=0.5)
    def test_a_tick_out_of_time_hands_over_to_a_successor_of_its_own(self) -> None:
        texts_enqueue(pairs=[("", f"+1415555{n:04d}") for n in range(3)], body="Hi")
        OutboxWake.objects.update_or_create(pk=1, defaults={"wake_at": timezone.now()})  # Another tick due.

        with (
            mock.patch("conversations.tasks.outbox_tick") as tick,
            self.captureOnCommitCallbacks(execute=True),
        ):
            outbox_drain(seconds=0.3)  # One text, its sender's next slot 2 s on: out of time.

        # The first text's slot was free (a helper) and the tick ran out of time (its successor):
        # both enqueued although a tick of the chain is already due.
        self.assertEqual(tick.using.return_value.enqueue.call_count, 2)
        self.assertEqual(Message.objects.filter(status="sent").count(), 1)
