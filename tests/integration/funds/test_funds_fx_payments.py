"""Aid paid in the currency people live in (issue #20): a EUR grant pays a rent in PLN. Through the real funds
service (its app, migrations and bus on a real database and NATS server): the payment records what was paid, the rate
and its source; the ledger stays in the grant's currency and balanced; a difference from the approved amount is
released or approved explicitly (the extra by another officer than the requester, from money available), never
silently; a replayed payment acts once; the paid event carries the amounts and no payee; the reports show both."""

from __future__ import annotations

import csv
import io
import json
import uuid
from pathlib import Path

import nats
import pytest

from kit import db
from services.funds import ledger
from tests.integration.funds.test_funds_events import _count
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration

NBP = "NBP table A 2026-12-02"


def in_pln(amount: str, rate: str = "4.3000", **extra: object) -> dict:
    return {"method": "bank_transfer", "reference": "PL-RENT-1",
            "paid": {"amount": amount, "currency": "PLN", "fx_rate": rate, "fx_source": NBP}, **extra}


async def pay(desk, disbursement_id: str, body: dict, *, key: str | None = None, headers: dict | None = None):
    return await desk.client.post(f"/api/funds/disbursements/{disbursement_id}/pay", json=body,
                                  headers={**(headers or desk.finance), "Idempotency-Key": key or str(uuid.uuid4())})


async def approved(desk, grant: dict, *, amount: str = "300.00", requester: dict | None = None, **extra) -> dict:
    asked = await desk.requested(desk.open_case(), grant, amount=amount, headers=requester, **extra)
    assert (await desk.act(asked["id"], "approve")).status_code == 200
    return asked


def ledger_breaks(desk) -> list[str]:
    with db.transaction(desk.runtime.session_factory) as session:
        return [f"{r.code}: {b}" for r in ledger.check(session) for b in r.breaks]


def kind(response) -> str:
    return response.json()["type"].rsplit("/", 1)[1]


async def test_a_eur_grant_pays_a_rent_in_pln_once_and_announces_both_amounts_without_the_payee(desk, names):
    grant = await desk.create_grant(amount="1000.00")
    rent = await approved(desk, grant, payee={"name": names[0], "account": "PL61109010140000071219812874"})

    first = await pay(desk, rent["id"], in_pln("1290.00"), key="rent-1")
    replay = await pay(desk, rent["id"], in_pln("1290.00"), key="rent-1")
    other_body = await pay(desk, rent["id"], in_pln("1290.00", rate="4.2000"), key="rent-1")
    again = await pay(desk, rent["id"], in_pln("1290.00"))

    assert first.status_code == 200, first.text
    payment = first.json()["payment"]
    assert {k: payment[k] for k in ("paid_amount", "paid_currency", "fx_rate", "fx_source", "converted_amount",
                                    "difference", "difference_decision")} == {
        "paid_amount": "1290.00", "paid_currency": "PLN", "fx_rate": "4.3000", "fx_source": NBP,
        "converted_amount": "300.00", "difference": "0.00", "difference_decision": None}
    assert (replay.status_code, replay.json()) == (200, first.json())
    assert other_body.status_code == 422
    assert (again.status_code, kind(again)) == (409, "already-paid")
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("700.00", "0.00", "300.00")
    assert ledger_breaks(desk) == []
    assert desk.audit_actions(rent["id"])[-2:] == ["disbursement.pay.fx", "disbursement.pay-refused"]  # `again`

    shown = await desk.client.get(f"/api/funds/disbursements/{rent['id']}", headers=desk.finance)
    listed = await desk.client.get("/api/funds/disbursements", params={"status": "paid"}, headers=desk.finance)
    assert shown.json()["payment"]["paid_amount"] == "1290.00" and shown.json()["amount"] == "300.00"
    assert [d["payment"]["paid_currency"] for d in listed.json()["items"]] == ["PLN"]

    nc = await nats.connect(desk.runtime.settings.nats_url)
    try:
        js = patient_jetstream(nc)
        await desk.eventually(lambda: _count(js, "FUNDS", 3))
        sub = await js.pull_subscribe("rehab.funds.disbursement.paid", durable=None, stream="FUNDS")
        [message] = await sub.fetch(1, timeout=5)
    finally:
        await nc.close()
    data = json.loads(message.data)["data"]
    assert {k: data[k] for k in ("amount", "currency", "paid_amount", "paid_currency", "fx_rate",
                                 "converted_amount")} == {
        "amount": "300.00", "currency": "EUR", "paid_amount": "1290.00", "paid_currency": "PLN", "fx_rate": "4.3000",
        "converted_amount": "300.00"}
    assert "fx_source" not in data and NBP not in message.data.decode()  # typed text stays in funds
    assert names[0] not in message.data.decode() and "PL61109010140000071219812874" not in message.data.decode()


