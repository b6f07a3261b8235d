"""Referrals' use cases: each is a function of a session that changes rows and writes its events and audit entries
in the caller's transaction, and never commits: the route runs it as a unit of `runtime.uow`, the bus runs the
functions under "What intake's events do" inside a consumer's inbox unit.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, insert, not_, or_
from sqlalchemy import case as sql_case
from sqlmodel import Session, func, select

from kit import logs
from kit.audit import AuditTrail
from kit.db import dialect_insert, scrub_after_commit
from kit.events import record_event
from kit.idempotency import Idempotency
from kit.pagination import decode_cursor, encode_cursor
from kit.problems import Problem
from kit.service import Runtime
from services.referrals import domain, events, metrics, vault
from services.referrals.domain import Action, CaseStatus, Status
from services.referrals.models import (
    KnownCase,
    Money,
    Packet,
    Partner,
    PartnerCreate,
    PartnerFacet,
    PartnerUpdate,
    Referral,
    ReferralCreate,
    kit_tables,
    normal_city,
    normal_country,
    normal_language,
)

log = logs.get("referrals")

# The actor in the audit trail of what referrals does on its own: on intake's events, or when consent expires.
SYSTEM = "system"
NOT_ADDRESSED = "No referral with this id is addressed to you."
_DONE = {Action.ACCEPT: "accepted", Action.DECLINE: "declined", Action.START: "started",
         Action.COMPLETE: "completed", Action.CANCEL: "cancelled"}


def now_utc() -> datetime:
    return datetime.now(UTC)


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
) -> Partner | None:
    """Change a partner's details, open or close it to new referrals, or note its capacity."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        return None
    fields = changes.model_dump(exclude_unset=True)
    for name, value in fields.items():
        setattr(partner, name, value)
    partner.updated_at = now_utc()
    if fields.keys() & {"countries", "cities", "languages"}:
        _index_facets(session, partner)
    audit.record(session, actor=actor, action="partner.update", target_id=partner.id)
    return partner


def get_partner(*, session: Session, partner_id: str) -> Partner | None:
    """One partner of the directory."""
    return session.get(Partner, partner_id)


def find_partners(
    *, session: Session, category: str | None, country: str | None, city: str | None, language: str | None,
    active: bool | None, limit: int, cursor: str | None,
) -> tuple[list[Partner], str | None]:
    """Partners by category, country, city and language, in name order."""
    query = select(Partner).order_by(Partner.name, Partner.id).limit(limit + 1)
    if category:
        query = query.where(Partner.category == category)
    if active is not None:
        query = query.where(Partner.active == active)
    for facet, value in (("country", country and normal_country(country)), ("city", city and normal_city(city)),
                         ("language", language and normal_language(language))):
        if value:
            query = query.where(Partner.id.in_(  # type: ignore[union-attr]
                select(PartnerFacet.partner_id).where(PartnerFacet.facet == facet, PartnerFacet.value == value)))
    if cursor:
        name, partner_id = _position(cursor)
        query = query.where(or_(Partner.name > name, and_(Partner.name == name, Partner.id > partner_id)))
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor(rows[-1].name, rows[-1].id) if more else None)


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


@dataclass
class StaffRead(StaffView):
    packet: Packet | None
    decline_reason: str | None
    outcome: str | None


def send_referral(*, session: Session, runtime: Runtime, referral_in: ReferralCreate, actor: str) -> StaffView:
    """Send a case to a partner with a packet, if the case and its consent allow it."""
    partner = session.get(Partner, referral_in.partner_id)
    if partner is None:
        raise Problem(404, "There is no partner with this id in the directory.", kind="partner-unknown")
    if not partner.active:
        raise Problem(409, "This partner takes no new referrals (inactive in the directory).", kind="partner-inactive")
    if referral_in.need_category != partner.category:
        raise Problem(409, f"This partner works in {partner.category}, not {referral_in.need_category}.",
                      kind="category-mismatch")
    # Locked, so that a consent change applied at the same moment waits for this referral and then judges it too.
    case = session.get(KnownCase, referral_in.case_id, with_for_update=True)
    packet, contents = referral_in.packet, referral_in.packet.contents()
    now = now_utc()
    refusal = domain.refusal_to_send(case.view() if case else None, partner.category, contents, now.date())
    if refusal:
        raise Problem(409, refusal.detail, kind=refusal.kind)
    referral = Referral(
        id=str(uuid.uuid4()), case_id=referral_in.case_id, partner_id=partner.id, need_category=partner.category,
        status=Status.SENT, created_by=actor, created_at=now, updated_at=now,
        packet_has_contact=contents.has_contact, packet_has_health=contents.has_health,
    )
    vault.seal_packet(runtime.keyring, referral, packet)
    session.add(referral)
    session.flush()
    _publish(session, referral, now)
    runtime.audit.record(session, actor=actor, action="referral.create", target_id=referral.id)
    return StaffView(referral, overdue=False, packet_available=True)


