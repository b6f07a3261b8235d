"""What every use case does to a referral, whoever asks (a caseworker, the partner, intake's events): move it a step
of its lifecycle, with its event, its audit entry and its partner's webhook delivery in the same transaction; and
show its packet only while the person's consent covers it, destroying the packet's key the moment it no longer does.
No commit: the caller's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from kit import logs
from kit.audit import AuditTrail
from kit.service import Runtime
from services.referrals import domain, events, vault, webhooks
from services.referrals.domain import Status
from services.referrals.models import KnownCase, Packet, Referral

log = logs.get("referrals")

# The actor in the audit trail of what referrals does on its own: on intake's events, or when consent expires.
SYSTEM = "system"


def system_clock() -> datetime:
    return datetime.now(UTC)


# Referrals' one clock: every rule that reads the time (overdue, consent expiry, the 30 days a closed referral takes
# messages) reads it through `now_utc`. Tests move it (`monkeypatch.setattr(lifecycle, "clock", ...)`); nothing else.
clock: Callable[[], datetime] = system_clock


def now_utc() -> datetime:
    return clock()


def overdue_after(runtime: Runtime) -> timedelta:
    return timedelta(hours=runtime.settings.overdue_after_hours)  # type: ignore[attr-defined]


# ---- the lifecycle -------------------------------------------------------------------------------------------


def move(session: Session, audit: AuditTrail, referral: Referral, status: Status, *, actor: str, audit_action: str,
         now: datetime) -> None:
    """Put a referral in its new state, with its event and its audit entry in the same transaction."""
    referral.status = status
    referral.updated_at = now
    session.add(referral)
    publish_change(session, referral, now)
    audit.record(session, actor=actor, action=audit_action, target_id=referral.id)


def publish_change(session: Session, referral: Referral, now: datetime) -> None:
    """The event of the state the referral has just reached, and the partner's webhook delivery when it is one the
    partner is told of (sent, cancelled)."""
    cost = None
    if referral.cost_minor is not None and referral.cost_currency:
        cost = events.CostEstimate(amount=domain.format_money(referral.cost_minor, referral.cost_currency),
                                   currency=referral.cost_currency)
    status = Status(referral.status)
    events.publish(session, events.subject_for(status), events.ReferralChanged(
        referral_id=referral.id, case_id=referral.case_id, partner_id=referral.partner_id,
        category=referral.need_category, status=status, cost_estimate=cost, occurred_at=now,
    ), about=referral.id)
    webhooks.enqueue_change(session, referral, now)


# ---- the packet, while consent covers it ---------------------------------------------------------------------


def packet_gap(referral: Referral, case: KnownCase | None, today: date) -> str | None:
    """Why the referral's packet may no longer be shown (`domain.packet_withdrawal`); None while it may."""
    contents = domain.PacketContents(has_contact=referral.packet_has_contact, has_health=referral.packet_has_health)
    return domain.packet_withdrawal(case.view() if case else None, referral.need_category, contents, today)


def packet_available(referral: Referral, case: KnownCase | None, today: date) -> bool:
    return referral.packet is not None and key_kept(referral, case, today)


def key_kept(referral: Referral, case: KnownCase | None, today: date) -> bool:
    """Whether the packet's key is there and consent still covers it: the thread's messages, sealed under it, may be
    read and written (a cancelled referral's packet contents are gone, its key is not: `withdraw_contents`)."""
    return referral.packet_key is not None and packet_gap(referral, case, today) is None


def reveal(session: Session, runtime: Runtime, referral: Referral, case: KnownCase | None,
           now: datetime) -> Packet | None:
    """The packet, if consent still covers it today and the referral is still the partner's; a consent found expired
    destroys the key here and now, and the contents a cancelled or declined referral still held (one declined before
    a decline took them back) are deleted here and now (`take_back`)."""
    if referral.packet_key is None:
        return None
    reason = packet_gap(referral, case, now.date())
    if reason:
        withdraw(session, runtime.audit, referral, reason, now)
        return None
    if take_back(session, runtime.audit, referral, now):
        return None
    return vault.open_packet(runtime.keyring, referral)


def take_back(session: Session, audit: AuditTrail, referral: Referral, now: datetime) -> bool:
    """A referral no longer the partner's (cancelled by its caseworkers, declined by the partner:
    `domain.WITHDRAWN_FROM_PARTNER`) keeps nothing of the person for it: its packet's contents are deleted at once,
    its key kept for the caseworkers' thread (`withdraw_contents`). True when contents went now."""
    reason = domain.WITHDRAWN_FROM_PARTNER.get(Status(referral.status))
    if reason is None or referral.packet is None:
        return False
    withdraw_contents(session, audit, referral, reason, now)
    return True


def withdraw_contents(session: Session, audit: AuditTrail, referral: Referral, reason: str, now: datetime) -> None:
    """Delete the packet's contents for `reason`, keeping its key for the thread (`vault.drop_packet`), audited as
    the system's doing."""
    vault.drop_packet(session, referral, reason=reason, now=now)
    session.add(referral)
    audit.record(session, actor=SYSTEM, action="referral.packet.destroy", target_id=referral.id)
    log.info("referral packet deleted, its thread kept", referral_id=referral.id, reason=reason)


def withdraw(session: Session, audit: AuditTrail, referral: Referral, reason: str, now: datetime) -> None:
    """Destroy the packet's key for `reason` (crypto-shredding), audited as the system's doing."""
    vault.shred_packet(session, referral, reason=reason, now=now)
    session.add(referral)
    audit.record(session, actor=SYSTEM, action="referral.packet.destroy", target_id=referral.id)
    log.info("referral packet destroyed", referral_id=referral.id, reason=reason)
