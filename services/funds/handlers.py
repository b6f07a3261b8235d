"""What funds consumes: intake's case events (assignments too) and referrals' completed referrals. Each consumer
reads its own copy of the payload and calls one use case of `projections`, inside the kit's inbox transaction (it must
not commit)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Literal

from pydantic import BaseModel
from sqlmodel import Session

from kit import logs
from kit.bus import Subscription
from kit.events import Envelope
from kit.service import Runtime
from services.funds import projections

log = logs.get("funds.handlers")

CASE_OPENED = "rehab.intake.case.opened"
CASE_CLOSED = "rehab.intake.case.closed"
CASE_REOPENED = "rehab.intake.case.reopened"
CASE_DUPLICATE = "rehab.intake.case.duplicate"
CASE_ERASED = "rehab.intake.case.erased"
CASE_ASSIGNED = "rehab.intake.case.assigned"
REFERRAL_COMPLETED = "rehab.referrals.referral.completed"


class CaseOpened(BaseModel):
    """Intake's case.opened: with the case's first assignees (absent from older events)."""

    case_id: str
    reference: str | None = None
    opened_at: datetime | None = None
    assignees: list[str] | None = None


class CaseEnded(BaseModel):
    case_id: str


class CaseReopened(CaseEnded):
    """Intake's case.reopened: the status it left (`closed` in events written before a duplicate could be reopened)."""

    reopened_from: Literal["closed", "duplicate"] = "closed"


class CaseAssigned(BaseModel):
    """Intake's case.assigned (on every reassignment): the assignees' user ids."""

    case_id: str
    assignees: list[str]
    assigned_at: datetime | None = None


class CostEstimateData(BaseModel):
    amount: str
    currency: str


class ReferralCompleted(BaseModel):
    referral_id: str
    case_id: str
    partner_id: str
    category: str
    cost_estimate: CostEstimateData | None = None
    occurred_at: datetime | None = None


def subscriptions(runtime: Runtime) -> list[Subscription]:
    """The durable consumers funds keeps on intake's and referrals' streams (names per docs/events.md)."""
    return [
        Subscription(producer="intake", durable="funds-intake", handlers={
            CASE_OPENED: case_opened,
            CASE_CLOSED: case_closed,
            CASE_REOPENED: case_reopened,
            CASE_DUPLICATE: case_duplicate,
            CASE_ERASED: partial(case_erased, runtime),
            CASE_ASSIGNED: case_assigned,
        }),
        Subscription(producer="referrals", durable="funds-referrals", handlers={
            REFERRAL_COMPLETED: referral_completed,
        }),
    ]


def case_opened(session: Session, event: Envelope) -> None:
    data = CaseOpened.model_validate(event.data)
    projections.advance_case(session=session, case_id=data.case_id, status="open", reference=data.reference)
    if data.assignees is not None:  # its creator: the first assignment rides on case.opened
        projections.assign_case(session=session, case_id=data.case_id, assignees=data.assignees,
                                assigned_at=_utc(data.opened_at or event.time))


def case_closed(session: Session, event: Envelope) -> None:
    data = CaseEnded.model_validate(event.data)
    projections.advance_case(session=session, case_id=data.case_id, status="closed")


def case_reopened(session: Session, event: Envelope) -> None:
    data = CaseReopened.model_validate(event.data)
    projections.reopen_case(session=session, case_id=data.case_id, leaving=data.reopened_from)


def case_duplicate(session: Session, event: Envelope) -> None:
    """A duplicate of another case: no aid for it any more (the kept case is the one to ask for)."""
    data = CaseEnded.model_validate(event.data)
    projections.advance_case(session=session, case_id=data.case_id, status="duplicate")


def case_erased(runtime: Runtime, session: Session, event: Envelope) -> None:
    data = CaseEnded.model_validate(event.data)
    projections.erase_case(session=session, audit=runtime.audit, answers=runtime.idempotency, case_id=data.case_id)


def case_assigned(session: Session, event: Envelope) -> None:
    data = CaseAssigned.model_validate(event.data)
    projections.assign_case(session=session, case_id=data.case_id, assignees=data.assignees,
                            assigned_at=_utc(data.assigned_at or event.time))


def _utc(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def referral_completed(session: Session, event: Envelope) -> None:
    data = ReferralCompleted.model_validate(event.data)
    if data.cost_estimate is None:
        return  # nothing for finance to pay
    kept = projections.record_cost_estimate(
        session=session, referral_id=data.referral_id, case_id=data.case_id, partner_id=data.partner_id,
        category=data.category, amount=data.cost_estimate.amount, currency=data.cost_estimate.currency,
        completed_at=data.occurred_at or event.time)
    if not kept:
        log.warning("cost estimate not usable as money, skipped", referral_id=data.referral_id, event_id=event.id)
