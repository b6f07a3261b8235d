"""Referrals' use cases for staff: admins keep the partner directory, caseworkers send, list, read and cancel
referrals of the cases assigned to them (need-to-know: another case only with a stated reason, a break-glass opening
audited as `case.break_glass`; `kit.need_to_know` decides, `admit_to_case` below applies it). Each is a
function of a session that changes rows and writes its events and audit entries in the caller's transaction, and
never commits (the route runs it as a unit of `runtime.uow`, or reads through a read-only session). What is refused
is raised as a domain error (kit.errors), answered by kit.problems.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, not_
from sqlmodel import Session, select

from kit.audit import AuditTrail, refusal_recorded
from kit.db import get_or_raise
from kit.errors import Conflict, NotFound
from kit.need_to_know import BREAK_GLASS, Access, need_to_know
from kit.pagination import keyset_page
from kit.service import Runtime
from services.referrals import domain, events, lifecycle, metrics, projections, queries, vault
from services.referrals.domain import Action, Side, Status
from services.referrals.consent_told import ConsentTold
from services.referrals.lifecycle import now_utc, overdue_after
from services.referrals.models import (
    KnownCase,
    Packet,
    Partner,
    PartnerCreate,
    PartnerFacet,
    PartnerUpdate,
    Referral,
    ReferralCreate,
    normal_city,
    normal_country,
    normal_language,
)


def no_partner() -> NotFound:
    return NotFound("There is no partner with this id in the directory.", code="partner-unknown")


def no_referral() -> NotFound:
    return NotFound("There is no referral with this id.", code="referral-not-found")


# ---- the partner directory -----------------------------------------------------------------------------------


def create_partner(*, session: Session, audit: AuditTrail, partner_in: PartnerCreate, actor: str) -> Partner:
    """Add a partner organisation to the directory."""
    now = now_utc()
    partner = Partner(id=str(uuid.uuid4()), created_at=now, updated_at=now, **partner_in.model_dump())
    session.add(partner)
    session.flush()
    _index_facets(session, partner)
    audit.record(session, actor=actor, action="partner.create", target_id=partner.id)
    return partner


def update_partner(
    *, session: Session, audit: AuditTrail, partner_id: str, changes: PartnerUpdate, actor: str,
) -> Partner:
    """Change a partner's details, open or close it to new referrals, or note its capacity."""
    partner = get_or_raise(session, Partner, partner_id, no_partner())
    fields = changes.model_dump(exclude_unset=True)
    for name, value in fields.items():
        setattr(partner, name, value)
    partner.updated_at = now_utc()
    if fields.keys() & {"countries", "cities", "languages"}:
        _index_facets(session, partner)
    audit.record(session, actor=actor, action="partner.update", target_id=partner.id)
    return partner


def get_partner(*, session: Session, partner_id: str) -> Partner:
    """One partner of the directory."""
    return get_or_raise(session, Partner, partner_id, no_partner())


def find_partners(
    *, session: Session, category: str | None, country: str | None, city: str | None, language: str | None,
    active: bool | None, limit: int, cursor: str | None,
) -> tuple[list[Partner], str | None]:
    """Partners by category, country, city and language, in name order."""
    query = select(Partner)
    if category:
        query = query.where(Partner.category == category)
    if active is not None:
        query = query.where(Partner.active == active)
    for facet, value in (("country", country and normal_country(country)), ("city", city and normal_city(city)),
                         ("language", language and normal_language(language))):
        if value:
            query = query.where(Partner.id.in_(  # type: ignore[union-attr]
                select(PartnerFacet.partner_id).where(PartnerFacet.facet == facet, PartnerFacet.value == value)))
    return keyset_page(session, query, order=[Partner.name, Partner.id], limit=limit, cursor=cursor)


def _index_facets(session: Session, partner: Partner) -> None:
    session.execute(delete(PartnerFacet).where(PartnerFacet.partner_id == partner.id))  # type: ignore[arg-type]
    values = {("country", normal_country(v)) for v in partner.countries}
    values |= {("city", normal_city(v)) for v in partner.cities}
    values |= {("language", normal_language(v)) for v in partner.languages}
    if values:
        session.execute(insert(PartnerFacet), [
            {"partner_id": partner.id, "facet": facet, "value": value} for facet, value in sorted(values)])


# ---- referrals, for caseworkers ------------------------------------------------------------------------------


