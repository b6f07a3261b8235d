"""What funds publishes: subjects and payloads (docs/events.md). Ids, categories and amounts only: never a payee,
a purpose or anything else about the person."""

from datetime import datetime

from pydantic import BaseModel

from kit.events import Publisher
from services.funds.models import kit_tables

SOURCE = "/rehab/funds"

DISBURSEMENT_REQUESTED = "rehab.funds.disbursement.requested"
DISBURSEMENT_APPROVED = "rehab.funds.disbursement.approved"
DISBURSEMENT_REJECTED = "rehab.funds.disbursement.rejected"
DISBURSEMENT_PAID = "rehab.funds.disbursement.paid"
DISBURSEMENT_VOIDED = "rehab.funds.disbursement.voided"

# the disbursement's new status → the subject announcing it
SUBJECT_OF_STATUS = {
    "requested": DISBURSEMENT_REQUESTED,
    "approved": DISBURSEMENT_APPROVED,
    "rejected": DISBURSEMENT_REJECTED,
    "paid": DISBURSEMENT_PAID,
    "voided": DISBURSEMENT_VOIDED,
}


class DisbursementChanged(BaseModel):
    """A disbursement reached a new status; `amount` is a decimal string with the currency's minor digits."""

    disbursement_id: str
    case_id: str
    grant_id: str
    category: str
    amount: str
    currency: str
    status: str
    occurred_at: datetime


class DisbursementPaid(DisbursementChanged):
    """A disbursement was paid. `amount` stays the approved amount; `converted_amount` (in `currency`) is what the
    grant paid, `paid_amount` in `paid_currency` what the person received. `fx_rate` (units of the paid currency for
    one unit of `currency`) only when the two currencies differ. Where the rate came from (`fx_source`) is text a
    person typed, so it stays on the payment in funds: no typed text travels on the bus."""

    paid_amount: str | None = None
    paid_currency: str | None = None
    fx_rate: str | None = None
    converted_amount: str | None = None


class DisbursementEnded(DisbursementChanged):
    """A disbursement was rejected or voided. `released_amount` (in `currency`) is the commitment it gave back to the
    grant: the approved amount when it had been approved, None when it was still only requested (nothing had been
    committed). The reports service counts it as aid released in the month it happened."""

    released_amount: str | None = None


CASE_OPENED_BY_BREAK_GLASS = "rehab.funds.case.break_glass"


class CaseAidOpenedByBreakGlass(BaseModel):
    """A caseworker not assigned to the case acted on its aid with a stated reason: who and when, so that the case's
    timeline in intake shows it to its assignees. Never the reason: free text about a person."""

    case_id: str
    user_id: str
    occurred_at: datetime


PUBLISHED: dict[str, type[BaseModel]] = {
    **{subject: DisbursementPaid if subject == DISBURSEMENT_PAID
       else DisbursementEnded if subject in (DISBURSEMENT_REJECTED, DISBURSEMENT_VOIDED) else DisbursementChanged
       for subject in SUBJECT_OF_STATUS.values()},
    CASE_OPENED_BY_BREAK_GLASS: CaseAidOpenedByBreakGlass,
}

# The one way funds publishes: `publish(session, SUBJECT, DisbursementChanged(...), about=disbursement_id)` in a use
# case, into the outbox in its transaction.
publish = Publisher(SOURCE, PUBLISHED, kit_tables)
