"""Referrals' HTTP routes: parse, call one use case, shape the answer.

Two doors into one app: `/api/referrals/...` for staff (admins keep the partner directory and the partners'
webhooks, caseworkers send and cancel referrals) and `/api/partner/...` for partner API clients. Each route checks
its roles itself (deny by default): a partner token opens no staff path, a staff token no partner path.

What a partner sees is need-to-know: the referral's own id, state, category, times and the packet the caseworker
wrote for it; never intake's case id. That id is the one stable handle on a person across the whole system and it
outlives erasure: a partner holding it could link referrals about the same person over time and categories,
and one leaked list would tie a clinic's patients to our case records. The referral id is all a partner needs.
Which partner is calling comes only from the verified token (`partner_id`), never from the request; a referral
addressed to another partner is answered exactly like one that does not exist (404).

A caseworker acts only on the cases assigned to them (need-to-know, decided in the use cases): another case is 403
`need-to-know` unless the request states why in an `Access-Reason` header, a break-glass opening the use case audits.
A stated reason is handed to intake first (`keep_stated_reason`), which keeps it sealed with the case and shows it on
the case's timeline; when intake cannot take it, nothing is opened (503).

Routes that write (audited reads too) run their use case through `runtime.uow` (kit.db.UnitOfWork), the partner's
through `partner.run` (which audits a refused attempt); the others read through a read-only session (the list of a
case's referrals too, unless it carries an Access-Reason: a break-glass opening writes its audit entry). Use cases raise
domain errors (kit.errors), which kit.problems answers: no route translates them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from kit import need_to_know
from kit.audit import refusal_recorded
from kit.auth import Principal, require_partner, require_roles
from kit.need_to_know import AccessReason
from kit.openapi import HONOURS_KEY, STATE_REFUSES
from kit.pagination import Page, page_size
from kit.service import ReadSession, Runtime, RuntimeDep
from services.referrals import consent_told, domain, messages, partner, staff, webhooks
from services.referrals.domain import Action, Category, Status
from services.referrals.lifecycle import now_utc
from services.referrals.models import (
    CompleteBody,
    CountryCode,
    DeadLettersRedelivered,
    DeclineBody,
    LanguageTag,
    MessageCreate,
    MessagePublic,
    MoneyPublic,
    Partner,
    PartnerCreate,
    PartnerPublic,
    PartnerReferral,
    PartnerReferralSummary,
    PartnerUpdate,
    Referral,
    ReferralCancelledPayload,
    ReferralCreate,
    ReferralDetail,
    ReferralMessagePayload,
    ReferralPublic,
    ReferralSentPayload,
    Webhook,
    WebhookAttemptPublic,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookRotated,
    WebhookSecret,
    WebhookSet,
)
from services.referrals.webhook_rules import DeliveryState

router = APIRouter(prefix="/api/referrals", tags=["referrals"])
partner_router = APIRouter(prefix="/api/partner", tags=["partner"])
# Route functions whose name makes no readable operationId.
OPERATION_IDS = {
    "partner_referrals": "partner_referrals_list",
    "partner_referral": "partner_referrals_get",
    "write_message": "referrals_messages_create",
    "read_messages": "referrals_messages_list",
    "partner_write_message": "partner_referrals_messages_create",
    "partner_read_messages": "partner_referrals_messages_list",
}

Admin = Annotated[Principal, Depends(require_roles("admin"))]
DirectoryReader = Annotated[Principal, Depends(require_roles("admin", "caseworker"))]
Caseworker = Annotated[Principal, Depends(require_roles("caseworker"))]
PartnerClient = Annotated[Principal, Depends(require_partner)]
Limit = page_size(200)


async def keep_stated_reason(request: Request, runtime: Runtime, *, actor: str, case_id: str | None = None,
                             referral_id: str | None = None) -> None:
    """A break-glass reason stated for a case (`Access-Reason`), handed to intake before the use case opens the case
    here (kit.need_to_know.ReasonKeeper). The case is the one named, or the referral's. A reason refused there (too
    short to say why) refuses the case here, before any use case: audited here too (`staff.ACCESS_REFUSED`)."""
    if need_to_know.HEADER not in request.headers:
        return
    if case_id is None and referral_id is not None:
        case_id = await runtime.uow.reading(lambda session: staff.case_of_referral(session, referral_id))
    with refusal_recorded(actor=actor, action=staff.ACCESS_REFUSED, target_id=case_id):
        await need_to_know.keep_stated_reason(request, runtime, case_id, opened_in="referrals")


# ---- the partner directory -----------------------------------------------------------------------------------


@router.post("/partners", status_code=201, response_model=PartnerPublic, openapi_extra=HONOURS_KEY)
async def create_partner(
    body: PartnerCreate, request: Request, runtime: RuntimeDep, principal: Admin,
) -> PartnerPublic:
    """A partner organisation in the directory. With an Idempotency-Key, a retry answers the first creation again
    and adds no second partner."""
    return await runtime.idempotency.honour(request, principal=principal.sub, uow=runtime.uow, status=201,
                                            action=lambda session: _partner(staff.create_partner(
                                                session=session, audit=runtime.audit, partner_in=body,
                                                actor=principal.sub)))


@router.get("/partners", response_model=Page[PartnerPublic])
async def list_partners(
    session: ReadSession, principal: DirectoryReader, category: Category | None = None,
    country: CountryCode | None = None, city: str | None = None, language: LanguageTag | None = None,
    active: bool | None = None, limit: Limit = 50,
    cursor: str | None = None,
) -> Page[PartnerPublic]:
    partners, next_cursor = staff.find_partners(
        session=session, category=category, country=country, city=city, language=language, active=active,
        limit=limit, cursor=cursor,
    )
    return Page[PartnerPublic](items=[_partner(p) for p in partners], next_cursor=next_cursor)


@router.get("/partners/{partner_id}", response_model=PartnerPublic)
async def get_partner(partner_id: str, session: ReadSession, principal: DirectoryReader) -> PartnerPublic:
    return _partner(staff.get_partner(session=session, partner_id=partner_id))


@router.patch("/partners/{partner_id}", response_model=PartnerPublic)
async def update_partner(
    partner_id: str, body: PartnerUpdate, runtime: RuntimeDep, principal: Admin,
) -> PartnerPublic:
    updated = await runtime.uow.run(lambda session: staff.update_partner(
        session=session, audit=runtime.audit, partner_id=partner_id, changes=body, actor=principal.sub))
    return _partner(updated)


# ---- a partner's webhook (admins) ----------------------------------------------------------------------------

_URL_REFUSED = {422: {"description": "The URL is not https, cannot be read, or its host resolves to a loopback, "
                                     "private, link-local or otherwise non-public address (the problem's `type` "
                                     "says which)."}}


@router.put("/partners/{partner_id}/webhook", response_model=WebhookSecret,
            responses={201: {"model": WebhookSecret, "description": "The webhook is new."}, **_URL_REFUSED})
async def set_webhook(
    partner_id: str, body: WebhookSet, response: Response, runtime: RuntimeDep, principal: Admin,
) -> WebhookSecret:
    """Create or replace the partner's webhook. The answer holds its signing secret, shown this once (201 when the
    webhook is new); a replaced webhook's old secret stops signing at once (`…/webhook/rotate` is the gentle way)."""
    secret, created = await webhooks.set_webhook(runtime=runtime, partner_id=partner_id, webhook_in=body,
                                                 actor=principal.sub)
    response.status_code = 201 if created else 200
    return WebhookSecret(secret=secret)