@dataclass
class StaffView:
    referral: Referral
    overdue: bool
    packet_available: bool
    unread_messages: int  # the partner's messages none of the case's assignees has read (messages.py)


@dataclass
class StaffRead(StaffView):
    packet: Packet | None
    decline_reason: str | None
    outcome: str | None


# The audit trail's word for a caseworker refused a case here (who, which case: never what the request sent).
ACCESS_REFUSED = "case.access_refused"


def admit_to_case(session: Session, audit: AuditTrail, *, case_id: str, actor: str,
                  access_reason: str | None) -> Access:
    """Need-to-know: caseworker `actor` may act on the case if it is assigned to them, or, with a stated reason, by
    break-glass, audited as `case.break_glass` about the case and announced (who and when) for the case's timeline in
    intake; else refused (403). The reason itself is not stored here: it is free text that may describe the person,
    and only intake holds a key of the case to seal it with (the route handed it there first, `api.keep_stated_reason`).
    The entry and the event commit with what the caller then does, or not at all when that is refused. Returns which
    of the two it was. A refusal is audited (`ACCESS_REFUSED`, in a unit of its own: kit.audit.refusal_recorded)."""
    assignees = queries.assignees(session, case_id)
    if not assignees:
        # Intake's case always has a caseworker: none known here means its event is on its way (or the id is
        # wrong), even when a consent told at once already made the case known (consent_told). Said so, not "not
        # yours" to its own caseworker, who would be invited to break the glass on their own case. An erased case
        # has none either: left to the rules below.
        known = session.get(KnownCase, case_id)
        if known is None or known.status != domain.CaseStatus.ERASED:
            raise domain.case_unknown()
    with refusal_recorded(actor=actor, action=ACCESS_REFUSED, target_id=case_id):
        access = need_to_know(actor, assignees, access_reason)
    if access is Access.BREAK_GLASS:
        audit.record(session, actor=actor, action=BREAK_GLASS, target_id=case_id)
        events.publish(session, events.CASE_OPENED_BY_BREAK_GLASS, events.CaseOpenedByBreakGlass(
            case_id=case_id, user_id=actor, occurred_at=now_utc()), about=case_id)
    return access


def apply_told_consent(*, session: Session, runtime: Runtime, case_id: str, told: ConsentTold, actor: str) -> None:
    """What intake answered about the case's consent, asked with the caller's token after intake told of a change
    (`api.consent_changed`): applied now as its event will be when it comes — the consent in force (its packets no
    longer covered destroyed), or the erasure. The caller's asking is audited."""
    runtime.audit.record(session, actor=actor, action="case.consent.told", target_id=case_id)
    if told.erased:
        projections.forget_case(session, runtime.audit, case_id=case_id, answers=runtime.idempotency)
    elif told.current is not None:
        projections.apply_consent(session, runtime.audit, case_id=case_id, **told.current)


def send_referral(*, session: Session, runtime: Runtime, referral_in: ReferralCreate, actor: str,
                  access_reason: str | None = None) -> StaffView:
    """Send a case to a partner with a packet, if the caseworker may act on the case and its consent allows it."""
    admit_to_case(session, runtime.audit, case_id=referral_in.case_id, actor=actor, access_reason=access_reason)
    partner = get_or_raise(session, Partner, referral_in.partner_id, no_partner())
    if not partner.active:
        raise Conflict("This partner takes no new referrals (inactive in the directory).", code="partner-inactive")
    if referral_in.need_category != partner.category:
        raise Conflict(f"This partner works in {partner.category}, not {referral_in.need_category}.",
                       code="category-mismatch")
    # Locked, so that a consent change applied at the same moment waits for this referral and then judges it too.
    # Absent is a refusal of its own (`case-unknown`), decided with the others by the domain.
    case = session.get(KnownCase, referral_in.case_id, with_for_update=True)
    packet, contents = referral_in.packet, referral_in.packet.contents()
    now = now_utc()
    refusal = domain.refusal_to_send(case.view() if case else None, partner.category, contents, now.date())
    if refusal:
        raise refusal
    referral = Referral(
        id=str(uuid.uuid4()), case_id=referral_in.case_id, partner_id=partner.id, need_category=partner.category,
        status=Status.SENT, created_by=actor, created_at=now, updated_at=now,
        packet_has_contact=contents.has_contact, packet_has_health=contents.has_health,
    )
    vault.seal_packet(runtime.keyring, referral, packet)
    session.add(referral)
    session.flush()
    lifecycle.publish_change(session, referral, now)
    runtime.audit.record(session, actor=actor, action="referral.create", target_id=referral.id)
    return StaffView(referral, overdue=False, packet_available=True, unread_messages=0)