def list_referrals(
    *, session: Session, runtime: Runtime, case_id: str | None, status: Status | None, overdue: bool | None,
    limit: int, cursor: str | None,
) -> tuple[list[StaffView], str | None]:
    """Referrals, newest first, by case, state and overdue; refreshes the overdue gauge on the way."""
    now, after = now_utc(), overdue_after(runtime)
    query = _with_case(select(Referral, KnownCase))
    if case_id:
        query = query.where(Referral.case_id == case_id)
    if status:
        query = query.where(Referral.status == status)
    if overdue is not None:
        late = and_(Referral.status == Status.SENT, Referral.created_at < now - after)
        query = query.where(late if overdue else not_(late))
    rows, next_cursor = _newest_first(session, query, limit, cursor)
    metrics.OVERDUE.set(count_overdue(session=session, now=now, after=after))
    return [_staff_view(referral, case, now, after) for referral, case in rows], next_cursor


def read_referral(*, session: Session, runtime: Runtime, referral_id: str, actor: str) -> StaffRead | None:
    """One referral with its packet and the partner's replies, opened for a caseworker; the read is audited."""
    row = session.exec(_with_case(select(Referral, KnownCase)).where(Referral.id == referral_id)).first()
    if row is None:
        return None
    referral, case = row
    now = now_utc()
    packet = _reveal(session, runtime, referral, case, now)
    runtime.audit.record(session, actor=actor, action="referral.read", target_id=referral.id)
    view = _staff_view(referral, case, now, overdue_after(runtime))
    read = StaffRead(
        referral, overdue=view.overdue, packet_available=view.packet_available, packet=packet,
        decline_reason=vault.open_reply(runtime.keyring, referral, "decline_reason"),
        outcome=vault.open_reply(runtime.keyring, referral, "outcome"),
    )
    return read


def cancel_referral(*, session: Session, runtime: Runtime, referral_id: str, actor: str) -> StaffView | None:
    """Withdraw a referral the partner has not finished."""
    referral = session.get(Referral, referral_id, with_for_update=True)
    if referral is None:
        return None
    now = now_utc()
    _move(session, runtime.audit, referral, _next(referral, Action.CANCEL), actor=actor,
          audit_action="referral.cancel", now=now)
    return _staff_view(referral, session.get(KnownCase, referral.case_id), now, overdue_after(runtime))


def overdue_after(runtime: Runtime) -> timedelta:
    return timedelta(hours=runtime.settings.overdue_after_hours)  # type: ignore[attr-defined]


def count_overdue(*, session: Session, now: datetime, after: timedelta) -> int:
    return session.exec(select(func.count()).select_from(Referral).where(
        Referral.status == Status.SENT, Referral.created_at < now - after)).one()


def _staff_view(referral: Referral, case: KnownCase | None, now: datetime, after: timedelta) -> StaffView:
    return StaffView(
        referral, overdue=domain.is_overdue(referral.status, referral.created_at, now, after),
        packet_available=_packet_available(referral, case, now.date()),
    )


# ---- referrals, for the partner they are addressed to -------------------------------------------------------


@dataclass
class PartnerView:
    referral: Referral
    packet_available: bool
    packet: Packet | None = None


