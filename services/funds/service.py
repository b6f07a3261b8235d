"""Funds' use cases.

Each one changes rows, moves money through the ledger, writes its event to the outbox and its audit entry, all in
the caller's transaction, and does not commit: the route's unit of work commits (the kit's idempotency runs every
POST in one transaction together with the stored response, so a retried request can never act twice).

A caseworker requests aid for, and sees the disbursements of, only the cases assigned to them (need-to-know:
`domain.case_access` decides, `admit_to_case` below applies it; another case only with a stated reason, a break-glass
opening audited as `case.break_glass`). Finance works every disbursement.

Locks, in the one order every use case takes them, so that two transactions never wait on each other in a circle:
the case (shared, while aid is requested) → the grant → the disbursement → ledger accounts → the audit chain (last).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from kit import crypto
from kit.audit import refusal_recorded
from kit.auth import Principal
from kit.db import get_or_raise, scrub_after_commit
from kit.errors import Conflict, Invalid, NotFound, NotYet, Refused
from kit.need_to_know import BREAK_GLASS, Access
from kit.pagination import Page, keyset_page
from kit.service import Runtime
from services.funds import domain, donors, events, ledger, money, queries
from services.funds.domain import Account, Move, Status
from services.funds.models import (
    CaseAssignee,
    CaseWorker,
    CaseKey,
    CaseView,
    CostEstimate,
    CostEstimatePublic,
    Disbursement,
    DisbursementCreate,
    DisbursementDetail,
    DisbursementPublic,
    EstimateRequest,
    Grant,
    GrantChoice,
    GrantCreate,
    GrantPublic,
    Payee,
    PayeeMasked,
    Payment,
    PaymentCreate,
    PaymentPublic,
    new_id,
    utc,
)

# ---- grants ----------------------------------------------------------------------------------------------------


def create_grant(*, session: Session, runtime: Runtime, grant_in: GrantCreate, actor: str) -> GrantPublic:
    """Create a grant and fund its available account with the whole budget."""
    # Codes are told apart by more than letter case: aid booked to "g-eur" while "G-EUR" exists would be a guess
    # at which donor's money was meant (an outside review's find).
    taken = session.execute(select(Grant.code).where(func.lower(Grant.code) == grant_in.code.lower())).scalar()
    if taken is not None:
        raise _code_taken(taken)
    grant = Grant(id=new_id(), code=grant_in.code, donor=donors.SEALED, currency=grant_in.currency,
                  budget_minor=grant_in.amount_minor, starts_on=grant_in.starts_on, ends_on=grant_in.ends_on,
                  categories=sorted(set(grant_in.categories)), created_by=actor, created_at=datetime.now(UTC))
    donors.seal(runtime.keyring, grant, grant_in.donor)
    session.add(grant)
    try:
        session.flush()
    except IntegrityError as error:  # the same code created a moment ago by someone else
        raise _code_taken(grant_in.code) from error
    ledger.open_accounts(session, grant)
    runtime.audit.record(session, actor=actor, action="grant.create", target_id=grant.id)
    return grant_public(session, runtime, grant)


def get_grant(*, session: Session, runtime: Runtime, grant_id: str) -> GrantPublic:
    """One grant with its balances."""
    grant = get_or_raise(session, Grant, grant_id, NotFound("There is no such grant.", code="not-found"))
    return grant_public(session, runtime, grant)


def list_grants(*, session: Session, runtime: Runtime, limit: int, cursor: str | None) -> Page[GrantPublic]:
    """Grants, newest first, with their balances."""
    rows, next_cursor = keyset_page(session, select(Grant), order=[Grant.created_at, Grant.id], limit=limit,
                                    cursor=cursor, descending=True)
    return Page(items=[grant_public(session, runtime, g) for g in rows], next_cursor=next_cursor)


def list_open_grants(*, session: Session, today: date, limit: int, cursor: str | None) -> Page[GrantChoice]:
    """The grants within their dates today, soonest ending first: those aid may be requested from."""
    query = select(Grant).where(Grant.starts_on <= today, Grant.ends_on >= today)
    rows, next_cursor = keyset_page(session, query, order=[Grant.ends_on, Grant.id], limit=limit, cursor=cursor)
    return Page(items=[GrantChoice(id=g.id, code=g.code, currency=g.currency, categories=list(g.categories),
                                   ends_on=g.ends_on) for g in rows], next_cursor=next_cursor)


def grant_public(session: Session, runtime: Runtime, grant: Grant) -> GrantPublic:
    held = ledger.balances(session, grant.id)

    def text(account: Account) -> str:
        return money.format_amount(held.get(account, 0), grant.currency)

    return GrantPublic(id=grant.id, code=grant.code, donor=donors.donor(runtime.keyring, grant),
                       currency=grant.currency,
                       budget=money.format_amount(grant.budget_minor, grant.currency),
                       committed=text(Account.COMMITTED), paid=text(Account.PAID), available=text(Account.AVAILABLE),
                       starts_on=grant.starts_on, ends_on=grant.ends_on, categories=list(grant.categories),
                       created_at=utc(grant.created_at))


# ---- asking for aid --------------------------------------------------------------------------------------------


def request_disbursement(*, session: Session, runtime: Runtime, body: DisbursementCreate, principal: Principal,
                         access_reason: str | None = None) -> Disbursement:
    """Ask for aid for a case from a grant; nothing is committed from the grant until approval."""
    case_id, grant_id, actor = str(body.case_id), str(body.grant_id), principal.sub
    admit_to_case(session, runtime, case_id=case_id, principal=principal, access_reason=access_reason)
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise Conflict("There is no such grant.", code="grant-unknown")
    if body.currency != grant.currency:
        # Refused as invalid (422), not as a conflict: the grant's currency never changes, so no retry can succeed.
        raise Invalid(f"Grant {grant.code} pays in {grant.currency}; this request is in {body.currency}.",
                      code="currency-mismatch")
    if body.category not in grant.categories:  # refused now, not by the approver days later: it never could be paid
        raise Conflict(f"Grant {grant.code} does not fund {body.category} aid (it funds: "
                       f"{', '.join(grant.categories)}).", code="grant-category")
    now = datetime.now(UTC)
    domain.check_grant_not_ended(grant.terms(), now.date())  # the same: refused now, not by the approver later
    _require_open_case(session, case_id)
    disbursement = Disbursement(
        id=new_id(), case_id=case_id, grant_id=grant_id, referral_id=str(body.referral_id) if body.referral_id else None,
        category=body.category, amount_minor=body.amount_minor, currency=body.currency, status=Status.REQUESTED.value,
        requested_by=actor, requested_at=now,
    )
    data_key = _case_key(session, runtime, case_id, create=True)
    disbursement.purpose_sealed = crypto.seal(data_key, body.purpose.encode(), _aad(disbursement.id, "purpose"))
    if body.payee is not None:
        disbursement.payee_sealed = crypto.seal(data_key, body.payee.model_dump_json().encode(),
                                                _aad(disbursement.id, "payee"))
    session.add(disbursement)
    session.flush()
    if disbursement.referral_id:
        _claim_estimate(session, disbursement)
    _publish(session, disbursement, now)
    runtime.audit.record(session, actor=actor, action="disbursement.request", target_id=disbursement.id)
    return disbursement


def list_open_estimates(*, session: Session, limit: int, cursor: str | None) -> Page[CostEstimatePublic]:
    """Completed referrals' cost estimates that no live disbursement has been requested for yet, leaving out
    those of closed or erased cases (no aid can be requested for them)."""
    ended = select(CaseView.case_id).where(CaseView.status != "open")
    query = select(CostEstimate).where(CostEstimate.disbursement_id.is_(None), CostEstimate.case_id.not_in(ended))
    rows, next_cursor = keyset_page(session, query, order=[CostEstimate.completed_at, CostEstimate.referral_id],
                                    limit=limit, cursor=cursor, descending=True)
    references = dict(session.execute(
        select(CaseView.case_id, CaseView.reference).where(CaseView.case_id.in_({r.case_id for r in rows}))).all())
    return Page(items=[CostEstimatePublic(
        referral_id=r.referral_id, case_id=r.case_id, case_reference=references.get(r.case_id), partner_id=r.partner_id,
        category=r.category, amount=money.format_amount(r.amount_minor, r.currency), currency=r.currency,
        completed_at=utc(r.completed_at)) for r in rows], next_cursor=next_cursor)


def request_from_estimate(*, session: Session, runtime: Runtime, referral_id: str, body: EstimateRequest,
                          principal: Principal) -> Disbursement:
    """Ask for aid in one step from an open cost estimate: its case, category and amount become the request's."""
    estimate = get_or_raise(session, CostEstimate, referral_id,
                            NotFound("There is no cost estimate for this referral.", code="not-found"))
    if estimate.disbursement_id is not None:
        raise Conflict("Aid has already been requested for this cost estimate.", code="estimate-already-requested")
    if estimate.category not in domain.CATEGORIES:
        raise Conflict(f"This estimate's category ({estimate.category}) is not one aid can be paid for.",
                       code="estimate-category")
    request = DisbursementCreate(
        case_id=estimate.case_id, grant_id=body.grant_id, category=estimate.category,
        amount=money.format_amount(estimate.amount_minor, estimate.currency), currency=estimate.currency,
        purpose=body.purpose, referral_id=estimate.referral_id, payee=body.payee,
    )
    return request_disbursement(session=session, runtime=runtime, body=request, principal=principal)


