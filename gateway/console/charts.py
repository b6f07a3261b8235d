"""Charts drawn on the server as inline SVG: no script, no request, nothing a slow phone has to compute, and the
same picture in every browser. Each chart is an image with a title and a description a screen reader reads, and
the page shows the same numbers in a table beside it; colours come from console.css (`.chart-*`), so a chart
follows the console's contrast.

A number may be withheld in a programme report (SPEC §9): a count of one to four is the text "<5", and a total over
withheld counts "≥N". A withheld bar is drawn hatched at the height of 2.5 people (never its real height) and says
"<5"; nothing in the drawing is closer to the real number than the text is."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 236
AXIS = 40  # room under the bars for the month labels: the month, and under it the year where it turns
LABEL_CHAR = 8.5  # at most how wide a character of a 13px label is (Cyrillic too), in the chart's units
TOP = 18  # room above the tallest bar for its number
SHOWN_AS_SMALL = 2.5  # the height a withheld count ("<5") is drawn at
NUMBER_ROOM = 150  # room right of a funnel's bar for its number and share ("1 234 (87 %)")


@dataclass(frozen=True)
class Bar:
    label: str  # the month, "Jan", as the page's language writes it
    value: int | str  # a count, or "<5" when withheld
    shown: str  # the number as the language writes it ("1 234", "<5")
    year: str = ""  # "2026": written under the first labelled month, and again where the year turns


def height_of(value: int | str) -> float:
    """How tall a figure is drawn: a count as itself, "≥N" as its N (no more than its text says), "<5" as 2.5."""
    if isinstance(value, int):
        return float(value)
    if value.startswith("≥"):
        return float(value[1:])
    return SHOWN_AS_SMALL if value.startswith("<") else 0.0


def bars(chart_id: str, title: str, description: str, items: Sequence[Bar]) -> Markup:
    """Vertical bars, one per month, with the number on top and the month below."""
    tallest = max([height_of(item.value) for item in items] + [SHOWN_AS_SMALL * 2])
    slot = WIDTH / max(len(items), 1)
    width = max(slot * 0.6, 2.0)
    scale = (HEIGHT - AXIS - TOP) / tallest
    parts = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" preserveAspectRatio="xMidYMid meet">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
             f'<line class="chart-axis" x1="0" y1="{HEIGHT - AXIS}" x2="{WIDTH}" y2="{HEIGHT - AXIS}"/>']
    # Every month's label where there is room, else every second (third…): labels never run into each other.
    widest = max([len(item.label) for item in items] + [1]) * LABEL_CHAR
    every = max(1, math.ceil(widest / (slot * 0.9)))
    year_written = ""
    for index, item in enumerate(items):
        x = index * slot + (slot - width) / 2
        tall = height_of(item.value) * scale
        y = HEIGHT - AXIS - tall
        withheld = not isinstance(item.value, int)
        parts.append(f'<rect class="chart-bar{" chart-bar-withheld" if withheld else ""}" x="{x:.1f}" '
                     f'y="{y:.1f}" width="{width:.1f}" height="{tall:.1f}"/>')
        # A number wider than its month's room (a month not published yet, said in words) would run over its
        # neighbour's: it is drawn as "…", and said whole in the table beside the chart.
        shown = item.shown if len(item.shown) * LABEL_CHAR <= slot else "…"
        parts.append(f'<text class="chart-value" x="{_inside(x + width / 2, shown):.1f}" y="{y - 4:.1f}" '
                     f'text-anchor="middle">{escape(shown)}</text>')
        if index % every == 0:
            parts.append(f'<text class="chart-label" x="{_inside(x + width / 2, item.label):.1f}" '
                         f'y="{HEIGHT - AXIS + 16}" text-anchor="middle">{escape(item.label)}</text>')
            if item.year and item.year != year_written:
                parts.append(f'<text class="chart-label chart-year" x="{_inside(x + width / 2, item.year):.1f}" '
                             f'y="{HEIGHT - 6}" text-anchor="middle">{escape(item.year)}</text>')
                year_written = item.year
    parts.append("</svg>")
    return Markup("".join(parts))


def _inside(middle: float, text: str) -> float:
    """Where a label centred under its bar is centred so that none of it falls off the chart's edges."""
    half = len(text) * LABEL_CHAR / 2
    return min(max(middle, half), WIDTH - half)


@dataclass(frozen=True)
class Step:
    label: str  # "Sent", "Accepted", "Completed"
    value: int | str  # a count, "<5", or "≥N"
    shown: str  # the number as the language writes it, with its share of the first step where known


def funnel(chart_id: str, title: str, description: str, steps: Sequence[Step]) -> Markup:
    """Horizontal bars, each as wide as its share of the first: referrals sent → accepted → completed."""
    row = 44
    height = row * len(steps) + 8
    first = max(height_of(steps[0].value) if steps else 0.0, 1.0)
    parts = [f'<svg class="chart chart-funnel" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(description)}</desc>']
    label_room = 150
    for index, step in enumerate(steps):
        share = min(height_of(step.value) / first, 1.0)
        width = max((WIDTH - label_room - NUMBER_ROOM) * share, 2.0)
        y = 4 + index * row
        withheld = not isinstance(step.value, int)
        parts.append(f'<text class="chart-label" x="0" y="{y + 24}">{escape(step.label)}</text>')
        parts.append(f'<rect class="chart-bar{" chart-bar-withheld" if withheld else ""}" x="{label_room}" '
                     f'y="{y}" width="{width:.1f}" height="{row - 12}"/>')
        parts.append(f'<text class="chart-value" x="{label_room + width + 6:.1f}" y="{y + 21}">'
                     f'{escape(step.shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
