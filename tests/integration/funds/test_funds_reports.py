"""Reports: finance sees every grant's accounts by month and category (JSON and CSV); a donor sees the same with no
case identity and no count below five."""

from __future__ import annotations

import csv
import io
import uuid

import pytest

pytestmark = pytest.mark.integration


async def pay(desk, case_id: str, grant: dict, amount: str, category: str = "medical") -> dict:
    request = await desk.requested(case_id, grant, amount=amount, category=category)
    assert (await desk.act(request["id"], "approve")).status_code == 200
    assert (await desk.pay(request["id"])).status_code == 200
    return request


async def test_finance_and_donor_reports(desk):
    grant = await desk.create_grant(amount="5000.00", donor="=cmd|' /C calc'!A0", categories=["medical", "housing", "legal"])
    other = await desk.create_grant(amount="100.00", currency="USD", categories=["legal"])
    medical_cases = [desk.open_case() for _ in range(6)]
    for case_id in medical_cases:
        await pay(desk, case_id, grant, "100.00")
    await pay(desk, medical_cases[0], grant, "50.00")          # one person paid twice: still 6 people
    for case_id in medical_cases[:5]:
        await pay(desk, case_id, grant, "10.00", "legal")      # 5 people: enough on its own
    housing_case = desk.open_case()
    await pay(desk, housing_case, grant, "700.00", "housing")  # one person alone in a cell
    pending = await desk.requested(housing_case, grant, amount="300.00", category="housing")
    assert (await desk.act(pending["id"], "approve")).status_code == 200
    released = await desk.requested(housing_case, grant, amount="20.00", category="housing")
    assert (await desk.act(released["id"], "approve")).status_code == 200
    assert (await desk.act(released["id"], "void")).status_code == 200

    report = (await desk.client.get("/api/funds/reports/grants", headers=desk.finance)).json()
    by_code = {g["code"]: g for g in report["grants"]}
    mine = by_code[grant["code"]]
    assert (mine["budget"], mine["paid"], mine["committed"], mine["available"]) == (
        "5000.00", "1400.00", "300.00", "3300.00")
    assert by_code[other["code"]]["by_month"] == [] and by_code[other["code"]]["available"] == "100.00"
    [medical] = [m for m in mine["by_month"] if m["category"] == "medical"]
    [housing] = [m for m in mine["by_month"] if m["category"] == "housing"]
    assert (medical["approved"], medical["paid"], medical["payments"]) == ("650.00", "650.00", 7)
    assert (housing["approved"], housing["released"], housing["paid"], housing["payments"]) == (
        "1020.00", "20.00", "700.00", 1)

    as_csv = await desk.client.get("/api/funds/reports/grants", params={"format": "csv"}, headers=desk.finance)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    totals = [r for r in rows if r["code"] == grant["code"] and r["month"] == ""]
    assert [(r["budget"], r["paid"], r["available"]) for r in totals] == [("5000.00", "1400.00", "3300.00")]
    assert totals[0]["donor"].startswith("'=")       # a spreadsheet shows it as text, never runs it
    assert {r["category"] for r in rows if r["code"] == grant["code"] and r["month"]} == {"medical", "housing", "legal"}

    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    assert donor["people"] == 7 and donor["paid"] == "1400.00"
    cells = {c["category"]: c for c in donor["cells"]}
    assert (cells["medical"]["people"], cells["medical"]["payments"], cells["medical"]["paid"]) == (6, 7, "650.00")
    # housing counts one person: hidden. Alone, it could be worked out as the total minus the visible cells, so the
    # smallest visible cell (legal, 5 people) is hidden with it.
    for category in ("housing", "legal"):
        assert cells[category] == {**cells[category], "suppressed": True, "people": None, "payments": None,
                                   "paid": None}
    text = str(donor)
    for case_id in [*medical_cases, housing_case]:
        assert case_id not in text

    donor_csv = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"], "format": "csv"},
                                      headers=desk.finance)
    assert donor_csv.status_code == 200 and housing_case not in donor_csv.text
    missing = await desk.client.get("/api/funds/reports/donor", params={"grant_id": str(uuid.uuid4())},
                                    headers=desk.finance)
    assert missing.status_code == 404


async def test_a_donor_report_of_fewer_than_five_people_hides_the_amounts_the_budget_would_give_away(desk):
    """All cells hidden and nothing visible to hide them among: paid, committed and available (with the budget) would
    give those few people's aid to the cent, so they wait until five people have had aid approved."""
    grant = await desk.create_grant(amount="1000.00", categories=["medical"])
    alone = desk.open_case()
    await pay(desk, alone, grant, "400.00")
    waiting = await desk.requested(desk.open_case(), grant, amount="150.00")
    assert (await desk.act(waiting["id"], "approve")).status_code == 200

    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()

    assert donor["budget"] == "1000.00" and donor["people"] is None
    assert (donor["paid"], donor["committed"], donor["available"]) == (None, None, None)
    assert (donor["fx_released"], donor["fx_approved"], donor["paid_by_currency"]) == (None, None, {})
    assert [c["suppressed"] for c in donor["cells"]] == [True]
    assert "400.00" not in str(donor) and "450.00" not in str(donor) and "150.00" not in str(donor)

    for _ in range(3):  # five people with aid approved: the totals are no one's
        await pay(desk, desk.open_case(), grant, "50.00")
    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    assert (donor["paid"], donor["committed"], donor["available"]) == ("550.00", "150.00", "300.00")
