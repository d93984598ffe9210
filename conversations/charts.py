"""Charts as inline SVG, drawn by the server: no script and no CDN, nothing the app does not serve.

The viewBox scales the chart to its box, so it fits a phone as it fits a desktop (the sizes
below are in the viewBox's units, picked to stay legible at a phone's 390 px). Colours come
from classes that dashboard.css defines. Each chart has a <title> and <desc> for screen
readers, and the page shows the same numbers as a table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 400, 200
LEFT, RIGHT, TOP, BOTTOM = 40, 20, 8, 22  # Room for the axes' labels.
STEPS = (1, 2, 5)  # The value axis' ticks go by 1, 2 or 5 x 10^n.
MOST_TICKS = 4
LABEL_EVERY = 7  # Days between two labels on the day axis (today always has one).

Scale = Callable[[int], float]  # A value's height in the viewBox.


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]
    css: str  # Its colour: a class of dashboard.css.


def axis_step(largest: int) -> int:
    """The smallest 1, 2 or 5 x 10^n that reaches `largest` in at most MOST_TICKS steps."""
    power = 1
    while True:
        for step in STEPS:
            if step * power * MOST_TICKS >= largest:
                return step * power
        power *= 10


def day_chart(
    chart_id: str, title: str, days: list[date], series: list[Series], *, bars: bool = False
) -> SafeString:
    """A chart of values per day: lines, or bars side by side, over an axis of days."""
    largest = max((value for s in series for value in s.values), default=0)
    step = axis_step(largest)
    top = step * max(1, math.ceil(largest / step))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)

    def y(value: int) -> float:
        return round(TOP + plot_h - value * plot_h / top, 1)

    grid = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>',
        (
            (LEFT, WIDTH - RIGHT, y(v), y(v), LEFT - 4, round(y(v) + 4.5, 1), f"{v:,}")
            for v in range(0, top + 1, step)
        ),
    )
    labels = format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
        (
            (round(LEFT + (i + 0.5) * slot, 1), HEIGHT - 5, f"{day:%b} {day.day}")
            for i, day in enumerate(days)
            if (len(days) - 1 - i) % LABEL_EVERY == 0
        ),
    )
    marks = _bars(days, series, slot, y) if bars else _lines(days, series, slot, y)
    totals = ", ".join(f"{sum(s.values):,} {s.label.lower()}" for s in series)
    desc = f"{days[0]:%b} {days[0].day} to {days[-1]:%b} {days[-1].day}: {totals}." if days else ""
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        desc,
        grid,
        labels,
        marks,
    )


def _lines(days: list[date], series: list[Series], slot: float, y: Scale) -> SafeString:
    parts = []
    for s in series:
        points = [(round(LEFT + (i + 0.5) * slot, 1), y(v)) for i, v in enumerate(s.values)]
        path = " ".join(f"{px},{py}" for px, py in points)
        dots = format_html_join(
            "",
            '<circle cx="{}" cy="{}" r="2"><title>{}: {} {}</title></circle>',
            (
                (px, py, _day(day), f"{v:,}", s.label.lower())
                for (px, py), day, v in zip(points, days, s.values, strict=True)
            ),
        )
        parts.append(format_html('<g class="series {}"><polyline points="{}"/>{}</g>', s.css, path, dots))
    return mark_safe("".join(parts))  # Each part is built by format_html.


def _bars(days: list[date], series: list[Series], slot: float, y: Scale) -> SafeString:
    width = slot * 0.8 / max(len(series), 1)
    parts = []
    for k, s in enumerate(series):
        rects = format_html_join(
            "",
            '<rect x="{}" y="{}" width="{}" height="{}"><title>{}: {} {}</title></rect>',
            (
                (
                    round(LEFT + i * slot + slot * 0.1 + k * width, 1),
                    y(v),
                    round(width, 1),
                    round(y(0) - y(v), 1),
                    _day(day),
                    f"{v:,}",
                    s.label.lower(),
                )
                for i, (day, v) in enumerate(zip(days, s.values, strict=True))
            ),
        )
        parts.append(format_html('<g class="series {}">{}</g>', s.css, rects))
    return mark_safe("".join(parts))  # Each part is built by format_html.


def _day(day: date) -> str:
    return f"{day:%a} {day:%b} {day.day}"