# ---- deciding and paying ---------------------------------------------------------------------------------------


def approve_disbursement(*, session: Session, runtime: Runtime, disbursement_id: str, actor: str,
                         today: date | None = None) -> Disbursement:
    """Approve (four-eyes) and commit the amount from the grant's available money."""
    disbursement, grant = _lock(session, disbursement_id)
    # An approval refused by the aid's state or by the grant's rules is in the trail, as a refused payment is: an
    # auditor sees who tried to approve what the grant could not hold, or aid of a closed or erased case.
    with refusal_recorded(actor=actor, action=domain.APPROVE_REFUSED, target_id=disbursement.id, of=(Conflict,)):
        target = domain.next_status(disbursement.status, "approve")
    with refusal_recorded(actor=actor, action=domain.FOUR_EYES_REFUSED, target_id=disbursement.id):
        domain.check_four_eyes(requester=disbursement.requested_by, approver=actor)
        domain.check_not_on_the_case(actor=actor, assignees=_caseworkers_ever(session, disbursement.case_id),
                                     doing="approved")
    case = session.get(CaseView, disbursement.case_id)
    with refusal_recorded(actor=actor, action=domain.APPROVE_REFUSED, target_id=disbursement.id, of=(Conflict,)):
        domain.check_approval(
            grant=grant.terms(), category=disbursement.category, amount_minor=disbursement.amount_minor,
            currency=disbursement.currency, available_minor=ledger.balances(session, grant.id)[Account.AVAILABLE],
            case_status=case.status if case else None, today=today or datetime.now(UTC).date(),
        )
    now = datetime.now(UTC)
    ledger.move(session, grant_id=grant.id, kind=Move.RESERVE, amount_minor=disbursement.amount_minor,
                disbursement_id=disbursement.id, at=now)
    _set_status(session, disbursement, "approve", target, approved_by=actor, approved_at=now)
    _publish(session, disbursement, now)
    runtime.audit.record(session, actor=actor, action="disbursement.approve", target_id=disbursement.id)
    return disbursement


