""""Cases closed" counts cases whose close stands at the month's end, not close actions; an approval rejected or
voided afterwards is counted as aid released in its own month, never taken off a month that may be published (real
projection on SQLite, the handlers the consumers run)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from kit import db
from services.reports.models import CaseClose
from tests.unit.reports.test_reports_projection import PEOPLE, apply, factory, report  # noqa: F401 (the fixture)

MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def close(factory, case: str, at: datetime) -> None:  # noqa: F811
    apply(factory, "rehab.intake.case.closed", {"case_id": case, "closed_at": at.isoformat()})


def reopen(factory, case: str, at: datetime, reopened_from: str = "closed") -> None:  # noqa: F811
    apply(factory, "rehab.intake.case.reopened", {"case_id": case, "reopened_at": at.isoformat(),
                                                  "reopened_from": reopened_from})


def closed_in(factory, month: str):  # noqa: F811
    return report(factory)["cases"]["cells"][month]["closed"]


def test_a_case_closed_and_reopened_five_times_in_a_month_counts_as_one_close(factory):  # noqa: F811
    cases = [str(uuid.uuid4()) for _ in range(5)]
    for case in cases[:4]:
        close(factory, case, MARCH)
    for n in range(5):
        close(factory, cases[4], MARCH + timedelta(hours=2 * n))
        reopen(factory, cases[4], MARCH + timedelta(hours=2 * n + 1))
    close(factory, cases[4], MARCH + timedelta(days=1))
    assert closed_in(factory, "2026-03") == 5  # five cases whose close stands, not nine closes

    reopen(factory, cases[4], MARCH + timedelta(days=2))  # the same month: that close did not stand
    assert closed_in(factory, "2026-03") == "<5"


def test_a_reopening_in_a_later_month_leaves_the_month_the_case_was_closed_in(factory):  # noqa: F811
    cases = [str(uuid.uuid4()) for _ in range(5)]
    for case in cases:
        close(factory, case, MARCH)
    reopen(factory, cases[0], MARCH + timedelta(days=40))   # April: March's figure, maybe published, stays
    close(factory, cases[0], MARCH + timedelta(days=45))    # closed again in April: counted there
    assert closed_in(factory, "2026-03") == 5
    assert closed_in(factory, "2026-04") == "<5"


def test_reopening_a_duplicate_undoes_no_close_and_a_redelivered_older_event_changes_nothing(factory):  # noqa: F811
    cases = [str(uuid.uuid4()) for _ in range(5)]
    for case in cases:
        close(factory, case, MARCH + timedelta(hours=1))
    reopen(factory, cases[0], MARCH + timedelta(hours=2), reopened_from="duplicate")
    reopen(factory, cases[1], MARCH)  # older than its close (a redelivery): the close stands
    assert closed_in(factory, "2026-03") == 5


def test_no_case_id_is_kept_and_an_erasure_forgets_the_case_s_closes(factory):  # noqa: F811
    case = str(uuid.uuid4())
    close(factory, case, MARCH)
    reopen(factory, case, MARCH + timedelta(days=40))
    with db.transaction(factory) as session:
        rows = session.execute(select(CaseClose)).scalars().all()
        assert len(rows) == 2 and all(case not in row.case_key for row in rows)
        assert {row.case_key for row in rows} == {PEOPLE.case_in_month(case, "2026-03"),
                                                  PEOPLE.case_in_month(case, "2026-04")}
    apply(factory, "rehab.intake.case.erased", {"case_id": case, "erased_at": (MARCH + timedelta(days=41)).isoformat()})
    with db.transaction(factory) as session:
        assert session.execute(select(CaseClose)).first() is None
    assert closed_in(factory, "2026-03") == "<5"  # the count stays


def aid(factory, subject: str, case: str, disbursement: str, amount: str, at: datetime, **more) -> None:  # noqa: F811
    apply(factory, f"rehab.funds.disbursement.{subject}", {
        "disbursement_id": disbursement, "case_id": case, "grant_id": "g", "category": "medical", "amount": amount,
        "currency": "EUR", "status": subject, "occurred_at": at.isoformat(), **more})


def test_an_approval_voided_afterwards_is_released_in_its_own_month_and_approved_stays(factory):  # noqa: F811
    approvals = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(7)]
    for case, disbursement in approvals:
        aid(factory, "approved", case, disbursement, "500.00", MARCH)
    for case, disbursement in approvals[:2]:   # two voided in April, after March was published
        aid(factory, "voided", case, disbursement, "500.00", MARCH + timedelta(days=35), released_amount="500.00")
    never_approved = str(uuid.uuid4())          # a request rejected before approval releases nothing
    aid(factory, "rejected", never_approved, str(uuid.uuid4()), "90.00", MARCH + timedelta(days=35),
        released_amount=None)
    aid(factory, "voided", never_approved, str(uuid.uuid4()), "90.00", MARCH + timedelta(days=35))  # an old event

    shown = report(factory)["aid"]
    assert shown["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "3500.00"
    released = shown["released"]["in_grant_currency"]["EUR"]
    assert released["cells"]["2026-04"]["medical"] == "<5"   # two people's: withheld like any sum of few

    for case, disbursement in approvals[2:]:   # five people's approvals voided in April: shown
        aid(factory, "rejected", case, disbursement, "500.00", MARCH + timedelta(days=36), released_amount="500.00")
    shown = report(factory)["aid"]
    assert shown["released"]["in_grant_currency"]["EUR"]["cells"]["2026-04"]["medical"] == "3500.00"
    assert shown["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "3500.00"
