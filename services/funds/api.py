"""Funds' HTTP routes: check the role, parse, call one use case, shape the answer.

Every POST runs through the kit's idempotency (required on the two that create or move money for a person:
requesting aid and paying it; honoured on every other POST that sends an Idempotency-Key), which runs it as one
unit of `runtime.uow`: the change, its event, its audit entry and the stored response commit together. Reads go
through a read-only session, except the audited read of one disbursement, a unit of work too, and a caseworker's list
with an `Access-Reason` (a break-glass opening of a case not assigned to them writes its audit entry).

A caseworker acts only on the cases assigned to them (need-to-know, decided in the use cases): another case is 403
`need-to-know` unless the request states why in an `Access-Reason` header, handed to intake first
(`keep_stated_reason`), which keeps it sealed with the case and shows it on the case's timeline; when intake cannot
take it, nothing is opened (503). Finance works every disbursement.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from kit import need_to_know
from kit.audit import refusal_recorded
from kit.auth import Principal, require_roles
from kit.idempotency import HEADER as IDEMPOTENCY_KEY
from kit.need_to_know import AccessReason
from kit.openapi import HONOURS_KEY, NEEDS_KEY, STATE_REFUSES
from kit.pagination import Page, page_size
from kit.service import ReadSession, Runtime, RuntimeDep
from services.funds import domain, reports, service
from services.funds.models import (
    CostEstimatePublic,
    DisbursementCreate,
    DisbursementDetail,
    DisbursementPublic,
    EstimateRequest,
    GrantChoice,
    GrantCreate,
    GrantPublic,
    PaymentCreate,
)

# Ids in paths are UUIDs: anything else is refused (422) before it reaches the database.
router = APIRouter(prefix="/api/funds", tags=["funds"])
Finance = Annotated[Principal, Depends(require_roles("finance"))]
Staff = Annotated[Principal, Depends(require_roles("caseworker", "finance"))]
Limit = page_size(200)
Format = Literal["json", "csv"]
# Route functions whose name makes no readable operationId.
OPERATION_IDS = {"request_from_estimate": "cost_estimates_request"}


async def _once(request: Request, runtime: RuntimeDep, principal: Principal, action: Callable[[Session], Any], *,
                status: int = 200, required: bool = False, case_id: str | None = None) -> Response:
    """`case_id`: the case the request is about, stored beside its answer (a refusal's too), so that erasing the
    case deletes them: a request's fingerprint is computed over its purpose and payee."""
    return await runtime.idempotency.run(
        request, principal=principal.sub, uow=runtime.uow, required=required,
        action=lambda session: (status, action(session)), subject=case_id,
    )


def _case_of(request: Request, runtime: RuntimeDep, **record_id: str) -> str | None:
    if IDEMPOTENCY_KEY not in request.headers:  # nothing will be stored
        return None
    with runtime.uow.read() as session:
        return service.case_of(session, **record_id)


# ---- grants ----------------------------------------------------------------------------------------------------

@router.post("/grants", status_code=201, response_model=GrantPublic, openapi_extra=HONOURS_KEY,
             responses={409: {"description": "A grant with this code exists already."}})
async def create_grant(request: Request, body: GrantCreate, runtime: RuntimeDep, principal: Finance) -> Response:
    return await _once(request, runtime, principal, status=201, action=lambda session: service.create_grant(
        session=session, runtime=runtime, grant_in=body, actor=principal.sub))


@router.get("/grants", response_model=Page[GrantPublic])
async def list_grants(session: ReadSession, runtime: RuntimeDep, principal: Finance, limit: Limit = 50,
                      cursor: str | None = None) -> Page[GrantPublic]:
    return service.list_grants(session=session, runtime=runtime, limit=limit, cursor=cursor)


@router.get("/grants/open", response_model=Page[GrantChoice])
async def list_open_grants(session: ReadSession, principal: Staff, limit: Limit = 50,
                           cursor: str | None = None) -> Page[GrantChoice]:
    """The grants aid may be requested from today, for a caseworker choosing one (no donor, no balances)."""
    return service.list_open_grants(session=session, today=datetime.now(UTC).date(), limit=limit, cursor=cursor)


@router.get("/grants/{grant_id}", response_model=GrantPublic)
async def get_grant(grant_id: uuid.UUID, session: ReadSession, runtime: RuntimeDep, principal: Finance) -> GrantPublic:
    return service.get_grant(session=session, runtime=runtime, grant_id=str(grant_id))


# ---- disbursements ---------------------------------------------------------------------------------------------

async def keep_stated_reason(request: Request, runtime: Runtime, principal: Principal, *, case_id: str | None = None,
                             disbursement_id: str | None = None) -> None:
    """A caseworker's break-glass reason (`Access-Reason`), handed to intake before the use case opens the case here
    (kit.need_to_know.ReasonKeeper). Finance opens no case by break-glass (`domain.case_access`). A reason refused
    there (too short to say why) refuses the case here, before any use case: audited here too
    (`domain.ACCESS_REFUSED`)."""
    if need_to_know.HEADER not in request.headers or domain.FINANCE in principal.roles:
        return
    if case_id is None and disbursement_id is not None:
        case_id = await runtime.uow.reading(lambda session: service.case_of_disbursement(session, disbursement_id))
    with refusal_recorded(actor=principal.sub, action=domain.ACCESS_REFUSED, target_id=case_id):
        await need_to_know.keep_stated_reason(request, runtime, case_id, opened_in="funds")


@router.post("/disbursements", status_code=201, response_model=DisbursementPublic,
             openapi_extra=NEEDS_KEY, responses={409: {
                 "description": "The grant or the case does not allow this request (the problem's `type` says why: "
                                "`grant-unknown`, `grant-category`, `grant-period` for a grant that has ended, "
                                "`case-closed`, …)."}})
async def request_disbursement(request: Request, body: DisbursementCreate, runtime: RuntimeDep,
                               principal: Staff, access_reason: AccessReason = None) -> Response:
    await keep_stated_reason(request, runtime, principal, case_id=str(body.case_id))

    def action(session: Session) -> DisbursementPublic:
        created = service.request_disbursement(session=session, runtime=runtime, body=body, principal=principal,
                                               access_reason=access_reason)
        return service.public_view(session, runtime, created, viewer=principal.sub)

    return await _once(request, runtime, principal, action, status=201, required=True, case_id=str(body.case_id))


@router.get("/disbursements", response_model=Page[DisbursementPublic], responses={
    409: {"description": "The case named is not known to funds yet (`case-unknown`): intake's event about it is on "
                         "its way; try again in a moment."}})
async def list_disbursements(
    request: Request, runtime: RuntimeDep, principal: Staff,
    status: domain.StatusName | None = None,
    case_id: uuid.UUID | None = None, grant_id: uuid.UUID | None = None, limit: Limit = 50, cursor: str | None = None,
    access_reason: AccessReason = None,
) -> Page[DisbursementPublic]:
    """Every disbursement for finance; for a caseworker, those of one case (`case_id`) they may act on."""
    await keep_stated_reason(request, runtime, principal, case_id=str(case_id) if case_id else None)
    return await need_to_know.read(runtime.uow, access_reason, lambda session: service.list_disbursements(
        session=session, runtime=runtime, principal=principal, status=status,
        case_id=str(case_id) if case_id else None, grant_id=str(grant_id) if grant_id else None, limit=limit,
        cursor=cursor, access_reason=access_reason))


@router.get("/disbursements/{disbursement_id}", response_model=DisbursementDetail)
async def read_disbursement(disbursement_id: uuid.UUID, request: Request, runtime: RuntimeDep, principal: Staff,
                            access_reason: AccessReason = None,
                            payee: Literal["shown", "masked"] = "shown") -> DisbursementDetail:
    """With its purpose, and for finance its payee (audited as `payee.read`); `?payee=masked`: the payee only as
    `payee_masked`, the kind of account and its last four characters (audited as `disbursement.read`)."""
    await keep_stated_reason(request, runtime, principal, disbursement_id=str(disbursement_id))
    return await runtime.uow.run(lambda session: service.read_disbursement(  # audited: its entry commits with it
        session=session, runtime=runtime, disbursement_id=str(disbursement_id), principal=principal,
        access_reason=access_reason, mask_payee=payee == "masked"))


def _transition(name: str, use_case: Callable[..., Any], summary: str, refused: str = STATE_REFUSES) -> None:
    async def route(disbursement_id: uuid.UUID, request: Request, runtime: RuntimeDep, principal: Finance) -> Response:
        def action(session: Session) -> DisbursementPublic:
            changed = use_case(session=session, runtime=runtime, disbursement_id=str(disbursement_id),
                               actor=principal.sub)
            return service.public_view(session, runtime, changed, viewer=principal.sub)

        return await _once(request, runtime, principal, action,
                           case_id=_case_of(request, runtime, disbursement_id=str(disbursement_id)))

    route.__name__ = f"{name}_disbursement"
    router.add_api_route(f"/disbursements/{{disbursement_id}}/{name}", route, methods=["POST"],
                         response_model=DisbursementPublic, summary=summary, openapi_extra=HONOURS_KEY,
                         responses={409: {"description": refused}})


_transition("approve", service.approve_disbursement,
            "Approve (not by the requester, nor by one of the case's caseworkers): commits the amount from the grant",
            STATE_REFUSES + " Or the grant cannot fund it.")
_transition("reject", service.reject_disbursement, "Reject a request; an approved amount goes back to the grant")
_transition("void", service.void_disbursement, "Void before payment; an approved amount goes back to the grant")


@router.post("/disbursements/{disbursement_id}/pay", response_model=DisbursementPublic,
             openapi_extra=NEEDS_KEY, responses={409: {"description": STATE_REFUSES}})
async def pay_disbursement(disbursement_id: uuid.UUID, request: Request, body: PaymentCreate, runtime: RuntimeDep,
                           principal: Finance) -> Response:
    """Pay an approved disbursement, once. Paid in another currency than the grant's (`paid`: amount, currency,
    `fx_rate` as units of it for one unit of the grant's, `fx_source`), the payment is converted into the grant's
    currency (rounded half to even); worth another amount than was approved, it is 409 `fx-difference` unless
    `difference` says `release` (the rest back to the grant) or `approve` (the extra from the grant's available
    money, not by the requester); more than 10% off either way is refused (`fx-release-too-large`,
    `fx-extra-too-large`): the aid is asked for again. The `reference` may carry the payee's name: it is sealed
    with the case and reads null once the case is erased; an aid whose case was erased already is still paid, its
    reference not kept (`payment.reference` null). Nobody assigned to the case pays it (403 `own-case`)."""
    def action(session: Session) -> DisbursementPublic:
        paid, _payment = service.pay_disbursement(session=session, runtime=runtime, disbursement_id=str(disbursement_id),
                                                 payment_in=body, actor=principal.sub)
        return service.public_view(session, runtime, paid, viewer=principal.sub)

    return await _once(request, runtime, principal, action, required=True,
                       case_id=_case_of(request, runtime, disbursement_id=str(disbursement_id)))


# ---- cost estimates from completed referrals -------------------------------------------------------------------

@router.get("/cost-estimates", response_model=Page[CostEstimatePublic])
async def list_cost_estimates(session: ReadSession, principal: Finance, limit: Limit = 50,
                              cursor: str | None = None) -> Page[CostEstimatePublic]:
    return service.list_open_estimates(session=session, limit=limit, cursor=cursor)


@router.post("/cost-estimates/{referral_id}/request", status_code=201, response_model=DisbursementPublic,
             openapi_extra=NEEDS_KEY, responses={409: {
                 "description": "Aid was already requested for this estimate, or its category is not one aid can be "
                                "paid for."}})
async def request_from_estimate(referral_id: uuid.UUID, request: Request, body: EstimateRequest, runtime: RuntimeDep,
                                principal: Finance) -> Response:
    def action(session: Session) -> DisbursementPublic:
        created = service.request_from_estimate(session=session, runtime=runtime, referral_id=str(referral_id), body=body,
                                                principal=principal)
        return service.public_view(session, runtime, created, viewer=principal.sub)

    return await _once(request, runtime, principal, action, status=201, required=True,
                       case_id=_case_of(request, runtime, referral_id=str(referral_id)))


# ---- reports ---------------------------------------------------------------------------------------------------

@router.get("/reports/grants", response_model=reports.GrantsReport,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"}})
async def grants_report(session: ReadSession, runtime: RuntimeDep, principal: Finance, format: Format = "json") -> Any:
    report = reports.grants_report(session=session, keyring=runtime.keyring)
    if format == "csv":
        return _csv(reports.grants_csv(report), "grants.csv")
    return report


@router.get("/reports/donor", response_model=reports.DonorReport,
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
                       404: {"description": "There is no such grant."}})
async def donor_report(grant_id: uuid.UUID, session: ReadSession, runtime: RuntimeDep, principal: Finance,
                       format: Format = "json",
                       as_of: Annotated[str | None, Query(max_length=7, description=(
                           "The month (YYYY-MM) whose end the statement is of; by default the last month that has "
                           "ended and settled. A month not yet settled is 422 (`month-not-settled`)."))] = None) -> Any:
    settling = timedelta(days=runtime.settings.settling_days)
    report = reports.donor_report(session=session, keyring=runtime.keyring, grant_id=str(grant_id), as_of=as_of,
                                  settling=settling)
    if format == "csv":
        return _csv(reports.donor_csv(report), f"donor-{report.grant_code}.csv")
    return report


def _csv(text: str, filename: str) -> Response:
    safe_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{safe_name}"'})