def reject_disbursement(*, session: Session, runtime: Runtime, disbursement_id: str, actor: str) -> Disbursement:
    """Decline a request (or an approval not yet paid), giving any committed amount back to the grant."""
    return _end(session=session, runtime=runtime, disbursement_id=disbursement_id, actor=actor, action="reject")


def void_disbursement(*, session: Session, runtime: Runtime, disbursement_id: str, actor: str) -> Disbursement:
    """Cancel a disbursement before it is paid, giving any committed amount back to the grant."""
    return _end(session=session, runtime=runtime, disbursement_id=disbursement_id, actor=actor, action="void")


# How far back the rates other finance staff paid at count as what a rate is expected to be near.
RATES_LOOKED_BACK = timedelta(days=60)


def pay_disbursement(*, session: Session, runtime: Runtime, disbursement_id: str, payment_in: PaymentCreate,
                     actor: str) -> tuple[Disbursement, Payment]:
    """Record the payment of an approved disbursement: its committed amount is posted as paid, once.

    Paid in another currency (`payment_in.paid`), the payment is converted into the grant's currency
    (money.convert: exact, rounded half to even) and settles the commitment by domain.settle_payment: a difference
    from the approved amount is released back to the grant or approved from it only when the payer says so. The
    ledger stays in the grant's currency, every movement double-entry; the audit entry names the decision."""
    disbursement, grant = _lock(session, disbursement_id)
    # A try to pay what is paid (or not approved) is in the trail: an auditor sees who tried to pay twice.
    with refusal_recorded(actor=actor, action=domain.PAY_REFUSED, target_id=disbursement.id, of=(Conflict,)):
        target = domain.next_status(disbursement.status, "pay")
    with refusal_recorded(actor=actor, action=domain.FOUR_EYES_REFUSED, target_id=disbursement.id):
        domain.check_not_on_the_case(actor=actor, assignees=_caseworkers_ever(session, disbursement.case_id),
                                     doing="paid")
    paid = payment_in.paid
    payment_id = new_id()
    # None once the case was erased: the payment is still recorded (the money may have left the bank already), but
    # keeps no reference, which may carry the payee's name and has no key left to be sealed under.
    data_key = _case_key(session, runtime, disbursement.case_id, create=False)
    fx: dict[str, Any] = {}
    if paid is None:
        settlement = domain.Settlement(posted=disbursement.amount_minor)
    else:
        if paid.currency == grant.currency:
            raise Invalid(f"Grant {grant.code} pays in {grant.currency}: a payment in {grant.currency} is made "
                          f"without 'paid', for the approved amount.", code="fx-same-currency")
        converted = money.convert(paid.amount_minor, paid.currency, paid.fx_rate, grant.currency)
        if converted <= 0:
            raise Invalid(f"{paid.amount} {paid.currency} at {paid.fx_rate} is worth nothing in {grant.currency}.",
                          code="fx-converts-to-nothing")
        domain.check_rate_plausible(paid.fx_rate, paid_currency=paid.currency, into=grant.currency,
                                    others_lately=queries.rates_paid_lately(
                                        session, paid_currency=paid.currency, grant_currency=grant.currency,
                                        not_by=actor, since=datetime.now(UTC) - RATES_LOOKED_BACK))
        with refusal_recorded(actor=actor, action=domain.FOUR_EYES_REFUSED, target_id=disbursement.id):
            settlement = domain.settle_payment(
                approved_minor=disbursement.amount_minor, converted_minor=converted, currency=grant.currency,
                decision=payment_in.difference, payer=actor, requester=disbursement.requested_by,
                available_minor=ledger.balances(session, grant.id)[Account.AVAILABLE])
        if data_key is None:
            raise Conflict(f"This case was erased, and a payment in another currency keeps where its rate came from "
                           f"with the case: pay it in {grant.currency}, or void it.", code="case-erased")
        fx = {"paid_amount_minor": paid.amount_minor, "paid_currency": paid.currency, "fx_rate": paid.fx_rate,
              "fx_source_sealed": crypto.seal(data_key, paid.fx_source.encode(), _sealed_aad(payment_id, "fx_source")),
              "converted_minor": converted, "difference_minor": settlement.difference,
              "difference_decision": settlement.decision}
    now = datetime.now(UTC)
    transfer = ledger.move(session, grant_id=grant.id, kind=Move.POST, amount_minor=settlement.posted,
                           disbursement_id=disbursement.id, at=now)
    if settlement.released:
        reserve = ledger.reserve_of(session, disbursement.id)
        ledger.move(session, grant_id=grant.id, kind=Move.FX_RELEASE, amount_minor=settlement.released,
                    disbursement_id=disbursement.id, reverses_id=reserve.id if reserve else None, at=now)
    if settlement.extra:
        ledger.move(session, grant_id=grant.id, kind=Move.FX_EXTRA, amount_minor=settlement.extra,
                    disbursement_id=disbursement.id, at=now)
    reference_sealed = (crypto.seal(data_key, payment_in.reference.encode(), _sealed_aad(payment_id, "reference"))
                        if data_key is not None else None)
    payment = Payment(id=payment_id, disbursement_id=disbursement.id, transfer_id=transfer.id, method=payment_in.method,
                      reference=SEALED_REFERENCE, reference_sealed=reference_sealed, paid_by=actor, paid_at=now, **fx)
    session.add(payment)
    with refusal_recorded(actor=actor, action=domain.PAY_REFUSED, target_id=disbursement.id, of=(Conflict,)):
        try:
            session.flush()
        except IntegrityError as error:  # the unique payment per disbursement: the database's own wall
            raise Conflict("This disbursement is already paid.", code="already-paid") from error
    _set_status(session, disbursement, "pay", target, paid_by=actor, paid_at=now)
    _publish(session, disbursement, now, payment)
    runtime.audit.record(session, actor=actor, action=pay_action(payment), target_id=disbursement.id)
    return disbursement, payment


