"""What intake publishes: subjects and payloads. Ids, categories and dates only, never personal data."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from kit import erasures
from kit.events import Publisher
from services.intake.domain import Category, NeedStatus, Urgency
from services.intake.models import kit_tables

SOURCE = "/rehab/intake"
CASE_OPENED = "rehab.intake.case.opened"
CASE_CLOSED = "rehab.intake.case.closed"
CASE_REOPENED = "rehab.intake.case.reopened"
CASE_DUPLICATE = "rehab.intake.case.duplicate"
CASE_ERASED = "rehab.intake.case.erased"
CASE_ASSIGNED = "rehab.intake.case.assigned"
NEEDS_ASSESSED = "rehab.intake.needs.assessed"
NEEDS_MOVED = "rehab.intake.needs.moved"
CONSENT_CHANGED = "rehab.intake.consent.changed"
# The erasure ledger (kit.erasures): a stream of its own, kept for ever, read back by `rehab restore`.
ERASURE_RECORDED = erasures.SUBJECT
ErasureRecorded = erasures.ErasureRecorded


class CaseOpened(BaseModel):
    """A case was opened, assigned to its creator."""

    case_id: str
    reference: str
    country: str | None
    opened_at: datetime
    assignees: list[str] = Field(description="The user ids of its first assignees (its creator), as of `opened_at`: "
                                             "one event where a new case needs two otherwise; `case.assigned` "
                                             "follows only when the case is reassigned.")


class CaseClosed(BaseModel):
    """A case was closed: no further referrals or aid for it."""

    case_id: str
    closed_at: datetime


class CaseReopened(BaseModel):
    """A closed case, or one marked a duplicate, was opened again: referrals and aid may be asked for it once more."""

    case_id: str
    reopened_at: datetime
    reopened_from: Literal["closed", "duplicate"] = Field(
        default="closed", description="The status the case left: a reader moves its copy back from that status only, "
                                      "so that a reopening that comes late (redelivered, or replayed from the dead "
                                      "letters) never undoes a later mark of a duplicate. Absent in events written "
                                      "before reopening undid a duplicate: `closed`.")


class CaseDuplicate(BaseModel):
    """A case was marked a duplicate of the case kept: no further referrals or aid for it (they go to the kept one)."""

    case_id: str
    kept_case_id: str
    marked_at: datetime


class CaseErased(BaseModel):
    """A case was erased: every service forgets what it held about the person."""

    case_id: str
    erased_at: datetime


class CaseAssigned(BaseModel):
    """Who a case is assigned to from now on (staff user ids, the first assigned first): when it is opened (its
    creator) and whenever its assignees change. Every service showing or changing something of a case lets only
    these caseworkers do it without a stated reason."""

    case_id: str
    assignees: list[str]
    assigned_at: datetime


class NeedsAssessed(BaseModel):
    """A need was recorded for a case (its notes stay in intake)."""

    case_id: str
    need_id: str
    category: Category
    urgency: Urgency


class NeedsMoved(BaseModel):
    """A need moved on (open → in progress → met | dropped): its category and urgency ride along so that a reader
    counting needs met or dropped needs no copy of the need (its notes stay in intake)."""

    case_id: str
    need_id: str
    category: Category
    urgency: Urgency
    status: NeedStatus
    moved_at: datetime


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
    CASE_REOPENED: CaseReopened,
    CASE_DUPLICATE: CaseDuplicate,
    CASE_ERASED: CaseErased,
    CASE_ASSIGNED: CaseAssigned,
    NEEDS_ASSESSED: NeedsAssessed,
    NEEDS_MOVED: NeedsMoved,
    CONSENT_CHANGED: ConsentChanged,
    ERASURE_RECORDED: ErasureRecorded,
}


# `publish(session, SUBJECT, Payload(...), about=case_id)`: to the outbox, in the caller's transaction; the relay
# sends it once that commits. A payload that is not its subject's is refused before anything is written.
publish = Publisher(SOURCE, PUBLISHED, kit_tables)