async def test_a_payment_worth_less_is_refused_until_the_rest_is_released_back_to_the_grant(desk):
    grant = await desk.create_grant(amount="1000.00")
    rent = await approved(desk, grant)

    silently = await pay(desk, rent["id"], in_pln("1279.25"), key="less-1")   # 297.50 EUR
    retried = await pay(desk, rent["id"], in_pln("1279.25"), key="less-1")
    wrong_word = await pay(desk, rent["id"], in_pln("1279.25", difference="approve"))
    assert (silently.status_code, kind(silently)) == (409, "fx-difference")
    problem = silently.json()
    assert {k: problem[k] for k in ("currency", "approved_amount", "converted_amount", "difference",
                                    "decision_needed")} == {
        "currency": "EUR", "approved_amount": "300.00", "converted_amount": "297.50", "difference": "2.50",
        "decision_needed": "release"}
    assert (retried.status_code, retried.json()) == (409, problem)
    assert (wrong_word.status_code, kind(wrong_word)) == (409, "fx-difference")
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("700.00", "300.00", "0.00")

    released = await pay(desk, rent["id"], in_pln("1279.25", difference="release"))
    assert released.status_code == 200, released.text
    payment = released.json()["payment"]
    assert (payment["converted_amount"], payment["difference"], payment["difference_decision"]) == (
        "297.50", "-2.50", "release")
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("702.50", "0.00", "297.50")
    assert ledger_breaks(desk) == []
    assert desk.audit_actions(rent["id"])[-1] == "disbursement.pay.fx-release"


async def test_a_payment_worth_more_needs_the_extra_approved_by_another_officer_from_money_available(desk):
    grant = await desk.create_grant(amount="1000.00")
    own = await approved(desk, grant, requester=desk.finance)   # requested by finance-anna, approved by boris
    dearer = in_pln("1303.33", difference="approve")               # 303.10 EUR: 3.10 more than approved

    silently = await pay(desk, own["id"], in_pln("1303.33"))
    by_requester = await pay(desk, own["id"], dearer, headers=desk.finance)
    assert (silently.status_code, kind(silently)) == (409, "fx-difference")
    assert (silently.json()["difference"], silently.json()["decision_needed"]) == ("3.10", "approve")
    assert (by_requester.status_code, kind(by_requester)) == (403, "four-eyes")
    assert "disbursement.four-eyes-refused" in desk.audit_actions(own["id"])  # an auditor sees the try
    assert (await desk.balanced_grant(grant["id"]))["committed"] == "300.00"

    by_another = await pay(desk, own["id"], dearer, headers=desk.finance_b)
    assert by_another.status_code == 200, by_another.text
    payment = by_another.json()["payment"]
    assert (payment["converted_amount"], payment["difference"], payment["difference_decision"]) == (
        "303.10", "3.10", "approve")
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("696.90", "0.00", "303.10")
    assert desk.audit_actions(own["id"])[-1] == "disbursement.pay.fx-approve"

    small = await desk.create_grant(amount="301.00")
    short_of = await approved(desk, small)
    short = await pay(desk, short_of["id"], dearer)
    assert (short.status_code, kind(short)) == (409, "grant-funds-short")
    state = await desk.balanced_grant(small["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("1.00", "300.00", "0.00")
    assert ledger_breaks(desk) == []


BAD_PAYMENTS = [
    ({"paid": {"amount": 1290, "currency": "PLN", "fx_rate": "4.3", "fx_source": NBP}}, "amount"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": 4.3, "fx_source": NBP}}, "fx_rate"),
    ({"paid": {"amount": "1290", "currency": "PLN", "fx_rate": "4.3", "fx_source": NBP}}, "decimal digits"),
    ({"paid": {"amount": "150000.00", "currency": "JPY", "fx_rate": "161", "fx_source": NBP}}, "no minor unit"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": "0", "fx_source": NBP}}, "greater than zero"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": "4,3", "fx_source": NBP}}, "fx_rate"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": "4.3"}}, "fx_source"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": "4.3", "fx_source": "x" * 201}}, "fx_source"),
    ({"paid": {"amount": "1290.00", "currency": "XYZ", "fx_rate": "4.3", "fx_source": NBP}}, "not one this system"),
    ({"paid": {"amount": "1290.00", "currency": "PLN", "fx_rate": "4.3", "fx_source": NBP, "payee": "x"}}, "<unknown member>"),
    ({"difference": "release"}, "another currency"),
    ({"paid": {"amount": "300.00", "currency": "EUR", "fx_rate": "1", "fx_source": NBP}}, "fx-same-currency"),
    ({"paid": {"amount": "0.01", "currency": "PLN", "fx_rate": "1000", "fx_source": NBP}}, "fx-converts-to-nothing"),
]


