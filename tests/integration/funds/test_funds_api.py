"""The funds API as finance staff and caseworkers use it: grants, money as decimal strings, four-eyes approval and
the grant's rules, the disbursement lifecycle in the ledger, idempotent requests and payments, and who sees what."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from kit import db
from services.funds import events
from services.funds.models import Disbursement, Grant, Payment
from tests.integration.funds.conftest import CASEWORKER
from tests.support.apps import bearer

pytestmark = pytest.mark.integration


async def test_a_grant_is_funded_with_its_budget_and_shown_in_decimal_strings(desk):
    grant = await desk.create_grant(amount="2500.50", currency="EUR", categories=["medical", "legal", "medical"])
    assert (grant["budget"], grant["available"], grant["committed"], grant["paid"]) == (
        "2500.50", "2500.50", "0.00", "0.00")
    assert grant["categories"] == ["legal", "medical"]
    assert await desk.balanced_grant(grant["id"]) == grant

    listed = await desk.client.get("/api/funds/grants", headers=desk.finance)
    assert [g["id"] for g in listed.json()["items"]] == [grant["id"]]

    taken = await desk.client.post("/api/funds/grants", headers=desk.finance, json={
        "donor": "Other", "code": grant["code"], "currency": "EUR", "amount": "1.00",
        "starts_on": "2026-01-01", "ends_on": "2026-12-31", "categories": ["legal"]})
    assert (taken.status_code, taken.json()["type"].rsplit("/", 1)[1]) == (409, "grant-code-taken")
    for other_case in (grant["code"].lower(), grant["code"].upper()):  # not another donor's grant by letter case
        folded = await desk.client.post("/api/funds/grants", headers=desk.finance, json={
            "donor": "Other", "code": other_case, "currency": "EUR", "amount": "1.00",
            "starts_on": "2026-01-01", "ends_on": "2026-12-31", "categories": ["legal"]})
        assert (folded.status_code, folded.json()["type"].rsplit("/", 1)[1]) == (409, "grant-code-taken")
        assert grant["code"] in folded.json()["detail"]  # the code that exists, as it is written
    # and the database's own wall behind that check, for two officers creating both at the same moment
    twin = Grant(id=str(uuid.uuid4()), code=grant["code"].lower(), donor="", currency="EUR", budget_minor=100,
                 starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31), categories=["legal"], created_by="finance",
                 created_at=datetime.now(UTC))
    with pytest.raises(IntegrityError), db.transaction(desk.runtime.session_factory) as session:
        session.add(twin)

    yen = await desk.create_grant(currency="JPY", amount="150000")
    assert yen["available"] == "150000"
    assert desk.audit_actions(grant["id"]) == ["grant.create"]


BAD_GRANTS = [
    ({"amount": 300}, "amount"),                          # a JSON number is never money
    ({"amount": 300.5}, "amount"),
    ({"amount": "300"}, "decimal digits"),                 # EUR needs "300.00"
    ({"amount": "300.001"}, "decimal digits"),
    ({"amount": "-300.00"}, "positive"),
    ({"amount": "0.00"}, "greater than zero"),
    ({"currency": "XYZ"}, "not one this system pays in"),
    ({"ends_on": "2025-01-01"}, "ends_on"),
    ({"categories": ["medical", "astrology"]}, "categories"),
    ({"categories": []}, "categories"),
    ({"note": "unknown field"}, "<unknown member>"),  # a member's name is not written back (it may be data)
    ({"donor": "Fund\x00"}, "donor"),                      # a NUL byte never reaches the database
]


async def test_a_grant_with_bad_money_or_terms_is_422_and_creates_nothing(desk):
    for change, where in BAD_GRANTS:
        body = {"donor": "Fund", "code": "G-X", "currency": "EUR", "amount": "300.00", "starts_on": "2026-01-01",
                "ends_on": "2026-12-31", "categories": ["medical"], **change}
        response = await desk.client.post("/api/funds/grants", json=body, headers=desk.finance)
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert where in response.text, (change, response.text)
    listed = await desk.client.get("/api/funds/grants", headers=desk.finance)
    assert listed.json()["items"] == []


async def test_only_finance_manages_grants_and_only_staff_request_aid(desk):
    for role in ("caseworker", "admin", "auditor"):
        refused = await desk.client.post("/api/funds/grants", json={}, headers=desk.as_(role))
        assert refused.status_code == 403
        assert (await desk.client.get("/api/funds/grants", headers=desk.as_(role))).status_code == 403
    assert (await desk.client.get("/api/funds/grants")).status_code == 401
    grant = await desk.create_grant()
    case_id = desk.open_case()
    partner = bearer(desk.issuer, "partner", sub="clinic-client", partner_id=str(uuid.uuid4()))
    assert (await desk.request(case_id, grant, headers=desk.as_("auditor"))).status_code == 403
    assert (await desk.request(case_id, grant, headers=desk.as_("admin"))).status_code == 403
    mine = await desk.requested(case_id, grant)
    for action in ("approve", "reject", "void"):
        assert (await desk.act(mine["id"], action, headers=desk.caseworker)).status_code == 403
    assert (await desk.pay(mine["id"], headers=desk.caseworker)).status_code == 403
    assert (await desk.client.get("/api/funds/reports/grants", headers=desk.caseworker)).status_code == 403
    assert (await desk.client.get("/api/funds/cost-estimates", headers=desk.caseworker)).status_code == 403
    assert (await desk.client.get(f"/api/funds/disbursements/{mine['id']}", headers=partner)).status_code == 403

    # BACKBONE, Audit: every refused authorisation, here too (the gateway refuses these roles first, so a caller came
    # past it): who, and the method and route's template; never the path sent, with its ids.
    refusals = {(row["actor"], row["target_id"]) for row in desk.rows(desk.runtime.tables.audit)
                if row["action"] == "access.refused"}
    assert {("auditor-1", "POST /api/funds/grants"), ("admin-1", "GET /api/funds/grants"),
            ("clinic-client", "GET /api/funds/disbursements/{disbursement_id}")} <= refusals, refusals
    assert not any(mine["id"] in target for _, target in refusals)


async def test_a_request_needs_string_money_in_the_grants_currency_and_an_idempotency_key(desk):
    grant = await desk.create_grant(currency="EUR")
    case_id = desk.open_case()
    number = await desk.request(case_id, grant, amount=100)
    assert number.status_code == 422 and "amount" in number.json()["detail"]
    assert (await desk.request(case_id, grant, amount="100")).status_code == 422
    mismatch = await desk.request(case_id, grant, amount="100.00", currency="USD")
    assert (mismatch.status_code, mismatch.json()["type"].rsplit("/", 1)[1]) == (422, "currency-mismatch")
    blank = await desk.request(case_id, grant, purpose="\u200b \u2060")  # nothing a reader, or an auditor, sees
    assert blank.status_code == 422 and "purpose" in blank.json()["detail"]
    body = {"case_id": case_id, "grant_id": grant["id"], "category": "medical", "amount": "100.00",
            "currency": "EUR", "purpose": "x"}
    no_key = await desk.client.post("/api/funds/disbursements", json=body, headers=desk.caseworker)
    assert no_key.status_code == 400 and "Idempotency-Key" in no_key.json()["detail"]
    assert desk.rows(Disbursement) == []


async def test_a_request_is_refused_for_an_unknown_closed_or_erased_case_or_an_unknown_grant(desk):
    grant = await desk.create_grant()
    unknown = await desk.request(str(uuid.uuid4()), grant, headers=desk.finance)  # a caseworker: need-to-know, 403
    assert (unknown.status_code, unknown.json()["type"].rsplit("/", 1)[1]) == (409, "case-unknown")
    closed, erased = desk.open_case(), desk.open_case()
    desk.close_case(closed)
    desk.erase_case(erased)
    assert (await desk.request(closed, grant)).json()["type"].endswith("/case-closed")
    assert (await desk.request(erased, grant)).json()["type"].endswith("/case-erased")
    no_grant = await desk.request(desk.open_case(), {**grant, "id": str(uuid.uuid4())})
    assert (no_grant.status_code, no_grant.json()["type"].rsplit("/", 1)[1]) == (409, "grant-unknown")


async def test_four_eyes_the_requester_never_approves(desk):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    own = await desk.requested(case_id, grant, headers=desk.finance)      # finance may request too
    refused = await desk.act(own["id"], "approve", headers=desk.finance)
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/four-eyes") and "requested" in refused.json()["detail"]
    assert (await desk.balanced_grant(grant["id"]))["committed"] == "0.00"
    # the try is in the trail, as every refused authorisation is: an auditor sees who tried to approve their own
    trail = await desk.client.get("/api/funds/audit", params={"target_id": own["id"]}, headers=desk.as_("auditor"))
    tries = [e["actor"] for e in trail.json()["items"] if e["action"] == "disbursement.four-eyes-refused"]
    assert trail.status_code == 200 and tries == [own["requested_by"]], trail.text
    approved = await desk.act(own["id"], "approve", headers=desk.finance_b)
    assert approved.status_code == 200 and approved.json()["approved_by"] == "finance-boris"


async def test_a_caseworker_of_the_case_who_also_holds_finance_neither_approves_nor_pays_its_aid(desk):
    """An outside review's find: an admin gave a caseworker the finance role too (a small organisation may), and
    they approved aid on their own case; SPEC §2: a caseworker may not approve or pay aid. Another officer does."""
    grant = await desk.create_grant()
    both = bearer(desk.issuer, "caseworker", "finance", sub="caseworker-and-finance-vera")
    case_id = desk.open_case(assignees=("caseworker-and-finance-vera",))
    asked = await desk.requested(case_id, grant, headers=desk.finance)
    # Said before it is tried, so a console offers neither step: in her list and her read, not in a colleague's.
    listed = await desk.client.get("/api/funds/disbursements", params={"status": "requested"}, headers=both)
    assert [d["on_callers_case"] for d in listed.json()["items"] if d["id"] == asked["id"]] == [True]
    assert (await desk.client.get(f"/api/funds/disbursements/{asked['id']}", headers=both)).json()["on_callers_case"]
    assert asked["on_callers_case"] is False
    colleague = await desk.client.get("/api/funds/disbursements", params={"status": "requested"}, headers=desk.finance)
    assert not any(d["on_callers_case"] for d in colleague.json()["items"])

    refused = await desk.act(asked["id"], "approve", headers=both)
    assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (403, "own-case")
    assert "separation of duties" in refused.json()["detail"] and "or were" in refused.json()["detail"]
    assert (await desk.balanced_grant(grant["id"]))["committed"] == "0.00"
    assert (await desk.act(asked["id"], "approve")).status_code == 200           # boris, on no case of his
    unpaid = await desk.pay(asked["id"], headers=both)
    assert (unpaid.status_code, unpaid.json()["type"].rsplit("/", 1)[1]) == (403, "own-case")
    trail = await desk.client.get("/api/funds/audit", params={"target_id": asked["id"]}, headers=desk.as_("auditor"))
    assert [e["actor"] for e in trail.json()["items"] if e["action"] == "disbursement.four-eyes-refused"] == [
        "caseworker-and-finance-vera"] * 2
    desk.assign(case_id, CASEWORKER)  # she leaves the case a moment (an outside review's next find): still refused
    left = await desk.pay(asked["id"], headers=both)
    assert (left.status_code, left.json()["type"].rsplit("/", 1)[1]) == (403, "own-case")
    assert (await desk.pay(asked["id"])).status_code == 200  # anna, never on the case


async def test_approval_is_refused_by_the_grants_rules_and_the_case(desk):
    small = await desk.create_grant(amount="150.00", categories=["medical"])
    case_id = desk.open_case()
    first = await desk.requested(case_id, small, amount="100.00")
    second = await desk.requested(case_id, small, amount="100.00")
    assert (await desk.act(first["id"], "approve")).status_code == 200
    short = await desk.act(second["id"], "approve")
    assert short.status_code == 409
    assert short.json()["type"].endswith("/grant-funds-short") and "50.00 EUR available" in short.json()["detail"]
    # the refused try is in the trail, as a refused payment is (an outside review's find); so is approving twice
    assert desk.audit_actions(second["id"]) == ["disbursement.request", "disbursement.approve-refused"]
    assert (await desk.act(first["id"], "approve")).json()["type"].endswith("/invalid-transition")
    assert desk.audit_actions(first["id"])[-2:] == ["disbursement.approve", "disbursement.approve-refused"]

    # A category the grant does not pay for is refused when asked, not by the approver days later.
    not_allowed = await desk.request(case_id, small, amount="10.00", category="housing")
    assert (not_allowed.status_code, not_allowed.json()["type"].rsplit("/", 1)[1]) == (409, "grant-category")
    assert "funds: medical" in not_allowed.json()["detail"]

    past = date.today() - timedelta(days=400)
    expired = await desk.create_grant(starts_on=str(past), ends_on=str(past + timedelta(days=365)))
    # A grant that has ended, the same: refused when asked (one that ends between asking and approving, at approval).
    outside = await desk.request(case_id, expired, amount="10.00")
    assert (outside.status_code, outside.json()["type"].rsplit("/", 1)[1]) == (409, "grant-period")
    assert "ended on" in outside.json()["detail"]

    grant = await desk.create_grant()
    closing, erasing = desk.open_case(), desk.open_case()
    for_closed = await desk.requested(closing, grant)
    for_erased = await desk.requested(erasing, grant)
    desk.close_case(closing)
    desk.erase_case(erasing)
    assert (await desk.act(for_closed["id"], "approve")).json()["type"].endswith("/case-closed")
    assert (await desk.act(for_erased["id"], "approve")).json()["type"].endswith("/case-erased")
    for refused in (for_closed, for_erased):
        assert desk.audit_actions(refused["id"])[-1] == "disbursement.approve-refused"
    for g in (small, expired, grant):
        await desk.balanced_grant(g["id"])
    assert (await desk.grant(small["id"]))["committed"] == "100.00"


async def test_the_lifecycle_moves_money_through_the_ledger_and_is_announced_and_audited(desk):
    grant = await desk.create_grant(amount="1000.00")
    case_id = desk.open_case()
    paid = await desk.requested(case_id, grant, amount="300.00")
    rejected = await desk.requested(case_id, grant, amount="200.00")
    voided = await desk.requested(case_id, grant, amount="100.00")
    never_approved = await desk.requested(case_id, grant, amount="50.00")

    for d in (paid, rejected, voided):
        assert (await desk.act(d["id"], "approve")).status_code == 200
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("400.00", "600.00", "0.00")

    assert (await desk.pay(paid["id"], reference="SEPA-2026-0001")).json()["payment"]["reference"] == "SEPA-2026-0001"
    assert (await desk.act(rejected["id"], "reject")).json()["status"] == "rejected"
    assert (await desk.act(voided["id"], "void")).json()["status"] == "voided"
    assert (await desk.act(never_approved["id"], "void")).json()["voided_by"] == "finance-boris"
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"], state["paid"]) == ("700.00", "0.00", "300.00")

    too_late = await desk.act(paid["id"], "void")
    assert (too_late.status_code, too_late.json()["type"].rsplit("/", 1)[1]) == (409, "already-paid")
    not_approved = await desk.pay(never_approved["id"])
    assert not_approved.status_code == 409

    outbox = desk.rows(desk.runtime.tables.outbox)
    subjects = [row["subject"] for row in outbox if row["aggregate_id"] == paid["id"]]
    assert subjects == [events.DISBURSEMENT_REQUESTED, events.DISBURSEMENT_APPROVED, events.DISBURSEMENT_PAID]
    assert events.DISBURSEMENT_REJECTED in {r["subject"] for r in outbox if r["aggregate_id"] == rejected["id"]}
    assert events.DISBURSEMENT_VOIDED in {r["subject"] for r in outbox if r["aggregate_id"] == voided["id"]}
    assert desk.audit_actions(paid["id"]) == ["disbursement.request", "disbursement.approve", "disbursement.pay"]
    assert desk.audit_actions(rejected["id"])[-1] == "disbursement.reject"
    assert desk.audit_actions(voided["id"])[-1] == "disbursement.void"
    with db.transaction(desk.runtime.session_factory) as session:
        assert desk.runtime.audit.verify(session)["ok"]

    listed = await desk.client.get("/api/funds/disbursements", params={"status": "paid"}, headers=desk.finance)
    assert [d["id"] for d in listed.json()["items"]] == [paid["id"]]
    by_grant = await desk.client.get("/api/funds/disbursements", params={"grant_id": grant["id"], "limit": 3},
                                     headers=desk.finance)
    page_two = await desk.client.get("/api/funds/disbursements", headers=desk.finance,
                                     params={"grant_id": grant["id"], "limit": 3,
                                             "cursor": by_grant.json()["next_cursor"]})
    seen = [d["id"] for d in by_grant.json()["items"] + page_two.json()["items"]]
    assert sorted(seen) == sorted(d["id"] for d in (paid, rejected, voided, never_approved))
    assert page_two.json()["next_cursor"] is None


async def test_the_same_key_and_body_returns_the_first_response_and_creates_once(desk):
    grant = await desk.create_grant()
    case_id = desk.open_case(assignees=("caseworker-olga", "caseworker-ivan"))
    key = "request-1"
    first = await desk.request(case_id, grant, key=key)
    again = await desk.request(case_id, grant, key=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    other_body = await desk.request(case_id, grant, key=key, amount="999.00")
    assert other_body.status_code == 422 and other_body.json()["type"].endswith("/idempotency-key-reused")
    # keys belong to their caller: the same key from someone else is a new request
    other_caller = await desk.request(case_id, grant, key=key, headers=desk.as_("caseworker", "caseworker-ivan"))
    assert other_caller.status_code == 201 and other_caller.json()["id"] != first.json()["id"]
    assert len(desk.rows(Disbursement)) == 2

    # honoured on any other POST that sends one: a retried approval answers as the first one did
    approve = {**desk.finance_b, "Idempotency-Key": "approve-1"}
    url = f"/api/funds/disbursements/{first.json()['id']}/approve"
    approved, retried = await desk.client.post(url, headers=approve), await desk.client.post(url, headers=approve)
    assert approved.status_code == retried.status_code == 200 and retried.json() == approved.json()
    assert desk.audit_actions(first.json()["id"]).count("disbursement.approve") == 1


async def test_ten_concurrent_pays_with_one_key_pay_once_the_rest_in_flight_or_replayed_and_a_second_key_is_409(desk):
    grant = await desk.create_grant(amount="1000.00")
    request = await desk.requested(desk.open_case(), grant, amount="250.00")
    assert (await desk.act(request["id"], "approve")).status_code == 200

    answers = await asyncio.gather(*(desk.pay(request["id"], key="pay-once") for _ in range(10)))
    paid = [a for a in answers if a.status_code == 200]
    in_flight = [a for a in answers if a.status_code == 409]  # SPEC §4: the first with the key is still running
    assert paid and len(paid) + len(in_flight) == 10
    assert all(a.json() == paid[0].json() for a in paid) and paid[0].json()["status"] == "paid"
    assert all(a.json()["type"].endswith("/idempotency-key-in-flight") for a in in_flight)
    assert len(desk.rows(Payment)) == 1

    second_key = await desk.pay(request["id"], key="pay-twice")
    assert second_key.status_code == 409 and second_key.json()["type"].endswith("/already-paid")
    state = await desk.balanced_grant(grant["id"])
    assert (state["paid"], state["committed"], state["available"]) == ("250.00", "0.00", "750.00")
    assert desk.audit_actions(request["id"]).count("disbursement.pay") == 1
    # the try to pay it twice is in the trail (an outside review's find): an auditor sees who tried, and when
    assert desk.audit_actions(request["id"]).count("disbursement.pay-refused") == 1
    assert (await desk.pay(request["id"], key="pay-twice")).headers["idempotent-replayed"] == "true"
    assert desk.audit_actions(request["id"]).count("disbursement.pay-refused") == 1  # a replay is not another try


async def test_fifty_concurrent_approvals_never_overspend_the_grant(desk):
    grant = await desk.create_grant(amount="2000.00")       # room for exactly 20 of 100.00
    case_id = desk.open_case()
    requests = [await desk.requested(case_id, grant, amount="100.00") for _ in range(50)]
    answers = await asyncio.gather(*(desk.act(r["id"], "approve") for r in requests))
    codes = [a.status_code for a in answers]
    assert codes.count(200) == 20 and codes.count(409) == 30
    assert all(a.json()["type"].endswith("/grant-funds-short") for a in answers if a.status_code == 409)
    state = await desk.balanced_grant(grant["id"])
    assert (state["available"], state["committed"]) == ("0.00", "2000.00")


async def test_payee_details_are_sealed_shown_to_finance_only_and_each_read_audited(desk, names):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    payee = {"name": names[0], "account": "LT60 1010 0123 4567 8901"}
    created = await desk.requested(case_id, grant, payee=payee, purpose=f"rent for {names[1]}")
    assert created["has_payee"] and "payee" not in created

    for_finance = await desk.client.get(f"/api/funds/disbursements/{created['id']}", headers=desk.finance)
    assert for_finance.json()["payee"] == payee and names[1] in for_finance.json()["purpose"]
    for_caseworker = await desk.client.get(f"/api/funds/disbursements/{created['id']}", headers=desk.caseworker)
    assert for_caseworker.json()["payee"] is None and for_caseworker.json()["has_payee"]
    assert desk.audit_actions(created["id"]) == ["disbursement.request", "payee.read", "disbursement.read"]

    by_case = await desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=desk.caseworker)
    assert [d["id"] for d in by_case.json()["items"]] == [created["id"]] and "payee" not in by_case.json()["items"][0]
    everything = await desk.client.get("/api/funds/disbursements", headers=desk.caseworker)
    assert everything.status_code == 403 and "case_id" in everything.json()["detail"]

    # at rest: not in any row of any table (the idempotency store seals its copy of the response too) ...
    for table in desk.runtime.tables.outbox.metadata.sorted_tables:
        for row in desk.rows(table):
            text = repr(row)
            assert names[0] not in text and names[1] not in text and "LT60" not in text, table.name
    # ... nor anywhere in the bytes of an embedded database's files
    database = desk.runtime.engine.url.database
    if desk.runtime.engine.url.get_backend_name() == "sqlite":
        for path in (Path(database), Path(database + "-wal")):
            if path.exists():
                stored = path.read_bytes()
                assert names[0].encode() not in stored and b"LT60 1010" not in stored


async def test_erasure_shreds_payee_and_purpose_and_keeps_the_sums(desk, names):
    grant = await desk.create_grant(amount="1000.00")
    erased_case, other_case = desk.open_case(), desk.open_case()
    paid = await desk.requested(erased_case, grant, amount="300.00", payee={"name": names[2], "account": "PL61 1090"})
    pending = await desk.requested(erased_case, grant, amount="100.00", payee={"name": names[2], "account": "PL61 1090"})
    kept = await desk.requested(other_case, grant, amount="50.00", payee={"name": names[3], "account": "LT01"})
    for d in (paid, pending):
        assert (await desk.act(d["id"], "approve")).status_code == 200
    assert (await desk.pay(paid["id"])).status_code == 200

    desk.erase_case(erased_case)

    gone = (await desk.client.get(f"/api/funds/disbursements/{paid['id']}", headers=desk.finance)).json()
    assert gone["shredded"] and gone["payee"] is None and gone["purpose"] is None and not gone["has_payee"]
    # the payment's reference may name the payee: it went with the case (test_funds_payment_reference.py)
    assert (gone["amount"], gone["status"], gone["payment"]["reference"]) == ("300.00", "paid", None)
    still = (await desk.client.get(f"/api/funds/disbursements/{kept['id']}", headers=desk.finance)).json()
    assert still["payee"]["name"] == names[3]
    state = await desk.balanced_grant(grant["id"])
    assert (state["paid"], state["committed"]) == ("300.00", "100.00")
    # an approved amount for an erased case can still be given back
    assert (await desk.act(pending["id"], "void")).status_code == 200
    assert (await desk.grant(grant["id"]))["committed"] == "0.00"
    assert "case.shred" in desk.audit_actions(erased_case)


async def test_the_api_and_event_documents_describe_funds(desk):
    openapi = (await desk.client.get("/openapi.json")).json()
    assert {"/api/funds/grants", "/api/funds/disbursements", "/api/funds/disbursements/{disbursement_id}/approve",
            "/api/funds/disbursements/{disbursement_id}/pay", "/api/funds/reports/grants", "/api/funds/reports/donor",
            "/api/funds/cost-estimates", "/api/funds/cost-estimates/{referral_id}/request"} <= set(openapi["paths"])
    pay = openapi["paths"]["/api/funds/disbursements/{disbursement_id}/pay"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in pay["parameters"])
    asyncapi = (await desk.client.get("/asyncapi.json")).json()
    assert {c["address"] for c in asyncapi["channels"].values()} == {*events.SUBJECT_OF_STATUS.values(),
                                                                      events.CASE_OPENED_BY_BREAK_GLASS}


async def test_malformed_ids_and_cursors_are_refused_before_the_database(desk):
    # An id in the path that no id could be names nothing: 404, as in every service (an outside review found funds
    # answering 422 where the others said 404); a malformed filter is 422.
    for path in ("/api/funds/grants/not-a-uuid", "/api/funds/grants/{" + str(uuid.uuid4()) + "}x"):
        malformed = await desk.client.get(path, headers=desk.finance)
        assert (malformed.status_code, malformed.json()["type"].rsplit("/", 1)[1]) == (404, "not-found"), path
    assert (await desk.client.get("/api/funds/reports/donor?grant_id=x", headers=desk.finance)).status_code == 422
    nul = await desk.client.get("/api/funds/disbursements/%00", headers=desk.finance)  # refused by kit.http, first
    assert nul.status_code == 400 and nul.json()["type"].endswith("/nul-character")
    assert (await desk.act("1%27%20OR%201=1", "approve")).status_code == 404
    for cursor in ("garbage", "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHwAAA", "MjAyNi0xMy0wMXxhYmM"):
        answer = await desk.client.get("/api/funds/disbursements", params={"cursor": cursor}, headers=desk.finance)
        assert answer.status_code == 400 and answer.json()["type"].endswith("/invalid-cursor"), cursor
    unknown = await desk.client.get(f"/api/funds/disbursements/{uuid.uuid4()}", headers=desk.finance)
    assert unknown.status_code == 404
