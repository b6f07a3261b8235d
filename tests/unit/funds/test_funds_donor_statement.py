"""The donor report is a statement as of the end of a settled month, read from the ledger's transfers and payments
with their timestamps (a real SQLite database with funds' migrations): the same whenever it is read, never of a month
still under way, and two statements never differ by fewer than five people's aid."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kit import db, migrations
from kit.errors import Invalid
from services.funds import reports
from services.funds.domain import Move
from services.funds.models import Disbursement, Grant, Payment, Transfer

MIGRATIONS = Path(reports.__file__).parent / "migrations"
CREATED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = datetime(2027, 6, 1, tzinfo=UTC)  # every month these tests state has ended and settled


def at(month: int, day: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


class Ledger:
    """A grant's disbursements, transfers and payments written as funds writes them, at chosen moments."""

    def __init__(self, factory, code: str = "G-1") -> None:
        self.factory = factory
        self.grant_id = str(uuid.uuid4())
        with db.transaction(factory) as session:
            session.add(Grant(id=self.grant_id, code=code, donor="Fund", currency="EUR", budget_minor=1_000_000,
                              starts_on=date(2026, 1, 1), ends_on=date(2027, 12, 31), categories=["medical", "legal"],
                              created_by="finance-1", created_at=CREATED))
            session.flush()
            self._move(session, Move.FUND, 1_000_000, CREATED)

    def _move(self, session, kind: Move, minor: int, when: datetime, disbursement_id: str | None = None) -> str:
        transfer_id = str(uuid.uuid4())
        debit, credit = {Move.FUND: ("funding", "available"), Move.RESERVE: ("available", "committed"),
                         Move.POST: ("committed", "paid"), Move.RELEASE: ("committed", "available")}[kind]
        session.add(Transfer(id=transfer_id, grant_id=self.grant_id, kind=kind.value, debit_account=debit,
                             credit_account=credit, amount_minor=minor, disbursement_id=disbursement_id,
                             created_at=when))
        session.flush()
        return transfer_id

    def approve(self, minor: int, when: datetime, *, category: str = "medical", case_id: str | None = None) -> str:
        disbursement_id = str(uuid.uuid4())
        with db.transaction(self.factory) as session:
            session.add(Disbursement(id=disbursement_id, case_id=case_id or str(uuid.uuid4()), grant_id=self.grant_id,
                                     category=category, amount_minor=minor, currency="EUR", status="approved",
                                     requested_by="caseworker-1", requested_at=when, approved_by="finance-1",
                                     approved_at=when))
            session.flush()
            self._move(session, Move.RESERVE, minor, when, disbursement_id)
        return disbursement_id

    def pay(self, disbursement_id: str, when: datetime, *, in_pln: int | None = None) -> None:
        """Paid in euros, or (`in_pln`: what the person received, in grosze) in złoty worth exactly the approval."""
        with db.transaction(self.factory) as session:
            disbursement = session.get(Disbursement, disbursement_id)
            transfer_id = self._move(session, Move.POST, disbursement.amount_minor, when, disbursement_id)
            fx = {} if in_pln is None else {
                "paid_currency": "PLN", "paid_amount_minor": in_pln, "fx_rate": "4.3", "fx_source": "bank",
                "converted_minor": disbursement.amount_minor, "difference_minor": 0}
            session.add(Payment(id=str(uuid.uuid4()), disbursement_id=disbursement_id, transfer_id=transfer_id,
                                method="bank", reference="", paid_by="finance-2", paid_at=when, **fx))
            disbursement.status, disbursement.paid_at = "paid", when
            session.add(disbursement)

    def void(self, disbursement_id: str, when: datetime) -> None:
        with db.transaction(self.factory) as session:
            disbursement = session.get(Disbursement, disbursement_id)
            self._move(session, Move.RELEASE, disbursement.amount_minor, when, disbursement_id)
            disbursement.status, disbursement.voided_at = "voided", when
            session.add(disbursement)

    def paid(self, minor: int, when: datetime, *, in_pln: int | None = None, **kwargs) -> str:
        disbursement_id = self.approve(minor, when, **kwargs)
        self.pay(disbursement_id, when, in_pln=in_pln)
        return disbursement_id

    def report(self, as_of: str | None = None, now: datetime = LATER, **kwargs) -> reports.DonorReport:
        with db.transaction(self.factory) as session:
            return reports.donor_report(session=session, keyring=None, grant_id=self.grant_id,  # type: ignore[arg-type]
                                        as_of=as_of, now=now, **kwargs)


@pytest.fixture
def ledger(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'funds.db'}")
    migrations.upgrade(engine, MIGRATIONS)
    yield Ledger(db.make_session_factory(engine))
    engine.dispose()


def totals(report: reports.DonorReport) -> tuple:
    return report.paid, report.committed, report.available


