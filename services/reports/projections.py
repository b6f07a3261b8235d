"""What reports keeps from the events: counters that only grow, and a referral's moments until its spans are
measured. Use cases of a session run by the consumers in `handlers` inside the kit's inbox unit (and by `rehab
reports rebuild`, the same functions): never committing, each event applied once (the inbox), in whatever order the
events of different streams arrive.

Counts are anonymous and stay when a case is erased: nothing here names the case they came from. Money is also counted
by the people it went to, each known here only as `person`, a keyed hash of their case id the handlers make
(`handlers.PersonIndex`); erasing the case deletes what links the person to the cells they are in, the counts and
sums stay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from kit.db import dialect_insert
from services.reports import domain, queries
from services.reports.models import CaseClose, ReferralMoments, utc

# What a referral's moments are kept for: its spans' ends, and its end without them (declined, cancelled: forgotten).
MEASURED_OUTCOMES = frozenset({"sent", "accepted", "completed", "declined", "cancelled"})


def count(session: Session, *, at: datetime, measure: str, category: str = "", detail: str = "") -> None:
    queries.counts.add(session, {"month": domain.month_of(at), "measure": measure, "category": category,
                                 "detail": detail, "count": 1})


def case_moved(*, session: Session, move: str, at: datetime) -> None:
    """A case opened, closed or erased in the month of `at`."""
    count(session, at=at, measure="cases", detail=move)


def need_assessed(*, session: Session, category: str, urgency: str, at: datetime) -> None:
    count(session, at=at, measure="needs.assessed", category=category, detail=urgency)


def need_moved(*, session: Session, category: str, status: str, at: datetime) -> None:
    """A need moved to `status` (in progress, met, dropped); a move back to open is not a move the report shows."""
    if status in domain.NEED_MOVES:
        count(session, at=at, measure="needs.moved", category=category, detail=status)


def referral_reached(*, session: Session, referral_id: str, category: str, partner_category: str, outcome: str,
                     at: datetime) -> None:
    """A referral reached `outcome` at `at`: counted by its category, and its spans measured (sent → accepted,
    sent → completed) in the month the span ended, by the partner's category, once both ends are known."""
    count(session, at=at, measure="referrals", category=category, detail=outcome)
    if outcome not in MEASURED_OUTCOMES:
        return
    insert = dialect_insert(session.get_bind().dialect.name)(ReferralMoments)
    session.execute(insert.values(referral_id=referral_id, category=category, partner_category=partner_category)
                    .on_conflict_do_nothing(index_elements=["referral_id"]))
    moments = session.execute(select(ReferralMoments).where(ReferralMoments.referral_id == referral_id)
                              .with_for_update().execution_options(populate_existing=True)).scalars().one()
    if outcome in ("sent", "accepted", "completed"):
        setattr(moments, f"{outcome}_at", at)
    sent = utc(moments.sent_at)
    for span, end, measured in (("sent_to_accepted", utc(moments.accepted_at), "accepted_measured"),
                                ("sent_to_completed", utc(moments.completed_at), "completed_measured")):
        if sent is not None and end is not None and not getattr(moments, measured):
            queries.add_duration(session, month=domain.month_of(end), measure=span, category=moments.partner_category,
                                 tenths=domain.duration_bucket(sent, end))
            setattr(moments, measured, True)
    # Ended and measured (or never to be): nothing of the referral is kept any longer than it is needed.
    if moments.completed_measured or outcome in ("declined", "cancelled"):
        session.delete(moments)
    else:
        session.add(moments)


@dataclass(frozen=True)
class Person:
    """One person as reports may know them: keyed hashes of their case id, never the id (`handlers.PersonIndex`).
    `in_cell(cell)`: a hash of the cell and the person together, so that the rows of one person in two cells share
    nothing, and a copy of this database holds no one's aid history; `marker`: the same whatever the cell, kept only
    once the person's case is erased (`ErasedPerson`)."""

    marker: str
    in_cell: Callable[[Mapping[str, str]], str]
    in_month: Callable[[str], str] = lambda month: ""  # the case in a month (`CaseClose`): a hash of both together


