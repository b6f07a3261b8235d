"""Referrals' use cases for the partner a referral is addressed to: its inbox, one referral with its packet, and the
steps that are the partner's to take (accept, decline with a reason, start, complete with an outcome and a cost).
A declined referral, like a cancelled one, is no longer the partner's: its packet's contents go at once and its
thread is no longer shown to the partner (`domain.WITHDRAWN_FROM_PARTNER`).

Which partner is calling comes only from its verified token. A referral addressed to another partner is refused
exactly like one that does not exist (`NotAddressed`, a NotFound: 404 `referral-not-found`), and the attempt is
audited: `run` records it in a unit of its own, since the refused unit is rolled back. Like every use case, these
never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session, select

from kit.audit import AuditTrail
from kit.errors import NotFound
from kit.service import Runtime
from services.referrals import domain, lifecycle, queries, vault
from services.referrals.domain import Action, Side, Status
from services.referrals.lifecycle import now_utc
from services.referrals.models import KnownCase, Money, Packet, Referral

T = TypeVar("T")

NOT_ADDRESSED = "No referral with this id is addressed to you."


class NotAddressed(NotFound):
    """No referral with this id is addressed to the calling partner: unknown and someone else's look the same."""

    def __init__(self, referral_id: str) -> None:
        super().__init__(NOT_ADDRESSED, code="referral-not-found")
        self.referral_id = referral_id


@dataclass
class PartnerView:
    referral: Referral
    packet_available: bool
    packet: Packet | None = None
    unread_messages: int = 0  # the caseworkers' messages the partner has not read (messages.py)


async def run(runtime: Runtime, actor: str, use_case: Callable[[Session], T], *,
              through: Callable[[Callable[[Session], T]], Awaitable[Any]] | None = None) -> Any:
    """Run one of the use cases below as a unit of work (or `through(use_case)`: once per Idempotency-Key). When it
    refuses a referral not addressed to the partner, its unit is rolled back, so the attempt is audited in a unit of
    its own before the refusal goes on (404)."""
    try:
        return await (through or runtime.uow.run)(use_case)
    except NotAddressed as refused:
        referral_id = refused.referral_id
        await runtime.uow.run(lambda session: record_denial(session, runtime.audit, actor=actor,
                                                            referral_id=referral_id))
        raise


def record_denial(session: Session, audit: AuditTrail, *, actor: str, referral_id: str) -> None:
    """Audit a partner's attempt on a referral not addressed to it (the target only when it is an id at all)."""
    try:
        target: str | None = str(uuid.UUID(referral_id))
    except ValueError:
        target = None
    audit.record(session, actor=actor, action="partner.referral.denied", target_id=target)


def inbox(
    *, session: Session, runtime: Runtime, partner_id: str, status: Status | None, limit: int, cursor: str | None,
    actor: str,
) -> tuple[list[PartnerView], str | None]:
    """The referrals addressed to this partner, newest first, with their packets; each one shown is audited."""
    query = queries.with_case().where(Referral.partner_id == partner_id)
    if status:
        query = query.where(Referral.status == status)
    rows, next_cursor = queries.newest_first(session, query, limit=limit, cursor=cursor)
    now = now_utc()
    views = []
    for referral, case in rows:
        packet = lifecycle.reveal(session, runtime, referral, case, now)
        runtime.audit.record(session, actor=actor, action="partner.referral.read", target_id=referral.id)
        views.append(PartnerView(referral, packet_available=packet is not None, packet=packet))
    unread = unread_for_partner(session, [view.referral for view in views])
    for view in views:
        view.unread_messages = unread.get(view.referral.id, 0)
    return views, next_cursor


def unread_for_partner(session: Session, referrals: list[Referral]) -> dict[str, int]:
    """Per referral, the caseworkers' messages the partner has not read, counted only where it may read the thread:
    none on a referral cancelled or declined, whose thread reads empty to it (`messages.read_as_partner`). A thread
    gone with its packet has no rows left to count."""
    shown = [referral.id for referral in referrals if domain.shared_with_partner(referral.status)]
    return queries.unread_messages(session, shown, reader=Side.PARTNER)


def read(*, session: Session, runtime: Runtime, partner_id: str, referral_id: str, actor: str) -> PartnerView:
    """One referral addressed to this partner, with its packet while consent covers it; the read is audited."""
    row = session.execute(queries.with_case().where(
        Referral.id == referral_id, Referral.partner_id == partner_id)).first()
    if row is None:
        raise NotAddressed(referral_id)
    referral, case = row
    packet = lifecycle.reveal(session, runtime, referral, case, now_utc())
    runtime.audit.record(session, actor=actor, action="partner.referral.read", target_id=referral.id)
    unread = unread_for_partner(session, [referral]).get(referral.id, 0)
    return PartnerView(referral, packet_available=packet is not None, packet=packet, unread_messages=unread)


def act(
    *, session: Session, runtime: Runtime, partner_id: str, referral_id: str, action: Action, actor: str,
    reason: str | None = None, outcome: str | None = None, cost: Money | None = None,
) -> PartnerView:
    """Accept, decline (with a reason), start or complete (with an outcome and a cost estimate) a referral."""
    assert action in domain.PARTNER_ACTIONS
    referral = session.exec(select(Referral).where(
        Referral.id == referral_id, Referral.partner_id == partner_id).with_for_update()).first()
    if referral is None:
        raise NotAddressed(referral_id)
    new_status = domain.next_status(referral.status, action)
    if action is Action.DECLINE and reason:
        vault.seal_reply(runtime.keyring, referral, "decline_reason", reason)
    if action is Action.COMPLETE:
        if outcome:
            vault.seal_reply(runtime.keyring, referral, "outcome", outcome)
        if cost is not None:
            referral.cost_minor, referral.cost_currency = cost.minor_units(), cost.currency
    now = now_utc()
    lifecycle.move(session, runtime.audit, referral, new_status, actor=actor,
                   audit_action=f"partner.referral.{action}", now=now)
    # A decline takes the packet back from the partner as a cancel does: it refused the person and has no remaining
    # need for their name, contact or health summary. Its thread is no longer the partner's either (it reads empty to
    # the partner and takes no message, `domain.WITHDRAWN_FROM_PARTNER`): a thread often speaks of the person just
    # as the packet does, and the decline's reason already tells the caseworkers why; they keep the thread to read.
    lifecycle.take_back(session, runtime.audit, referral, now)
    available = lifecycle.packet_available(referral, session.get(KnownCase, referral.case_id), now.date())
    return PartnerView(referral, packet_available=available)
