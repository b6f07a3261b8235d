"""Reports for finance (every grant's accounts, month by month and category by category) and for donors (the same
without a single case identity, and no count below five)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session

from kit.db import get_or_raise
from kit.spreadsheet import csv_text
from kit.errors import NotFound
from kit.crypto import Keyring
from services.funds import domain, donors, ledger, money
from services.funds.domain import Account, Move
from services.funds.models import Disbursement, Grant, Payment, Transfer, utc


class MonthRow(BaseModel):
    month: str
    category: str
    approved: str
    released: str
    paid: str
    payments: int


class GrantRow(BaseModel):
    id: str
    code: str
    donor: str
    currency: str
    starts_on: date
    ends_on: date
    budget: str
    committed: str
    paid: str
    available: str
    # What the people were actually handed, per currency ("PLN": "1290.00"), the grant's own currency included.
    paid_by_currency: dict[str, str]
    # Paid in another currency, the differences from the approved amounts (in the grant's currency): given back to
    # the grant (`fx_released`) and approved from it at payment (`fx_approved`).
    fx_released: str
    fx_approved: str
    by_month: list[MonthRow]


class GrantsReport(BaseModel):
    generated_at: datetime
    grants: list[GrantRow]


class DonorCell(BaseModel):
    month: str
    category: str
    suppressed: bool
    people: int | None
    payments: int | None
    paid: str | None


class DonorReport(BaseModel):
    generated_at: datetime
    grant_code: str
    donor: str
    currency: str
    starts_on: date
    ends_on: date
    budget: str
    # Each total is None (withheld) unless it covers at least `suppression_threshold` distinct people (or is zero and
    # covers nobody), and none is shown that would give a withheld one back (see `_donor_totals`): `committed` counts
    # the people with aid approved and not yet paid, `paid` those paid, `available` (with the budget, it gives
    # committed + paid) both together.
    committed: str | None
    paid: str | None
    available: str | None
    # Paid per currency the people received it in; a currency fewer than five people were paid in is left out and
    # counted in `paid_by_currency_suppressed` (see domain.cells_to_suppress).
    paid_by_currency: dict[str, str]
    paid_by_currency_suppressed: int
    # Each None unless the people whose payment in another currency released (approved) a difference are five or more.
    fx_released: str | None
    fx_approved: str | None
    people: int | None
    suppression_threshold: int
    cells: list[DonorCell]


@dataclass
class _Month:
    approved: int = 0
    released: int = 0
    paid: int = 0
    payments: int = 0


@dataclass
class _Cell:
    people: set[str] = field(default_factory=set)
    payments: int = 0
    paid: int = 0


def grants_report(*, session: Session, keyring: Keyring) -> GrantsReport:
    """Every grant's accounts now, and what was approved, released and paid in each month and category."""
    months: dict[str, dict[tuple[str, str], _Month]] = defaultdict(lambda: defaultdict(_Month))
    for transfer, category in session.execute(
        select(Transfer, Disbursement.category).join(Disbursement, Disbursement.id == Transfer.disbursement_id)
    ).all():
        row = months[transfer.grant_id][(_month(transfer.created_at), category)]
        if transfer.kind == Move.RESERVE:
            row.approved += transfer.amount_minor
        elif transfer.kind == Move.RELEASE:
            row.released += transfer.amount_minor
        elif transfer.kind == Move.POST:
            row.paid += transfer.amount_minor
            row.payments += 1
        elif transfer.kind == Move.FX_RELEASE:  # part of an approval a payment in another currency did not use
            row.released += transfer.amount_minor
        elif transfer.kind == Move.FX_EXTRA:  # approved and paid at once: so approved − released = committed + paid
            row.approved += transfer.amount_minor
            row.paid += transfer.amount_minor
    payments = _payments(session)
    grants = []
    for grant in session.execute(select(Grant).order_by(Grant.code)).scalars():
        amount = _formatter(grant.currency)
        held = ledger.balances(session, grant.id)
        paid_here = [p for p in payments if p.grant_id == grant.id]
        by_currency = _by_currency(paid_here)
        grants.append(GrantRow(
            id=grant.id, code=grant.code, donor=donors.donor(keyring, grant), currency=grant.currency,
            starts_on=grant.starts_on,
            ends_on=grant.ends_on, budget=amount(grant.budget_minor), committed=amount(held[Account.COMMITTED]),
            paid=amount(held[Account.PAID]), available=amount(held[Account.AVAILABLE]),
            paid_by_currency={c: money.format_amount(total, c) for c, (total, _people) in sorted(by_currency.items())},
            fx_released=amount(sum(-p.difference for p in paid_here if p.difference < 0)),
            fx_approved=amount(sum(p.difference for p in paid_here if p.difference > 0)),
            by_month=[MonthRow(month=month, category=category, approved=amount(m.approved),
                               released=amount(m.released), paid=amount(m.paid), payments=m.payments)
                      for (month, category), m in sorted(months[grant.id].items())],
        ))
    return GrantsReport(generated_at=datetime.now(UTC), grants=grants)


