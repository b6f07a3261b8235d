"""The reports service's arithmetic without a server: months and periods, amounts, durations as tenths of a day,
and the buckets durations are counted in (the rules of what may be shown: test_disclosure.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kit.errors import Invalid
from services.reports import domain


def test_the_default_period_is_the_last_twelve_months_this_one_included():
    months = domain.period(None, None, today=date(2026, 3, 14))
    assert months[0] == "2025-04" and months[-1] == "2026-03" and len(months) == 12


def test_a_period_runs_from_its_first_to_its_last_month_across_years():
    assert domain.period("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert domain.period("2026-05", "2026-05") == ["2026-05"]


@pytest.mark.parametrize("first, last, words", [
    ("2026-13", "2026-12", "YYYY-MM"), ("2026-1", None, "YYYY-MM"), ("26-01", None, "YYYY-MM"),
    ("2026-06", "2026-01", "after it ends"), ("2000-01", "2026-01", "at most 120 months"),
    ("\u0662\u0660\u0662\u0666-03", None, "YYYY-MM"), ("2026-\uff10\uff13", None, "YYYY-MM"),  # digits, not ASCII ones
    ("2026-03\n", None, "YYYY-MM"), (None, "0000-01", "from 2000-01 on"), ("1999-12", "2026-01", "from 2000-01 on"),
    (None, "2000-11", "would start in 1999-12"),  # the default twelve months may not reach back beyond it either
])
def test_a_bad_period_is_refused_in_words(first, last, words):
    with pytest.raises(Invalid) as refused:
        domain.period(first, last, today=date(2026, 3, 1))
    assert words in str(refused.value.detail)


def test_a_period_may_start_in_the_first_month_reports_cover():
    assert domain.period("2000-01", "2000-03") == ["2000-01", "2000-02", "2000-03"]
    assert domain.period(None, "2000-12")[0] == "2000-01"
    assert all(month >= "2000-01" for month in domain.period(None, None, today=date(2000, 12, 31)))


def test_amounts_become_minor_units_with_the_digits_they_were_written_with():
    assert domain.minor_units("300.00") == (30000, 2)
    assert domain.minor_units("300") == (300, 0)
    assert domain.minor_units("1.005") == (1005, 3)
    assert domain.minor_units("=1+1") is None and domain.minor_units("-3.00") is None


def test_a_span_is_counted_in_whole_tenths_of_a_day():
    sent = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.tenths_of_a_day(sent, sent) == 0
    assert domain.tenths_of_a_day(sent, sent + timedelta(hours=2)) == 0
    assert domain.tenths_of_a_day(sent, sent + timedelta(hours=2, minutes=24)) == 1
    assert domain.tenths_of_a_day(sent, sent + timedelta(days=3, hours=12)) == 35
    assert domain.tenths_of_a_day(sent, sent - timedelta(days=1)) == 0


def test_a_span_is_bucketed_to_the_tenth_under_ten_days_and_to_the_day_beyond():
    sent = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.duration_bucket(sent, sent + timedelta(days=9, hours=23)) == 99
    assert domain.duration_bucket(sent, sent + timedelta(days=10, hours=23)) == 100
    assert domain.duration_bucket(sent, sent + timedelta(days=45, hours=12)) == 450
    # a year of spans, one a minute: a few hundred buckets, not one per span
    buckets = {domain.duration_bucket(sent, sent + timedelta(minutes=m)) for m in range(0, 365 * 24 * 60, 7)}
    assert len(buckets) == 100 + 355