@router.get("/partners/{partner_id}/webhook", response_model=WebhookPublic)
async def read_webhook(partner_id: str, session: ReadSession, principal: Admin) -> WebhookPublic:
    return _webhook(webhooks.get_webhook(session=session, partner_id=partner_id))


@router.post("/partners/{partner_id}/webhook/rotate", response_model=WebhookRotated, openapi_extra=HONOURS_KEY)
async def rotate_webhook_secret(
    partner_id: str, request: Request, runtime: RuntimeDep, principal: Admin,
) -> WebhookRotated:
    """A new signing secret, shown this once; the previous one signs too (a second signature) for 24 hours. With an
    Idempotency-Key, a retry whose answer was lost gets that secret again (kept sealed with the stored answers) and
    rotates nothing more: the secret in force is the one the admin was shown."""
    def rotate(session: Any) -> WebhookRotated:
        secret, until = webhooks.rotate_secret(session=session, runtime=runtime, partner_id=partner_id,
                                               actor=principal.sub)
        return WebhookRotated(secret=secret, previous_valid_until=until)

    return await runtime.idempotency.honour(request, principal=principal.sub, uow=runtime.uow, action=rotate)


@router.delete("/partners/{partner_id}/webhook", status_code=204)
async def delete_webhook(partner_id: str, runtime: RuntimeDep, principal: Admin) -> Response:
    await runtime.uow.run(lambda session: webhooks.remove_webhook(
        session=session, audit=runtime.audit, partner_id=partner_id, actor=principal.sub))
    return Response(status_code=204)


