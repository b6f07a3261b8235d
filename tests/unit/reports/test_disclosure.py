"""Disclosure control by example: what a report may show of small counts, their totals, money and durations."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.reports.disclosure import (
    SMALL,
    breakdown_allowed,
    format_minor_units,
    PENDING,
    publish_amounts,
    publish_count,
    publish_quantiles,
    publish_table,
)


@pytest.mark.parametrize(("n", "shown"), [(0, 0), (1, SMALL), (2, SMALL), (4, SMALL), (5, 5), (6, 6), (120, 120)])
def test_a_single_count_from_one_to_four_is_shown_as_small(n, shown):
    assert publish_count(n) == shown


def test_a_negative_count_is_a_mistake_not_a_figure():
    with pytest.raises(ValueError, match="negative"):
        publish_count(-1)


def test_a_table_with_no_small_cell_is_exact_everywhere():
    counts = {("2026-01", "housing"): 7, ("2026-01", "legal"): 5, ("2026-02", "housing"): 12}
    table = publish_table(counts, ["2026-01", "2026-02"], ["housing", "legal"])
    assert table == {
        "cells": {"2026-01": {"housing": 7, "legal": 5}, "2026-02": {"housing": 12, "legal": 0}},
        "row_totals": {"2026-01": 12, "2026-02": 12},
        "column_totals": {"housing": 19, "legal": 5},
        "total": 24,
    }


def test_every_total_over_a_small_cell_is_a_lower_bound_counting_each_hidden_cell_as_one():
    counts = {
        ("2026-01", "housing"): 7, ("2026-01", "legal"): 3, ("2026-01", "medical"): 0,
        ("2026-02", "housing"): 1, ("2026-02", "legal"): 9, ("2026-02", "medical"): 6,
        ("2026-03", "housing"): 8, ("2026-03", "legal"): 5,
    }
    table = publish_table(counts, ["2026-01", "2026-02", "2026-03"], ["housing", "legal", "medical"])
    assert table["cells"] == {
        "2026-01": {"housing": 7, "legal": SMALL, "medical": 0},
        "2026-02": {"housing": SMALL, "legal": 9, "medical": 6},
        "2026-03": {"housing": 8, "legal": 5, "medical": 0},   # missing key: nobody
    }
    assert table["row_totals"] == {"2026-01": "≥8", "2026-02": "≥16", "2026-03": 13}
    assert table["column_totals"] == {"housing": "≥16", "legal": "≥15", "medical": 6}
    assert table["total"] == "≥37"   # 7 + 9 + 6 + 8 + 5 shown, and two hidden cells of at least 1


def test_a_total_of_hidden_cells_only_says_no_more_than_how_many_there_are():
    table = publish_table({("2026-01", "legal"): 4, ("2026-02", "legal"): 4}, ["2026-01", "2026-02"], ["legal"])
    assert table["column_totals"] == {"legal": "≥2"}
    assert table["total"] == "≥2"


def test_keys_outside_the_asked_rows_are_not_part_of_the_table():
    counts = {("2026-01", "legal"): 6, ("2026-02", "legal"): 2}
    assert publish_table(counts, ["2026-01"], ["legal"])["total"] == 6


def test_no_rows_gives_an_empty_table_with_a_zero_total():
    assert publish_table({}, [], ["legal"]) == {
        "cells": {}, "row_totals": {}, "column_totals": {"legal": 0}, "total": 0}


@pytest.mark.parametrize(("minor", "digits", "text"), [
    (123450, 2, "1234.50"), (5, 2, "0.05"), (0, 2, "0.00"),
    (1235, 0, "1235"), (0, 0, "0"),
    (1250, 3, "1.250"), (7, 3, "0.007"),
    (-5, 2, "-0.05"),
])
def test_minor_units_become_decimal_strings(minor, digits, text):
    assert format_minor_units(minor, digits) == text


@pytest.mark.parametrize(("digits", "cells", "row_totals", "column_totals", "total"), [
    (2,
     {"2026-01": {"EUR": "1234.50", "PLN": SMALL}, "2026-02": {"EUR": "0.00", "PLN": "500.00"}},
     {"2026-01": "≥1234.50", "2026-02": "500.00"}, {"EUR": "1234.50", "PLN": "≥500.00"}, "≥1734.50"),
    (0,
     {"2026-01": {"EUR": "123450", "PLN": SMALL}, "2026-02": {"EUR": "0", "PLN": "50000"}},
     {"2026-01": "≥123450", "2026-02": "50000"}, {"EUR": "123450", "PLN": "≥50000"}, "≥173450"),
    (3,
     {"2026-01": {"EUR": "123.450", "PLN": SMALL}, "2026-02": {"EUR": "0.000", "PLN": "50.000"}},
     {"2026-01": "≥123.450", "2026-02": "50.000"}, {"EUR": "123.450", "PLN": "≥50.000"}, "≥173.450"),
])
def test_amounts_of_fewer_than_five_people_are_hidden_and_totals_over_them_add_nothing_for_them(
        digits, cells, row_totals, column_totals, total):
    amounts = {
        ("2026-01", "EUR"): (123450, 9),
        ("2026-01", "PLN"): (90000, 3),    # three people's aid: near enough one person's
        ("2026-02", "PLN"): (50000, 5),
    }
    table = publish_amounts(amounts, ["2026-01", "2026-02"], ["EUR", "PLN"], digits)
    assert table == {"cells": cells, "row_totals": row_totals, "column_totals": column_totals, "total": total}


def test_amounts_with_no_small_cell_have_exact_totals():
    amounts = {("2026-01", "EUR"): (100, 5), ("2026-02", "EUR"): (250, 6)}
    table = publish_amounts(amounts, ["2026-01", "2026-02"], ["EUR"], 2)
    assert table["column_totals"] == {"EUR": "3.50"}
    assert table["total"] == "3.50"


@pytest.mark.parametrize("people", [1, 4, None])
def test_a_sum_of_one_to_four_people_or_of_people_not_known_is_hidden_whatever_it_sums(people):
    # The reviewer's December: 300 + 800 + 40 + 300 + 40 EUR, five payments, all to one person.
    amounts = {("2026-12", "medical"): (148000, people), ("2026-12", "legal"): (90000, 6)}
    table = publish_amounts(amounts, ["2026-12"], ["medical", "legal"], 2)
    assert table["cells"] == {"2026-12": {"medical": SMALL, "legal": "900.00"}}
    assert table["row_totals"] == {"2026-12": "≥900.00"} and table["total"] == "≥900.00"
    assert table["column_totals"] == {"medical": "≥0.00", "legal": "900.00"}


def test_a_month_still_being_paid_is_pending_in_every_cell_and_its_totals_add_nothing_for_it():
    amounts = {("2026-11", "medical"): (50000, 5), ("2026-12", "medical"): (73745, 6), ("2026-12", "legal"): (0, 0)}
    table = publish_amounts(amounts, ["2026-11", "2026-12"], ["medical", "legal"], 2, pending={"2026-12"})
    assert table["cells"] == {"2026-11": {"medical": "500.00", "legal": "0.00"},
                              "2026-12": {"medical": PENDING, "legal": PENDING}}
    assert table["row_totals"] == {"2026-11": "500.00", "2026-12": "≥0.00"}
    assert table["column_totals"] == {"medical": "≥500.00", "legal": "≥0.00"} and table["total"] == "≥500.00"


def test_a_month_still_under_way_has_every_count_pending_and_its_totals_count_nothing_for_it():
    counts = {("2026-11", "opened"): 7, ("2026-11", "closed"): 2, ("2026-12", "opened"): 6}
    table = publish_table(counts, ["2026-11", "2026-12"], ["opened", "closed"], pending={"2026-12"})
    assert table["cells"] == {"2026-11": {"opened": 7, "closed": SMALL},
                              "2026-12": {"opened": PENDING, "closed": PENDING}}
    assert table["row_totals"] == {"2026-11": "≥8", "2026-12": "≥0"}
    assert table["column_totals"] == {"opened": "≥7", "closed": "≥1"} and table["total"] == "≥8"
    # Whatever the month under way holds, the table is the same.
    assert publish_table({**counts, ("2026-12", "closed"): 1}, ["2026-11", "2026-12"], ["opened", "closed"],
                         pending={"2026-12"}) == table


@pytest.mark.parametrize("bad", [(100, 0), (-100, 5), (100, -1)])
def test_an_amount_paid_to_no_one_or_below_zero_is_a_mistake(bad):
    with pytest.raises(ValueError):
        publish_amounts({("2026-01", "EUR"): bad}, ["2026-01"], ["EUR"], 2)


def _sorted_values(histogram):
    return sorted(value for value, times in histogram.items() for _ in range(times))


def _nearest_rank_by_hand(values, q):
    """The smallest value with at least q·n of the values at or below it, read off the sorted list."""
    n = len(values)
    return next(v for v in values if sum(1 for w in values if w <= v) * 100 >= round(q * 100) * n)


def test_quantiles_are_nearest_rank_on_the_sorted_observations():
    histogram = {3: 2, 7: 1, 10: 4, 40: 2, 90: 1}    # 10 observations
    values = _sorted_values(histogram)
    published = publish_quantiles({"legal": histogram})["legal"]
    assert published == {"n": 10, "p50": 10.0, "p90": 40.0}
    assert published["p50"] == values[math.ceil(0.5 * 10) - 1] == _nearest_rank_by_hand(values, 0.5)
    assert published["p90"] == values[math.ceil(0.9 * 10) - 1] == _nearest_rank_by_hand(values, 0.9)


def test_the_median_is_always_an_observed_value_where_interpolation_would_average_two_people():
    histogram = {4: 3, 8: 3}
    assert statistics.median(_sorted_values(histogram)) == 6
    assert publish_quantiles({"legal": histogram})["legal"]["p50"] == 4.0


def test_the_nearest_rank_median_of_an_odd_count_is_the_usual_median():
    histogram = {1: 1, 2: 1, 5: 2, 9: 1, 30: 2}
    values = _sorted_values(histogram)
    assert publish_quantiles({"c": histogram})["c"]["p50"] == statistics.median(values) == 5


def test_quantiles_in_tenths_of_a_day():
    published = publish_quantiles({"legal": {37: 3, 12: 2, 80: 1, 95: 4}}, unit=0.1)["legal"]
    assert published == {"n": 10, "p50": 3.7, "p90": 9.5}


@pytest.mark.parametrize("n", [5, 9])
def test_a_quantile_that_would_be_the_one_who_waited_longest_is_withheld(n):
    published = publish_quantiles({"legal": {day: 1 for day in range(1, n + 1)}})["legal"]
    assert published == {"n": n, "p50": float((n + 1) // 2), "p90": SMALL}


def test_other_quantiles_are_named_by_their_percent():
    published = publish_quantiles({"c": {v: 1 for v in range(1, 1001)}}, quantiles=(0.25, 0.999, 1.0))["c"]
    assert published == {"n": 1000, "p25": 250.0, "p99.9": 999.0, "p100": SMALL}  # p100: the largest


@pytest.mark.parametrize("histogram", [{5: 1}, {5: 2, 9: 2}, {1: 1, 2: 1, 3: 1, 4: 1}])
def test_fewer_than_five_observations_show_nothing_but_that(histogram):
    assert publish_quantiles({"legal": histogram})["legal"] == {"n": SMALL, "p50": SMALL, "p90": SMALL}


def test_no_observation_at_all_is_zero_with_nothing_to_describe():
    assert publish_quantiles({"legal": {}, "housing": {3: 0}}) == {
        "legal": {"n": 0, "p50": None, "p90": None}, "housing": {"n": 0, "p50": None, "p90": None}}


@pytest.mark.parametrize("q", [0, -0.5, 1.5])
def test_a_quantile_outside_zero_to_one_is_refused(q):
    with pytest.raises(ValueError, match="quantile"):
        publish_quantiles({"c": {1: 5}}, quantiles=(q,))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=5, max_size=60),
       st.sampled_from([0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 1.0]))
def test_any_quantile_matches_the_sorted_list(values, q):
    histogram: dict[int, int] = {}
    for v in values:
        histogram[v] = histogram.get(v, 0) + 1
    published = publish_quantiles({"c": histogram}, quantiles=(q,))["c"]
    name = next(key for key in published if key != "n")
    rank = math.ceil(q * len(values))
    assert published[name] == (_nearest_rank_by_hand(sorted(values), q) if rank < len(values) else SMALL)


@pytest.mark.parametrize(("counts", "allowed"), [
    ({}, True),
    ({("2026-01", "legal", "urgent"): 5, ("2026-01", "legal", "routine"): 0}, True),
    ({("2026-01", "legal", "urgent"): 5, ("2026-01", "legal", "routine"): 4}, False),
    ({("2026-01", "legal", "urgent"): 1}, False),
    ({("2026-01", "legal", "urgent"): 0}, True),
])
def test_a_finer_breakdown_is_allowed_only_when_no_non_zero_cell_is_below_five(counts, allowed):
    assert breakdown_allowed(counts) is allowed