def donor_report(*, session: Session, keyring: Keyring, grant_id: str) -> DonorReport:
    """What was paid from one grant, by month and category, counted in people and payments with no case identity;
    any cell of fewer than five people is hidden (see domain.cells_to_suppress), and so is any total of the grant
    that covers fewer than five people or would give a hidden one back (see _donor_totals)."""
    grant = get_or_raise(session, Grant, grant_id, NotFound("There is no such grant.", code="not-found"))
    cells: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    paid_here = _payments(session, grant_id)
    for paid in paid_here:
        cell = cells[(_month(paid.paid_at), paid.category)]
        cell.people.add(paid.case_id)
        cell.payments += 1
        cell.paid += paid.worth
    by_currency = _by_currency(paid_here)
    currencies_hidden = domain.cells_to_suppress(
        {(currency, ""): frozenset(people) for currency, (_total, people) in by_currency.items()})
    hidden = domain.cells_to_suppress({key: frozenset(cell.people) for key, cell in cells.items()})
    amount = _formatter(grant.currency)
    held = ledger.balances(session, grant.id)
    paid_people = {p.case_id for p in paid_here}
    committed_people = set(session.exec(select(Disbursement.case_id).where(  # type: ignore[call-overload]
        Disbursement.grant_id == grant.id, Disbursement.status == domain.Status.APPROVED)))
    shown = _donor_totals(
        paid=(held[Account.PAID], paid_people), committed=(held[Account.COMMITTED], committed_people),
        fx_released=(sum(-p.difference for p in paid_here if p.difference < 0),
                     {p.case_id for p in paid_here if p.difference < 0}),
        fx_approved=(sum(p.difference for p in paid_here if p.difference > 0),
                     {p.case_id for p in paid_here if p.difference > 0}))
    if "paid" not in shown:  # every cell and currency is a part of a withheld paid (see _donor_totals): none shown
        hidden, currencies_hidden = set(cells), {(currency, "") for currency in by_currency}
    people = len(paid_people)

    def unless_withheld(name: str, minor: int) -> str | None:
        return amount(minor) if name in shown else None

    return DonorReport(
        generated_at=datetime.now(UTC), grant_code=grant.code, donor=donors.donor(keyring, grant),
        currency=grant.currency,
        starts_on=grant.starts_on, ends_on=grant.ends_on, budget=amount(grant.budget_minor),
        committed=unless_withheld("committed", held[Account.COMMITTED]),
        paid=unless_withheld("paid", held[Account.PAID]),
        available=unless_withheld("available", held[Account.AVAILABLE]),
        paid_by_currency={c: money.format_amount(total, c) for c, (total, _people) in sorted(by_currency.items())
                          if (c, "") not in currencies_hidden},
        paid_by_currency_suppressed=len(currencies_hidden),
        fx_released=unless_withheld("fx_released", sum(-p.difference for p in paid_here if p.difference < 0)),
        fx_approved=unless_withheld("fx_approved", sum(p.difference for p in paid_here if p.difference > 0)),
        people=people if people >= domain.SMALL_COUNT or people == 0 else None,
        suppression_threshold=domain.SMALL_COUNT,
        cells=[DonorCell(month=month, category=category, suppressed=(month, category) in hidden,
                         people=None if (month, category) in hidden else len(cell.people),
                         payments=None if (month, category) in hidden else cell.payments,
                         paid=None if (month, category) in hidden else amount(cell.paid))
               for (month, category), cell in sorted(cells.items())],
    )


