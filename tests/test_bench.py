"""`make bench`'s pieces, checked without a long run: the Flask reference, the requests, the maths."""

import shutil
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from django.test import SimpleTestCase, TransactionTestCase
from twilio.request_validator import RequestValidator

from bench import load, profile, report
from bench.flask_app import app as flask_app
from bench.traffic import Pair, Signer, make_pairs, send_text, write_requests
from conversations.models import Conversation
from tests.server import gunicorn
from tests.twilio import TOKEN

URL = "https://127.0.0.1:8000/sms/"


def wrk_result(rate: float, p50_ms: float = 10.0, p99_ms: float = 20.0) -> load.WrkResult:
    return load.WrkResult(requests=int(rate * 10), seconds=10.0, p50_ms=p50_ms, p99_ms=p99_ms)


class FlaskReferenceTests(SimpleTestCase):
    def text(self, client, sender: str) -> str:
        response = client.post("/", data={"From": sender, "To": "+15005550006", "Body": "Hello"})
        self.assertEqual(response.status_code, 200)
        return response.get_data(as_text=True)

    def test_it_counts_the_texts_of_each_cookie_on_its_own(self) -> None:
        rey, friend = flask_app.test_client(), flask_app.test_client()
        self.text(rey, "+14158675308")
        self.text(friend, "+14155550000")
        reply = self.text(rey, "+14158675308")
        self.assertIn("<Message>Rey has messaged +15005550006 2 times.</Message>", reply)
        self.assertIn("Friend has messaged +15005550006 2 times.", self.text(friend, "+14155550000"))

    def test_a_text_without_the_cookie_starts_again_at_one(self) -> None:
        self.text(flask_app.test_client(), "+14155550000")
        self.assertIn("Friend has messaged +15005550006 1 times.", self.text(flask_app.test_client(), "+1"))


class RequestFileTests(SimpleTestCase):
    def test_each_line_is_a_signed_text_of_its_pair_with_a_fresh_message_sid(self) -> None:
        pairs = make_pairs(3)
        cookies = {pair.index: f"sessionid=key{pair.index}" for pair in pairs}
        with tempfile.TemporaryDirectory() as directory:
            file = Path(directory) / "requests.txt"
            write_requests(file, "/sms/", Signer(TOKEN, URL), pairs, cookies, 50)
            lines = file.read_text().splitlines()
        self.assertEqual(len(lines), 50)
        sids = set()
        for line in lines:
            index, path, signature, cookie, body = line.split("\t")
            params = dict(parse_qsl(body, keep_blank_values=True))
            self.assertEqual((path, cookie), ("/sms/", f"sessionid=key{index}"))
            self.assertEqual(params["From"], pairs[int(index)].sender)
            self.assertTrue(RequestValidator(TOKEN).validate(URL, params, signature))
            sids.add(params["MessageSid"])
        self.assertEqual(len(sids), 50)


