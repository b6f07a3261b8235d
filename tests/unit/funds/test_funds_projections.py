"""What funds keeps of other services' state, and the one place each of its lists lives: a case moves only forward
and keeps its first reference, a cost estimate that is not money is skipped, money errors are domain refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session, create_engine

from kit.errors import Invalid
from kit.problems import as_problem
from services.funds import domain, models, money, projections
from services.funds.models import (
    CaseAssignee,
    CaseAssignment,
    CaseView,
    CaseWorker,
    CostEstimate,
    Disbursement,
    FundsTable,
    Grant,
)


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    FundsTable.metadata.create_all(engine, tables=[CaseView.__table__, CostEstimate.__table__, Grant.__table__,
                                                   Disbursement.__table__, CaseAssignment.__table__,
                                                   CaseAssignee.__table__, CaseWorker.__table__])
    with Session(engine) as session:
        yield session
    engine.dispose()


def case(session: Session, case_id: str) -> tuple[str, str | None]:
    row = session.execute(select(CaseView.status, CaseView.reference).where(CaseView.case_id == case_id)).one()
    return row.status, row.reference


def test_a_case_only_moves_forward_and_keeps_its_first_reference(session):
    projections.advance_case(session=session, case_id="c1", status="closed")
    assert case(session, "c1") == ("closed", None)
    projections.advance_case(session=session, case_id="c1", status="open", reference="BY-1")  # late: not reopened
    assert case(session, "c1") == ("closed", "BY-1")  # …but a case without a reference takes one
    projections.advance_case(session=session, case_id="c1", status="erased", reference="BY-2")
    assert case(session, "c1") == ("erased", "BY-1")
    projections.advance_case(session=session, case_id="c1", status="closed", reference="")
    assert case(session, "c1") == ("erased", "BY-1")


def assignees(session: Session, case_id: str) -> set[str]:
    return set(session.execute(select(CaseAssignee.user_id).where(CaseAssignee.case_id == case_id)).scalars())


def test_the_newest_assignment_wins_whatever_order_assignments_come_in(session):
    at = datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert projections.assign_case(session=session, case_id="c1", assignees=["cw-2"], assigned_at=at)
    assert not projections.assign_case(session=session, case_id="c1", assignees=["cw-1"],
                                       assigned_at=at - timedelta(seconds=1))  # older, arriving late
    assert assignees(session, "c1") == {"cw-2"}
    assert projections.assign_case(session=session, case_id="c1", assignees=["cw-1", "cw-3", "cw-1"],
                                   assigned_at=at + timedelta(minutes=1))
    assert assignees(session, "c1") == {"cw-1", "cw-3"}
    assert assignees(session, "never-assigned") == set()
    # Everyone ever assigned stays one of its caseworkers, the older assignment arriving late too (own-case rule)
    assert set(session.execute(select(CaseWorker.user_id).where(CaseWorker.case_id == "c1")).scalars()) == {
        "cw-1", "cw-2", "cw-3"}


def test_a_cost_estimate_that_is_not_money_is_skipped_and_one_that_is_is_kept_once(session):
    estimate = {"referral_id": "r1", "case_id": "c1", "partner_id": "p1", "category": "medical",
                "currency": "EUR", "completed_at": datetime(2026, 1, 1, tzinfo=UTC)}
    assert projections.record_cost_estimate(session=session, amount="80", **estimate) is False
    assert session.execute(select(CostEstimate)).all() == []
    assert projections.record_cost_estimate(session=session, amount="80.00", **estimate) is True
    assert projections.record_cost_estimate(session=session, amount="90.00", **estimate) is True  # a redelivery
    [kept] = session.execute(select(CostEstimate.amount_minor, CostEstimate.disbursement_id)).all()
    assert tuple(kept) == (80_00, None)


def test_a_money_error_is_a_422_domain_refusal_and_still_a_validation_error_in_a_body():
    with pytest.raises(Invalid) as refused:
        money.parse_amount("300", "EUR")
    problem = as_problem(refused.value)
    assert (problem.status, problem.kind) == (422, "invalid-money")
    assert problem.detail == "EUR amounts have exactly 2 decimal digits, e.g. '300.00'"
    with pytest.raises(ValidationError, match="decimal digits"):
        models.GrantCreate(donor="F", code="G-1", currency="EUR", amount="300", starts_on="2026-01-01",
                           ends_on="2026-12-31", categories=["medical"])


def test_categories_and_statuses_are_each_listed_once():
    assert domain.CATEGORIES == get_args(domain.Category) == get_args(models.Category)
    assert get_args(domain.StatusName) == tuple(s.value for s in domain.Status)
    [check] = [c for c in Disbursement.__table__.constraints if c.name == "ck_disbursements_status"]
    assert str(check.sqltext) == "status IN ('requested', 'approved', 'rejected', 'voided', 'paid')"