def pay_action(payment: Payment) -> str:
    """The audit action of a payment, naming how a payment in another currency settled: `disbursement.pay`, or
    `.pay.fx` (worth exactly the approved amount), `.pay.fx-release` (less: the rest given back), `.pay.fx-approve`
    (more: the extra approved). Amounts and the rate stay on the payment row; the trail holds no values."""
    if payment.paid_currency is None:
        return "disbursement.pay"
    return "disbursement.pay.fx" + (f"-{payment.difference_decision}" if payment.difference_decision else "")


def _end(*, session: Session, runtime: Runtime, disbursement_id: str, actor: str, action: str) -> Disbursement:
    disbursement, grant = _lock(session, disbursement_id)
    current = disbursement.status
    target = domain.next_status(current, action)
    released = domain.releases_commitment(current, action)
    now = datetime.now(UTC)
    if released:
        reserve = ledger.reserve_of(session, disbursement.id)
        ledger.move(session, grant_id=grant.id, kind=Move.RELEASE, amount_minor=disbursement.amount_minor,
                    disbursement_id=disbursement.id, reverses_id=reserve.id if reserve else None, at=now)
    _set_status(session, disbursement, action, target, **{f"{target.value}_by": actor, f"{target.value}_at": now})
    # A cost estimate this disbursement had claimed is open again: aid can be requested for it anew.
    session.execute(update(CostEstimate).where(CostEstimate.disbursement_id == disbursement.id)
                    .values(disbursement_id=None))
    _publish(session, disbursement, now, released=released)
    runtime.audit.record(session, actor=actor, action=f"disbursement.{action}", target_id=disbursement.id)
    return disbursement