@router.get("/partners/{partner_id}/webhook/deliveries", response_model=Page[WebhookDeliveryPublic])
async def list_webhook_deliveries(
    partner_id: str, session: ReadSession, principal: Admin, state: DeliveryState | None = None,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[WebhookDeliveryPublic]:
    """The partner's deliveries, newest first, with their last attempt's status code; `?state=dead`: the dead
    letters (still failing after 24 hours of retries)."""
    found, next_cursor = webhooks.list_deliveries(session=session, partner_id=partner_id, state=state, limit=limit,
                                                  cursor=cursor)
    return Page[WebhookDeliveryPublic](items=[_delivery(d) for d in found], next_cursor=next_cursor)


@router.get("/partners/{partner_id}/webhook/deliveries/{delivery_id}", response_model=WebhookDeliveryDetail)
async def read_webhook_delivery(
    partner_id: str, delivery_id: str, session: ReadSession, principal: Admin,
) -> WebhookDeliveryDetail:
    """One delivery and each of its attempts (when, status code or why none, how long)."""
    read = webhooks.read_delivery(session=session, partner_id=partner_id, delivery_id=delivery_id)
    return WebhookDeliveryDetail(**_delivery(read.delivery).model_dump(), history=[
        WebhookAttemptPublic.model_validate(a, from_attributes=True) for a in read.attempts])


@router.post("/partners/{partner_id}/webhook/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=WebhookDeliveryPublic, openapi_extra=HONOURS_KEY, responses={409: {
                 "description": "The delivery is still being made (`webhook-delivery-pending`), or the webhook is no "
                                "longer subscribed to its event (`webhook-event-not-subscribed`)."}})
async def redeliver_webhook_delivery(
    partner_id: str, delivery_id: str, request: Request, runtime: RuntimeDep, principal: Admin,
) -> Response:
    """Send a finished delivery again (a dead letter once the partner's endpoint is mended, or a delivered one its
    receiver lost): due at once, with the same `webhook-id` and body, to the webhook as it is now. A dead letter
    older than the retry window is tried once; a failure leaves it dead again."""
    def again(session: Any) -> tuple[int, WebhookDeliveryPublic]:
        return 202, _delivery(webhooks.redeliver(session=session, audit=runtime.audit, partner_id=partner_id,
                                                 delivery_id=delivery_id, actor=principal.sub))

    return await runtime.idempotency.run(request, principal=principal.sub, uow=runtime.uow, required=False,
                                         action=again)


@router.post("/partners/{partner_id}/webhook/dead-letters/redeliver", status_code=202,
             response_model=DeadLettersRedelivered, openapi_extra=HONOURS_KEY)
async def redeliver_dead_letters(
    partner_id: str, request: Request, runtime: RuntimeDep, principal: Admin,
) -> Response:
    """Send every dead letter of the partner again, once its endpoint is mended (those of events the webhook is no
    longer subscribed to stay dead)."""
    def again(session: Any) -> tuple[int, DeadLettersRedelivered]:
        return 202, DeadLettersRedelivered(redelivered=webhooks.redeliver_dead_letters(
            session=session, audit=runtime.audit, partner_id=partner_id, actor=principal.sub))

    return await runtime.idempotency.run(request, principal=principal.sub, uow=runtime.uow, required=False,
                                         action=again)


# ---- referrals, for caseworkers ------------------------------------------------------------------------------