def partner_referrals(
    *, session: Session, runtime: Runtime, partner_id: str, status: Status | None, limit: int, cursor: str | None,
    actor: str,
) -> tuple[list[PartnerView], str | None]:
    """The referrals addressed to this partner, newest first, with their packets; each one shown is audited."""
    query = _with_case(select(Referral, KnownCase)).where(Referral.partner_id == partner_id)
    if status:
        query = query.where(Referral.status == status)
    rows, next_cursor = _newest_first(session, query, limit, cursor)
    now = now_utc()
    views = []
    for referral, case in rows:
        packet = _reveal(session, runtime, referral, case, now)
        runtime.audit.record(session, actor=actor, action="partner.referral.read", target_id=referral.id)
        views.append(PartnerView(referral, packet_available=packet is not None, packet=packet))
    return views, next_cursor


def partner_referral(
    *, session: Session, runtime: Runtime, partner_id: str, referral_id: str, actor: str,
) -> PartnerView | None:
    """One referral addressed to this partner, with its packet while consent covers it; the read is audited.
    None (the attempt audited) when no such referral is addressed to this partner."""
    row = session.exec(_with_case(select(Referral, KnownCase)).where(
        Referral.id == referral_id, Referral.partner_id == partner_id)).first()
    if row is None:
        return _deny(session, runtime.audit, actor, referral_id)
    referral, case = row
    packet = _reveal(session, runtime, referral, case, now_utc())
    runtime.audit.record(session, actor=actor, action="partner.referral.read", target_id=referral.id)
    return PartnerView(referral, packet_available=packet is not None, packet=packet)


def partner_act(
    *, session: Session, runtime: Runtime, partner_id: str, referral_id: str, action: Action, actor: str,
    reason: str | None = None, outcome: str | None = None, cost: Money | None = None,
) -> PartnerView | None:
    """Accept, decline (with a reason), start or complete (with an outcome and a cost estimate) a referral.
    None (the attempt audited) when no such referral is addressed to this partner."""
    assert action in domain.PARTNER_ACTIONS
    referral = session.exec(select(Referral).where(
        Referral.id == referral_id, Referral.partner_id == partner_id).with_for_update()).first()
    if referral is None:
        return _deny(session, runtime.audit, actor, referral_id)
    new_status = _next(referral, action)
    if action is Action.DECLINE and reason:
        vault.seal_reply(runtime.keyring, referral, "decline_reason", reason)
    if action is Action.COMPLETE:
        if outcome:
            vault.seal_reply(runtime.keyring, referral, "outcome", outcome)
        if cost is not None:
            referral.cost_minor, referral.cost_currency = cost.minor_units(), cost.currency
    now = now_utc()
    _move(session, runtime.audit, referral, new_status, actor=actor, audit_action=f"partner.referral.{action}", now=now)
    available = _packet_available(referral, session.get(KnownCase, referral.case_id), now.date())
    return PartnerView(referral, packet_available=available)


def _deny(session: Session, audit: AuditTrail, actor: str, referral_id: str) -> None:
    """Unknown and someone else's referral look the same to a partner (the route answers 404 for both); the
    attempt is audited, and kept: the use case returns None instead of raising, so its unit of work commits."""
    try:
        target: str | None = str(uuid.UUID(referral_id))
    except ValueError:
        target = None
    audit.record(session, actor=actor, action="partner.referral.denied", target_id=target)


# ---- the lifecycle and the packet, shared by the use cases above ---------------------------------------------


def _next(referral: Referral, action: Action) -> Status:
    try:
        return domain.next_status(referral.status, action)
    except domain.IllegalTransition:
        state = referral.status.replace("_", " ")
        raise Problem(409, f"This referral is {state}: it cannot be {_DONE[action]} now.",
                      kind="referral-transition") from None


def _move(session: Session, audit: AuditTrail, referral: Referral, status: Status, *, actor: str, audit_action: str,
          now: datetime) -> None:
    """Put a referral in its new state, with its event and its audit entry in the same transaction."""
    referral.status = status
    referral.updated_at = now
    session.add(referral)
    _publish(session, referral, now)
    audit.record(session, actor=actor, action=audit_action, target_id=referral.id)


