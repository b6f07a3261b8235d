"""What referrals keeps of intake's events (its `cases` table: a case's status and the consent in force; who each
case is assigned to), what that changes for the referrals of a case, and what time alone changes (the watch).

The event use cases run inside the consumer's inbox transaction (kit.bus, called by handlers.py), `keep_watch` in a
unit of `runtime.uow`: none commits. They are tolerant of order: a case's status only moves forward (kit.projection),
and an older consent or assignment arriving after a newer one is ignored.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime

from sqlmodel import Session, select

from kit import logs
from kit.audit import AuditTrail
from kit.db import scrub_after_commit
from kit.idempotency import Idempotency
from kit.need_to_know import keep_assignees
from kit.projection import ForwardOnly
from kit.service import Runtime
from services.referrals import domain, lifecycle, metrics, queries, vault
from services.referrals.domain import CASE_ORDER, CaseStatus, Status
from services.referrals.lifecycle import SYSTEM, now_utc
from services.referrals.models import CaseAssignee, CaseAssignment, KnownCase, Referral

log = logs.get("referrals")

_CASES = KnownCase.__table__  # type: ignore[attr-defined]
_ASSIGNMENTS = CaseAssignment.__table__  # type: ignore[attr-defined]
_ASSIGNEES = CaseAssignee.__table__  # type: ignore[attr-defined]
_CONSENT = ("consent_recorded_at", "consent_categories", "share_contact", "share_health", "consent_expires_on")
_NO_CONSENT = {"consent_recorded_at": None, "consent_categories": [], "share_contact": False, "share_health": False,
               "consent_expires_on": None}

# One upsert each, no read first: a case not heard of yet is created, a known one keeps the later status.
CASE_STATUS = ForwardOnly(_CASES, key="case_id", state_column="status", order=CASE_ORDER, overwrite=["updated_at"])
# Erasure: the status becomes `erased` (the last), and the consent on record goes with the case.
ERASURE = ForwardOnly(_CASES, key="case_id", state_column="status", order=CASE_ORDER,
                      overwrite=["updated_at", *_CONSENT])


def note_case_status(session: Session, *, case_id: str, status: CaseStatus, now: datetime | None = None) -> None:
    """A case was opened or closed: its status moves forward, never back, whatever order events come in."""
    CASE_STATUS.upsert(session, {"case_id": case_id, "status": str(status), "updated_at": now or now_utc()})


def reopen_case(session: Session, *, case_id: str, leaving: CaseStatus = CaseStatus.CLOSED,
                now: datetime | None = None) -> None:
    """A closed case, or one marked a duplicate (`leaving`: the status intake reopened it from), was reopened: it is
    open again (new referrals may be sent). Only a case in that status moves back: a reopening of a closed case that
    comes after the case went on to be a duplicate or erased leaves it so."""
    CASE_STATUS.move_back(session, {"case_id": case_id, "status": str(CaseStatus.OPEN), "updated_at": now or now_utc()},
                          leaving=str(leaving))


def apply_consent(
    session: Session, audit: AuditTrail, *, case_id: str, categories: list[str], share_contact: bool,
    share_health: bool, expires_on: date | None, recorded_at: datetime, now: datetime | None = None,
) -> None:
    """Take the consent in force, and destroy at once the packets of this case it no longer covers."""
    now = now or now_utc()
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
        reason = lifecycle.packet_gap(referral, case, now.date())
        if reason:
            lifecycle.withdraw(session, audit, referral, reason, now)


def assign_case(session: Session, *, case_id: str, assignees: list[str], assigned_at: datetime) -> bool:
    """Intake (re)assigned a case: its assignees become these, unless the assignment kept is a later one (an older
    case.assigned arriving late changes nothing). True when applied. Kept through erasure: the ids and states of an
    erased case's referrals stay its caseworkers' to see."""
    return keep_assignees(session, assignments=_ASSIGNMENTS, assignees=_ASSIGNEES, case_id=case_id, users=assignees,
                          assigned_at=assigned_at)


def forget_case(session: Session, audit: AuditTrail, *, case_id: str, answers: Idempotency,
                now: datetime | None = None) -> None:
    """The case was erased: every packet and reply about the person becomes unrecoverable, open referrals end.

    A partner cannot help a person it can no longer see, and a caseworker expects nothing left pending for a case
    that no longer exists: open referrals are cancelled (by the system, with their events), finished ones stay as
    bare ids and states. What each packet held (`packet_has_contact`, `packet_has_health`: that a named partner was
    given the person's contact or a health summary) is forgotten too, and so is a withdrawal's reason that says it
    (`domain.REASONS_NAMING_CONTENTS`, replaced by `case-erased`). The stored Idempotency-Key answers about the case
    and its referrals, and the fingerprints of their requests (computed over the packets, a decline's reason, an
    outcome), are deleted.
    """
    now = now or now_utc()
    forgotten = answers.forget(session, case_id)
    ERASURE.upsert(session, {"case_id": case_id, "status": str(CaseStatus.ERASED), "updated_at": now, **_NO_CONSENT})
    referrals = session.exec(select(Referral).where(Referral.case_id == case_id)).all()
    for referral in referrals:
        # A partner's steps are stored under the referral (its answers never name the case): their fingerprints
        # are over a decline's reason and an outcome's text, and go too, whatever became of the packet.
        forgotten += answers.forget(session, referral.id)
        if referral.packet_key is not None:
            lifecycle.withdraw(session, audit, referral, "case-erased", now)
        if referral.reply_key is not None:
            vault.shred_replies(session, referral)
        if referral.status in domain.OPEN_STATUSES:
            lifecycle.move(session, audit, referral, Status.CANCELLED, actor=SYSTEM, audit_action="referral.cancel",
                           now=now)
        # Not null in the schema: false is "nothing known", as for a packet that held neither.
        referral.packet_has_contact = False
        referral.packet_has_health = False
        if referral.packet_withdrawn in domain.REASONS_NAMING_CONTENTS:
            referral.packet_withdrawn = "case-erased"
        session.add(referral)
    if forgotten or referrals:
        scrub_after_commit(session)  # their old bytes leave the write-ahead log too


def _known_case(session: Session, case_id: str, now: datetime) -> KnownCase:
    case = session.get(KnownCase, case_id, with_for_update=True)
    if case is None:  # an event about a case we have not heard of yet: its other events will fill it in
        case = KnownCase(case_id=case_id, status=CaseStatus.OPEN, updated_at=now)
        session.add(case)
    return case


# ---- the watch: what time alone changes ----------------------------------------------------------------------


def keep_watch(*, session: Session, runtime: Runtime) -> int:
    """Destroy the packets whose consent has expired, delete the contents a cancelled or declined referral still
    holds (one declined before a decline took them back: `lifecycle.take_back`), and refresh the overdue gauge;
    returns how many packets went."""
    now = now_utc()
    withdrawn = 0
    for referral in session.exec(select(Referral).where(
            Referral.status.in_(list(domain.WITHDRAWN_FROM_PARTNER)),  # type: ignore[attr-defined]
            Referral.packet.is_not(None))).all():  # type: ignore[union-attr]
        withdrawn += lifecycle.take_back(session, runtime.audit, referral, now)
    expired = session.execute(queries.with_case().where(
        Referral.packet_key.is_not(None),  # type: ignore[union-attr]
        KnownCase.consent_expires_on < now.date(),  # type: ignore[operator]
    )).all()
    for referral, case in expired:
        reason = lifecycle.packet_gap(referral, case, now.date())
        if reason:
            lifecycle.withdraw(session, runtime.audit, referral, reason, now)
            withdrawn += 1
    metrics.OVERDUE.set(queries.count_overdue(session, now=now, after=lifecycle.overdue_after(runtime)))
    return withdrawn


async def watch(runtime: Runtime) -> None:
    """The background job: every few seconds, `keep_watch` in a unit of work."""
    interval = runtime.settings.watch_interval_seconds  # type: ignore[attr-defined]
    while True:
        try:
            await runtime.uow.run(lambda session: keep_watch(session=session, runtime=runtime))
        except Exception as exc:
            log.warning("referrals watch failed, retrying", error_type=type(exc).__name__)
        await asyncio.sleep(interval)