class ReportTests(SimpleTestCase):
    def test_the_ratios_divide_the_project_by_each_reference(self) -> None:
        targets = report.targets(
            wrk_result(1000), wrk_result(800), wrk_result(500), wrk_result(400, 10, 60), 6
        )
        values = {target.label: round(target.value, 2) for target in targets}
        self.assertEqual(
            values,
            {
                "project ÷ naive Django, requests/s": 0.8,
                "project ÷ Flask app, requests/s": 0.5,
                "project p99 ÷ p50": 6.0,
                "SQL statements per text": 6,
                "project ÷ no-op view, requests/s": 0.4,
            },
        )
        # The no-op view's ratio is a figure, with no target to miss.
        self.assertEqual([target.met for target in targets], [False, True, False, True, True])

    def test_a_target_on_its_bound_is_met(self) -> None:
        self.assertTrue(report.Target("ratio", 0.5, 0.5, at_least=True).met)
        self.assertTrue(report.Target("tail", 5.0, 5, at_least=False).met)
        self.assertIn("MISSED", report.Target("SQL statements per text", 7, 6, at_least=False).line())

    def test_a_count_may_exceed_the_replies_only_by_texts_in_flight(self) -> None:
        senders = {0: "+14155550000", 1: "+14155550001", 2: "+14155550002"}
        answered, unanswered = Counter({0: 5, 1: 5, 2: 5}), Counter({0: 2, 1: 2})
        mismatches, line = report.check_counts(senders, answered, unanswered, {0: 5, 1: 7, 2: 5})
        self.assertEqual(mismatches, [])
        self.assertIn("of the 4 texts in flight when wrk stopped, the server counted 2", line)
        mismatches, line = report.check_counts(senders, answered, unanswered, {0: 8, 1: 4, 2: 5})
        self.assertEqual(len(mismatches), 2)
        self.assertIn("MISMATCH for 2 of 3 pairs", line)

    def test_wrk_output_is_read_per_pair(self) -> None:
        output = (
            "Running 1s test\nBENCH requests 30\nBENCH seconds 1.5\nBENCH p50_ms 2.5\nBENCH p99_ms 9\n"
            "BENCH max_ms 12\nBENCH error timeout 1\nBENCH status 200 29\nBENCH status 503 1\n"
            "BENCH pair 0 20 19\nBENCH pair 1 11 10\nBENCH unmapped 0\nBENCH exhausted 0\n"
        )
        result = load.parse(output)
        self.assertEqual((result.rate, result.p50_ms, result.p99_ms), (20.0, 2.5, 9.0))
        self.assertEqual((result.sent, result.ok), (Counter({0: 20, 1: 11}), Counter({0: 19, 1: 10})))
        self.assertEqual(result.not_ok, 2)
        self.assertEqual(len(result.problems("webhook")), 1)

    def test_the_profile_sums_samples_per_function(self) -> None:
        collapsed = (
            "run (gunicorn/workers/gthread.py:10);sms (conversations/views.py:20) 3\n"
            "run (gunicorn/workers/gthread.py:10);sms (conversations/views.py:24);dumps (json/__init__.py:9) 2\n"
            "run (gunicorn/workers/gthread.py:12) 5\n"
        )
        own, project = profile.self_time(collapsed)
        self.assertEqual(
            own,
            Counter(
                {
                    "sms (conversations/views.py)": 3,
                    "dumps (json/__init__.py)": 2,
                    "run (gunicorn/workers/gthread.py)": 5,
                }
            ),
        )
        self.assertEqual(project, Counter({"sms (conversations/views.py)": 5}))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
class WrkScriptTests(TransactionTestCase):
    def wrk(self, pairs: list[Pair], seconds: int, pace_ms: int = 0) -> load.WrkResult:
        """wrk -t1 -c4 on the webhook of a one-worker gunicorn, the pairs' cookies kept."""
        with gunicorn(workers=1) as server, tempfile.TemporaryDirectory() as directory:
            # wrk plays the TLS proxy (X-Forwarded-Proto), so Twilio signs the https URL.
            signer = Signer(TOKEN, server.replace("http://", "https://") + "/sms/")
            cookies = {
                pair.index: send_text(f"{server}/sms/", signer, pair, "sessionid")[1] for pair in pairs
            }
            file = Path(directory) / "requests.txt"
            write_requests(file, "/sms/", signer, pairs, cookies, 5000)
            wrk = shutil.which("wrk") or ""
            return load.run_wrk(wrk, server, file, 1, 4, seconds, wrap=False, pace_ms=pace_ms)

    def test_every_reply_is_counted_for_its_pair_and_no_text_is_sent_twice(self) -> None:
        pairs = make_pairs(5)
        result = self.wrk(pairs, seconds=1)
        self.assertGreater(result.requests, 0)
        self.assertEqual(result.problems("webhook"), [])
        counts = {
            int(sender[-4:]): count
            for sender, count in Conversation.objects.values_list("sender", "window_count")
        }
        answered = Counter({pair.index: 1 for pair in pairs}) + result.ok
        unanswered = Counter({pair: sent - result.ok[pair] for pair, sent in result.sent.items()})
        senders = {pair.index: pair.sender for pair in pairs}
        self.assertEqual(report.check_counts(senders, answered, unanswered, counts)[0], [])

    def test_a_paced_run_sends_about_connections_over_the_pace_texts_a_second(self) -> None:
        result = self.wrk(make_pairs(2), seconds=2, pace_ms=200)
        # 4 connections, each waiting 200 ms before each text: at most 20 texts/s, 40 in 2 s
        # (a flat-out run answers hundreds here).
        self.assertEqual(result.problems("webhook"), [])
        self.assertTrue(0 < result.requests <= 44, result.requests)
