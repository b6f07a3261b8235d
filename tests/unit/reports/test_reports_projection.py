"""The projection's arithmetic on a real (SQLite) database: events applied by the handlers the consumers run, the
report read back. Referral spans are measured whichever of their events comes first, amounts are summed in the
grant's currency and in the currency paid, and no case id is kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from kit import db, migrations
from kit.events import Envelope
from services.reports import handlers, service
from services.reports.models import ReferralMoments

MIGRATIONS = Path(handlers.__file__).parent / "migrations"
MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def factory(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    migrations.upgrade(engine, MIGRATIONS)
    yield db.make_session_factory(engine)
    engine.dispose()


def apply(factory, subject: str, data: dict) -> None:
    producer = subject.split(".")[1]
    handler = handlers.CONSUMED[producer][1][subject]
    with db.transaction(factory) as session:
        handler(session, Envelope.new(source=f"/rehab/{producer}", type=subject, subject="x", data=data))


def report(factory, months=("2026-02", "2026-03", "2026-04")) -> dict:
    with db.transaction(factory) as session:
        return service.programme_report(session=session, months=list(months))


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
    assert elsewhere["as_received"]["PLN"]["cells"]["2026-03"]["medical"] == "<5"
    assert elsewhere["cost_in_grant_currency"]["EUR"]["cells"]["2026-03"]["medical"] == "<5"
    assert "EUR" not in elsewhere["as_received"] and str(elsewhere["as_received"]["PLN"]["total"]).startswith("≥")


def test_no_table_of_the_projection_has_a_column_for_a_case(factory):
    with db.transaction(factory) as session:
        engine = session.get_bind()
        for table in ("monthly_counts", "monthly_amounts", "duration_histograms", "referral_moments",
                      "currency_digits"):
            columns = {c["name"] for c in inspect(engine).get_columns(table)}
            assert not {"case_id", "reference", "name", "full_name"} & columns, table
        assert session.execute(text("SELECT count(*) FROM monthly_counts")).scalar() == 0
