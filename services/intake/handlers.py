"""What intake consumes: referral and disbursement events, which become steps of the case's timeline, as do the
break-glass openings of a case in referrals or funds; and the gateway's staff events, which keep the staff directory
(who may be assigned a case).

Each handler runs inside the bus's inbox transaction (applied once per event id) and must not commit: it parses the
payload and calls a use case (`cases.note_on_timeline`, which skips events about a case intake does not know or has
erased; `assignment.follow_staff_change`, which also hands a leaver's open tasks on, decided from the directory as it
stands, so that an event applied twice or late moves nothing more). Intake keeps its own small copy of the payloads
it reads (docs/events.md); it keeps ids, categories, states, amounts and staff handles and roles only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.events import Envelope
from services.intake import assignment, cases, domain

REFERRAL_EVENTS = ("sent", "accepted", "declined", "started", "completed", "cancelled")
DISBURSEMENT_EVENTS = ("requested", "approved", "rejected", "paid", "voided")
REFERRAL_SUBJECTS = tuple(f"rehab.referrals.referral.{name}" for name in REFERRAL_EVENTS)
DISBURSEMENT_SUBJECTS = tuple(f"rehab.funds.disbursement.{name}" for name in DISBURSEMENT_EVENTS)
STAFF_SUBJECTS = tuple(f"rehab.gateway.user.{name}" for name in domain.ENABLED_BY_EVENT)
REFERRALS_BREAK_GLASS, FUNDS_BREAK_GLASS = "rehab.referrals.case.break_glass", "rehab.funds.case.break_glass"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a producer may add fields; we read only ours

    case_id: str
    occurred_at: datetime

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(BaseModel):
    amount: str
    currency: str


class ReferralChanged(_Payload):
    referral_id: str
    partner_id: str
    category: str
    status: str
    cost_estimate: Money | None = None


class DisbursementChanged(_Payload):
    disbursement_id: str
    grant_id: str
    category: str
    amount: str
    currency: str
    status: str


class OpenedElsewhere(_Payload):
    """A caseworker not assigned to the case acted on it in referrals or funds, with a reason they keep nowhere."""

    user_id: str


class StaffChanged(BaseModel):
    """A staff account as the gateway announced it (`rehab.gateway.user.*`)."""

    model_config = ConfigDict(extra="ignore")

    user_id: str
    username: str
    roles: list[str]
    partner_id: str | None = None
    occurred_at: datetime

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def referral_changed(session: Session, envelope: Envelope) -> None:
    _noted(session, envelope, ReferralChanged.model_validate(envelope.data), source="referrals")


def disbursement_changed(session: Session, envelope: Envelope) -> None:
    _noted(session, envelope, DisbursementChanged.model_validate(envelope.data), source="funds")


def _noted(session: Session, envelope: Envelope, payload: _Payload, *, source: str) -> None:
    cases.note_on_timeline(
        session, case_id=payload.case_id, at=payload.occurred_at, source=source, event_id=envelope.id,
        kind=".".join(envelope.type.split(".")[-2:]),  # rehab.funds.disbursement.paid → disbursement.paid
        details=payload.model_dump(mode="json", exclude={"case_id", "occurred_at"}),
    )


def opened_elsewhere(session: Session, envelope: Envelope) -> None:
    payload = OpenedElsewhere.model_validate(envelope.data)
    cases.note_opening_elsewhere(session, case_id=payload.case_id, user_id=payload.user_id, at=payload.occurred_at,
                                 source=envelope.type.split(".")[1], event_id=envelope.id)  # rehab.funds.… → funds


def staff_changed(session: Session, envelope: Envelope, *, audit: AuditTrail | None = None) -> None:
    """A staff account changed: kept in the directory, and a leaver's open tasks handed on (the audit trail records
    each case whose tasks moved)."""
    payload = StaffChanged.model_validate(envelope.data)
    assignment.follow_staff_change(session, audit=audit, user_id=payload.user_id, username=payload.username,
                                   roles=payload.roles, partner_id=payload.partner_id, occurred_at=payload.occurred_at,
                                   enabled=domain.ENABLED_BY_EVENT[envelope.type.rsplit(".", 1)[-1]])