@router.post("/referrals", status_code=201, response_model=ReferralPublic, openapi_extra=HONOURS_KEY, responses={
    404: {"description": "There is no partner with this id in the directory."},
    409: {"description": "The partner takes no new referrals or works in another category, or the case or its "
                         "consent does not allow this referral (the problem's `type` says which)."}})
async def send_referral(request: Request, body: ReferralCreate, runtime: RuntimeDep, principal: Caseworker,
                        access_reason: AccessReason = None) -> Response:
    """Send a referral (status `sent`). With an `Idempotency-Key` header, a retry gets the first answer again."""
    await keep_stated_reason(request, runtime, actor=principal.sub, case_id=body.case_id)

    def send(session):  # noqa: ANN001, ANN202
        view = staff.send_referral(session=session, runtime=runtime, referral_in=body, actor=principal.sub,
                                   access_reason=access_reason)
        return 201, _staff(view)

    # Linked to the case, a refusal too: the fingerprint is computed over the packet, and erasing the case
    # (projections.forget_case) deletes both.
    return await runtime.idempotency.run(request, principal=principal.sub, uow=runtime.uow, required=False,
                                         action=send, subject=body.case_id)


@router.get("/referrals", response_model=Page[ReferralPublic], responses={
    409: {"description": "The case named is not known to referrals yet (`case-unknown`): intake's event about it is "
                         "on its way; try again in a moment."}})
async def list_referrals(
    request: Request, runtime: RuntimeDep, principal: Caseworker, case: uuid.UUID | None = Query(None, alias="case_id"),
    status: Status | None = None, overdue: bool | None = None, limit: Limit = 50, cursor: str | None = None,
    access_reason: AccessReason = None,
) -> Page[ReferralPublic]:
    """The referrals of one case, or without `case_id` those of every case assigned to the caller."""
    case_id = None if case is None else str(case)  # a case id is a UUID: anything else is 422, not an unknown case
    await keep_stated_reason(request, runtime, actor=principal.sub, case_id=case_id)
    views, next_cursor = await need_to_know.read(runtime.uow, access_reason, lambda session: staff.list_referrals(
        session=session, runtime=runtime, case_id=case_id, status=status, overdue=overdue, limit=limit,
        cursor=cursor, actor=principal.sub, access_reason=access_reason))
    return Page[ReferralPublic](items=[_staff(v) for v in views], next_cursor=next_cursor)


@router.get("/referrals/{referral_id}", response_model=ReferralDetail)
async def read_referral(
    referral_id: str, request: Request, runtime: RuntimeDep, principal: Caseworker, access_reason: AccessReason = None,
) -> ReferralDetail:
    await keep_stated_reason(request, runtime, actor=principal.sub, referral_id=referral_id)
    read = await runtime.uow.run(lambda session: staff.read_referral(
        session=session, runtime=runtime, referral_id=referral_id, actor=principal.sub, access_reason=access_reason))
    return ReferralDetail(**_staff(read).model_dump(), packet=read.packet, decline_reason=read.decline_reason,
                          outcome=read.outcome)


@router.post("/cases/{case_id}/consent-changed", status_code=204, response_class=Response, responses={
    403: {"description": "Intake does not let the caller see the case (`need-to-know`)."},
    404: {"description": "Intake knows no such case."},
    503: {"description": "Intake could not be asked."}})
async def consent_changed(
    case_id: Annotated[uuid.UUID, Path()], request: Request, runtime: RuntimeDep, principal: Caseworker,
    access_reason: AccessReason = None,  # passed on to intake as it came; judged here first, as on every route
) -> Response:
    """Intake calls this, with the caseworker's own token, straight after a consent change or an erasure commits
    there, so that partners stop seeing what the consent no longer covers at once, not when intake's event arrives
    (which NATS may hold up). Nothing is taken from the caller: referrals asks intake for the case's consent, with
    the same token (`consent_told`), and applies what intake answers as the event will."""
    told = await consent_told.consent_in_force(request, runtime, str(case_id))
    await runtime.uow.run(lambda session: staff.apply_told_consent(
        session=session, runtime=runtime, case_id=str(case_id), told=told, actor=principal.sub))
    return Response(status_code=204)


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralPublic, openapi_extra=HONOURS_KEY,
             responses={409: {"description": STATE_REFUSES}})