# ---- reading ---------------------------------------------------------------------------------------------------


def case_of_disbursement(session: Session, disbursement_id: str) -> str | None:
    """The case a disbursement is for (None for no such disbursement): where a break-glass reason stated for it is
    kept."""
    return session.execute(select(Disbursement.case_id).where(Disbursement.id == disbursement_id)).scalar_one_or_none()


def read_disbursement(*, session: Session, runtime: Runtime, disbursement_id: str, principal: Principal,
                      access_reason: str | None = None, mask_payee: bool = False) -> DisbursementDetail:
    """One disbursement with its purpose, and its payee for finance only; the read is audited (`payee.read` when the
    payee was shown). `mask_payee`: finance sees only the kind of account and its last characters (a queue shows
    every request so, and the payee itself is asked for one at a time)."""
    disbursement = get_or_raise(session, Disbursement, disbursement_id, _no_disbursement())
    admit_to_case(session, runtime, case_id=disbursement.case_id, principal=principal, access_reason=access_reason)
    data_key = _case_key(session, runtime, disbursement.case_id, create=False)
    purpose = payee = masked = None
    if data_key is not None and disbursement.purpose_sealed is not None:
        purpose = crypto.open_sealed(data_key, disbursement.purpose_sealed, _aad(disbursement.id, "purpose")).decode()
    if data_key is not None and disbursement.payee_sealed is not None and "finance" in principal.roles:
        payee = Payee.model_validate_json(
            crypto.open_sealed(data_key, disbursement.payee_sealed, _aad(disbursement.id, "payee")))
        kind, ending = domain.masked_account(payee.account)
        masked = PayeeMasked(kind=kind, ending=ending)
        if mask_payee:
            payee = None
    runtime.audit.record(session, actor=principal.sub, action="payee.read" if payee else "disbursement.read",
                         target_id=disbursement.id)
    public = public_view(session, runtime, disbursement, viewer=principal.sub,
                         with_reference="finance" in principal.roles)
    return DisbursementDetail(**public.model_dump(), purpose=purpose, payee=payee, payee_masked=masked)


def public_view(session: Session, runtime: Runtime, disbursement: Disbursement, *, viewer: str,
                with_reference: bool = True) -> DisbursementPublic:
    """A disbursement as its routes answer it to `viewer` (a staff user id); `with_reference`: its payment's reference
    opened too (finance's audited read of one disbursement, and the answers to finance's own steps: never a
    caseworker's)."""
    case = session.get(CaseView, disbursement.case_id)
    payment = _payment_of(session, disbursement.id)
    opened = _opened_payments(session, runtime, [(disbursement, payment)] if payment else [],
                              columns=tuple(PAYMENT_SEALED) if with_reference else LISTED_SEALED)
    return DisbursementPublic.of(disbursement, payment, case_reference=case.reference if case else None,
                                 opened=opened.get(disbursement.id),
                                 on_callers_case=viewer in _caseworkers_ever(session, disbursement.case_id))


def case_of(session: Session, *, disbursement_id: str | None = None, referral_id: str | None = None) -> str | None:
    """The case a disbursement (or a referral's cost estimate) is about; None when there is no such record.

    The routes link each stored Idempotency-Key answer to it, refusals included, so that the case's erasure
    (projections.erase_case) deletes them with the fingerprints of their requests."""
    if disbursement_id is not None:
        return session.execute(select(Disbursement.case_id).where(Disbursement.id == disbursement_id)).scalar()
    return session.execute(select(CostEstimate.case_id).where(CostEstimate.referral_id == referral_id)).scalar()