def _donor_totals(*, paid: tuple[int, set[str]], committed: tuple[int, set[str]],
                  fx_released: tuple[int, set[str]], fx_approved: tuple[int, set[str]],
                  threshold: int = domain.SMALL_COUNT) -> set[str]:
    """Which of a grant's totals (each given as its amount in minor units and the people it covers) a donor may see:
    "paid", "committed", "available", "fx_released", "fx_approved".

    A total is shown when it covers at least `threshold` distinct people, or when it is zero and covers nobody (a
    nought gives no one's aid away). "Few" is decided total by total, never for the grant as a whole: five people
    with aid approved, one of them paid, make a paid total that is that one person's aid to the cent.

    Complementary suppression — no shown figure may give a withheld one back:
    * The budget is always shown and budget = available + committed + paid (the ledger's invariant), so any two of
      available, committed and paid give the third. If exactly one of paid and committed is withheld, available is
      withheld with it (else: withheld = budget − available − the shown one). If both are withheld, available gives
      only their sum (budget − available = committed + paid), which covers the union of their people: it is shown
      when that union reaches the threshold, since neither term can be separated from the other by anything shown.
      If both are shown, available is shown too (it follows from them anyway).
    * The cells (month × category) and the per-currency totals add up to paid; each is hidden with
      domain.cells_to_suppress, which keeps hiding until the hidden ones together cover at least `threshold` people,
      so paid minus the shown ones is a sum over enough people. When paid itself is withheld (fewer than `threshold`
      people paid), every cell and currency is a part of it and so covers fewer still: all are hidden too.
    * fx_released and fx_approved are each the sum of the differences of their own payments in another currency;
      no other figure of the report holds either (the approved amounts of paid aid are never shown), so each stands
      or falls on its own people. Their people are among those paid, so while paid is withheld they are withheld
      too, even at nought: "0.00" would still tell something about those few people's payments.
    """
    def enough(total: tuple[int, set[str]]) -> bool:
        minor, people = total
        return len(people) >= threshold or (not people and minor == 0)

    shown = {name for name, total in (("paid", paid), ("committed", committed), ("fx_released", fx_released),
                                       ("fx_approved", fx_approved)) if enough(total)}
    if "paid" not in shown:
        shown -= {"fx_released", "fx_approved"}
    if {"paid", "committed"} <= shown or ("paid" not in shown and "committed" not in shown
                                          and enough((paid[0] + committed[0], paid[1] | committed[1]))):
        shown.add("available")
    return shown


@dataclass(frozen=True)
class _Paid:
    """One payment as the reports count it: `worth` in the grant's currency (what the ledger posted), `received` in
    `received_currency` (what the person was handed), `difference` = worth − approved."""

    grant_id: str
    case_id: str
    category: str
    paid_at: datetime
    worth: int
    received: int
    received_currency: str
    difference: int


