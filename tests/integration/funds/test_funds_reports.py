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
    # housing counts one person: the programme report withholds that cell ("<5") and publishes medical and legal to
    # the cent, so an exact paid total (1400.00 less 650.00 and 50.00) would give the one person's 700.00 back; the
    # statement withholds its totals, and every cell with them
    assert not donor["totals_shown"] and donor["people"] is None and donor["paid"] is None
    assert all(cell["suppressed"] and cell["paid"] is None for cell in donor["cells"])
    assert "700.00" not in str(donor) and "1400.00" not in str(donor)
    # Four more people housed, each also with an approval voided: five in the housing cells the programme report
    # publishes (paid, and released: the one voided approval above was alone in its cell too).
    for _ in range(4):
        housed = desk.open_case()
        await pay(desk, housed, grant, "25.00", "housing")
        voided = await desk.requested(housed, grant, amount="5.00", category="housing")
        assert (await desk.act(voided["id"], "approve")).status_code == 200
        assert (await desk.act(voided["id"], "void")).status_code == 200
    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    assert donor["totals_shown"] and donor["people"] == 11 and donor["paid"] == "1500.00"
    assert donor["committed"] is None  # the 300.00 approved for one person and not yet paid
    cells = {c["category"]: c for c in donor["cells"]}
    assert (cells["medical"]["people"], cells["medical"]["payments"], cells["medical"]["paid"]) == (6, 7, "650.00")
    assert (cells["housing"]["people"], cells["housing"]["paid"]) == (5, "800.00")
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

    for _ in range(3):  # five people with aid approved, but four paid and one waiting: each total still a few's
        await pay(desk, desk.open_case(), grant, "50.00")
    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    # Five people with aid approved but four paid: paid would be four people's aid, so the whole statement is
    # withheld (before statements as of a month end, available showed the five people's 700.00 here).
    assert (donor["paid"], donor["committed"], donor["available"]) == (None, None, None)
    assert not donor["totals_shown"]

    await pay(desk, desk.open_case(), grant, "50.00")   # five paid: paid shown; committed (one person) is not, nor
    donor = (await desk.client.get("/api/funds/reports/donor",   # available, which with both would give it back
                                   params={"grant_id": grant["id"]}, headers=desk.finance)).json()
    assert (donor["paid"], donor["committed"], donor["available"]) == ("600.00", None, None)

    assert (await desk.pay(waiting["id"])).status_code == 200   # six paid, nobody waiting: the totals are no one's
    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    assert (donor["paid"], donor["committed"], donor["available"]) == ("750.00", "0.00", "250.00")


async def donor_report(desk, grant: dict) -> tuple[dict, dict]:
    """The donor report of a grant as JSON, and the totals line (month empty) of its CSV."""
    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    as_csv = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"], "format": "csv"},
                                   headers=desk.finance)
    [totals] = [r for r in csv.DictReader(io.StringIO(as_csv.text.removeprefix("\ufeff"))) if r["month"] == ""]
    return donor, totals


async def test_a_donor_report_hides_each_total_that_covers_fewer_than_five_people(desk):
    """Five people with aid approved, one of them paid: "few" is not decided for the grant as a whole but for each
    total. Paid is one person's aid, committed four people's: both withheld, and with them anything that would give
    one back from the other (available, with the budget, gives only the five people's sum)."""
    grant = await desk.create_grant(amount="1000.00", categories=["medical"])
    requests = [await desk.requested(desk.open_case(), grant, amount=amount, category="medical")
                for amount in ("11.00", "12.00", "13.00", "14.00", "15.00")]
    for request in requests:
        assert (await desk.act(request["id"], "approve")).status_code == 200
    assert (await desk.pay(requests[2]["id"])).status_code == 200          # one person paid 13.00

    donor, totals = await donor_report(desk, grant)

    assert donor["budget"] == "1000.00" and donor["suppression_threshold"] == 5
    assert [c["suppressed"] for c in donor["cells"]] == [True] and donor["people"] is None
    # One person paid since the grant began: the statement withholds every total (tests/unit/funds/
    # test_funds_donor_totals.py shows what `_donor_totals` alone would show: available, the five people's sum).
    assert not donor["totals_shown"]
    assert (donor["paid_by_currency"], donor["paid_by_currency_suppressed"]) == ({}, None)
    assert donor["paid"] is None                                   # one person's aid to the cent
    assert donor["committed"] is None                              # four people's
    assert donor["available"] is None
    # parts of what those few were paid, even at nought
    assert (donor["fx_released"], donor["fx_approved"]) == (None, None)
    text = str(donor)
    assert "13.00" not in text and "52.00" not in text
    assert totals["paid"] == "" and totals["people"] == "" and totals["paid_by_currency"] == ""
    assert totals["suppressed"] == "yes"
    assert "13.00" not in str(totals) and "52.00" not in str(totals)


