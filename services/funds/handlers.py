"""What funds consumes: intake's case events (to refuse aid for closed or erased cases, and to crypto-shred payees
on erasure) and referrals' completed referrals (their cost estimates).

Each handler runs inside the kit's inbox transaction (it must not commit) and is tolerant of events that arrive out
of order or name a case or referral funds has not heard of yet. Each declares its own copy of the payload it reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, case, delete, or_, select, update
from sqlmodel import Session

from kit import logs
from kit.audit import AuditTrail
from kit.bus import Subscription
from kit.db import dialect_insert, scrub_after_commit
from kit.events import Envelope
from kit.idempotency import Idempotency
from kit.service import Runtime
from services.funds import money
from services.funds.domain import Status
from services.funds.models import (
    CaseKey,
    CaseView,
    CostEstimate,
    Disbursement,
    insert_if_absent,
)

log = logs.get("funds.handlers")

CASE_OPENED = "rehab.intake.case.opened"
CASE_CLOSED = "rehab.intake.case.closed"
CASE_ERASED = "rehab.intake.case.erased"
REFERRAL_COMPLETED = "rehab.referrals.referral.completed"

# A case only moves forward: an older event arriving late never reopens a closed or erased case.
_CASE_RANK = {"open": 0, "closed": 1, "erased": 2}
ACTIVE = (Status.REQUESTED, Status.APPROVED, Status.PAID)


class CaseOpened(BaseModel):
    case_id: str
    reference: str | None = None


class CaseEnded(BaseModel):
    case_id: str


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
            CASE_ERASED: partial(case_erased, runtime.audit, runtime.idempotency),
        }),
        Subscription(producer="referrals", durable="funds-referrals", handlers={
            REFERRAL_COMPLETED: referral_completed,
        }),
    ]


def case_opened(session: Session, event: Envelope) -> None:
    data = CaseOpened.model_validate(event.data)
    _advance_case(session, data.case_id, "open", reference=data.reference)


def case_closed(session: Session, event: Envelope) -> None:
    _advance_case(session, CaseEnded.model_validate(event.data).case_id, "closed")


def case_erased(audit: AuditTrail, answers: Idempotency, session: Session, event: Envelope) -> None:
    """Forget the person: destroy the case's data key (every purpose and payee sealed under it becomes
    unrecoverable) and drop the ciphertexts too, and delete the stored Idempotency-Key answers about the case with
    their request fingerprints (computed over purposes and payees). Amounts, dates and the ledger stay for the
    accounts."""
    case_id = CaseEnded.model_validate(event.data).case_id
    _advance_case(session, case_id, "erased")
    answers.forget(session, case_id)
    session.execute(update(Disbursement).where(Disbursement.case_id == case_id)
                    .values(purpose_sealed=None, payee_sealed=None, shredded=True))
    session.execute(delete(CaseKey).where(CaseKey.case_id == case_id))
    scrub_after_commit(session)  # the destroyed key's old page images leave the write-ahead log too
    audit.record(session, actor="system:funds-intake", action="case.shred", target_id=case_id)


_CASE_UPSERTS: dict[str, Any] = {}


def _case_upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (case_id) DO UPDATE, built once per dialect: what `_advance_case` does, in one statement.
    A new case gets the incoming status; a known one moves forward only (`_CASE_RANK`, an unknown status ranking as
    open) and keeps its reference unless it has none yet."""
    if dialect not in _CASE_UPSERTS:
        table = CaseView.__table__  # type: ignore[attr-defined]
        statement = dialect_insert(dialect)(table)
        new = statement.excluded

        def rank(column: Any) -> Any:
            return case(_CASE_RANK, value=column, else_=0)

        _CASE_UPSERTS[dialect] = statement.on_conflict_do_update(index_elements=[table.c.case_id], set_={
            "status": case((rank(new.status) > rank(table.c.status), new.status), else_=table.c.status),
            "reference": case((and_(new.reference.is_not(None), new.reference != "",
                                    or_(table.c.reference.is_(None), table.c.reference == "")), new.reference),
                              else_=table.c.reference),
            "updated_at": new.updated_at,
        })
    return _CASE_UPSERTS[dialect]


def _advance_case(session: Session, case_id: str, status: str, *, reference: str | None = None) -> None:
    connection = session.connection()  # Core, in the inbox transaction: no SELECT, no ORM object per event
    connection.execute(_case_upsert(connection.dialect.name), {
        "case_id": case_id, "status": status, "reference": reference, "updated_at": datetime.now(UTC),
    })


def referral_completed(session: Session, event: Envelope) -> None:
    data = ReferralCompleted.model_validate(event.data)
    if data.cost_estimate is None:
        return
    try:
        amount_minor = money.parse_amount(data.cost_estimate.amount, data.cost_estimate.currency)
    except money.MoneyError:
        log.warning("cost estimate not usable as money, skipped", referral_id=data.referral_id, event_id=event.id)
        return
    insert_if_absent(session, CostEstimate, {
        "referral_id": data.referral_id, "case_id": data.case_id, "partner_id": data.partner_id,
        "category": data.category, "amount_minor": amount_minor, "currency": data.cost_estimate.currency,
        "completed_at": data.occurred_at or event.time,
    }, key=["referral_id"])
    # The two streams are not ordered with each other: aid may have been requested for this referral already.
    claimed_by = session.execute(
        select(Disbursement.id).where(Disbursement.referral_id == data.referral_id, Disbursement.status.in_(ACTIVE))
        .limit(1)
    ).scalar()
    if claimed_by:
        session.execute(update(CostEstimate).where(CostEstimate.referral_id == data.referral_id)
                        .values(disbursement_id=claimed_by))