def aid_moved(*, session: Session, stage: str, category: str, amount: str, currency: str, at: datetime,
              person: Person, paid_amount: str | None = None, paid_currency: str | None = None,
              converted_amount: str | None = None) -> bool:
    """Aid approved or paid in the month of `at` to `person` (keyed hashes, never a case id), summed per category and
    currency with the number of payments and of distinct people: a sum is published by how many people it is about
    (`disclosure.publish_amounts`), and five payments to one person are one person's aid.

    Payments fall in one of two groups that never overlap (`basis`): `grant`, paid in the grant's own currency, and
    paid in another (`fx_paid`: what the person received, in that currency; `fx_grant`: what it cost the grant, in
    the grant's). A payment is in one group only, so no published sum is another's plus or minus a few people's
    aid. False, and nothing counted, for an amount that is not a decimal string (an event to skip, not to retry for
    ever)."""
    granted = domain.minor_units(amount)
    if granted is None:
        return False
    month = domain.month_of(at)
    # An erased person's event applied late (streams are read side by side) is summed, but the person is neither
    # remembered again nor counted: they may be in the cell already, and fewer people only withholds sooner.
    erased = queries.is_erased(session, person.marker)

    def add(basis: str, currency: str, minor: int) -> None:
        cell = {"month": month, "stage": stage, "basis": basis, "category": category, "currency": currency}
        new = not erased and queries.aid_people.add(session, {**cell, "person": person.in_cell(cell)})
        queries.amounts.add(session, {**cell, "amount_minor": minor, "payments": 1, "people": int(new)})

    queries.remember_digits(session, currency, granted[1])
    paid = domain.minor_units(paid_amount) if stage == "paid" and paid_amount and paid_currency else None
    if paid is None or paid_currency == currency:
        add("grant", currency, granted[0])
        return True
    cost = (domain.minor_units(converted_amount) if converted_amount else None) or granted
    queries.remember_digits(session, paid_currency, paid[1])  # type: ignore[arg-type]
    add("fx_paid", paid_currency, paid[0])  # type: ignore[arg-type]
    add("fx_grant", currency, cost[0])
    return True


def case_close_moved(*, session: Session, closed: bool, at: datetime, person: Person) -> None:
    """A case closed (`closed`) or reopened at `at`. "Cases closed" in a month counts the cases whose last close or
    reopening in that month is a close: a close counts once however often the case is closed, a reopening in the same
    month takes it back, and a reopening in a later month leaves it (the case was closed at the end of that month,
    which may be published; a new close later counts in its own month). Events of one case come in the order intake
    committed them (one stream), but a redelivered one may be older than what was seen: the later by `at` stands."""
    if queries.is_erased(session, person.marker):
        return
    month = domain.month_of(at)
    key = {"case_key": person.in_month(month), "month": month}
    insert = dialect_insert(session.get_bind().dialect.name)(CaseClose)
    session.execute(insert.values(**key, closed=False, last_at=None).on_conflict_do_nothing(
        index_elements=["case_key", "month"]))
    row = session.execute(select(CaseClose).filter_by(**key).with_for_update()
                          .execution_options(populate_existing=True)).scalars().one()
    last = utc(row.last_at)
    if last is not None and at < last:
        return
    if row.closed != closed:
        queries.counts.add(session, {"month": month, "measure": "cases", "category": "", "detail": "closed",
                                     "count": 1 if closed else -1})
    row.closed, row.last_at = closed, at
    session.add(row)


def person_erased(*, session: Session, person: Person) -> None:
    """A case was erased: the person's rows in the money cells go (what linked them to the cells: each cell's hash of
    the person computed again, for every cell anyone is in), and the person is marked erased; the counts of people
    and the sums they made stay, as every count does."""
    queries.forget_person(session, [person.in_cell(cell) for cell in queries.aid_cells(session)], person.marker,
                          cases=[person.in_month(month) for month in queries.close_months(session)])
