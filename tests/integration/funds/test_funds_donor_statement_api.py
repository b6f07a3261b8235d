"""The donor report through funds' API: a statement as of a month's end (`as_of`), a month not yet settled refused
with a problem that says which month can be stated, and the statement named in the CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from services.funds.config import FundsSettings
from services.funds.reports import last_settled_month
from tests.integration.funds.test_funds_reports import pay


@pytest.fixture
def funds_settings(funds_settings: FundsSettings) -> FundsSettings:
    """As funds runs by default: a month is stated two days after it ends."""
    return funds_settings.model_copy(update={"settling_days": 2})


async def test_the_donor_report_states_the_last_settled_month_and_refuses_one_still_under_way(desk):
    grant = await desk.create_grant(amount="1000.00", categories=["medical"])
    for _ in range(5):
        await pay(desk, desk.open_case(), grant, "120.00")
    this_month = datetime.now(UTC).strftime("%Y-%m")

    donor = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                  headers=desk.finance)
    under_way = await desk.client.get("/api/funds/reports/donor",
                                      params={"grant_id": grant["id"], "as_of": this_month}, headers=desk.finance)
    mistyped = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"], "as_of": "2026-3"},
                                     headers=desk.finance)

    assert donor.status_code == 200, donor.text
    stated = donor.json()
    # the aid paid this month is in no statement yet: the last settled month's end came before it
    assert stated["as_of"] == last_settled_month(datetime.now(UTC)) < this_month
    assert (stated["paid"], stated["committed"], stated["available"]) == ("0.00", "0.00", "1000.00")
    assert stated["cells"] == [] and "600.00" not in donor.text
    assert under_way.status_code == 422 and under_way.headers["content-type"].startswith("application/problem+json")
    assert under_way.json()["type"].endswith("month-not-settled") and stated["as_of"] in under_way.json()["detail"]
    assert mistyped.status_code == 422 and mistyped.json()["type"].endswith("invalid-month")

    as_csv = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"], "format": "csv"},
                                   headers=desk.finance)
    [totals] = [r for r in csv.DictReader(io.StringIO(as_csv.text.removeprefix("\ufeff"))) if r["month"] == ""]
    assert totals["as_of"] == stated["as_of"] and totals["paid"] == "0.00"
