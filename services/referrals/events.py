"""What referrals publishes: one subject per step of a referral's lifecycle, and one for a message written on a
referral. Ids and categories, never personal data: a message's event says which side wrote it, never its text.

Use cases publish with `publish(session, subject_for(status), ReferralChanged(...), about=referral.id)`: the event is
written to the outbox in the use case's transaction (kit.events.Publisher).
"""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from kit.events import Publisher
from services.referrals.domain import EVENT_OF, Category, Side, Status
from services.referrals.models import kit_tables

SOURCE = "/rehab/referrals"


def subject_for(status: Status) -> str:
    """rehab.referrals.referral.{sent,accepted,declined,started,completed,cancelled}, by the state reached."""
    return f"rehab.referrals.referral.{EVENT_OF[status]}"


class CostEstimate(BaseModel):
    amount: str
    currency: str


class ReferralChanged(BaseModel):
    """A referral reached a new state (docs/events.md)."""

    referral_id: str
    case_id: str
    partner_id: str
    category: Category
    status: Status
    cost_estimate: CostEstimate | None
    occurred_at: datetime


MESSAGE_WRITTEN = "rehab.referrals.referral.message"


class MessageWritten(BaseModel):
    """A message was written on a referral (docs/events.md): by which side, never by whom, never what it says."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    referral_id: str
    partner_id: str
    from_: Side = Field(alias="from")
    message_id: str
    occurred_at: datetime


CASE_OPENED_BY_BREAK_GLASS = "rehab.referrals.case.break_glass"


class CaseOpenedByBreakGlass(BaseModel):
    """A caseworker not assigned to the case acted on it here with a stated reason (docs/events.md): who and when, so
    that the case's timeline in intake shows it to its assignees. Never the reason: free text about a person."""

    case_id: str
    user_id: str
    occurred_at: datetime


PUBLISHED = {**{subject_for(status): ReferralChanged for status in Status}, MESSAGE_WRITTEN: MessageWritten,
             CASE_OPENED_BY_BREAK_GLASS: CaseOpenedByBreakGlass}

publish = Publisher(SOURCE, PUBLISHED, kit_tables)
