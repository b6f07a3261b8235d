"""The programme page's charts, drawn on the server: a withheld count ("<5") is drawn at the same small height
whatever it is, a lower bound ("≥N") at N and dashed, every bar says its figure, labels are escaped, and a chart
is an image with its title and description."""

from __future__ import annotations

import itertools
import re

from gateway.console import charts


def heights(svg: str) -> list[float]:
    return [float(h) for h in re.findall(r'<rect class="chart-bar[^"]*"[^>]* height="([0-9.]+)"', svg)]


def test_a_withheld_count_is_drawn_the_same_whatever_it_is_and_a_lower_bound_at_its_figure():
    one = charts.bars("c", "Cases", "Bars", [charts.Bar("Jan", "<5", "<5"), charts.Bar("Feb", 10, "10")])
    four = charts.bars("c", "Cases", "Bars", [charts.Bar("Jan", "<5", "<5"), charts.Bar("Feb", 10, "10")])
    assert one == four  # "<5" hides 1 and 4 alike: nothing in the drawing is closer to the real number
    small, ten = heights(str(one))
    assert small == ten * charts.SHOWN_AS_SMALL / 10
    bound = charts.bars("c", "Cases", "Bars", [charts.Bar("Jan", "≥7", "≥7"), charts.Bar("Feb", 7, "7")])
    first, second = heights(str(bound))
    assert first == second and 'class="chart-bar chart-bar-withheld"' in str(bound) and ">≥7<" in str(bound)


def test_a_chart_is_an_image_with_its_title_and_description_and_escapes_what_it_is_given():
    svg = str(charts.bars("cases-chart", "Cases <opened>", "One bar a month", [charts.Bar("<b>", 3, "3")]))
    assert 'role="img" aria-labelledby="cases-chart-title cases-chart-desc"' in svg
    assert "<title id=\"cases-chart-title\">Cases &lt;opened&gt;</title>" in svg and "<b>" not in svg


def test_a_funnel_s_bars_are_as_long_as_their_share_of_the_first_step():
    svg = str(charts.funnel("f", "Funnel", "Shares", [charts.Step("Sent", 20, "20"), charts.Step("Accepted", 10, "10"),
                                                      charts.Step("Completed", "<5", "<5")]))
    widths = [float(w) for w in re.findall(r'<rect class="chart-bar[^"]*"[^>]* width="([0-9.]+)"', svg)]
    assert widths[1] == widths[0] / 2 and widths[2] == widths[0] * charts.SHOWN_AS_SMALL / 20


def labels(svg: str) -> list[tuple[float, str]]:
    return [(float(x), text) for x, text in re.findall(r'<text class="chart-label" x="([0-9.]+)"[^>]*>([^<]*)<', svg)]


def test_month_labels_never_run_into_each_other_and_the_year_is_written_where_it_turns():
    months = ["Nov", "Dec"] + ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"] * 2
    years = ["2024"] * 2 + ["2025"] * 12 + ["2026"] * 12
    year = charts.bars("c", "Cases", "Bars", [charts.Bar(m, 3, "3", year=y) for m, y in zip(months[2:14], years[2:14])])
    two = charts.bars("c", "Cases", "Bars", [charts.Bar(m, 3, "3", year=y) for m, y in zip(months, years)])
    long = charts.bars("c", "Cases", "Bars", [charts.Bar("верасень", 3, "3", year="2026")] * 12)  # a long month name

    assert [text for _, text in labels(str(year))] == months[2:14]  # a year of "Jan"…"Dec": every month has room
    for svg, name_length in ((year, 3), (two, 3), (long, 8)):
        placed = [x for x, _ in labels(str(svg))]
        gaps = [later - earlier for earlier, later in itertools.pairwise(placed)]
        assert gaps and min(gaps) >= name_length * charts.LABEL_CHAR  # the label's width fits between two labels
    written = re.findall(r'class="chart-label chart-year"[^>]*>([^<]*)<', str(two))
    assert written == ["2024", "2025", "2026"]  # under the first month shown, then where the year turns


def test_a_number_said_in_words_too_wide_for_its_month_is_drawn_as_an_ellipsis_inside_the_chart():
    """«яшчэ не апублікавана» over a month's bar ran into its neighbour's number and off the chart's edge."""
    months = [charts.Bar(f"m{n}", 3, "3") for n in range(11)] + [charts.Bar("сне", "pending", "яшчэ не апублікавана")]
    svg = str(charts.bars("c", "Cases", "Bars", months))
    values = re.findall(r'<text class="chart-value" x="([0-9.]+)"[^>]*>([^<]*)</text>', svg)
    assert [text for _, text in values] == ["3"] * 11 + ["…"]
    assert all(0 <= float(x) <= charts.WIDTH for x, _ in values)
    wide = str(charts.bars("c", "Cases", "Bars", [charts.Bar("Jan", 5, "5"), charts.Bar("Feb", "pending", "pending")]))
    assert ">pending</text>" in wide  # where there is room, the words are drawn
