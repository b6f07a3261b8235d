"""What reports consumes: every producer's stream (intake's cases and needs, referrals' referrals, funds'
disbursements). Each consumer reads its own copy of the payload (ids, categories, dates and amounts) and calls one use
case of `projections`, inside the kit's inbox unit (it must not commit). A case id is read by two of them only, aid
and erasure, and goes no further than `PersonIndex`: the projection sees its keyed hash.

`consumed(people)` is the one table of producers, durables and handlers: the live consumers (`subscriptions`) and
`rehab reports rebuild` (`manage`) apply the same events with the same functions and the same key, so a rebuilt
projection equals the live one.

Partner category: referral events carry the partner's id but no partner event says what kind of partner it is, so
the partner category is the referral's own category (a partner takes referrals in its category).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel

from kit import logs
from kit.bus import Handler, Subscription
from kit.crypto import BlindIndex
from kit.events import Envelope
from kit.service import Runtime
from services.reports import projections

log = logs.get("reports.handlers")

PERSON_KEY_PURPOSE = b"rehab:reports-aid-people"
PERSON_TERM = "reports.aid.person"
CELL = ("month", "stage", "basis", "category", "currency")  # what names a money cell, in this order


class PersonIndex:
    """A person as reports knows them (`aid_people`): an HMAC-SHA256 of their case id, 128 bits of it, under a key of
    this service's own, so that the reports database alone neither gives a case id back nor joins to the case ids
    another service's database holds.

    Reports holds no data key and no blind-index key of its own (kit.secrets.KEYLESS_SERVICES: `runtime.blind_index`
    has no key here); its one secret is its audit key, which is never rotated (the audit chain is verified under it).
    The key is derived from that secret for this purpose alone (HKDF, as kit.crypto derives a keyring's purpose
    keys), asked for on each use and never kept, so a seal reaches it: a sealed service retries the event. 128 bits,
    not the blind index's 32: a blind index wants two names to share a term now and then, a count of people does not
    (two people sharing a hash would be one person to the count, and one's erasure would delete the other's rows)."""

    def __init__(self, secret: Callable[[], bytes]) -> None:
        self._index = BlindIndex(
            lambda: HKDF(SHA256(), 32, salt=None, info=PERSON_KEY_PURPOSE).derive(secret()), bits=128)

    @classmethod
    def of(cls, keys: Any) -> PersonIndex:
        """From this service's custody (`runtime.keyring`, or `kit.custody.opened` for an operator's command)."""
        return cls(keys.secret_source("audit"))

    def __call__(self, case_id: str) -> str:
        """The person's marker: the same in every cell, kept only once their case is erased."""
        return self._index.term(PERSON_TERM, case_id)

    def in_cell(self, case_id: str, cell: Mapping[str, str]) -> str:
        """The person in one money cell: another hash in every cell, so no two rows of theirs can be matched."""
        where = "|".join(cell[name] for name in CELL)
        return self._index.term(f"{PERSON_TERM}.cell", f"{where}|{case_id}")

    def case_in_month(self, case_id: str, month: str) -> str:
        """The case in one month of `case_closes`: another hash in every month, and none of the money cells'."""
        return self._index.term(f"{PERSON_TERM}.case-month", f"{month}|{case_id}")

    def person(self, case_id: str) -> projections.Person:
        return projections.Person(marker=self(case_id), in_cell=lambda cell: self.in_cell(case_id, cell),
                                  in_month=lambda month: self.case_in_month(case_id, month))


class CaseMoved(BaseModel):
    opened_at: datetime | None = None
    closed_at: datetime | None = None


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


class CaseClosedOrReopened(BaseModel):
    case_id: str
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    reopened_from: str = "closed"  # intake may reopen a case marked duplicate too: that undoes no close


class CaseErased(BaseModel):
    case_id: str
    erased_at: datetime | None = None


class DisbursementChanged(BaseModel):
    """funds' disbursement events; `paid_*` only on `paid`, and only from funds that pays in other currencies.
    `case_id` is turned into its `PersonIndex` hash at once."""

    case_id: str
    category: str
    amount: str
    currency: str
    occurred_at: datetime | None = None
    paid_amount: str | None = None
    paid_currency: str | None = None
    converted_amount: str | None = None  # what a payment in another currency cost the grant, in `currency`
    released_amount: str | None = None  # on `rejected`, `voided`: the commitment given back (none if never approved)