def list_disbursements(*, session: Session, runtime: Runtime, principal: Principal, status: str | None,
                       case_id: str | None, grant_id: str | None, limit: int, cursor: str | None,
                       access_reason: str | None = None) -> Page[DisbursementPublic]:
    """Disbursements, newest first, without personal details: all of them for finance, a caseworker those of one
    case they may act on."""
    if "finance" not in principal.roles:
        if case_id is None:
            raise Refused("Caseworkers list the disbursements of one case: pass its case_id.", code="forbidden")
        admit_to_case(session, runtime, case_id=case_id, principal=principal, access_reason=access_reason)
    query = select(Disbursement)
    for column, wanted in ((Disbursement.status, status), (Disbursement.case_id, case_id),
                           (Disbursement.grant_id, grant_id)):
        if wanted is not None:
            query = query.where(column == wanted)
    rows, next_cursor = keyset_page(session, query, order=[Disbursement.requested_at, Disbursement.id], limit=limit,
                                    cursor=cursor, descending=True)
    payments = {p.disbursement_id: p for p in session.execute(
        select(Payment).where(Payment.disbursement_id.in_([r.id for r in rows]))).scalars()}
    references = dict(session.execute(
        select(CaseView.case_id, CaseView.reference).where(CaseView.case_id.in_({r.case_id for r in rows}))).all())
    # A list is read unaudited: it opens where each rate came from, never a payment's reference (which may name the
    # payee: finance reads it in one disbursement, an audited read).
    opened = _opened_payments(session, runtime, [(r, payments[r.id]) for r in rows if r.id in payments],
                              columns=LISTED_SEALED)
    callers_cases = frozenset(session.execute(select(CaseWorker.case_id).where(
        CaseWorker.user_id == principal.sub, CaseWorker.case_id.in_({r.case_id for r in rows}))).scalars())
    return Page(items=[DisbursementPublic.of(r, payments.get(r.id), case_reference=references.get(r.case_id),
                                             opened=opened.get(r.id), on_callers_case=r.case_id in callers_cases)
                       for r in rows], next_cursor=next_cursor)


# ---- helpers ---------------------------------------------------------------------------------------------------


def _assignees(session: Session, case_id: str) -> frozenset[str]:
    """The case's assignees as intake last told (staff user ids)."""
    return frozenset(session.execute(select(CaseAssignee.user_id).where(CaseAssignee.case_id == case_id)).scalars())


def _caseworkers_ever(session: Session, case_id: str) -> frozenset[str]:
    """Everyone ever assigned to the case as intake told (staff user ids): leaving it a moment does not make one of
    its caseworkers a stranger to its aid (an outside review's find)."""
    return frozenset(session.execute(select(CaseWorker.user_id).where(CaseWorker.case_id == case_id)).scalars())


def admit_to_case(session: Session, runtime: Runtime, *, case_id: str, principal: Principal,
                 access_reason: str | None) -> None:
    """May the caller act on this case's aid (domain.case_access)? A caseworker's break-glass opening is audited as
    `case.break_glass` about the case and announced (who and when) for the case's timeline in intake; the reason
    itself is not stored here: it is free text that may describe the person, and intake keeps reasons encrypted with
    the case (the route handed it there first, `api.keep_stated_reason`). Both commit with what the caller then does, or not at all when that is refused. Refused (403
    `need-to-know`) when not, and the refusal audited (`domain.ACCESS_REFUSED`, in a unit of its own:
    kit.audit.refusal_recorded)."""
    assignees = _assignees(session, case_id)
    if not assignees and domain.FINANCE not in principal.roles and session.get(CaseView, case_id) is None:
        # Not known here yet (intake's event is on its way, or the id is wrong): said so, not "not yours" to its
        # own caseworker, who would be invited to break the glass on their own case.
        raise _case_unknown()
    with refusal_recorded(actor=principal.sub, action=domain.ACCESS_REFUSED, target_id=case_id):
        access = domain.case_access(user=principal.sub, roles=principal.roles, assignees=assignees,
                                    reason=access_reason)
    if access is Access.BREAK_GLASS:
        runtime.audit.record(session, actor=principal.sub, action=BREAK_GLASS, target_id=case_id)
        events.publish(session, events.CASE_OPENED_BY_BREAK_GLASS, events.CaseAidOpenedByBreakGlass(
            case_id=case_id, user_id=principal.sub, occurred_at=datetime.now(UTC)), about=case_id)


def _case_unknown() -> NotYet:
    return NotYet("This case is not known to funds (yet): aid can be requested once intake has opened it.",
                  code="case-unknown")


