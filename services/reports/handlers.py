"""What reports consumes: every producer's stream (intake's cases and needs, referrals' referrals, funds'
disbursements). Each consumer reads its own copy of the payload (ids, categories, dates and amounts; a case id is
read by none of them) and calls one use case of `projections`, inside the kit's inbox unit (it must not commit).

`CONSUMED` is the one table of producers, durables and handlers: the live consumers (`subscriptions`) and `rehab
reports rebuild` (`manage`) apply the same events with the same functions, so a rebuilt projection equals the live
one.

Partner category: referral events carry the partner's id but no partner event says what kind of partner it is, so
the partner category is the referral's own category (a partner takes referrals in its category).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from kit import logs
from kit.bus import Handler, Subscription
from kit.events import Envelope
from kit.service import Runtime
from services.reports import projections

log = logs.get("reports.handlers")


class CaseMoved(BaseModel):
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    erased_at: datetime | None = None


class NeedAssessed(BaseModel):
    category: str
    urgency: str


class NeedMoved(BaseModel):
    category: str
    status: str
    moved_at: datetime | None = None


class ReferralChanged(BaseModel):
    referral_id: str
    category: str
    occurred_at: datetime | None = None


class DisbursementChanged(BaseModel):
    """funds' disbursement events; `paid_*` only on `paid`, and only from funds that pays in other currencies."""

    category: str
    amount: str
    currency: str
    occurred_at: datetime | None = None
    paid_amount: str | None = None
    paid_currency: str | None = None
    converted_amount: str | None = None  # what a payment in another currency cost the grant, in `currency`


def _case(move: str, field: str) -> Handler:
    def apply(session, event: Envelope) -> None:
        data = CaseMoved.model_validate(event.data)
        projections.case_moved(session=session, move=move, at=getattr(data, field) or event.time)

    apply.__name__ = f"case_{move}"
    return apply


def need_assessed(session, event: Envelope) -> None:
    data = NeedAssessed.model_validate(event.data)
    projections.need_assessed(session=session, category=data.category, urgency=data.urgency, at=event.time)


def need_moved(session, event: Envelope) -> None:
    data = NeedMoved.model_validate(event.data)
    projections.need_moved(session=session, category=data.category, status=data.status,
                           at=data.moved_at or event.time)


def _referral(outcome: str) -> Handler:
    def apply(session, event: Envelope) -> None:
        data = ReferralChanged.model_validate(event.data)
        projections.referral_reached(session=session, referral_id=data.referral_id, category=data.category,
                                     partner_category=data.category, outcome=outcome,
                                     at=data.occurred_at or event.time)

    apply.__name__ = f"referral_{outcome}"
    return apply


def _aid(stage: str) -> Handler:
    def apply(session, event: Envelope) -> None:
        data = DisbursementChanged.model_validate(event.data)
        counted = projections.aid_moved(session=session, stage=stage, category=data.category, amount=data.amount,
                                        currency=data.currency, at=data.occurred_at or event.time,
                                        paid_amount=data.paid_amount, paid_currency=data.paid_currency,
                                        converted_amount=data.converted_amount)
        if not counted:
            log.warning("amount not usable as money, skipped", event_id=event.id)

    apply.__name__ = f"aid_{stage}"
    return apply


# producer → (durable consumer, {subject: handler}); durables per docs/events.md and kit.nats_auth.CONSUMES.
CONSUMED: dict[str, tuple[str, dict[str, Handler]]] = {
    "intake": ("reports-intake", {
        "rehab.intake.case.opened": _case("opened", "opened_at"),
        "rehab.intake.case.closed": _case("closed", "closed_at"),
        "rehab.intake.case.erased": _case("erased", "erased_at"),
        "rehab.intake.needs.assessed": need_assessed,
        "rehab.intake.needs.moved": need_moved,
    }),
    "referrals": ("reports-referrals", {
        f"rehab.referrals.referral.{outcome}": _referral(outcome)
        for outcome in ("sent", "accepted", "declined", "started", "completed", "cancelled")
    }),
    "funds": ("reports-funds", {
        "rehab.funds.disbursement.approved": _aid("approved"),
        "rehab.funds.disbursement.paid": _aid("paid"),
    }),
}


def subscriptions(_runtime: Runtime) -> list[Subscription]:
    """The durable consumers reports keeps on intake's, referrals' and funds' streams."""
    return [Subscription(producer=producer, durable=durable, handlers=dict(handlers))
            for producer, (durable, handlers) in CONSUMED.items()]