async def test_a_donor_report_never_shows_two_of_paid_committed_and_available_when_the_third_is_hidden(desk):
    """Paid covers five people (shown), committed one (hidden): available would give committed back as budget −
    available − paid, so it is hidden too."""
    grant = await desk.create_grant(amount="1000.00", categories=["medical"])
    for _ in range(5):
        await pay(desk, desk.open_case(), grant, "20.00")
    waiting = await desk.requested(desk.open_case(), grant, amount="37.00")
    assert (await desk.act(waiting["id"], "approve")).status_code == 200

    donor, totals = await donor_report(desk, grant)

    assert (donor["paid"], donor["committed"], donor["available"]) == ("100.00", None, None)
    assert donor["people"] == 5 and donor["paid_by_currency"] == {"EUR": "100.00"}
    assert "37.00" not in str(donor) and "863.00" not in str(donor)
    assert (totals["paid"], totals["people"], totals["paid_by_currency"]) == ("100.00", "5", "EUR 100.00")


async def test_a_donor_report_shows_every_total_that_covers_five_people_or_more(desk):
    grant = await desk.create_grant(amount="1000.00", categories=["medical"])
    for amount in ("11.00", "12.00", "13.00", "14.00", "15.00"):
        await pay(desk, desk.open_case(), grant, amount)
    for amount in ("21.00", "22.00", "23.00", "24.00", "25.00"):
        waiting = await desk.requested(desk.open_case(), grant, amount=amount)
        assert (await desk.act(waiting["id"], "approve")).status_code == 200

    donor, totals = await donor_report(desk, grant)

    assert (donor["paid"], donor["committed"], donor["available"]) == ("65.00", "115.00", "820.00")
    assert (donor["people"], donor["paid_by_currency"], donor["paid_by_currency_suppressed"]) == (
        5, {"EUR": "65.00"}, 0)
    assert (donor["fx_released"], donor["fx_approved"]) == ("0.00", "0.00")
    [cell] = donor["cells"]
    assert (cell["suppressed"], cell["people"], cell["paid"]) == (False, 5, "65.00")
    assert (totals["paid"], totals["people"], totals["paid_by_currency"], totals["suppressed"]) == (
        "65.00", "5", "EUR 65.00", "")


async def test_a_donor_report_hides_an_fx_difference_of_fewer_than_five_people_and_shows_the_rest(desk):
    """Five people paid (paid shown), one of them in PLN for less than was approved: the released difference is that
    one person's, so it is withheld; nobody's payment needed more, so `fx_approved` is a nought over five people."""
    from tests.integration.funds.test_funds_fx_payments import in_pln

    grant = await desk.create_grant(amount="2000.00", categories=["medical"])
    for _ in range(4):
        await pay(desk, desk.open_case(), grant, "300.00")
    rent = await desk.requested(desk.open_case(), grant, amount="300.00")
    assert (await desk.act(rent["id"], "approve")).status_code == 200
    paid = await desk.client.post(f"/api/funds/disbursements/{rent['id']}/pay",
                                  json=in_pln("1279.25", difference="release"),
                                  headers={**desk.finance, "Idempotency-Key": str(uuid.uuid4())})
    assert paid.status_code == 200

    donor, totals = await donor_report(desk, grant)

    assert (donor["paid"], donor["committed"], donor["available"], donor["people"]) == (
        "1497.50", "0.00", "502.50", 5)
    assert (donor["fx_released"], donor["fx_approved"]) == (None, "0.00")
    # four paid in EUR, one in PLN: both withheld (EUR alone would give the PLN payment as paid − EUR)
    assert (donor["paid_by_currency"], donor["paid_by_currency_suppressed"]) == ({}, 2)
    assert "'2.50'" not in str(donor) and "1279.25" not in str(donor)
    assert (totals["paid"], totals["fx_released"], totals["fx_approved"], totals["suppressed"]) == (
        "1497.50", "", "0.00", "yes")