def _code_taken(code: str) -> Conflict:
    return Conflict(f"A grant with the code {code} exists already (codes differ by more than letter case).",
                    code="grant-code-taken")


def _no_disbursement() -> NotFound:
    return NotFound("There is no such disbursement.", code="not-found")


def _require_open_case(session: Session, case_id: str) -> None:
    """The case must be known and open. Its row stays share-locked until commit (PostgreSQL), so an erasure
    cannot slip in between this check and the payee sealed under the case's key."""
    case = session.execute(select(CaseView).where(CaseView.case_id == case_id).with_for_update(read=True)
                           .execution_options(populate_existing=True)).scalars().first()
    if case is None:
        raise _case_unknown()
    if case.status != "open":
        raise Conflict(f"This case is {case.status}; aid cannot be requested for it.", code=f"case-{case.status}")


def _case_key(session: Session, runtime: Runtime, case_id: str, *, create: bool) -> bytes | None:
    """The case's data key (made on first use); None once the case was erased and its key destroyed."""
    row = session.get(CaseKey, case_id)
    if row is None and create:
        _, wrapped = runtime.keyring.new_wrapped_data_key()
        queries.insert_if_absent(session, CaseKey, {"case_id": case_id, "kid": wrapped.kid, "wrapped": wrapped.blob,
                                                    "created_at": datetime.now(UTC)}, key=["case_id"])
        row = session.execute(select(CaseKey).where(CaseKey.case_id == case_id)
                              .execution_options(populate_existing=True)).scalars().one()
    if row is None:
        return None
    return runtime.keyring.unwrap(crypto.WrappedKey(row.kid, row.wrapped))


def _aad(disbursement_id: str, column: str) -> bytes:
    return crypto.aad("disbursements", column, disbursement_id)


# What a payment's clear `reference` holds once its reference is sealed (`reference_sealed`), or was not kept at all
# (its case was erased before it was paid): the column is NOT NULL, and no reference typed in is empty.
SEALED_REFERENCE = ""

# A payment's columns sealed under its case's data key, each bound to the payment by its AAD.
PAYMENT_SEALED = {"fx_source": "fx_source_sealed", "reference": "reference_sealed"}
LISTED_SEALED = ("fx_source",)  # what a list opens of them


def _sealed_aad(payment_id: str, column: str) -> bytes:
    return crypto.aad("payments", column, payment_id)


def seal_older_payments(session: Session, runtime: Runtime) -> int:
    """Seal, under each case's data key, what payments made before their columns were sealed keep in clear (the
    bank's reference, which may carry the payee's name; where the rate came from), in one transaction: how many.
    A payment of a case erased since keeps neither: its case has no key left, and the person is forgotten."""
    older = (select(Payment, Disbursement.case_id, CaseView.status)
             .join(Disbursement, Disbursement.id == Payment.disbursement_id)
             .outerjoin(CaseView, CaseView.case_id == Disbursement.case_id)
             .where(((Payment.reference != SEALED_REFERENCE) & Payment.reference_sealed.is_(None))
                    | (Payment.fx_source.is_not(None) & (Payment.fx_source != "")
                       & Payment.fx_source_sealed.is_(None))))
    rows = session.execute(older).all()
    for payment, case_id, status in rows:
        key = None if status == "erased" else _case_key(session, runtime, case_id, create=True)
        if payment.reference != SEALED_REFERENCE and payment.reference_sealed is None:
            if key is not None:
                payment.reference_sealed = crypto.seal(key, payment.reference.encode(),
                                                       _sealed_aad(payment.id, "reference"))
            payment.reference = SEALED_REFERENCE
        if payment.fx_source and payment.fx_source_sealed is None:
            if key is not None:
                payment.fx_source_sealed = crypto.seal(key, payment.fx_source.encode(),
                                                       _sealed_aad(payment.id, "fx_source"))
            payment.fx_source = "" if payment.fx_source_sealed is None else None  # NOT NULL for an FX payment
        session.add(payment)
    if rows:  # the rows' old images, with the references in clear, leave SQLite's write-ahead log too
        scrub_after_commit(session)
    return len(rows)


