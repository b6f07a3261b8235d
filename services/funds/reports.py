"""Reports for finance (every grant's accounts, month by month and category by category) and for donors (the same
without a single case identity, and no count below five)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session

from kit.db import get_or_raise
from kit.spreadsheet import csv_text
from kit.errors import Invalid, NotFound
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
    # The statement is of the grant as it stood at the end of the month `as_of` (`stated_at`, the first moment of the
    # next month, UTC): a month once it has ended and settled, the same whenever it is read. `totals_shown` is false
    # when, since the latest earlier month end whose totals are shown (`totals_last_shown`, None if none), the people
    # paid, or those whose aid was approved or released, are 1 to 4: its totals would differ from that statement's by
    # a few people's aid; and (from `PROGRAMME_RULE_FROM`) when the people among them whose aid is in a cell the
    # programme report withholds are 1 to 4. Then every total (and `people`, `paid_by_currency`) is withheld, and the
    # cells after `totals_last_shown` are hidden.
    as_of: str
    stated_at: datetime
    totals_shown: bool
    totals_last_shown: str | None
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
    # counted in `paid_by_currency_suppressed` (see domain.cells_to_suppress), and so is one whose people changed
    # by 1 to 4 since the last statement that showed it (`_donor_statements`). Both empty (None) while the totals
    # are withheld.
    paid_by_currency: dict[str, str]
    paid_by_currency_suppressed: int | None
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
    made: list[_Paid] = field(default_factory=list)


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


# A month is stated once it has ended and settled, as the programme report publishes its months
# (services/reports/domain.py SETTLING): a report computed "now" changes with every payment, and two copies of it
# give the payment made in between away to the cent. REHAB_FUNDS_SETTLING_DAYS sets it (negative: the month under
# way may be stated, for a demonstration or a test only).
SETTLING = timedelta(days=2)
_MONTH_TEXT = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
EARLIEST_MONTH = "2000-01"

# What changes a grant's totals, by which people (see `_donor_statements`): a payment (paid, committed, available),
# an approval or a release (committed, available).
_PAID_MOVES = frozenset({Move.POST.value})
_PROMISE_MOVES = frozenset({Move.RESERVE.value, Move.RELEASE.value})
_ENDS_COMMITMENT = frozenset({Move.POST.value, Move.RELEASE.value})


def last_settled_month(now: datetime, settling: timedelta = SETTLING) -> str:
    """The newest month that has ended and settled at `now` (never later than the month under way); with a negative
    `settling` (a demonstration, a test), the month under way."""
    if settling < timedelta(0):
        return _month(now)
    first_unsettled = _month(now - settling)
    return min(_months_after(first_unsettled, -1), _month(now))


def donor_report(*, session: Session, keyring: Keyring, grant_id: str, as_of: str | None = None,
                 now: datetime | None = None, settling: timedelta = SETTLING) -> DonorReport:
    """What was paid from one grant as it stood at the end of the month `as_of` (by default the last settled one),
    by month and category, counted in people and payments with no case identity.

    Every figure is read from the ledger's transfers and payments made before that month ended, so the statement of
    a month is the same whenever it is read. Its totals are shown only when, since the latest earlier month end whose
    totals are shown, the people paid are none or at least five, and so are the people whose aid was approved or
    released (`_donor_statements`): two statements then differ by the aid of five people or more, never by one
    person's; so do, from `PROGRAMME_RULE_FROM`, the people whose aid is in a cell the programme report withholds
    (`_programme_withheld`). Any cell of fewer than five people is hidden (domain.cells_to_suppress, over the months
    between two shown statements), and so is one a part of which that report withholds, and any total that covers
    fewer than five people or would give a hidden one back (`_donor_totals`)."""
    grant = get_or_raise(session, Grant, grant_id, NotFound("There is no such grant.", code="not-found"))
    now = now or datetime.now(UTC)
    newest = last_settled_month(now, settling)
    if as_of is None:
        as_of = newest
    elif _MONTH_TEXT.fullmatch(as_of) is None or as_of < EARLIEST_MONTH:
        raise Invalid(f"`as_of` must be a month written YYYY-MM, from {EARLIEST_MONTH} on, such as 2026-03; "
                      f"{as_of!r} is not.", code="invalid-month")
    elif as_of > newest:
        raise Invalid(f"The month {as_of} has not ended and settled yet: a donor report states a month once it has "
                      f"ended and {settling.days} days have passed; the newest it can state is {newest}.",
                      code="month-not-settled")
    moves = _moves(session, grant.id)
    paid_here = _payments(session, grant.id)
    cut = _month_end(as_of)
    withheld = _programme_withheld(session, grant.currency, before=cut)
    statements = _donor_statements(grant, moves, paid_here, as_of, withheld)
    amount = _formatter(grant.currency)
    latest = statements[-1] if statements else None
    stated = latest if latest is not None and latest.month == as_of else None

    cells: dict[tuple[str, str], _Cell] = defaultdict(_Cell)
    for paid in paid_here:
        if paid.posted_at < cut:
            cell = cells[(_month(paid.posted_at), paid.category)]
            cell.people.add(paid.case_id)
            cell.payments += 1
            cell.paid += paid.worth
            cell.made.append(paid)
    exposing = {key for key, cell in cells.items() if withheld.gives_away(cell.made, grant.currency)}
    hidden = _hidden_cells(cells, statements, exposing)

    def unless_withheld(name: str, minor: int) -> str | None:
        return amount(minor) if stated is not None and name in stated.shown else None

    if stated is not None:
        held, by_currency = stated.balances, stated.by_currency
        people = len(stated.paid_people) if stated.people_shown else None
        paid_by_currency = {c: money.format_amount(total, c) for c, (total, _people) in sorted(by_currency.items())
                            if c in stated.currencies_shown}
        currencies_hidden: int | None = len(by_currency) - len(paid_by_currency)
    else:
        held, people, paid_by_currency, currencies_hidden = {}, None, {}, None
    return DonorReport(
        generated_at=now, as_of=as_of, stated_at=cut, totals_shown=stated is not None,
        totals_last_shown=latest.month if latest is not None else None,
        grant_code=grant.code, donor=donors.donor(keyring, grant), currency=grant.currency,
        starts_on=grant.starts_on, ends_on=grant.ends_on, budget=amount(grant.budget_minor),
        committed=unless_withheld("committed", held.get(Account.COMMITTED, 0)),
        paid=unless_withheld("paid", held.get(Account.PAID, 0)),
        available=unless_withheld("available", held.get(Account.AVAILABLE, 0)),
        paid_by_currency=paid_by_currency, paid_by_currency_suppressed=currencies_hidden,
        fx_released=unless_withheld("fx_released", stated.fx_released[0] if stated else 0),
        fx_approved=unless_withheld("fx_approved", stated.fx_approved[0] if stated else 0),
        people=people,
        suppression_threshold=domain.SMALL_COUNT,
        cells=[DonorCell(month=month, category=category, suppressed=(month, category) in hidden,
                         people=None if (month, category) in hidden else len(cell.people),
                         payments=None if (month, category) in hidden else cell.payments,
                         paid=None if (month, category) in hidden else amount(cell.paid))
               for (month, category), cell in sorted(cells.items())],
    )


@dataclass(frozen=True)
class _LedgerMove:
    """One transfer of a grant, with the case and category of its disbursement (none for the grant's funding)."""

    kind: str
    amount: int
    at: datetime
    disbursement_id: str | None
    case_id: str | None
    category: str | None = None


@dataclass
class _Statement:
    """A grant as it stood at the end of `month`, a month whose totals are shown, and which of them are."""

    month: str
    balances: dict[str, int]
    paid_people: set[str]
    by_currency: dict[str, tuple[int, set[str]]]
    fx_released: tuple[int, set[str]]
    fx_approved: tuple[int, set[str]]
    shown: set[str]
    people_shown: bool
    currencies_shown: set[str]


def _moves(session: Session, grant_id: str | None = None, *, currency: str | None = None,
           before: datetime | None = None) -> list[_LedgerMove]:
    """One grant's transfers, or (`currency`) those of every grant in that currency; (`before`) made before then."""
    query = (select(Transfer.kind, Transfer.amount_minor, Transfer.created_at, Transfer.disbursement_id,
                    Disbursement.case_id, Disbursement.category)
             .join(Disbursement, Disbursement.id == Transfer.disbursement_id, isouter=True))
    if grant_id is not None:
        query = query.where(Transfer.grant_id == grant_id)
    if currency is not None:
        query = query.join(Grant, Grant.id == Transfer.grant_id).where(Grant.currency == currency)
    if before is not None:
        query = query.where(Transfer.created_at < before)
    rows = session.execute(query.order_by(Transfer.created_at)).all()
    return [_LedgerMove(kind=r.kind, amount=r.amount_minor, at=utc(r.created_at), disbursement_id=r.disbursement_id,
                        case_id=r.case_id, category=r.category) for r in rows]


# The stage under which the programme report (services/reports) counts a ledger move of aid: an approval, and the
# release of a rejected or voided one.
_PROGRAMME_STAGE = {Move.RESERVE.value: "approved", Move.RELEASE.value: "released"}


def _paid_cells(payment: _Paid, grant_currency: str) -> list[tuple[str, ...]]:
    """The cells of the programme report a payment is counted in (projections.aid_moved): paid in the grant's
    currency, one; paid in another, what it cost the grant and what the person received (in that currency)."""
    month = _month(payment.paid_at)
    if payment.received_currency == grant_currency:
        return [(month, payment.category, "grant", grant_currency)]
    return [(month, payment.category, "fx_grant", grant_currency),
            (month, payment.category, "fx_paid", payment.received_currency)]


@dataclass(frozen=True)
class _ProgrammeWithheld:
    """Where the programme report's suppression falls on the aid of grants in one currency, as funds can count it from
    its own ledger: the cells (month, category, …) it withholds ("<5": 1 to 4 people)."""

    paid: frozenset[tuple[str, ...]]
    promised: frozenset[tuple[str, ...]]

    def paid_in(self, payment: _Paid, grant_currency: str) -> bool:
        return any(cell in self.paid for cell in _paid_cells(payment, grant_currency))

    def promised_in(self, move: _LedgerMove) -> bool:
        stage = _PROGRAMME_STAGE.get(move.kind)
        return stage is not None and (_month(move.at), move.category, stage) in self.promised

    def gives_away(self, payments: list[_Paid], grant_currency: str) -> bool:
        """Whether a donor cell summing these payments, shown beside the programme report, would give back a part of
        it that report withholds: a payment in another currency is counted apart from those in the grant's own
        there, so one person paid in złoty inside a cell of five paid in euros is a cell of one."""
        return any(self.paid_in(payment, grant_currency) for payment in payments)


# A donor statement given out is what the donor holds: the rule that decides which month ends are shown must not
# change for month ends already stated, or an old statement beside a new one would differ by a few people's aid.
# The programme report's suppression (`_ProgrammeWithheld`) decides for month ends from this month on.
PROGRAMME_RULE_FROM = "2026-12"


def _programme_withheld(session: Session, currency: str, before: datetime,
                        threshold: int = domain.SMALL_COUNT) -> _ProgrammeWithheld:
    """The programme report withholds a cell of 1 to 4 people and publishes the others to the cent; a donor's exact
    total over the same aid, less the published cells, would give the withheld ones back (five people paid 10.00
    for medical aid and one 37.50 for housing: the programme report says medical 50.00 and housing "<5", the donor
    report 87.50). So a donor statement reads where the programme report's suppression falls (`_donor_statements`,
    `_hidden_cells`). Every payment and approval before `before` counts, of every grant in the currency (the
    programme's cells sum them all), and the received currency's cells count payments from grants in any currency.

    Two limits, said in the README: funds counts what its ledger holds, so a cell the programme report withholds
    for what funds cannot see (a person whose erasure it applied before their payment's event, people not counted
    by an older version) is taken as published here; and with several grants in one currency, a published cell less
    one grant's figures is the others' part, which may be a few people's (the programme report would have to
    withhold a cell where any one grant has 1 to 4 people)."""
    people: dict[tuple[str, ...], set[str]] = defaultdict(set)
    grant_currency = dict(session.execute(select(Grant.id, Grant.currency)).all())
    for payment in _payments(session, before=before):
        for cell in _paid_cells(payment, grant_currency[payment.grant_id]):
            people[cell].add(payment.case_id)
    promised: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for move in _moves(session, currency=currency, before=before):
        stage = _PROGRAMME_STAGE.get(move.kind)
        if stage is not None and move.case_id:
            promised[(_month(move.at), move.category, stage)].add(move.case_id)
    return _ProgrammeWithheld(paid=frozenset(cell for cell, who in people.items() if _few(who, threshold)),
                              promised=frozenset(cell for cell, who in promised.items() if _few(who, threshold)))


def _few(people: set[str], threshold: int = domain.SMALL_COUNT) -> bool:
    return 0 < len(people) < threshold


def _donor_statements(grant: Grant, moves: list[_LedgerMove], paid_here: list[_Paid], as_of: str,
                      withheld: _ProgrammeWithheld, threshold: int = domain.SMALL_COUNT) -> list[_Statement]:
    """The month ends up to `as_of`'s whose totals are shown, in order, each with the figures shown in it.

    Walking the month ends from the grant's first month, a month end is shown when, since the last shown one (or the
    grant's start), the people paid are none or at least `threshold`, and so are the people whose aid was approved or
    released: the difference of two shown statements' paid is what the people paid in between were paid, and the
    difference of committed (with paid known) is what was approved less what was released in between. Counting all
    of them together would not do: four approvals and one payment are five people, and paid would still move by that
    one person's aid. The rule reads nothing but the ledger, so every reader gets the same shown months without any
    record of what was released.

    Besides, the people among those whose aid falls in a cell the programme report withholds (`withheld`) must be
    none or at least `threshold`, for the payments and for the approvals and releases alike: the statement's totals,
    less the cells the programme report publishes, are then a sum over five people or more.

    Within a shown statement `_donor_totals` decides as before; besides, `fx_released`, `fx_approved` and each
    currency of `paid_by_currency` are shown only when the people they changed for since the last statement that
    showed them are none or at least `threshold` (for the grant's own currency, also the people paid in another:
    paid less the grant's currency is what they cost)."""
    first = min(_month(utc(grant.created_at)), as_of)
    statements: list[_Statement] = []
    since = datetime.min.replace(tzinfo=UTC)
    figure_since: dict[str, datetime] = defaultdict(lambda: datetime.min.replace(tzinfo=UTC))
    # Which payments and promises fall in a withheld cell: asked once, not again for every month end.
    paid_in_withheld = [p for p in paid_here if withheld.paid_in(p, grant.currency)]
    promised_in_withheld = [m for m in moves if m.kind in _PROMISE_MOVES and m.case_id and withheld.promised_in(m)]
    month = first
    while month <= as_of:
        cut = _month_end(month)
        between = [m for m in moves if since <= m.at < cut]
        paid_people = {m.case_id for m in between if m.kind in _PAID_MOVES and m.case_id}
        promised = {m.case_id for m in between if m.kind in _PROMISE_MOVES and m.case_id}
        paid_withheld: set[str] = set()
        promised_withheld: set[str] = set()
        if month >= PROGRAMME_RULE_FROM:
            paid_withheld = {p.case_id for p in paid_in_withheld if since <= p.posted_at < cut}
            promised_withheld = {m.case_id for m in promised_in_withheld if since <= m.at < cut}
        if not any(_few(people, threshold) for people in (paid_people, promised, paid_withheld, promised_withheld)):
            statements.append(_statement(grant, month, cut, moves, paid_here, figure_since, threshold))
            since = cut
        month = _months_after(month, 1)
    return statements


def _statement(grant: Grant, month: str, cut: datetime, moves: list[_LedgerMove], paid_here: list[_Paid],
               figure_since: dict[str, datetime], threshold: int) -> _Statement:
    debits: dict[str, int] = defaultdict(int)
    credits: dict[str, int] = defaultdict(int)
    reserved: dict[str, str] = {}
    ended: set[str] = set()
    for m in moves:
        if m.at >= cut and m.kind != Move.FUND.value:  # the budget is the grant's from the start, even a month before
            continue                                   # it was entered: budget = available + committed + paid
        debit, credit = domain.MOVES[Move(m.kind)]
        debits[debit.value] += m.amount
        credits[credit.value] += m.amount
        if m.disbursement_id and m.case_id:
            if m.kind == Move.RESERVE.value:
                reserved[m.disbursement_id] = m.case_id
            elif m.kind in _ENDS_COMMITMENT:
                ended.add(m.disbursement_id)
    balances = {a.value: domain.balance(a.value, debits=debits[a.value], credits=credits[a.value]) for a in Account}
    committed_people = {case for d, case in reserved.items() if d not in ended}
    before = [p for p in paid_here if p.posted_at < cut]
    paid_people = {p.case_id for p in before}
    fx_released = (sum(-p.difference for p in before if p.difference < 0),
                   {p.case_id for p in before if p.difference < 0})
    fx_approved = (sum(p.difference for p in before if p.difference > 0),
                   {p.case_id for p in before if p.difference > 0})
    shown = _donor_totals(paid=(balances[Account.PAID], paid_people),
                          committed=(balances[Account.COMMITTED], committed_people),
                          fx_released=fx_released, fx_approved=fx_approved, threshold=threshold)

    def changed(name: str, which: Callable[[_Paid], bool]) -> set[str]:
        return {p.case_id for p in before if p.posted_at >= figure_since[name] and which(p)}

    for name, test in (("fx_released", lambda p: p.difference < 0), ("fx_approved", lambda p: p.difference > 0)):
        if name in shown and _few(changed(name, test), threshold):
            shown.discard(name)
        elif name in shown:
            figure_since[name] = cut
    by_currency = _by_currency(before)
    currencies_shown: set[str] = set()
    if "paid" in shown:
        hidden = domain.cells_to_suppress(
            {(currency, ""): frozenset(people) for currency, (_total, people) in by_currency.items()},
            threshold=threshold)
        for currency in by_currency:
            key = f"currency:{currency}"
            if (currency, "") in hidden or _few(changed(key, lambda p, c=currency: p.received_currency == c),
                                                 threshold):
                continue
            if currency == grant.currency and _few(
                    changed(key, lambda p: p.received_currency != grant.currency), threshold):
                continue
            currencies_shown.add(currency)
            figure_since[key] = cut
    return _Statement(month=month, balances=balances, paid_people=paid_people, by_currency=by_currency,
                      fx_released=fx_released, fx_approved=fx_approved, shown=shown,
                      people_shown=len(paid_people) >= threshold or not paid_people,
                      currencies_shown=currencies_shown)


def _hidden_cells(cells: dict[tuple[str, str], _Cell], statements: list[_Statement],
                  exposing: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The cells (month, category) a statement hides: those after its last shown month end all, and each stretch of
    months between two shown month ends hidden by domain.cells_to_suppress on its own, so that the paid of two shown
    statements less the shown cells between them is a sum over five people or more, and a cell once shown stays
    shown in every later statement (what a later statement hides was never shown). All of them while the paid total
    is withheld. From `PROGRAMME_RULE_FROM` on, a cell that would give back what the programme report withholds
    (`exposing`, `_ProgrammeWithheld.gives_away`) is hidden as a small one is."""
    last = statements[-1] if statements else None
    if last is None or "paid" not in last.shown:
        return set(cells)
    hidden: set[tuple[str, str]] = set()
    start = ""
    for statement in statements:
        stretch = {key: frozenset(cell.people) for key, cell in cells.items() if start < key[0] <= statement.month}
        also = exposing if statement.month >= PROGRAMME_RULE_FROM else set()
        hidden |= domain.cells_to_suppress(stretch, also=also & stretch.keys())
        start = statement.month
    return hidden | {key for key in cells if key[0] > last.month}


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
    posted_at: datetime  # when the ledger posted it (the payment's transfer): what the donor statement goes by
    worth: int
    received: int
    received_currency: str
    difference: int


def _payments(session: Session, grant_id: str | None = None, *, before: datetime | None = None) -> list[_Paid]:
    query = (select(Disbursement.grant_id, Disbursement.case_id, Disbursement.category, Disbursement.amount_minor,
                    Disbursement.currency, Payment.paid_at, Payment.paid_amount_minor, Payment.paid_currency,
                    Payment.converted_minor, Payment.difference_minor, Transfer.created_at.label("posted_at"))
             .join(Payment, Payment.disbursement_id == Disbursement.id)
             .join(Transfer, Transfer.id == Payment.transfer_id))
    if grant_id is not None:
        query = query.where(Disbursement.grant_id == grant_id)
    if before is not None:
        query = query.where(Payment.paid_at < before)
    found = []
    for row in session.execute(query).all():
        in_other = row.paid_currency is not None
        found.append(_Paid(
            grant_id=row.grant_id, case_id=row.case_id, category=row.category, paid_at=row.paid_at,
            posted_at=utc(row.posted_at),
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
                     "paid_by_currency", "fx_released", "fx_approved", "as_of"]


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
    withheld = (not report.totals_shown or report.people is None or report.paid is None
                or report.fx_released is None or report.fx_approved is None
                or bool(report.paid_by_currency_suppressed))
    rows = [{**base, "as_of": report.as_of, "people": report.people, "paid": report.paid,
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


def _months_after(month: str, n: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _month_end(month: str) -> datetime:
    """The end of a month (UTC): the first moment of the next one."""
    following = _months_after(month, 1)
    return datetime(int(following[:4]), int(following[5:7]), 1, tzinfo=UTC)


def _formatter(currency: str) -> Callable[[int], str]:
    return lambda minor: money.format_amount(minor, currency)