def _publish(session: Session, referral: Referral, now: datetime) -> None:
    cost = None
    if referral.cost_minor is not None and referral.cost_currency:
        cost = events.CostEstimate(amount=domain.format_money(referral.cost_minor, referral.cost_currency),
                                   currency=referral.cost_currency)
    status = Status(referral.status)
    payload = events.ReferralChanged(
        referral_id=referral.id, case_id=referral.case_id, partner_id=referral.partner_id,
        category=referral.need_category, status=status, cost_estimate=cost, occurred_at=now,
    )
    record_event(session, kit_tables, source=events.SOURCE, type=events.subject_for(status), subject=referral.id,
                 data=payload.model_dump(mode="json"))


def _packet_gap(referral: Referral, case: KnownCase | None, today: date) -> str | None:
    contents = domain.PacketContents(has_contact=referral.packet_has_contact, has_health=referral.packet_has_health)
    return domain.packet_withdrawal(case.view() if case else None, referral.need_category, contents, today)


def _packet_available(referral: Referral, case: KnownCase | None, today: date) -> bool:
    return referral.packet_key is not None and _packet_gap(referral, case, today) is None


def _reveal(
    session: Session, runtime: Runtime, referral: Referral, case: KnownCase | None, now: datetime,
) -> Packet | None:
    """The packet, if consent still covers it today; a consent found expired destroys the key here and now."""
    if referral.packet_key is None:
        return None
    reason = _packet_gap(referral, case, now.date())
    if reason:
        _withdraw(session, runtime.audit, referral, reason, now)
        return None
    return vault.open_packet(runtime.keyring, referral)


def _withdraw(session: Session, audit: AuditTrail, referral: Referral, reason: str, now: datetime) -> None:
    vault.shred_packet(session, referral, reason=reason, now=now)
    session.add(referral)
    audit.record(session, actor=SYSTEM, action="referral.packet.destroy", target_id=referral.id)
    log.info("referral packet destroyed", referral_id=referral.id, reason=reason)


def _with_case(query: Any) -> Any:
    return query.join(KnownCase, KnownCase.case_id == Referral.case_id, isouter=True)


