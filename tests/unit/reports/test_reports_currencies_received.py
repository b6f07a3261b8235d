"""A currency people were paid in other than a grant's says where they live: the programme report shows its table only
once a cell of it is published (a settled month and category of five people or more), and says nothing of it until
then, not even how many such currencies it left out (real projection on SQLite)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.reports import service
from tests.unit.reports.test_reports_projection import apply, factory  # noqa: F401 (the fixture)
from kit import db

MARCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTLED = datetime(2027, 6, 1, tzinfo=UTC)


def paid_in(factory, currency: str, amount: str, *, at: datetime = MARCH, category: str = "relocation") -> None:  # noqa: F811
    base = {"disbursement_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "grant_id": "g",
            "category": category, "amount": "100.00", "currency": "EUR", "occurred_at": at.isoformat()}
    apply(factory, "rehab.funds.disbursement.approved", {**base, "status": "approved"})
    apply(factory, "rehab.funds.disbursement.paid", {**base, "status": "paid", "paid_amount": amount,
                                                     "paid_currency": currency, "fx_rate": "2.9",
                                                     "converted_amount": "100.00"})


def report(factory, now: datetime = SETTLED) -> dict:  # noqa: F811
    with db.transaction(factory) as session:
        return service.programme_report(session=session, months=["2026-02", "2026-03", "2026-04"], now=now)


def test_one_payment_in_lari_makes_no_gel_table_anywhere(factory):  # noqa: F811
    paid_in(factory, "GEL", "290.00")
    shown = report(factory)
    elsewhere = shown["aid"]["paid"]["in_another_currency"]
    assert elsewhere["as_received"] == {}
    # what it cost the grant is in the grant's currency, the organisation's: shown (withheld as "<5")
    assert elsewhere["cost_in_grant_currency"]["EUR"]["cells"]["2026-03"]["relocation"] == "<5"
    assert "GEL" not in str(shown) and "GEL" not in service.programme_csv(shown)


def test_a_currency_is_shown_once_a_settled_cell_of_it_has_five_people(factory):  # noqa: F811
    for _ in range(5):
        paid_in(factory, "GEL", "290.00")
    paid_in(factory, "GEL", "300.00", at=datetime(2026, 4, 3, tzinfo=UTC), category="medical")
    while_pending = report(factory, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert while_pending["aid"]["paid"]["in_another_currency"]["as_received"] == {}
    assert "GEL" not in service.programme_csv(while_pending)

    settled = report(factory)["aid"]["paid"]["in_another_currency"]["as_received"]
    assert settled["GEL"]["cells"]["2026-03"]["relocation"] == "1450.00"
    assert settled["GEL"]["cells"]["2026-04"]["medical"] == "<5"


def test_a_currency_of_fewer_than_five_people_in_every_cell_stays_out(factory):  # noqa: F811
    for category in ("relocation", "housing", "legal", "medical", "financial"):  # five people, one per category
        paid_in(factory, "UAH", "4100.00", category=category)
    assert report(factory)["aid"]["paid"]["in_another_currency"]["as_received"] == {}