async def test_the_rate_source_is_kept_sealed_with_the_case_and_goes_with_its_erasure(desk, names):
    """Where a rate came from is typed text: a name typed there by mistake lies in no row and no database file in
    clear, and the case's erasure takes it with the payee; amounts and the rate stay for the accounts."""
    grant = await desk.create_grant(amount="1000.00")
    rent = await approved(desk, grant)
    source = f"rate told by {names[4]}"
    paid = await pay(desk, rent["id"], {**in_pln("1290.00"), "paid": {**in_pln("1290.00")["paid"],
                                                                       "fx_source": source}})
    assert paid.status_code == 200 and paid.json()["payment"]["fx_source"] == source
    listed = await desk.client.get("/api/funds/disbursements", params={"grant_id": grant["id"]}, headers=desk.finance)
    assert [d["payment"]["fx_source"] for d in listed.json()["items"]] == [source]

    for table in desk.runtime.tables.outbox.metadata.sorted_tables:
        for row in desk.rows(table):
            assert names[4] not in repr(row), table.name
    if desk.runtime.engine.url.get_backend_name() == "sqlite":
        database = desk.runtime.engine.url.database
        for path in (Path(database), Path(database + "-wal")):
            if path.exists():
                assert names[4].encode() not in path.read_bytes(), path.name

    desk.erase_case(rent["case_id"])
    gone = (await desk.client.get(f"/api/funds/disbursements/{rent['id']}", headers=desk.finance)).json()["payment"]
    assert gone["fx_source"] is None
    assert (gone["paid_amount"], gone["fx_rate"], gone["converted_amount"]) == ("1290.00", "4.3000", "300.00")
    # an approved aid of an erased case is paid in the grant's currency, or voided: its source has nowhere to go
    other = await approved(desk, grant)
    desk.erase_case(other["case_id"])
    refused = await pay(desk, other["id"], in_pln("1290.00"))
    assert (refused.status_code, kind(refused)) == (409, "case-erased")
    assert (await pay(desk, other["id"], {"method": "bank_transfer", "reference": "EUR-1"})).status_code == 200
    assert ledger_breaks(desk) == []


async def test_a_payment_with_bad_fx_is_422_and_moves_nothing(desk):
    grant = await desk.create_grant(amount="1000.00")
    rent = await approved(desk, grant)
    for change, says in BAD_PAYMENTS:
        refused = await pay(desk, rent["id"], {"method": "bank_transfer", "reference": "PL-1", **change})
        assert refused.status_code == 422, (change, refused.text)
        assert says in refused.text, (change, refused.text)
    state = await desk.balanced_grant(grant["id"])
    assert (state["committed"], state["paid"]) == ("300.00", "0.00")


async def test_the_reports_show_paid_in_the_grants_currency_and_in_each_currency_people_were_paid_in(desk):
    grant = await desk.create_grant(amount="2000.00", donor="+SUM(A1)")
    exact, less, more, plain = [await approved(desk, grant) for _ in range(4)]
    assert (await pay(desk, exact["id"], in_pln("1290.00"))).status_code == 200
    assert (await pay(desk, less["id"], in_pln("1279.25", difference="release"))).status_code == 200
    assert (await pay(desk, more["id"], in_pln("1303.33", difference="approve"), headers=desk.finance_b)
            ).status_code == 200
    assert (await desk.pay(plain["id"])).status_code == 200

    report = (await desk.client.get("/api/funds/reports/grants", headers=desk.finance)).json()
    [mine] = [g for g in report["grants"] if g["id"] == grant["id"]]
    assert (mine["paid"], mine["committed"], mine["available"]) == ("1200.60", "0.00", "799.40")
    assert mine["paid_by_currency"] == {"EUR": "300.00", "PLN": "3872.58"}
    assert (mine["fx_released"], mine["fx_approved"]) == ("2.50", "3.10")
    [month] = mine["by_month"]
    assert (month["approved"], month["released"], month["paid"], month["payments"]) == (
        "1203.10", "2.50", "1200.60", 4)

    rows = list(csv.DictReader(io.StringIO(
        (await desk.client.get("/api/funds/reports/grants", params={"format": "csv"}, headers=desk.finance)).text)))
    [totals] = [r for r in rows if r["grant_id"] == grant["id"] and r["month"] == ""]
    assert totals["donor"] == "'+SUM(A1)" and (totals["fx_released"], totals["fx_approved"]) == ("2.50", "3.10")
    assert totals["paid_by_currency"] == "EUR 300.00; PLN 3872.58"

    donor = (await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                   headers=desk.finance)).json()
    # four people in all: a donor sees neither the totals nor the differences (they would be those four's to the cent)
    assert (donor["paid"], donor["fx_released"], donor["fx_approved"]) == (None, None, None)
    # four people paid since the grant began: the statement withholds its totals, and with them every currency
    assert not donor["totals_shown"] and donor["totals_last_shown"] is None
    assert (donor["paid_by_currency"], donor["paid_by_currency_suppressed"]) == ({}, None)
    assert ledger_breaks(desk) == []