def _newest_first(session: Session, query: Any, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    newest = (Referral.created_at.desc(), Referral.id.desc())  # type: ignore[attr-defined]
    query = query.order_by(*newest).limit(limit + 1)
    if cursor:
        created, referral_id = _position(cursor)
        try:
            at = datetime.fromisoformat(created)
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor")
        query = query.where(or_(Referral.created_at < at, and_(Referral.created_at == at, Referral.id < referral_id)))
    rows = list(session.exec(query).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor(rows[-1][0].created_at.isoformat(), rows[-1][0].id) if more else None)


def _cursor(*values: str) -> str:
    return encode_cursor(json.dumps(values))


def _position(cursor: str) -> tuple[str, str]:
    try:
        first, second = json.loads(decode_cursor(cursor))
        if isinstance(first, str) and isinstance(second, str):
            return first, second
    except (ValueError, TypeError):
        pass
    raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor")


# ---- what intake's events do (inside the consumer's inbox transaction: no commit) -----------------------------


def note_case_status(session: Session, *, case_id: str, status: CaseStatus, now: datetime) -> KnownCase:
    """Record that a case is open, closed or erased; a case never moves back, whatever order events come in."""
    case = _known_case(session, case_id, now)
    case.status = domain.later_case_status(case.status, status)
    case.updated_at = now
    session.add(case)
    session.flush()
    return case


_STATUS_UPSERTS: dict[str, Any] = {}


def _status_upsert(dialect: str) -> Any:
    """INSERT … ON CONFLICT (case_id) DO UPDATE, built once per dialect: a case we have not heard of is created
    with the incoming status, a known one keeps the later of the two (`domain.later_case_status`, in SQL)."""
    if dialect not in _STATUS_UPSERTS:
        table = KnownCase.__table__  # type: ignore[attr-defined]
        statement = dialect_insert(dialect)(table)
        order = {str(status): rank for status, rank in domain.CASE_ORDER.items()}

        def rank(column: Any) -> Any:
            return sql_case(order, value=column, else_=-1)

        _STATUS_UPSERTS[dialect] = statement.on_conflict_do_update(index_elements=[table.c.case_id], set_={
            "status": sql_case((rank(statement.excluded.status) > rank(table.c.status), statement.excluded.status),
                           else_=table.c.status),
            "updated_at": statement.excluded.updated_at,
        })
    return _STATUS_UPSERTS[dialect]


def advance_case_status(session: Session, *, case_id: str, status: CaseStatus, now: datetime) -> None:
    """`note_case_status` in one Core statement, for the event handlers that need nothing back (case opened or
    closed): no SELECT, no ORM object, one row written."""
    connection = session.connection()
    connection.execute(_status_upsert(connection.dialect.name), {
        "case_id": case_id, "status": str(status), "updated_at": now,
    })


def apply_consent(
    session: Session, audit: AuditTrail, *, case_id: str, categories: list[str], share_contact: bool,
    share_health: bool, expires_on: date | None, recorded_at: datetime, now: datetime,
) -> None:
    """Take the consent in force, and destroy at once the packets of this case it no longer covers."""
    case = _known_case(session, case_id, now)
    if case.status == CaseStatus.ERASED:
        return
    if case.consent_recorded_at is not None and recorded_at < case.consent_recorded_at:
        return  # an older consent arriving after a newer one
    case.consent_recorded_at = recorded_at
    case.consent_categories = sorted(set(categories))
    case.share_contact = share_contact
    case.share_health = share_health
    case.consent_expires_on = expires_on
    case.updated_at = now
    session.add(case)
    session.flush()
    for referral in session.exec(select(Referral).where(
            Referral.case_id == case_id, Referral.packet_key.is_not(None))).all():  # type: ignore[union-attr]
        reason = _packet_gap(referral, case, now.date())
        if reason:
            _withdraw(session, audit, referral, reason, now)


def forget_case(session: Session, audit: AuditTrail, *, case_id: str, now: datetime, answers: Idempotency) -> None:
    """The case was erased: every packet and reply about the person becomes unrecoverable, open referrals end.

    A partner cannot help a person it can no longer see, and a caseworker expects nothing left pending for a case
    that no longer exists: open referrals are cancelled (by the system, with their events), finished ones stay as
    bare ids and states. The stored Idempotency-Key answers about the case, and the fingerprints of their requests
    (computed over the packets), are deleted.
    """
    if answers.forget(session, case_id):
        scrub_after_commit(session)  # their old bytes leave the write-ahead log too
    case = note_case_status(session, case_id=case_id, status=CaseStatus.ERASED, now=now)
    case.consent_recorded_at = None
    case.consent_categories = []
    case.share_contact = case.share_health = False
    case.consent_expires_on = None
    session.add(case)
    for referral in session.exec(select(Referral).where(Referral.case_id == case_id)).all():
        if referral.packet_key is not None:
            _withdraw(session, audit, referral, "case-erased", now)
        if referral.reply_key is not None:
            vault.shred_replies(session, referral)
        if referral.status in domain.OPEN_STATUSES:
            _move(session, audit, referral, Status.CANCELLED, actor=SYSTEM, audit_action="referral.cancel", now=now)


def _known_case(session: Session, case_id: str, now: datetime) -> KnownCase:
    case = session.get(KnownCase, case_id, with_for_update=True)
    if case is None:  # an event about a case we have not heard of yet: its other events will fill it in
        case = KnownCase(case_id=case_id, status=CaseStatus.OPEN, updated_at=now)
        session.add(case)
    return case


# ---- the watch: what time alone changes ----------------------------------------------------------------------


def keep_watch(*, session: Session, runtime: Runtime) -> int:
    """Destroy the packets whose consent has expired, and refresh the overdue gauge; returns how many went."""
    now = now_utc()
    expired = session.exec(_with_case(select(Referral, KnownCase)).where(
        Referral.packet_key.is_not(None),  # type: ignore[union-attr]
        KnownCase.consent_expires_on < now.date(),  # type: ignore[operator]
    )).all()
    withdrawn = 0
    for referral, case in expired:
        reason = _packet_gap(referral, case, now.date())
        if reason:
            _withdraw(session, runtime.audit, referral, reason, now)
            withdrawn += 1
    metrics.OVERDUE.set(count_overdue(session=session, now=now, after=overdue_after(runtime)))
    return withdrawn
