"""What referrals publishes: one subject per step of a referral's lifecycle. Ids and categories, never personal data.

Use cases publish with `publish(session, subject_for(status), ReferralChanged(...), about=referral.id)`: the event is
written to the outbox in the use case's transaction (kit.events.Publisher).
"""

from datetime import datetime

from pydantic import BaseModel

from kit.events import Publisher
from services.referrals.domain import EVENT_OF, Category, Status
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


PUBLISHED = {subject_for(status): ReferralChanged for status in Status}

publish = Publisher(SOURCE, PUBLISHED, kit_tables)