async def cancel_referral(
    referral_id: str, request: Request, runtime: RuntimeDep, principal: Caseworker, access_reason: AccessReason = None,
) -> ReferralPublic:
    await keep_stated_reason(request, runtime, actor=principal.sub, referral_id=referral_id)
    return await runtime.idempotency.honour(
        request, principal=principal.sub, uow=runtime.uow, subject=lambda answer: answer.get("case_id"),
        action=lambda session: _staff(staff.cancel_referral(session=session, runtime=runtime, referral_id=referral_id,
                                                            actor=principal.sub, access_reason=access_reason)))


# ---- referrals, for the partner they are addressed to -------------------------------------------------------


@partner_router.get("/referrals", response_model=Page[PartnerReferral])
async def partner_referrals(
    runtime: RuntimeDep, principal: PartnerClient, status: Status | None = None,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[PartnerReferral]:
    views, next_cursor = await partner.run(runtime, principal.sub, lambda session: partner.inbox(
        session=session, runtime=runtime, partner_id=principal.partner_id, status=status, limit=limit, cursor=cursor,
        actor=principal.sub,
    ))
    return Page[PartnerReferral](items=[_for_partner(v) for v in views], next_cursor=next_cursor)


@partner_router.get("/referrals/{referral_id}", response_model=PartnerReferral)
async def partner_referral(
    referral_id: str, runtime: RuntimeDep, principal: PartnerClient,
) -> PartnerReferral:
    view = await partner.run(runtime, principal.sub, lambda session: partner.read(
        session=session, runtime=runtime, partner_id=principal.partner_id, referral_id=referral_id,
        actor=principal.sub))
    return _for_partner(view)


@partner_router.post("/referrals/{referral_id}/accept", response_model=PartnerReferralSummary,
                     openapi_extra=HONOURS_KEY, responses={409: {"description": STATE_REFUSES}})
async def accept(
    referral_id: str, request: Request, runtime: RuntimeDep, principal: PartnerClient,
) -> PartnerReferralSummary:
    return await _act(request, runtime, principal, referral_id, Action.ACCEPT)


@partner_router.post("/referrals/{referral_id}/decline", response_model=PartnerReferralSummary,
                     openapi_extra=HONOURS_KEY, responses={409: {"description": STATE_REFUSES}})
async def decline(
    referral_id: str, body: DeclineBody, request: Request, runtime: RuntimeDep, principal: PartnerClient,
) -> PartnerReferralSummary:
    return await _act(request, runtime, principal, referral_id, Action.DECLINE, reason=body.reason)


@partner_router.post("/referrals/{referral_id}/start", response_model=PartnerReferralSummary,
                     openapi_extra=HONOURS_KEY, responses={409: {"description": STATE_REFUSES}})
async def start(
    referral_id: str, request: Request, runtime: RuntimeDep, principal: PartnerClient,
) -> PartnerReferralSummary:
    return await _act(request, runtime, principal, referral_id, Action.START)


@partner_router.post("/referrals/{referral_id}/complete", response_model=PartnerReferralSummary,
                     openapi_extra=HONOURS_KEY, responses={409: {"description": STATE_REFUSES}})
async def complete(
    referral_id: str, body: CompleteBody, request: Request, runtime: RuntimeDep, principal: PartnerClient,
) -> PartnerReferralSummary:
    return await _act(request, runtime, principal, referral_id, Action.COMPLETE, outcome=body.outcome,
                      cost=body.cost_estimate)


async def _act(request: Request, runtime: Runtime, principal: Principal, referral_id: str, action: Action,
               **reply: Any) -> Response:
    return await partner.run(runtime, principal.sub, lambda session: _summary(partner.act(
        session=session, runtime=runtime, partner_id=principal.partner_id, referral_id=referral_id, action=action,
        actor=principal.sub, **reply)), through=_once(request, runtime, principal, subject=referral_id))


def _once(request: Request, runtime: Runtime, principal: Principal, *, status: int = 200,
          subject: str | None = None) -> Any:
    """Runs a partner's use case once per Idempotency-Key when one is sent (SPEC §4), for `partner.run`."""
    return lambda use_case: runtime.idempotency.honour(request, principal=principal.sub, uow=runtime.uow,
                                                       action=use_case, status=status, subject=subject)


# ---- messages on a referral, for its caseworkers and its partner (messages.py) ------------------------------

MESSAGE_REFUSED = {409: {"description": "The referral takes no new message: its packet was destroyed "
                                        "(`packet-withdrawn`), or it closed more than 30 days ago "
                                        "(`referral-closed`)."}}


@router.post("/referrals/{referral_id}/messages", status_code=201, response_model=MessagePublic,
             openapi_extra=HONOURS_KEY, responses={**need_to_know.ANSWERS, **MESSAGE_REFUSED})
async def write_message(
    referral_id: str, body: MessageCreate, request: Request, runtime: RuntimeDep, principal: Caseworker,
    access_reason: AccessReason = None,
) -> MessagePublic:
    """Write to the referral's partner (sealed with its packet; `rehab.referrals.referral.message` is published).
    A stored Idempotency-Key answer holds the text: it goes with the packet (`vault.shred_packet`)."""
    await keep_stated_reason(request, runtime, actor=principal.sub, referral_id=referral_id)
    return await runtime.idempotency.honour(
        request, principal=principal.sub, uow=runtime.uow, status=201, subject=referral_id,
        action=lambda session: _message(messages.write_as_caseworker(
            session=session, runtime=runtime, referral_id=referral_id, text=body.text, actor=principal.sub,
            access_reason=access_reason)))


@router.get("/referrals/{referral_id}/messages", response_model=Page[MessagePublic],
            responses=need_to_know.ANSWERS)
async def read_messages(
    referral_id: str, request: Request, runtime: RuntimeDep, principal: Caseworker, limit: Limit = 50,
    cursor: str | None = None, access_reason: AccessReason = None,
) -> Page[MessagePublic]:
    """The referral's messages, oldest first; empty once its packet was destroyed. Read by an assignee, the
    partner's messages shown stop counting as `unread_messages`."""
    await keep_stated_reason(request, runtime, actor=principal.sub, referral_id=referral_id)
    views, next_cursor = await runtime.uow.run(lambda session: messages.read_as_caseworker(
        session=session, runtime=runtime, referral_id=referral_id, limit=limit, cursor=cursor, actor=principal.sub,
        access_reason=access_reason))
    return Page[MessagePublic](items=[_message(v) for v in views], next_cursor=next_cursor)


@partner_router.post("/referrals/{referral_id}/messages", status_code=201, response_model=MessagePublic,
                     openapi_extra=HONOURS_KEY, responses=MESSAGE_REFUSED)
async def partner_write_message(
    referral_id: str, body: MessageCreate, request: Request, runtime: RuntimeDep, principal: PartnerClient,
) -> MessagePublic:
    """Write to the referral's caseworkers."""
    return await partner.run(runtime, principal.sub, lambda session: _message(messages.write_as_partner(
        session=session, runtime=runtime, partner_id=principal.partner_id, referral_id=referral_id, text=body.text,
        actor=principal.sub)), through=_once(request, runtime, principal, status=201, subject=referral_id))


@partner_router.get("/referrals/{referral_id}/messages", response_model=Page[MessagePublic])
async def partner_read_messages(
    referral_id: str, runtime: RuntimeDep, principal: PartnerClient, limit: Limit = 50, cursor: str | None = None,
) -> Page[MessagePublic]:
    """The referral's messages, oldest first; empty once its packet was destroyed (`packet_available: false`)."""
    views, next_cursor = await partner.run(runtime, principal.sub, lambda session: messages.read_as_partner(
        session=session, runtime=runtime, partner_id=principal.partner_id, referral_id=referral_id, limit=limit,
        cursor=cursor, actor=principal.sub))
    return Page[MessagePublic](items=[_message(v) for v in views], next_cursor=next_cursor)


def _message(view: messages.MessageView) -> MessagePublic:
    return MessagePublic(id=view.id, from_=view.side, at=view.at, text=view.text)


# ---- shaping answers -----------------------------------------------------------------------------------------


def _partner(found: Partner) -> PartnerPublic:
    return PartnerPublic.model_validate(found, from_attributes=True)


def _webhook(found: Webhook) -> WebhookPublic:
    overlap = found.previous_until if found.previous_secret is not None else None  # a rotation under way
    if overlap is not None and overlap <= now_utc():
        overlap = None
    return WebhookPublic(partner_id=found.partner_id, url=found.url, events=found.events, created_at=found.created_at,
                         updated_at=found.updated_at, rotated_at=found.rotated_at,
                         previous_secret_valid_until=overlap)


# ---- what partners receive: the OpenAPI document's `webhooks` (nothing is served here) ---------------------------

webhook_router = APIRouter(tags=["partner"])

_SIGNED = {"parameters": [
    {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "The delivery's id, the same on every retry and on a resend: a receiver that has it already "
                    "answers 2xx and does nothing more."},
    {"name": "webhook-timestamp", "in": "header", "required": True, "schema": {"type": "integer"},
     "description": "This attempt's time, in seconds since the epoch: refuse one far from your clock (replay)."},
    {"name": "webhook-signature", "in": "header", "required": True, "schema": {"type": "string"},
     "description": "`v1,<base64 HMAC-SHA256 of \"{webhook-id}.{webhook-timestamp}.{body}\">`, keyed with the "
                    "bytes the secret's base64 after `whsec_` decodes to (Standard Webhooks: its libraries take the "
                    "`whsec_…` string as it is); two, space-separated, while a rotated secret still signs. Verify "
                    "before reading the body."},
]}
_RECEIVED = {200: {"description": "Any 2xx within 10 seconds: delivered. Anything else, a redirect or no answer is "
                                  "a failure, tried again for 24 hours with growing waits, then a dead letter."}}


@webhook_router.post("referral.sent", responses=_RECEIVED, openapi_extra=_SIGNED, operation_id="webhook_referral_sent")
def referral_sent_webhook(body: ReferralSentPayload) -> None:
    """A referral was sent to the partner: fetch it (its packet) with the partner's own credentials."""


@webhook_router.post("referral.cancelled", responses=_RECEIVED, openapi_extra=_SIGNED,
                     operation_id="webhook_referral_cancelled")
def referral_cancelled_webhook(body: ReferralCancelledPayload) -> None:
    """The caseworker cancelled a referral sent to the partner: its packet is no longer readable."""


@webhook_router.post("referral.message", responses=_RECEIVED, openapi_extra=_SIGNED,
                     operation_id="webhook_referral_message")
def referral_message_webhook(body: ReferralMessagePayload) -> None:
    """A caseworker wrote on a referral's thread: read it with `GET /api/partner/referrals/{id}/messages` (the
    delivery never carries the text)."""


def _delivery(found: WebhookDelivery) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic(
        id=found.id, type=found.event_type, referral_id=found.referral_id, state=found.state,
        attempts=found.attempts, created_at=found.created_at, next_attempt_at=found.next_attempt_at,
        last_attempt_at=found.last_attempt_at, last_status_code=found.last_status_code, last_error=found.last_error,
        finished_at=found.finished_at)


def _cost(referral: Referral) -> MoneyPublic | None:
    if referral.cost_minor is None or not referral.cost_currency:
        return None
    return MoneyPublic(amount=domain.format_money(referral.cost_minor, referral.cost_currency),
                       currency=referral.cost_currency)


def _staff(view: staff.StaffView) -> ReferralPublic:
    r = view.referral
    return ReferralPublic(
        id=r.id, case_id=r.case_id, partner_id=r.partner_id, need_category=r.need_category, status=r.status,
        created_at=r.created_at, updated_at=r.updated_at, overdue=view.overdue, packet_available=view.packet_available,
        packet_withdrawn=r.packet_withdrawn, cost_estimate=_cost(r), unread_messages=view.unread_messages,
    )


def _summary(view: partner.PartnerView) -> PartnerReferralSummary:
    r = view.referral
    return PartnerReferralSummary(id=r.id, status=r.status, need_category=r.need_category, created_at=r.created_at,
                                  updated_at=r.updated_at, packet_available=view.packet_available)


def _for_partner(view: partner.PartnerView) -> PartnerReferral:
    return PartnerReferral(**_summary(view).model_dump(), packet=view.packet, unread_messages=view.unread_messages)