def list_referrals(
    *, session: Session, runtime: Runtime, case_id: str | None, status: Status | None, overdue: bool | None,
    limit: int, cursor: str | None, actor: str, access_reason: str | None = None,
) -> tuple[list[StaffView], str | None]:
    """Referrals, newest first, by state and overdue: of one case the caseworker may act on, or else of every case
    assigned to them. Refreshes the overdue gauge on the way."""
    now, after = now_utc(), overdue_after(runtime)
    query = queries.with_case()
    if case_id:
        admit_to_case(session, runtime.audit, case_id=case_id, actor=actor, access_reason=access_reason)
        query = query.where(Referral.case_id == case_id)
    else:
        query = query.where(queries.assigned_to(actor))
    if status:
        query = query.where(Referral.status == status)
    if overdue is not None:
        late = queries.overdue(now, after)
        query = query.where(late if overdue else not_(late))
    rows, next_cursor = queries.newest_first(session, query, limit=limit, cursor=cursor)
    metrics.OVERDUE.set(queries.count_overdue(session, now=now, after=after))
    unread = queries.unread_messages(session, [referral.id for referral, _ in rows], reader=Side.CASEWORKER)
    return [_staff_view(referral, case, now, after, unread.get(referral.id, 0)) for referral, case in rows], next_cursor


def case_of_referral(session: Session, referral_id: str) -> str | None:
    """The case a referral is about (None for no such referral): where a break-glass reason stated for it is kept."""
    return session.execute(select(Referral.case_id).where(Referral.id == referral_id)).scalar_one_or_none()


def read_referral(*, session: Session, runtime: Runtime, referral_id: str, actor: str,
                  access_reason: str | None = None) -> StaffRead:
    """One referral with its packet and the partner's replies, opened for a caseworker who may act on its case; the
    read is audited."""
    row = session.execute(queries.with_case().where(Referral.id == referral_id)).first()
    if row is None:
        raise no_referral()
    referral, case = row
    admit_to_case(session, runtime.audit, case_id=referral.case_id, actor=actor, access_reason=access_reason)
    now = now_utc()
    packet = lifecycle.reveal(session, runtime, referral, case, now)
    runtime.audit.record(session, actor=actor, action="referral.read", target_id=referral.id)
    view = _staff_view(referral, case, now, overdue_after(runtime), _unread(session, referral))
    return StaffRead(
        referral, overdue=view.overdue, packet_available=view.packet_available,
        unread_messages=view.unread_messages, packet=packet,
        decline_reason=vault.open_reply(runtime.keyring, referral, "decline_reason"),
        outcome=vault.open_reply(runtime.keyring, referral, "outcome"),
    )


def cancel_referral(*, session: Session, runtime: Runtime, referral_id: str, actor: str,
                    access_reason: str | None = None) -> StaffView:
    """Withdraw a referral the partner has not finished, for a caseworker who may act on its case, and its packet
    with it: a referral sent to the wrong partner, or no longer wanted, leaves the partner nothing of the person, nor
    the thread, which its caseworkers keep to read and nobody writes to (`lifecycle.take_back`)."""
    referral = get_or_raise(session, Referral, referral_id, no_referral(), lock=True)  # the partner may act meanwhile
    admit_to_case(session, runtime.audit, case_id=referral.case_id, actor=actor, access_reason=access_reason)
    new_status = domain.next_status(referral.status, Action.CANCEL)
    now = now_utc()
    lifecycle.move(session, runtime.audit, referral, new_status, actor=actor, audit_action="referral.cancel", now=now)
    lifecycle.take_back(session, runtime.audit, referral, now)
    return _staff_view(referral, session.get(KnownCase, referral.case_id), now, overdue_after(runtime),
                       _unread(session, referral))


def _staff_view(referral: Referral, case: KnownCase | None, now: datetime, after: timedelta,
                unread: int) -> StaffView:
    return StaffView(
        referral, overdue=domain.is_overdue(referral.status, referral.created_at, now, after),
        packet_available=lifecycle.packet_available(referral, case, now.date()), unread_messages=unread,
    )


def _unread(session: Session, referral: Referral) -> int:
    return queries.unread_messages(session, [referral.id], reader=Side.CASEWORKER).get(referral.id, 0)
