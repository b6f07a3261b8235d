"""What intake consumes: referral and disbursement events, which become steps of the case's timeline.

Each handler runs inside the bus's inbox transaction (applied once per event id) and must not commit: it parses the
payload and calls a use case (`cases.note_on_timeline`, which skips events about a case intake does not know or has
erased). Intake keeps its own small copy of the payloads it reads (docs/events.md); it keeps ids, categories, states
and amounts only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator
from sqlmodel import Session

from kit.events import Envelope
from services.intake import cases

REFERRAL_EVENTS = ("sent", "accepted", "declined", "started", "completed", "cancelled")
DISBURSEMENT_EVENTS = ("requested", "approved", "rejected", "paid", "voided")
REFERRAL_SUBJECTS = tuple(f"rehab.referrals.referral.{name}" for name in REFERRAL_EVENTS)
DISBURSEMENT_SUBJECTS = tuple(f"rehab.funds.disbursement.{name}" for name in DISBURSEMENT_EVENTS)


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
