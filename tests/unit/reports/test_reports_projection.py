"""The projection's arithmetic on a real (SQLite) database: events applied by the handlers the consumers run, the
report read back. Referral spans are measured whichever of their events comes first, amounts are summed in the
grant's currency and in the currency paid and shown by the people in them (not their payments), and no case id is
kept: people are keyed hashes, deleted when their case is erased."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from kit import db, migrations
from kit.events import Envelope
from services.reports import handlers, service
from services.reports.models import (
    AidPerson,
    ErasedPerson,
    MonthlyAmount,
    ReferralMoments,
)

MIGRATIONS = Path(handlers.__file__).parent / "migrations"
MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PEOPLE = handlers.PersonIndex(lambda: b"reports' own secret, for the test".ljust(32, b"."))
CONSUMED = handlers.consumed(PEOPLE)


@pytest.fixture
def factory(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    migrations.upgrade(engine, MIGRATIONS)
    yield db.make_session_factory(engine)
    engine.dispose()


def apply(factory, subject: str, data: dict) -> None:
    producer = subject.split(".")[1]
    handler = CONSUMED[producer][1][subject]
    with db.transaction(factory) as session:
        handler(session, Envelope.new(source=f"/rehab/{producer}", type=subject, subject="x", data=data))


SETTLED = datetime(2027, 6, 1, tzinfo=UTC)  # every month these tests count in has ended and settled


def report(factory, months=("2026-02", "2026-03", "2026-04"), now: datetime = SETTLED) -> dict:
    with db.transaction(factory) as session:
        return service.programme_report(session=session, months=list(months), now=now)


def referral(factory, outcome: str, referral_id: str, at: datetime, category: str = "medical") -> None:
    apply(factory, f"rehab.referrals.referral.{outcome}", {
        "referral_id": referral_id, "case_id": str(uuid.uuid4()), "partner_id": str(uuid.uuid4()),
        "category": category, "status": outcome, "cost_estimate": None, "occurred_at": at.isoformat()})


def test_cases_and_needs_are_counted_in_the_month_they_happened(factory):
    for day in range(6):
        case = str(uuid.uuid4())
        apply(factory, "rehab.intake.case.opened", {"case_id": case, "reference": "BY-2026-00001", "country": "LT",
                                                    "opened_at": (MARCH + timedelta(days=day)).isoformat()})
        apply(factory, "rehab.intake.needs.moved", {"case_id": case, "need_id": str(uuid.uuid4()),
                                                    "category": "housing", "urgency": "high", "status": "met",
                                                    "moved_at": (MARCH + timedelta(days=31)).isoformat()})
    apply(factory, "rehab.intake.case.closed", {"case_id": case, "closed_at": MARCH.isoformat()})
    shown = report(factory)
    assert shown["cases"]["cells"]["2026-03"] == {"opened": 6, "closed": "<5", "erased": 0}
    assert shown["cases"]["column_totals"]["opened"] == 6
    assert shown["needs"]["met_by_category"]["cells"]["2026-04"]["housing"] == 6
    assert shown["needs"]["met_by_category"]["cells"]["2026-03"]["housing"] == 0


def test_spans_are_measured_once_whichever_event_comes_first_and_the_referral_is_then_forgotten(factory):
    for n in range(5):
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        # in order: sent, accepted after n+1 days, completed after 10 days
        referral(factory, "sent", first, MARCH)
        referral(factory, "accepted", first, MARCH + timedelta(days=n + 1))
        referral(factory, "completed", first, MARCH + timedelta(days=10))
        # out of order (a redelivered sent): accepted and completed arrive first
        referral(factory, "accepted", second, MARCH + timedelta(days=n + 1))
        referral(factory, "completed", second, MARCH + timedelta(days=20))
        referral(factory, "sent", second, MARCH)
    shown = report(factory)["referrals"]
    accepted = shown["days_sent_to_accepted"]["by_month"]["2026-03"]["medical"]
    assert accepted == {"p50": 3.0, "p90": 5.0}  # how many: by_outcome's, withheld as it must be
    completed = shown["days_sent_to_completed"]["period"]["medical"]
    assert completed == {"p50": 10.0, "p90": 20.0}
    assert shown["by_outcome"]["sent"]["cells"]["2026-03"]["medical"] == 10
    with db.transaction(factory) as session:
        assert session.execute(select(ReferralMoments)).first() is None  # both spans measured: nothing kept
        # one histogram row per month, span and category, however many referrals it counts
        assert session.execute(text("SELECT count(*) FROM duration_histograms")).scalar() == 2


def test_aid_paid_in_the_grant_s_currency_and_in_another_are_two_groups_that_never_overlap(factory):
    for n in range(5):
        base = {"disbursement_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "grant_id": "g",
                "category": "medical", "amount": "100.50", "currency": "EUR", "occurred_at": MARCH.isoformat()}
        apply(factory, "rehab.funds.disbursement.approved", {**base, "status": "approved"})
        paid = {**base, "status": "paid"}
        if n < 2:  # paid in zloty at a rate funds recorded
            paid |= {"paid_amount": "430.15", "paid_currency": "PLN", "fx_rate": "4.28", "fx_source": "ECB"}
        apply(factory, "rehab.funds.disbursement.paid", paid)
    aid = report(factory)["aid"]
    assert aid["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "502.50"
    # Three paid in euros, two in zloty: each group under five, withheld; neither is the other's remainder.
    assert aid["paid"]["in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "<5"
    elsewhere = aid["paid"]["in_another_currency"]
    # two people paid in zloty: no cell of PLN published, so no PLN table at all (it would say where they live)
    assert elsewhere["as_received"] == {}
    assert elsewhere["cost_in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "<5"


def approve(factory, case_id: str, amount: str, *, category: str = "medical", at: datetime = DECEMBER,
            stage: str = "approved") -> None:
    apply(factory, f"rehab.funds.disbursement.{stage}", {
        "disbursement_id": str(uuid.uuid4()), "case_id": case_id, "grant_id": "g", "category": category,
        "amount": amount, "currency": "EUR", "status": stage, "occurred_at": at.isoformat()})


def amount_rows(factory) -> dict:
    with db.transaction(factory) as session:
        return {(r.month, r.stage, r.basis, r.category, r.currency): (r.amount_minor, r.payments, r.people)
                for r in session.execute(select(MonthlyAmount)).scalars()}


def people_rows(factory) -> list:
    with db.transaction(factory) as session:
        return sorted((r.person, r.month, r.category) for r in session.execute(select(AidPerson)).scalars())


def hashes(case_id: str, *stages: str) -> set[str]:
    """The person's hash in December's medical EUR cell of each stage, as the projection keeps it."""
    return {PEOPLE.in_cell(case_id, {"month": "2026-12", "stage": stage, "basis": "grant", "category": "medical",
                                     "currency": "EUR"}) for stage in stages}


def test_five_payments_to_one_person_are_one_person_s_aid_and_withheld(factory):
    # The reviewer's December: five approvals in medical, all of one case.
    one = str(uuid.uuid4())
    for amount in ("300.00", "800.00", "40.00", "300.00", "40.00"):
        approve(factory, one, amount)
    aid = report(factory, months=["2026-12"])["aid"]["approved"]["in_grant_currency"]["EUR"]
    assert aid["cells"]["2026-12"]["medical"] == "<5"
    assert aid["total"] == "≥0.00"
    assert amount_rows(factory)[("2026-12", "approved", "grant", "medical", "EUR")] == (148000, 5, 1)
    # Four more people, one payment each: five people, and the sum is shown.
    for _ in range(4):
        approve(factory, str(uuid.uuid4()), "10.00")
    aid = report(factory, months=["2026-12"])["aid"]["approved"]["in_grant_currency"]["EUR"]
    assert aid["cells"]["2026-12"]["medical"] == "1520.00"
    assert amount_rows(factory)[("2026-12", "approved", "grant", "medical", "EUR")] == (152000, 9, 5)


def test_a_month_s_sums_are_pending_until_two_days_after_it_ends_so_two_reads_tell_no_one_s_payment(factory):
    # The reviewer's attack: five people paid 500.00 in December, then a sixth; read before and after, the sum
    # would rise to 737.45 and tell that the sixth was paid 237.45.
    for _ in range(5):
        approve(factory, str(uuid.uuid4()), "100.00", stage="paid")
    during = DECEMBER + timedelta(days=10)
    before = report(factory, months=["2026-11", "2026-12"], now=during)["aid"]
    approve(factory, str(uuid.uuid4()), "237.45", stage="paid")
    after = report(factory, months=["2026-11", "2026-12"], now=during)["aid"]
    assert before == after
    paid = after["paid"]["in_grant_currency"]["EUR"]
    assert set(paid["cells"]["2026-12"].values()) == {"pending"} and paid["total"] == "≥0.00"
    assert paid["cells"]["2026-11"]["medical"] == "0.00"  # a month that has settled is published as ever
    assert after["pending_months"] == ["2026-12"] and "pending" in after["pending"]

    january = datetime(2027, 1, 1, tzinfo=UTC)
    settling = report(factory, months=["2026-12"], now=january + timedelta(days=2) - timedelta(microseconds=1))
    assert settling["aid"]["paid"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "pending"
    settled = report(factory, months=["2026-12", "2027-01"], now=january + timedelta(days=2))["aid"]
    assert settled["paid"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "737.45"
    assert settled["pending_months"] == ["2027-01"]


def test_a_month_s_counts_are_pending_too_so_two_reads_tell_nothing_of_one_new_person(factory):
    """An outside review's attack: read before and after one registration in the same month, the counts gave that
    person away (one more case opened, a psychological need where there was none: 0 → "<5" tells as much as 0 → 1).
    Until the month settles every figure of it is pending; the months before are published as ever."""
    def registered(category: str) -> None:
        case = str(uuid.uuid4())
        apply(factory, "rehab.intake.case.opened", {"case_id": case, "reference": "BY-2026-00001", "country": "LT",
                                                    "opened_at": DECEMBER.isoformat()})
        apply(factory, "rehab.intake.needs.moved", {"case_id": case, "need_id": str(uuid.uuid4()),
                                                    "category": category, "urgency": "high",
                                                    "status": "in_progress", "moved_at": DECEMBER.isoformat()})
        referral(factory, "sent", str(uuid.uuid4()), DECEMBER, category=category)

    for _ in range(5):
        registered("medical")
    months, during = ["2026-11", "2026-12"], DECEMBER + timedelta(days=10)
    before = report(factory, months=months, now=during)
    registered("psychological")
    after = report(factory, months=months, now=during)

    assert before == after
    assert set(after["cases"]["cells"]["2026-12"].values()) == {"pending"}
    assert after["cases"]["cells"]["2026-11"] == {"opened": 0, "closed": 0, "erased": 0}
    assert after["cases"]["total"] == "≥0"
    assert after["needs"]["in_progress_by_category"]["cells"]["2026-12"]["psychological"] == "pending"
    assert after["referrals"]["by_outcome"]["sent"]["cells"]["2026-12"]["psychological"] == "pending"
    assert after["pending_months"] == ["2026-12"] and "pending" in after["pending"]
    settled = report(factory, months=months, now=datetime(2027, 1, 3, tzinfo=UTC))
    assert settled["cases"]["cells"]["2026-12"]["opened"] == 6
    assert settled["needs"]["in_progress_by_category"]["cells"]["2026-12"]["psychological"] == "<5"
    assert settled["referrals"]["by_outcome"]["sent"]["cells"]["2026-12"]["medical"] == 5


def test_five_people_once_each_are_shown_and_each_cell_counts_its_own_people(factory):
    people = [str(uuid.uuid4()) for _ in range(5)]
    for case_id in people:
        approve(factory, case_id, "100.00")
        approve(factory, case_id, "50.00", stage="paid")
    approve(factory, people[0], "70.00", category="legal")  # the same person in another cell: one person there
    approve(factory, people[0], "30.00", at=DECEMBER + timedelta(days=31))  # and in another month
    aid = report(factory, months=["2026-12", "2027-01"])["aid"]
    assert aid["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"] == {
        **{category: "0.00" for category in aid["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]},
        "medical": "500.00", "legal": "<5"}
    assert aid["approved"]["in_grant_currency"]["EUR"]["cells"]["2027-01"]["medical"] == "<5"
    assert aid["paid"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "250.00"
    rows = amount_rows(factory)
    assert rows[("2026-12", "approved", "grant", "legal", "EUR")][2] == 1
    assert rows[("2027-01", "approved", "grant", "medical", "EUR")][2] == 1


def test_people_are_kept_as_a_keyed_hash_that_erasure_deletes_and_the_report_stays_the_same(factory):
    people = [str(uuid.uuid4()) for _ in range(5)]
    for n, case_id in enumerate(people):
        approve(factory, case_id, f"{100 + n}.00")
        approve(factory, case_id, f"{100 + n}.00", stage="paid")
    erased = people[0]
    kept = people_rows(factory)
    assert len(kept) == 10 and not any(erased in row[0] or row[0] in erased for row in kept)
    assert {row[0] for row in kept} == set().union(*(hashes(case_id, "approved", "paid") for case_id in people))
    # One person's rows in two cells share nothing: a copy of the database holds no one's history of aid.
    assert len({row[0] for row in kept}) == 10 and PEOPLE(erased) not in {row[0] for row in kept}
    # Another key, another hash: the reports database joins to no case id without this service's secret.
    assert handlers.PersonIndex(lambda: b"another service's key".ljust(32, b"."))(erased) != PEOPLE(erased)
    before, rows = report(factory, months=["2026-12"]), amount_rows(factory)
    assert before["aid"]["approved"]["in_grant_currency"]["EUR"]["cells"]["2026-12"]["medical"] == "510.00"

    apply(factory, "rehab.intake.case.erased", {"case_id": erased, "erased_at": DECEMBER.isoformat()})
    assert {row[0] for row in people_rows(factory)} == set().union(
        *(hashes(case_id, "approved", "paid") for case_id in people[1:]))
    assert amount_rows(factory) == rows  # the counts of people and the sums stay
    after = report(factory, months=["2026-12"])
    assert after["aid"] == before["aid"] and after["cases"]["cells"]["2026-12"]["erased"] == "<5"
    # An event of the erased person applied late (the funds stream behind): summed, not remembered, not a person.
    approve(factory, erased, "5.00", stage="paid")
    assert not hashes(erased, "approved", "paid") & {row[0] for row in people_rows(factory)}
    assert amount_rows(factory)[("2026-12", "paid", "grant", "medical", "EUR")] == (51500, 6, 5)
    with db.transaction(factory) as session:
        assert session.execute(select(ErasedPerson.person)).scalars().all() == [PEOPLE(erased)]


def test_an_erased_person_s_late_payment_alone_in_a_cell_is_withheld(factory):
    erased = str(uuid.uuid4())
    apply(factory, "rehab.intake.case.erased", {"case_id": erased, "erased_at": DECEMBER.isoformat()})
    approve(factory, erased, "5.00", category="housing")
    assert amount_rows(factory)[("2026-12", "approved", "grant", "housing", "EUR")] == (500, 1, 0)
    aid = report(factory, months=["2026-12"])["aid"]["approved"]["in_grant_currency"]["EUR"]
    assert aid["cells"]["2026-12"]["housing"] == "<5"
    assert people_rows(factory) == []


def test_sums_from_before_people_were_counted_are_withheld_until_a_rebuild(tmp_path):
    # A database at the initial revision, holding the reviewer's cell (five payments, one person, not known then).
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        config = migrations.config_for(MIGRATIONS, str(engine.url))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "5d2b73fd8ec2")
            connection.execute(text(
                "INSERT INTO monthly_amounts (month, stage, basis, category, currency, amount_minor, payments) "
                "VALUES ('2026-12', 'approved', 'grant', 'medical', 'EUR', 148000, 5), "
                "('2026-12', 'approved', 'grant', 'legal', 'EUR', 0, 0)"))
        migrations.upgrade(engine, MIGRATIONS)
        migrations.check(engine, MIGRATIONS)  # the models and the newest revision agree
        factory = db.make_session_factory(engine)
        assert amount_rows(factory)[("2026-12", "approved", "grant", "medical", "EUR")] == (148000, 5, 0)
        aid = report(factory, months=["2026-12"])["aid"]["approved"]["in_grant_currency"]["EUR"]
        assert aid["cells"]["2026-12"]["medical"] == "<5" and aid["cells"]["2026-12"]["legal"] == "0.00"
    finally:
        engine.dispose()


def test_no_table_of_the_projection_has_a_column_for_a_case(factory):
    with db.transaction(factory) as session:
        engine = session.get_bind()
        for table in ("monthly_counts", "monthly_amounts", "aid_people", "erased_people", "duration_histograms",
                      "referral_moments", "currency_digits"):
            columns = {c["name"] for c in inspect(engine).get_columns(table)}
            assert not {"case_id", "reference", "name", "full_name"} & columns, table
        assert session.execute(text("SELECT count(*) FROM monthly_counts")).scalar() == 0


def test_a_month_too_small_to_show_is_left_out_of_the_period_s_days(factory):
    """A reviewer's attack: medical referrals accepted 8 in March, 2 in April (withheld), 7 in May. Whether the
    period's p90 showed (n ≥ 10) for March–April and for April–May told April's 2 exactly, and the March–April p90
    was one of April's own waits. April is now left out of every period figure."""
    APRIL, MAY = MARCH + timedelta(days=31), MARCH + timedelta(days=61)
    for month, waits in ((MARCH, [1, 1, 2, 2, 3, 3, 4, 4]), (APRIL, [5.5, 5.5]), (MAY, [1, 1, 2, 2, 3, 3, 3])):
        for wait in waits:
            accepted = str(uuid.uuid4())
            referral(factory, "sent", accepted, month - timedelta(days=wait))
            referral(factory, "accepted", accepted, month)

    def period(*months: str) -> dict:
        return report(factory, months)["referrals"]["days_sent_to_accepted"]["period"]["medical"]

    assert report(factory, ("2026-04",))["referrals"]["by_outcome"]["accepted"]["cells"]["2026-04"]["medical"] == "<5"
    assert period("2026-03", "2026-04") == period("2026-03") == {"p50": 2.0, "p90": "<5"}  # 8 alone: no p90
    assert period("2026-04", "2026-05") == period("2026-05")
    assert period("2026-03", "2026-04", "2026-05") == period("2026-03", "2026-05")
    assert 5.5 not in period("2026-03", "2026-04", "2026-05").values()
