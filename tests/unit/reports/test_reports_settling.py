"""When a month's figures appear (`REHAB_REPORTS_SETTLING_DAYS`, `REHAB_FUNDS_SETTLING_DAYS`): two days after it
ends by default; with a negative wait (a demonstration, a test), the month under way too, as README says — not only
on its last day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.funds.reports import last_settled_month
from services.reports.domain import unsettled

MID_DECEMBER = datetime(2026, 12, 6, 12, tzinfo=UTC)
MONTHS = ["2026-10", "2026-11", "2026-12", "2027-01"]


def test_by_default_a_month_waits_two_days_after_it_ends():
    assert unsettled(MONTHS, MID_DECEMBER, timedelta(days=2)) == {"2026-12", "2027-01"}
    assert unsettled(MONTHS, datetime(2026, 12, 1, 12, tzinfo=UTC), timedelta(days=2)) == {"2026-11", "2026-12",
                                                                                           "2027-01"}
    assert last_settled_month(MID_DECEMBER, timedelta(days=2)) == "2026-11"


def test_any_negative_wait_publishes_the_month_under_way_and_never_one_to_come():
    for wait in (timedelta(days=-1), timedelta(days=-40)):
        assert unsettled(MONTHS, MID_DECEMBER, wait) == {"2027-01"}
        assert last_settled_month(MID_DECEMBER, wait) == "2026-12"