def _payments(session: Session, grant_id: str | None = None) -> list[_Paid]:
    query = (select(Disbursement.grant_id, Disbursement.case_id, Disbursement.category, Disbursement.amount_minor,
                    Disbursement.currency, Payment.paid_at, Payment.paid_amount_minor, Payment.paid_currency,
                    Payment.converted_minor, Payment.difference_minor)
             .join(Payment, Payment.disbursement_id == Disbursement.id))
    if grant_id is not None:
        query = query.where(Disbursement.grant_id == grant_id)
    found = []
    for row in session.execute(query).all():
        in_other = row.paid_currency is not None
        found.append(_Paid(
            grant_id=row.grant_id, case_id=row.case_id, category=row.category, paid_at=row.paid_at,
            worth=row.converted_minor if in_other else row.amount_minor,
            received=row.paid_amount_minor if in_other else row.amount_minor,
            received_currency=row.paid_currency if in_other else row.currency,
            difference=row.difference_minor or 0))
    return found


def _by_currency(payments: list[_Paid]) -> dict[str, tuple[int, set[str]]]:
    """Per currency the people were paid in: the total, and the cases paid in it."""
    totals: dict[str, tuple[int, set[str]]] = {}
    for p in payments:
        total, people = totals.get(p.received_currency, (0, set()))
        people.add(p.case_id)
        totals[p.received_currency] = (total + p.received, people)
    return totals


# ---- CSV -------------------------------------------------------------------------------------------------------

GRANTS_CSV_COLUMNS = ["grant_id", "code", "donor", "currency", "month", "category", "budget", "committed", "paid",
                      "available", "approved", "released", "payments", "paid_by_currency", "fx_released",
                      "fx_approved"]
DONOR_CSV_COLUMNS = ["code", "donor", "currency", "month", "category", "people", "payments", "paid", "suppressed",
                     "paid_by_currency", "fx_released", "fx_approved"]


def grants_csv(report: GrantsReport) -> str:
    """One line per grant with its accounts (month empty), then one per month and category."""
    rows = []
    for g in report.grants:
        base = {"grant_id": g.id, "code": g.code, "donor": g.donor, "currency": g.currency}
        rows.append({**base, "budget": g.budget, "committed": g.committed, "paid": g.paid, "available": g.available,
                     "paid_by_currency": _per_currency(g.paid_by_currency), "fx_released": g.fx_released,
                     "fx_approved": g.fx_approved})
        rows += [{**base, "month": m.month, "category": m.category, "approved": m.approved, "released": m.released,
                  "paid": m.paid, "payments": m.payments} for m in g.by_month]
    return _csv(GRANTS_CSV_COLUMNS, rows)


def donor_csv(report: DonorReport) -> str:
    base = {"code": report.grant_code, "donor": report.donor, "currency": report.currency}
    # The totals line: a withheld total is left empty and the line marked `suppressed`, as a hidden cell is.
    withheld = (report.people is None or report.paid is None or report.fx_released is None
                or report.fx_approved is None or report.paid_by_currency_suppressed > 0)
    rows = [{**base, "people": report.people, "paid": report.paid,
             "paid_by_currency": _per_currency(report.paid_by_currency), "fx_released": report.fx_released,
             "fx_approved": report.fx_approved, "suppressed": "yes" if withheld else ""}]
    rows += [{**base, "month": c.month, "category": c.category, "people": c.people, "payments": c.payments,
              "paid": c.paid, "suppressed": "yes" if c.suppressed else ""} for c in report.cells]
    return _csv(DONOR_CSV_COLUMNS, rows)


def _per_currency(paid_by_currency: dict[str, str]) -> str:
    """Paid per currency in one cell of the grant's line ("EUR 300.00; PLN 3872.58"), so that the grant keeps one
    line of totals (month empty) however many currencies its aid went out in."""
    return "; ".join(f"{currency} {total}" for currency, total in paid_by_currency.items())


def _csv(columns: list[str], rows: list[dict]) -> str:
    return csv_text(columns, rows)


def _month(moment: datetime) -> str:
    return utc(moment).astimezone(UTC).strftime("%Y-%m")


def _formatter(currency: str) -> Callable[[int], str]:
    return lambda minor: money.format_amount(minor, currency)