def test_the_review_s_case_a_sixth_payment_is_not_given_away_by_two_statements(ledger):
    """Five people paid 600.00 in all in January, a sixth 237.45 in February: the February statement withholds its
    totals (they would differ from January's by that one person's aid), and so does March's, with nothing new."""
    for _ in range(5):
        ledger.paid(12_000, at(1))
    ledger.paid(23_745, at(2))

    january, february, march = ledger.report("2026-01"), ledger.report("2026-02"), ledger.report("2026-03")

    assert january.totals_shown and totals(january) == ("600.00", "0.00", "9400.00") and january.people == 5
    for later in (february, march):
        assert not later.totals_shown and later.totals_last_shown == "2026-01"
        assert totals(later) == (None, None, None) and later.people is None
        assert later.paid_by_currency == {} and later.paid_by_currency_suppressed is None
        assert "237.45" not in later.model_dump_json() and "837.45" not in later.model_dump_json()
    # the February cell is one person's: hidden; January's, shown in January's statement, stays shown
    cells = {c.month: c for c in march.cells}
    assert cells["2026-02"].suppressed and not cells["2026-01"].suppressed and cells["2026-01"].paid == "600.00"

    for _ in range(4):  # five people paid since January's statement: April's shows its totals again
        ledger.paid(10_000, at(4))
    april = ledger.report("2026-04")
    assert april.totals_shown and totals(april) == ("1237.45", "0.00", "8762.55") and april.people == 10
    april_cells = {c.month: c for c in april.cells}
    # April less January is the five people's of February to April; the cells between hide no fewer than five
    assert april_cells["2026-02"].suppressed and april_cells["2026-04"].suppressed


def test_a_statement_is_of_its_month_s_end_whenever_it_is_read(ledger):
    """What happened after the month ended changes nothing of it: an approval made in January and paid in February
    was committed at January's end."""
    first = [ledger.approve(10_000 + n, at(1)) for n in range(5)]
    before = ledger.report("2026-01", now=datetime(2026, 2, 3, tzinfo=UTC))
    for disbursement in first:
        ledger.pay(disbursement, at(2))
    for _ in range(5):
        ledger.paid(5_000, at(3))

    after = ledger.report("2026-01")

    assert before == after.model_copy(update={"generated_at": before.generated_at})
    assert totals(after) == ("0.00", "500.10", "9499.90") and after.cells == []
    assert totals(ledger.report("2026-02")) == ("500.10", "0.00", "9499.90")
    assert totals(ledger.report("2026-03")) == ("750.10", "0.00", "9249.90")


def test_a_month_not_yet_settled_is_refused_and_the_last_settled_one_is_the_default(ledger):
    ledger.paid(10_000, at(1))
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # February ended less than two days ago
    with pytest.raises(Invalid) as refused:
        ledger.report("2026-02", now=now)
    assert refused.value.code == "month-not-settled" and "2026-01" in str(refused.value)
    with pytest.raises(Invalid):
        ledger.report("2026-03", now=now)
    assert ledger.report(now=now).as_of == "2026-01"
    assert ledger.report(now=now + timedelta(days=1)).as_of == "2026-02"
    with pytest.raises(Invalid) as mistyped:
        ledger.report("2026-13")
    assert mistyped.value.code == "invalid-month"
    # a negative settling (a demonstration, a test) states the month under way, never one to come
    assert ledger.report(now=now, settling=timedelta(days=-62)).as_of == "2026-03"


def test_four_approvals_and_one_payment_do_not_make_five_people_for_the_paid_total(ledger):
    """Five people changed, but paid moves by one person's payment alone: the statement is withheld."""
    for _ in range(5):
        ledger.paid(10_000, at(1))
    waiting = ledger.approve(7_000, at(1))  # committed: one person, withheld within January's statement
    assert totals(ledger.report("2026-01")) == ("500.00", None, None)
    ledger.pay(waiting, at(2))
    for _ in range(4):
        ledger.approve(3_000, at(2))

    february = ledger.report("2026-02")

    assert not february.totals_shown and totals(february) == (None, None, None)
    assert "570.00" not in february.model_dump_json()


def test_a_voided_approval_counts_among_the_people_whose_aid_changed(ledger):
    for _ in range(5):
        ledger.paid(10_000, at(1))
    doomed = ledger.approve(40_000, at(1))
    ledger.void(doomed, at(2))  # one person's aid released in February: January's committed would come back
    assert not ledger.report("2026-02").totals_shown
    assert ledger.report("2026-01").totals_shown


def test_a_month_before_any_aid_is_a_statement_of_noughts(ledger):
    report = ledger.report("2026-01")
    assert report.totals_shown and totals(report) == ("0.00", "0.00", "10000.00") and report.people == 0