async def test_a_rate_far_from_what_is_expected_is_refused_and_nothing_is_paid(desk):
    """An outside review's find: one officer typing a rate of their choosing settled a 100.00 EUR approval with
    50,000 PLN (no decision, no second person), or gave almost all of it back to the grant at a huge rate."""
    grant = await desk.create_grant(amount="1000.00")
    small = await approved(desk, grant, amount="100.00")

    exact = await pay(desk, small["id"], in_pln("50000.00", rate="500"))
    released = await pay(desk, small["id"], in_pln("1000000.00", rate="99999999", difference="release"))
    inverted = await pay(desk, small["id"], in_pln("23.53", rate="0.2353"))  # EUR per PLN, the wrong way round

    for refused in (exact, released, inverted):
        assert (refused.status_code, kind(refused)) == (409, "fx-rate-unusual"), refused.text
    assert (exact.json()["lowest"], exact.json()["highest"]) == ("2.125", "8.5")  # a factor of 2 of about 4.25
    assert "units of PLN for one EUR" in exact.json()["detail"]
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("900.00", "100.00", "0.00")
    assert (await pay(desk, small["id"], in_pln("430.00", rate="4.3000"))).status_code == 200  # a real rate


async def test_a_payer_alone_cannot_give_back_more_than_a_tenth_of_an_approval_at_a_rate_of_their_choosing(desk):
    """An outside review's find: with no colleague's rate to hold it against, a rate up to twice the yardstick is
    taken; 1,290 PLN (300.00 EUR at 4.30) recorded at 8.50 is worth 151.76, and releasing the other 148.24 to the
    grant let them be approved and spent again. Beyond a tenth either way the payment is refused, decision or not."""
    grant = await desk.create_grant(amount="1000.00")
    rent = await approved(desk, grant)

    halved = await pay(desk, rent["id"], in_pln("1290.00", rate="8.5000", difference="release"))
    undecided = await pay(desk, rent["id"], in_pln("1290.00", rate="8.5000"))

    for refused in (halved, undecided):
        assert (refused.status_code, kind(refused)) == (409, "fx-release-too-large"), refused.text
        assert {k: refused.json()[k] for k in ("approved_amount", "converted_amount", "difference", "most")} == {
            "approved_amount": "300.00", "converted_amount": "151.76", "difference": "148.24", "most": "30.00"}
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("700.00", "300.00", "0.00")
    assert (await pay(desk, rent["id"], in_pln("1290.00", rate="4.6000", difference="release"))).status_code == 200
    state = await desk.balanced_grant(grant["id"])  # 1290 / 4.6 = 280.43: 19.57 back, within the tenth
    assert (state["available"], state["committed"], state["paid"]) == ("719.57", "0.00", "280.43")
    assert ledger_breaks(desk) == []


async def test_once_another_officer_has_paid_in_the_currency_a_rate_is_held_within_ten_percent_of_theirs(desk):
    grant = await desk.create_grant(amount="2000.00")
    first, second, third = [await approved(desk, grant, amount="100.00") for _ in range(3)]

    # anna pays at 4.30; boris's rate is then held against hers, and hers never against her own
    assert (await pay(desk, first["id"], in_pln("430.00", rate="4.3000"))).status_code == 200
    far = await pay(desk, second["id"], in_pln("480.00", rate="4.8000"), headers=desk.finance_b)
    near = await pay(desk, second["id"], in_pln("440.00", rate="4.4000"), headers=desk.finance_b)
    own = await pay(desk, third["id"], in_pln("700.00", rate="7.0000", difference="release"))

    assert (far.status_code, kind(far)) == (409, "fx-rate-unusual")
    assert "4.3, the rate other finance staff paid PLN at lately" in far.json()["detail"]
    assert (far.json()["lowest"], far.json()["highest"]) == ("3.87", "4.73")
    assert near.status_code == 200, near.text
    # anna's next rate is held against boris's 4.40 (within 10%: 3.96 to 4.84), not against her own 4.30
    assert (own.status_code, kind(own)) == (409, "fx-rate-unusual") and "4.4," in own.json()["detail"]
    assert ledger_breaks(desk) == []