def _case(move: str, field: str) -> Handler:
    def apply(session, event: Envelope) -> None:
        data = CaseMoved.model_validate(event.data)
        projections.case_moved(session=session, move=move, at=getattr(data, field) or event.time)

    apply.__name__ = f"case_{move}"
    return apply


def _case_closed(people: PersonIndex, closed: bool) -> Handler:
    def apply(session, event: Envelope) -> None:
        """A case closed or reopened: "cases closed" counts the cases whose close stands at the month's end
        (`projections.case_close_moved`), the case known there by a keyed hash of it and the month only."""
        data = CaseClosedOrReopened.model_validate(event.data)
        if not closed and data.reopened_from != "closed":
            return
        at = (data.closed_at if closed else data.reopened_at) or event.time
        projections.case_close_moved(session=session, closed=closed, at=at, person=people.person(data.case_id))

    apply.__name__ = "case_closed" if closed else "case_reopened"
    return apply


def _case_erased(people: PersonIndex) -> Handler:
    def apply(session, event: Envelope) -> None:
        """Counted like every case move, and the person's rows in the money cells deleted: the link goes, the
        counts stay."""
        data = CaseErased.model_validate(event.data)
        projections.case_moved(session=session, move="erased", at=data.erased_at or event.time)
        projections.person_erased(session=session, person=people.person(data.case_id))

    apply.__name__ = "case_erased"
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


def _aid(stage: str, people: PersonIndex) -> Handler:
    def apply(session, event: Envelope) -> None:
        data = DisbursementChanged.model_validate(event.data)
        counted = projections.aid_moved(session=session, stage=stage, category=data.category, amount=data.amount,
                                        currency=data.currency, at=data.occurred_at or event.time,
                                        person=people.person(data.case_id), paid_amount=data.paid_amount,
                                        paid_currency=data.paid_currency, converted_amount=data.converted_amount)
        if not counted:
            log.warning("amount not usable as money, skipped", event_id=event.id)

    apply.__name__ = f"aid_{stage}"
    return apply


def _released(people: PersonIndex) -> Handler:
    def apply(session, event: Envelope) -> None:
        """An approval rejected or voided: its amount counted as aid released in the month it happened, by the
        category of the aid (never taken off the month it was approved in: that month may be published already,
        and its sum moving by one person's amount would give that amount away). Events from before funds said what
        it released (`released_amount` absent), and ends of aid never approved, release nothing."""
        data = DisbursementChanged.model_validate(event.data)
        if not data.released_amount:
            return
        counted = projections.aid_moved(session=session, stage="released", category=data.category,
                                        amount=data.released_amount, currency=data.currency,
                                        at=data.occurred_at or event.time, person=people.person(data.case_id))
        if not counted:
            log.warning("amount not usable as money, skipped", event_id=event.id)

    apply.__name__ = "aid_released"
    return apply


# producer → durable consumer; per docs/events.md and kit.nats_auth.CONSUMES.
DURABLES = {"intake": "reports-intake", "referrals": "reports-referrals", "funds": "reports-funds"}


def consumed(people: PersonIndex) -> dict[str, tuple[str, dict[str, Handler]]]:
    """producer → (durable consumer, {subject: handler}), the handlers of aid and erasure keyed by `people`."""
    return {
        "intake": (DURABLES["intake"], {
            "rehab.intake.case.opened": _case("opened", "opened_at"),
            "rehab.intake.case.closed": _case_closed(people, True),
            "rehab.intake.case.reopened": _case_closed(people, False),
            "rehab.intake.case.erased": _case_erased(people),
            "rehab.intake.needs.assessed": need_assessed,
            "rehab.intake.needs.moved": need_moved,
        }),
        "referrals": (DURABLES["referrals"], {
            f"rehab.referrals.referral.{outcome}": _referral(outcome)
            for outcome in ("sent", "accepted", "declined", "started", "completed", "cancelled")
        }),
        "funds": (DURABLES["funds"], {
            "rehab.funds.disbursement.approved": _aid("approved", people),
            "rehab.funds.disbursement.paid": _aid("paid", people),
            "rehab.funds.disbursement.rejected": _released(people),
            "rehab.funds.disbursement.voided": _released(people),
        }),
    }


def subscriptions(runtime: Runtime) -> list[Subscription]:
    """The durable consumers reports keeps on intake's, referrals' and funds' streams."""
    return [Subscription(producer=producer, durable=durable, handlers=handlers)
            for producer, (durable, handlers) in consumed(PersonIndex.of(runtime.keyring)).items()]