def _opened_payments(session: Session, runtime: Runtime, paid: list[tuple[Disbursement, Payment]], *,
                     columns: tuple[str, ...] = tuple(PAYMENT_SEALED)) -> dict[str, dict[str, str]]:
    """Disbursement id → its payment's sealed columns (`fx_source`: where the rate came from; `reference`), opened
    under its case's key (each key unwrapped once). A column is missing when nothing was sealed in it (a payment in
    the grant's currency has no source; a payment made before the column was sealed shows its clear value instead;
    one made after its case's erasure kept no reference) or the case was erased since."""
    keys: dict[str, bytes | None] = {}
    opened: dict[str, dict[str, str]] = {}
    for disbursement, payment in paid:
        sealed = {column: value for column, attribute in PAYMENT_SEALED.items()
                  if column in columns and (value := getattr(payment, attribute)) is not None}
        if not sealed:
            continue
        if disbursement.case_id not in keys:
            keys[disbursement.case_id] = _case_key(session, runtime, disbursement.case_id, create=False)
        if (key := keys[disbursement.case_id]) is not None:
            opened[disbursement.id] = {column: crypto.open_sealed(key, value, _sealed_aad(payment.id, column)).decode()
                                       for column, value in sealed.items()}
    return opened


def _claim_estimate(session: Session, disbursement: Disbursement) -> None:
    """Mark the referral's cost estimate (if funds has one) as requested by this disbursement; only one live
    disbursement may claim it, and only one for the estimate's own case."""
    estimate = session.get(CostEstimate, disbursement.referral_id)
    if estimate is None:
        return  # no estimate (yet): the referral handler links it when it arrives
    if estimate.case_id != disbursement.case_id:
        # Claimed for another case, the estimate would leave finance's open list and back a request it has nothing to
        # do with. Invalid (422), not a conflict: a referral never changes case, so no retry can succeed.
        raise Invalid("This referral belongs to another case: its cost estimate cannot back aid for this one.",
                      code="estimate-of-another-case")
    claimed = session.execute(
        update(CostEstimate)
        .where(CostEstimate.referral_id == disbursement.referral_id, CostEstimate.disbursement_id.is_(None))
        .values(disbursement_id=disbursement.id).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise Conflict("Aid has already been requested for this referral's cost estimate.",
                       code="estimate-already-requested")


def _lock(session: Session, disbursement_id: str) -> tuple[Disbursement, Grant]:
    """The disbursement and its grant, both locked for this transaction (grant first, as everywhere)."""
    grant_id = session.execute(select(Disbursement.grant_id).where(Disbursement.id == disbursement_id)).scalar()
    if grant_id is None:
        raise _no_disbursement()
    grant = ledger.lock_grant(session, grant_id)
    disbursement = session.execute(
        select(Disbursement).where(Disbursement.id == disbursement_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalars().one()
    assert grant is not None  # a foreign key holds the disbursement to its grant
    return disbursement, grant


def _set_status(session: Session, disbursement: Disbursement, action: str, target: Status, **fields: Any) -> None:
    """Move to `target` only if the row is still in a state `action` may start from: a second writer that got
    past the checks somehow changes nothing and is refused."""
    allowed, _ = domain.TRANSITIONS[action]
    changed = session.execute(
        update(Disbursement)
        .where(Disbursement.id == disbursement.id, Disbursement.status.in_([s.value for s in allowed]))
        .values(status=target.value, **fields)
    ).rowcount
    if changed != 1:
        raise Conflict("This disbursement was changed by someone else meanwhile; reload it.",
                       code="concurrent-change")


def _publish(session: Session, disbursement: Disbursement, at: datetime, payment: Payment | None = None, *,
             released: bool = False) -> None:
    """Announce the disbursement's new status (ids, category and amounts only); a payment's announcement adds what
    was paid, in which currency, at which rate, and what the grant paid for it (`converted_amount`)."""
    fields: dict[str, Any] = dict(
        disbursement_id=disbursement.id, case_id=disbursement.case_id, grant_id=disbursement.grant_id,
        category=disbursement.category, amount=money.format_amount(disbursement.amount_minor, disbursement.currency),
        currency=disbursement.currency, status=disbursement.status, occurred_at=at,
    )
    if disbursement.status in (domain.Status.REJECTED, domain.Status.VOIDED):  # with the commitment given back
        payload: events.DisbursementChanged = events.DisbursementEnded(
            **fields, released_amount=fields["amount"] if released else None)
    elif payment is None:
        payload = events.DisbursementChanged(**fields)
    else:
        paid = PaymentPublic.of(payment, disbursement)
        payload = events.DisbursementPaid(**fields, paid_amount=paid.paid_amount, paid_currency=paid.paid_currency,
                                          fx_rate=paid.fx_rate,
                                          converted_amount=paid.converted_amount)
    events.publish(session, events.SUBJECT_OF_STATUS[disbursement.status], payload, about=disbursement.id)


def _payment_of(session: Session, disbursement_id: str) -> Payment | None:
    return session.execute(select(Payment).where(Payment.disbursement_id == disbursement_id)).scalars().first()

