"""What funds keeps from other services' events: the cases intake opens, closes and erases (to refuse aid for a
closed or erased case, and to crypto-shred payees on erasure), who each case is assigned to (need-to-know), and the
cost estimates of referrals completed.

Use cases like the staff ones (functions of a session, in the caller's transaction, never committing), run by the
consumers in `handlers` inside the kit's inbox transaction. Each tolerates events that arrive out of order or name
a case or referral funds has not heard of yet.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.db import dialect_insert, scrub_after_commit
from kit.idempotency import Idempotency, StoredAnswers
from kit.need_to_know import keep_assignees
from services.funds import domain, money, queries
from services.funds.models import (CaseAssignee, CaseAssignment, CaseKey, CaseWorker, CostEstimate, Disbursement,
                                   Payment)

# ---- cases -----------------------------------------------------------------------------------------------------


def advance_case(*, session: Session, case_id: str, status: str, reference: str | None = None) -> None:
    """Funds learns a case's status: a new case is kept with it, a known one moves forward only and keeps its
    reference unless it has none yet (queries.cases)."""
    queries.cases.upsert(session, {"case_id": case_id, "status": status, "reference": reference,
                                   "updated_at": datetime.now(UTC)})


def reopen_case(*, session: Session, case_id: str, leaving: str = "closed") -> None:
    """A closed case, or one marked a duplicate (`leaving`: the status intake reopened it from), was reopened: it is
    open again (aid may be requested once more). Only a case in that status moves back: a reopening of a closed case
    that comes after the case went on to be a duplicate or erased leaves it so."""
    queries.cases.move_back(session, {"case_id": case_id, "status": "open", "reference": None,
                                      "updated_at": datetime.now(UTC)}, leaving=leaving)


def assign_case(*, session: Session, case_id: str, assignees: list[str], assigned_at: datetime) -> bool:
    """Intake (re)assigned a case: its assignees become these, unless the assignment kept is a later one (an older
    case.assigned arriving late changes nothing). True when applied. Kept through erasure: the sums of an erased
    case's disbursements stay its caseworkers' to see."""
    # Everyone assigned, by this event even when a later one is kept already: they were its caseworkers then.
    if assignees:
        insert_new = dialect_insert(session.get_bind().dialect.name)(CaseWorker).on_conflict_do_nothing()
        session.execute(insert_new, [{"case_id": case_id, "user_id": user} for user in sorted(set(assignees))])
    return keep_assignees(session, assignments=CaseAssignment.__table__,  # type: ignore[attr-defined]
                          assignees=CaseAssignee.__table__, case_id=case_id, users=assignees,  # type: ignore[attr-defined]
                          assigned_at=assigned_at)


def erase_case(*, session: Session, audit: AuditTrail, answers: Idempotency | StoredAnswers, case_id: str,
               actor: str = "system:funds-intake") -> None:
    """Forget the person: destroy the case's data key (every purpose and payee sealed under it becomes
    unrecoverable) and drop the ciphertexts too, and delete the stored Idempotency-Key answers about the case with
    their request fingerprints (computed over purposes and payees). Amounts, dates and the ledger stay for the
    accounts. Intake's `case.erased` runs it, and so does `manage erasures apply` after a restore (the ledger's)."""
    advance_case(session=session, case_id=case_id, status="erased")
    answers.forget(session, case_id)
    session.execute(update(Disbursement).where(Disbursement.case_id == case_id)
                    .values(purpose_sealed=None, payee_sealed=None, shredded=True))
    # A payment made before its reference was sealed kept it in clear (it may carry the payee's name), and where its
    # rate came from too, until funds sealed them (older_in_clear): erased with the person whatever it holds.
    paid = select(Disbursement.id).where(Disbursement.case_id == case_id)
    session.execute(update(Payment).where(Payment.disbursement_id.in_(paid)).values(reference=""))
    session.execute(update(Payment).where(Payment.disbursement_id.in_(paid), Payment.fx_source.is_not(None))
                    .values(fx_source=""))
    session.execute(delete(CaseKey).where(CaseKey.case_id == case_id))
    scrub_after_commit(session)  # the destroyed key's old page images leave the write-ahead log too
    audit.record(session, actor=actor, action="case.shred", target_id=case_id)


# ---- cost estimates --------------------------------------------------------------------------------------------


def record_cost_estimate(*, session: Session, referral_id: str, case_id: str, partner_id: str, category: str,
                         amount: str, currency: str, completed_at: datetime) -> bool:
    """Keep a completed referral's cost estimate (once), linked to the live disbursement already requested for the
    referral if there is one. False, and nothing kept, when the estimate is not money funds can pay (an event to
    skip, not to retry for ever)."""
    try:
        amount_minor = money.parse_amount(amount, currency)
    except money.MoneyError:
        return False
    queries.insert_if_absent(session, CostEstimate, {
        "referral_id": referral_id, "case_id": case_id, "partner_id": partner_id, "category": category,
        "amount_minor": amount_minor, "currency": currency, "completed_at": completed_at,
    }, key=["referral_id"])
    # The two streams are not ordered with each other: aid may have been requested for this referral already; only
    # aid for the estimate's own case may claim it (as when the estimate came first: service._claim_estimate).
    claimed_by = session.execute(
        select(Disbursement.id).where(Disbursement.referral_id == referral_id, Disbursement.case_id == case_id,
                                      Disbursement.status.in_(domain.ACTIVE)).limit(1)
    ).scalar()
    if claimed_by:
        session.execute(update(CostEstimate).where(CostEstimate.referral_id == referral_id)
                        .values(disbursement_id=claimed_by))
    return True
