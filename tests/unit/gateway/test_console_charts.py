"""The programme page's charts, drawn on the server: a withheld count ("<5") is drawn at the same small height
whatever it is, a lower bound ("≥N") at N and dashed, every bar says its figure, labels are escaped, and a chart
is an image with its title and description."""

from __future__ import annotations

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