def test_a_cell_the_programme_report_withholds_is_not_given_back_by_the_donor_statement(ledger):
    """The review's case: five people paid 10.00 for medical aid and one 37.50 for legal aid in January. The
    programme report publishes medical 50.00 and withholds legal ("<5"); January's statement showing paid 87.50 would
    give that one person's 37.50 back (87.50 − 50.00). It is withheld until the people in withheld cells since the
    last shown statement are five: four more paid for legal aid in February (a withheld cell again) make five."""
    for _ in range(5):
        ledger.paid(1_000, at(1, year=2027))
    ledger.paid(3_750, at(1, year=2027), category="legal")

    january = ledger.report("2027-01")

    assert not january.totals_shown and totals(january) == (None, None, None) and january.people is None
    assert "87.50" not in january.model_dump_json() and "37.50" not in january.model_dump_json()

    for _ in range(4):
        ledger.paid(500, at(2, year=2027), category="legal")
    february = ledger.report("2027-02")
    assert february.totals_shown and totals(february) == ("107.50", "0.00", "9892.50") and february.people == 10
    # less the published medical 50.00, 57.50: the legal aid of five people in two withheld cells, no one's alone;
    # the medical cell is shown, the two legal ones (four people and one) are not
    shown = {(c.month, c.category): c.paid for c in february.cells if not c.suppressed}
    assert shown == {("2027-01", "medical"): "50.00"}


def test_an_approval_in_a_withheld_cell_holds_the_statement_back_like_a_payment(ledger):
    """Committed and available, less the approvals the programme report publishes, give the withheld ones back too:
    five people approved for medical aid and one for legal aid, none paid."""
    for _ in range(5):
        ledger.approve(1_000, at(1, year=2027))
    ledger.approve(2_500, at(1, year=2027), category="legal")
    assert not ledger.report("2027-01").totals_shown
    for _ in range(5):
        ledger.approve(1_000, at(2, year=2027))
    for _ in range(4):
        ledger.approve(1_000, at(2, year=2027), category="legal")  # February's legal cell withheld too: five in all
    assert ledger.report("2027-02").totals_shown


def test_a_cell_part_paid_in_another_currency_is_hidden_where_the_programme_report_keeps_that_part_apart(ledger):
    """The second review's case: the programme report counts payments in the grant's currency and those in another
    apart; five people paid 10.00 in euros (published) and one paid in złoty worth 37.50 (withheld) make one donor
    cell of 87.50 that would give the 37.50 back. The cell is hidden, and a second one with it (domain's
    complementary rule), however many people the statement's totals cover."""
    for _ in range(5):
        ledger.paid(1_000, at(1, year=2027))
    ledger.paid(3_750, at(1, year=2027), in_pln=16_125)
    for _ in range(4):
        ledger.paid(2_000, at(1, year=2027), category="legal")
    ledger.paid(2_000, at(1, year=2027), category="legal", in_pln=8_600)
    for _ in range(5):
        ledger.paid(1_000, at(2, year=2027), category="legal")

    february = ledger.report("2027-02")

    cells = {(c.month, c.category): c for c in february.cells}
    assert february.totals_shown  # the withheld parts hold five people: the totals give no one's aid back
    assert cells[("2027-01", "medical")].suppressed and cells[("2027-01", "medical")].paid is None
    assert "87.50" not in february.model_dump_json()


def test_every_grant_in_the_currency_counts_in_the_programme_report_s_cells(ledger):
    """The programme report's cells sum every grant in the currency: four people paid from this grant and one from
    another make a published cell of five, and this grant's statement is not held back by it."""
    other = Ledger(ledger.factory, code="G-2")
    for _ in range(4):
        ledger.paid(1_000, at(1, year=2027))
    ledger.paid(1_000, at(1, year=2027), category="legal")  # a legal cell of one
    other.paid(3_750, at(1, year=2027))  # the medical cell: four of this grant and one of the other, published
    assert not ledger.report("2027-01").totals_shown  # five people, but one in a legal cell the report withholds
    for _ in range(4):
        other.paid(1_000, at(1, year=2027), category="legal")  # the legal cell: five people, published
    january = ledger.report("2027-01")
    assert january.totals_shown and january.paid == "50.00"


def test_a_statement_given_out_before_the_programme_rule_keeps_its_figures(ledger):
    """A statement a donor holds must read the same ever after: month ends before `PROGRAMME_RULE_FROM` keep the
    rule they were given out under (January 2026's would now be withheld: one person's 37.50 in a withheld cell)."""
    assert reports.PROGRAMME_RULE_FROM > "2026-01"
    for _ in range(5):
        ledger.paid(1_000, at(1))
    ledger.paid(3_750, at(1), category="legal")

    january = ledger.report("2026-01")

    assert january.totals_shown and totals(january)[0] == "87.50" and january.people == 6
