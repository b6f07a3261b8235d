"""What referrals consumes: intake's case events, into the local `cases` projection and the cases' assignees (no call
to intake, ever).

Each handler parses its payload and calls one use case of `projections` inside the consumer's inbox transaction
(kit.bus); none commits. Those are tolerant of order: any event may come first for a case, a case's status only
moves forward, and an older consent or assignment arriving after a newer one is ignored. Intake may add fields to its
payloads; we read only these.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.bus import Subscription
from kit.events import Envelope
from kit.idempotency import Idempotency
from kit.service import Runtime
from services.referrals import projections
from services.referrals.domain import CaseStatus

CASE_OPENED = "rehab.intake.case.opened"
CASE_CLOSED = "rehab.intake.case.closed"
CASE_REOPENED = "rehab.intake.case.reopened"
CASE_DUPLICATE = "rehab.intake.case.duplicate"
CASE_ERASED = "rehab.intake.case.erased"
CONSENT_CHANGED = "rehab.intake.consent.changed"
CASE_ASSIGNED = "rehab.intake.case.assigned"


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


class CaseEvent(BaseModel):
    """Our copy of what we read from intake's case.opened / closed / erased."""

    model_config = ConfigDict(extra="ignore")

    case_id: str


class CaseReopened(CaseEvent):
    """Our copy of intake's case.reopened: the status it left (`closed` in events written before a duplicate could be
    reopened)."""

    reopened_from: Literal["closed", "duplicate"] = "closed"


class CaseOpened(CaseEvent):
    """Our copy of intake's case.opened: with the case's first assignees (absent from older events)."""

    opened_at: datetime | None = None
    assignees: list[str] | None = None


class ConsentChanged(BaseModel):
    """Our copy of intake's consent.changed."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    categories: list[str]
    share_contact: bool
    share_health: bool
    expires_on: date | None = None
    recorded_at: datetime | None = None

    def recorded(self, fallback: datetime) -> datetime:
        return _utc(self.recorded_at or fallback)


class CaseAssigned(BaseModel):
    """Our copy of intake's case.assigned (on every reassignment): the assignees' user ids."""

    model_config = ConfigDict(extra="ignore")

    case_id: str
    assignees: list[str]
    assigned_at: datetime | None = None

    def at(self, fallback: datetime) -> datetime:
        return _utc(self.assigned_at or fallback)


def case_opened(session: Session, envelope: Envelope) -> None:
    event = CaseOpened.model_validate(envelope.data)
    projections.note_case_status(session, case_id=event.case_id, status=CaseStatus.OPEN)
    if event.assignees is not None:  # its creator: the first assignment rides on case.opened
        projections.assign_case(session, case_id=event.case_id, assignees=event.assignees,
                                assigned_at=_utc(event.opened_at or envelope.time))


def case_closed(session: Session, envelope: Envelope) -> None:
    event = CaseEvent.model_validate(envelope.data)
    projections.note_case_status(session, case_id=event.case_id, status=CaseStatus.CLOSED)


def case_reopened(session: Session, envelope: Envelope) -> None:
    event = CaseReopened.model_validate(envelope.data)
    projections.reopen_case(session, case_id=event.case_id, leaving=CaseStatus(event.reopened_from))


def case_duplicate(session: Session, envelope: Envelope) -> None:
    event = CaseEvent.model_validate(envelope.data)
    projections.note_case_status(session, case_id=event.case_id, status=CaseStatus.DUPLICATE)


def case_erased(session: Session, envelope: Envelope, *, audit: AuditTrail, answers: Idempotency) -> None:
    event = CaseEvent.model_validate(envelope.data)
    projections.forget_case(session, audit, case_id=event.case_id, answers=answers)


def consent_changed(session: Session, envelope: Envelope, *, audit: AuditTrail) -> None:
    event = ConsentChanged.model_validate(envelope.data)
    projections.apply_consent(
        session, audit, case_id=event.case_id, categories=event.categories, share_contact=event.share_contact,
        share_health=event.share_health, expires_on=event.expires_on, recorded_at=event.recorded(envelope.time),
    )


def case_assigned(session: Session, envelope: Envelope) -> None:
    event = CaseAssigned.model_validate(envelope.data)
    projections.assign_case(session, case_id=event.case_id, assignees=event.assignees,
                            assigned_at=event.at(envelope.time))


def subscriptions(runtime: Runtime) -> list[Subscription]:
    return [Subscription(producer="intake", durable="referrals-intake", handlers={
        CASE_OPENED: case_opened,
        CASE_CLOSED: case_closed,
        CASE_REOPENED: case_reopened,
        CASE_DUPLICATE: case_duplicate,
        CASE_ERASED: partial(case_erased, audit=runtime.audit, answers=runtime.idempotency),
        CONSENT_CHANGED: partial(consent_changed, audit=runtime.audit),
        CASE_ASSIGNED: case_assigned,
    })]
