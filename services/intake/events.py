"""What intake publishes: subjects and payloads. Ids, categories and dates only, never personal data."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from sqlmodel import Session

from kit.events import record_event
from services.intake.models import Category, Urgency, kit_tables

SOURCE = "/rehab/intake"
CASE_OPENED = "rehab.intake.case.opened"
CASE_CLOSED = "rehab.intake.case.closed"
CASE_ERASED = "rehab.intake.case.erased"
NEEDS_ASSESSED = "rehab.intake.needs.assessed"
CONSENT_CHANGED = "rehab.intake.consent.changed"


class CaseOpened(BaseModel):
    """A case was opened."""

    case_id: str
    reference: str
    country: str | None
    opened_at: datetime


class CaseClosed(BaseModel):
    """A case was closed: no further referrals or aid for it."""

    case_id: str
    closed_at: datetime


class CaseErased(BaseModel):
    """A case was erased: every service forgets what it held about the person."""

    case_id: str
    erased_at: datetime


class NeedsAssessed(BaseModel):
    """A need was recorded for a case (its notes stay in intake)."""

    case_id: str
    need_id: str
    category: Category
    urgency: Urgency


class ConsentChanged(BaseModel):
    """The consent in force for a case changed; empty `categories` means consent was withdrawn."""

    case_id: str
    categories: list[Category]
    share_contact: bool
    share_health: bool
    expires_on: date | None
    recorded_at: datetime


PUBLISHED: dict[str, type[BaseModel]] = {
    CASE_OPENED: CaseOpened,
    CASE_CLOSED: CaseClosed,
    CASE_ERASED: CaseErased,
    NEEDS_ASSESSED: NeedsAssessed,
    CONSENT_CHANGED: ConsentChanged,
}


def publish(session: Session, subject: str, payload: BaseModel, *, case_id: str) -> None:
    """Write the event to the outbox in the caller's transaction; the relay publishes it after the commit."""
    if not isinstance(payload, PUBLISHED[subject]):
        raise TypeError(f"{subject} carries {PUBLISHED[subject].__name__}, not {type(payload).__name__}")
    record_event(session, kit_tables, source=SOURCE, type=subject, subject=case_id, data=payload.model_dump(mode="json"))
