"""`make bench --outbox`'s pure parts (bench/outbox.py), checked without a run: the rate held
from the fake API's arrival times, POSTs per row, the targets and the report's lines."""

import math
from collections import Counter

from django.test import SimpleTestCase

from bench import load, outbox, report


def every(interval: float, count: int, start: float = 1000.0) -> list[float]:
    return [start + n * interval for n in range(count)]


def row(label: str, p99_ms: float) -> report.Row:
    return report.Row(label, load.WrkResult(requests=100, seconds=10.0, p50_ms=10.0, p99_ms=p99_ms), 1.0)


class HeldRateTests(SimpleTestCase):
    def test_posts_arriving_every_20_ms_hold_50_a_second_in_every_window(self) -> None:
        rate = outbox.held_rate(every(0.02, 501))  # 500 intervals: 10 s.

        self.assertAlmostEqual(rate.overall, 50.0)
        self.assertEqual((rate.worst, rate.best), (50.0, 50.0))
        self.assertEqual((rate.posts, round(rate.seconds, 6)), (501, 10.0))

    def test_a_stall_shows_in_the_worst_window_and_a_burst_in_the_best(self) -> None:
        steady = every(0.02, 500)  # 10 s at 50/s
        stalled = every(0.1, 50, start=steady[-1] + 0.1)  # 5 s at 10/s
        burst = every(0.01, 500, start=stalled[-1] + 0.01)  # 5 s at 100/s

        rate = outbox.held_rate(steady + stalled + burst)

        self.assertAlmostEqual(rate.worst, 10.0, delta=0.5)
        self.assertAlmostEqual(rate.best, 100.0, delta=0.5)
        self.assertAlmostEqual(rate.overall, 1049 / 20, delta=0.1)

    def test_the_arrival_order_does_not_matter(self) -> None:
        times = every(0.02, 501)

        self.assertEqual(outbox.held_rate(times[::-1]), outbox.held_rate(times))

    def test_segments_count_for_the_rate(self) -> None:
        self.assertAlmostEqual(outbox.held_rate(every(0.04, 251), segments=2).overall, 50.0)

    def test_too_few_posts_or_too_short_a_run_give_no_figure(self) -> None:
        self.assertTrue(math.isnan(outbox.held_rate([1.0]).overall))
        short = outbox.held_rate(every(0.02, 100))  # 2 s: no 5 s window fits.
        self.assertAlmostEqual(short.overall, 50.0)
        self.assertTrue(math.isnan(short.worst) and math.isnan(short.best))


class PostsPerRowTests(SimpleTestCase):
    def test_it_counts_rows_never_posted_and_posted_twice(self) -> None:
        posts = Counter({"+12025550000": 1, "+12025550001": 2, "+19999999999": 1})

        per_row = outbox.posts_per_row(["+12025550000", "+12025550001", "+12025550002"], posts)

        self.assertEqual(per_row, Counter({0: 1, 1: 1, 2: 1}))


class TargetTests(SimpleTestCase):
    def targets(
        self, overall: float, without: float = 40.0, with_worker: float = 60.0
    ) -> list[report.Target]:
        rate = outbox.HeldRate(overall, 49.0, 51.0, 3000, 60.0)
        return outbox.targets(rate, 50.0, without, with_worker, flat_out=(90.0, 30.0))

    def test_a_rate_within_5_percent_of_the_setting_is_met_either_side(self) -> None:
        self.assertTrue(self.targets(47.6)[0].met)
        self.assertTrue(self.targets(52.4)[0].met)
        self.assertFalse(self.targets(47.4)[0].met)
        self.assertFalse(self.targets(52.6)[0].met)

    def test_the_webhook_p99_may_grow_by_half_with_the_worker_sending(self) -> None:
        self.assertTrue(self.targets(50, without=40.0, with_worker=60.0)[1].met)
        self.assertFalse(self.targets(50, without=40.0, with_worker=61.0)[1].met)
        self.assertIn("MISSED", self.targets(50, without=40.0, with_worker=61.0)[1].line())

    def test_the_flat_out_p99_is_a_figure_not_a_target(self) -> None:
        flat_out = self.targets(50)[2]
        self.assertEqual((flat_out.value, flat_out.met), (3.0, True))
        self.assertNotIn("MISSED", flat_out.line())

    def test_enough_workers_for_the_posts_in_flight_half_as_many_again_and_one_more(self) -> None:
        self.assertEqual(outbox.workers_needed(50, 0.1), 9)
        self.assertEqual(outbox.workers_needed(1, 0.1), 2)


class ReportLineTests(SimpleTestCase):
    def lines(self, per_row: Counter[int], statuses: Counter[str]) -> str:
        rate = outbox.HeldRate(49.8, 48.2, 51.0, 3000, 60.2)
        rows = [row("without worker", 40.0), row("worker sending", 55.0)]
        return "\n".join(outbox.lines(rate, 50, per_row, statuses, rows))

    def test_it_shows_the_rate_the_windows_and_the_webhook_with_and_without_the_worker(self) -> None:
        text = self.lines(Counter({1: 3000}), Counter({"queued": 3000}))

        self.assertIn("held rate: 49.80 segments/s overall (3,000 POSTs in 60.2 s)", text)
        self.assertIn("worst 48.20, best 51.00; SMS_SEND_RATE 50", text)
        self.assertIn("1 POST(s): 3,000 rows", text)
        self.assertIn("at most once: OK", text)
        self.assertRegex(text, r"without worker .* 40\.00")
        self.assertRegex(text, r"worker sending .* 55\.00")

    def test_a_row_posted_twice_or_left_unknown_breaks_at_most_once(self) -> None:
        self.assertIn("BROKEN", self.lines(Counter({1: 2999, 2: 1}), Counter({"queued": 3000})))
        self.assertIn("BROKEN", self.lines(Counter({1: 3000}), Counter({"queued": 2999, "unknown": 1})))


class UsageTests(SimpleTestCase):
    def test_it_gives_the_workers_cpu_per_text_and_in_cores(self) -> None:
        line = outbox.Usage(texts=3000, seconds=60.0, cpu_seconds=30.0).line()

        self.assertEqual(line, "workers' CPU while sending: 10.0 ms per text, 0.50 cores over 60.0 s")


class WorkerLogTests(SimpleTestCase):
    def test_it_counts_tracebacks_and_shows_the_first(self) -> None:
        log = "started\nTraceback (most recent call last):\n  File x\nValueError: one\n\nTraceback (...)\nKeyError\n"

        self.assertEqual(
            outbox.worker_tracebacks(log),
            (2, "Traceback (most recent call last):\n  File x\nValueError: one"),
        )
        self.assertIsNone(outbox.worker_tracebacks("started\nsend sid=SM1 status=queued\n"))
