"""The dashboard's SVG charts, drawn by the server: scale, marks, labels, and escaping."""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.test import SimpleTestCase

from conversations.charts import BOTTOM, HEIGHT, TOP, Series, axis_step, day_chart

DAYS = [date(2026, 11, 6) + timedelta(days=n) for n in range(30)]


class ChartsTests(SimpleTestCase):
    def test_the_value_axis_goes_by_1_2_or_5_times_a_power_of_ten_in_at_most_4_steps(self) -> None:
        cases = {0: 1, 3: 1, 4: 1, 5: 2, 9: 5, 20: 5, 21: 10, 399: 100, 401: 200, 12_345: 5000}
        self.assertEqual({largest: axis_step(largest) for largest in cases}, cases)

    def test_a_bar_is_as_tall_as_its_value_and_names_its_day_and_count(self) -> None:
        values = [0] * 29 + [40]
        svg = day_chart("c", "Opt-outs", DAYS, [Series("Opt-outs", values, "series-opt-out")], bars=True)

        heights = [float(h) for h in re.findall(r'height="([\d.]+)"', svg)]
        self.assertEqual(heights.count(0.0), 29)
        self.assertEqual(max(heights), HEIGHT - TOP - BOTTOM)  # The top of the axis: 40.
        self.assertIn("<title>Sat Dec 5: 40 opt-outs</title>", svg)

    def test_lines_have_a_point_per_day_and_the_axis_labels_every_7th_day_ending_today(self) -> None:
        svg = day_chart("c", "Texts", DAYS, [Series("In", list(range(30)), "series-in")])

        self.assertEqual(svg.count("<circle"), 30)
        labels = re.findall(r'text-anchor="middle">([^<]+)<', svg)
        self.assertEqual(labels, ["Nov 7", "Nov 14", "Nov 21", "Nov 28", "Dec 5"])

    def test_it_is_an_accessible_image_and_escapes_what_it_is_given(self) -> None:
        svg = day_chart("c", "<b>Texts</b>", DAYS, [Series("In & out", [1] * 30, "s")])

        self.assertIn('role="img" aria-labelledby="c-title c-desc"', svg)
        self.assertIn('<title id="c-title">&lt;b&gt;Texts&lt;/b&gt;</title>', svg)
        self.assertIn("Nov 6 to Dec 5: 30 in &amp; out.", svg)
