"""The whole system as a new user meets it: `rehab up` as processes, then only the gateway's public paths.

One long story, because that is how the parts meet: a caseworker registers a person and records consent, refers
them to a clinic, the clinic works through the partner API, finance pays aid from a grant, the case timeline shows
it all, the case is erased; then the system is stopped with SIGTERM, and every file it wrote is searched for the
person's name, phone and notes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from tests.support.system import ADMIN_PASSWORD, System, activated, eventually, sign_in

pytestmark = pytest.mark.e2e

NAME = "Zyrmantas Qwillfeather"
NAME_CYRILLIC = "Зырмантас Квілфезер"
PHONE = "+370-699-31415"
SAFETY_NOTE = "Marigoldtreacle lives above the bakery"
NEED_NOTE = "Xanthopsia-Quibble clinic follow-up"
PACKET_NOTE = "Brambleknot-Oxide prefers mornings"
PAYEE_ACCOUNT = "LT601010012345678901"
SECRETS = [NAME, NAME_CYRILLIC, PHONE, SAFETY_NOTE, NEED_NOTE, PACKET_NOTE, PAYEE_ACCOUNT, "Qwillfeather", "Квілфезер"]


def test_the_whole_story_through_the_gateway(system: System) -> None:
    base = system.url
    admin = sign_in(base, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    password = "Long-enough-passphrase-42"
    for username, roles in [("casey", ["caseworker"]), ("fin1", ["finance"]), ("fin2", ["finance"]), ("audrey", ["auditor"])]:
        made = admin.post("/api/admin/users", json={"username": username, "password": password, "roles": roles})
        assert made.status_code == 201, made.text
    caseworker = sign_in(base, grant_type="password", username="casey", password=password)
    finance = sign_in(base, grant_type="password", username="fin1", password=password)
    auditor = sign_in(base, grant_type="password", username="audrey", password=password)

    # The partner directory and a clinic's API client.
    clinic = admin.post("/api/referrals/partners", json={
        "name": "Clinic Vilnius", "category": "medical", "countries": ["LT"], "cities": ["Vilnius"],
        "languages": ["be", "ru"], "contact_email": "intake@clinic.example"})
    assert clinic.status_code == 201, clinic.text
    clinic_id = clinic.json()["id"]
    creds = admin.post("/api/admin/clients", json={"partner_id": clinic_id, "name": "clinic api"})
    assert creds.status_code == 201, creds.text
    partner = sign_in(base, grant_type="client_credentials", **activated(base, creds.json()))

    # A caseworker registers a person, then the same person written in another script: a duplicate warning.
    case = caseworker.post("/api/intake/cases", json={
        "full_name": NAME_CYRILLIC, "date_of_birth": "1988-04-12", "country": "LT", "city": "Vilnius",
        "contact": {"phone": PHONE}, "safety_notes": SAFETY_NOTE, "articles": ["342"]})
    assert case.status_code == 201, case.text
    case = case.json()
    assert case["status"] == "open" and case["reference"].startswith("BY-")
    again = caseworker.post("/api/intake/cases", json={"full_name": "ZYRMANTAS  kvilfezer", "date_of_birth": "1988-04-12"})
    assert again.status_code == 201, again.text
    assert case["id"] in [d["id"] for d in again.json()["possible_duplicates"]]
    found = caseworker.post("/api/intake/cases/search", json={"q": "Квілфезер"})
    assert case["id"] in [c["id"] for c in found.json()["items"]]
    assert "full_name" not in found.json()["items"][0]

    need = caseworker.post(f"/api/intake/cases/{case['id']}/needs",
                           json={"category": "medical", "urgency": "high", "notes": NEED_NOTE})
    assert need.status_code == 201, need.text
    consent = caseworker.put(f"/api/intake/cases/{case['id']}/consent", json={
        "categories": ["medical"], "share_contact": True, "share_health": False, "method": "written", "expires_on": None})
    assert consent.status_code in (200, 201), consent.text

    # The referral service learns the case and its consent from intake's events.
    packet = {"display_name": "Z. Q.", "language": "be", "note": PACKET_NOTE, "contact": PHONE}

    def refer():  # noqa: ANN202
        answer = caseworker.post("/api/referrals/referrals", json={
            "case_id": case["id"], "partner_id": clinic_id, "need_category": "medical", "packet": packet})
        return answer if answer.status_code == 201 else None

    referral = eventually(refer).json()
    assert referral["status"] == "sent"

    # The clinic sees it through the partner API, with the packet, and works through it.
    seen = partner.get("/api/partner/referrals")
    assert [r["id"] for r in seen.json()["items"]] == [referral["id"]]
    assert partner.get(f"/api/partner/referrals/{referral['id']}").json()["packet"]["note"] == PACKET_NOTE
    # (a clinic whose system writes GUIDs in upper case finds it as well: ids are read in either case, RFC 9562)
    assert partner.get(f"/api/partner/referrals/{referral['id'].upper()}").json()["id"] == referral["id"]
    assert partner.get("/api/intake/cases").status_code == 403
    for step, body in [("accept", None), ("start", None),
                       ("complete", {"outcome": "treated", "cost_estimate": {"amount": "120.00", "currency": "EUR"}})]:
        answer = partner.post(f"/api/partner/referrals/{referral['id'].upper()}/{step}", json=body)
        assert answer.status_code == 200, (step, answer.text)
    assert partner.post(f"/api/partner/referrals/{referral['id']}/accept").status_code == 409

    # Finance: a grant, aid requested by the caseworker, approved and paid by finance — once.
    # (its Idempotency-Key built from the person's name, as a careless client may: kept only as a keyed HMAC, and
    # the search of every file below finds no name in it)
    grant = finance.post("/api/funds/grants", headers={"Idempotency-Key": f"grant-for-{NAME}"}, json={
        "donor": "Solidarity Fund", "code": f"SF-{uuid.uuid4().hex[:6]}", "currency": "EUR", "amount": "1000.00",
        "starts_on": "2026-01-01", "ends_on": "2030-12-31", "categories": ["medical", "financial"]})
    assert grant.status_code == 201, grant.text
    grant = grant.json()

    def request_aid():  # noqa: ANN202
        answer = caseworker.post("/api/funds/disbursements", headers={"Idempotency-Key": "aid-1"}, json={
            "case_id": case["id"], "grant_id": grant["id"], "category": "medical", "amount": "120.00",
            "currency": "EUR", "purpose": "clinic visit", "referral_id": referral["id"],
            "payee": {"name": "Clinic Vilnius", "account": PAYEE_ACCOUNT}})
        return answer if answer.status_code == 201 else None

    disbursement = eventually(request_aid).json()
    assert disbursement["status"] == "requested"
    approved = finance.post(f"/api/funds/disbursements/{disbursement['id']}/approve")
    assert approved.status_code == 200, approved.text
    pay = {"method": "bank_transfer", "reference": "TX-1"}
    paid = finance.post(f"/api/funds/disbursements/{disbursement['id']}/pay", json=pay, headers={"Idempotency-Key": "pay-1"})
    assert paid.status_code == 200, paid.text
    replay = finance.post(f"/api/funds/disbursements/{disbursement['id']}/pay", json=pay, headers={"Idempotency-Key": "pay-1"})
    assert (replay.status_code, replay.json()) == (paid.status_code, paid.json())
    twice = finance.post(f"/api/funds/disbursements/{disbursement['id']}/pay", json=pay, headers={"Idempotency-Key": "pay-2"})
    assert twice.status_code == 409
    sums = finance.get(f"/api/funds/grants/{grant['id']}").json()
    assert (sums["budget"], sums["committed"], sums["paid"], sums["available"]) == ("1000.00", "0.00", "120.00", "880.00")

    # The case timeline tells the whole story, learned from the other services' events.
    def timeline_complete():  # noqa: ANN202
        entries = caseworker.get(f"/api/intake/cases/{case['id']}/timeline").json()["items"]
        kinds = " ".join(str(e) for e in entries)
        return entries if all(k in kinds for k in ("referral", "completed", "paid")) else None

    eventually(timeline_complete)

    # Auditors can verify every trail; they cannot read a case.
    for service in ("intake", "referrals", "funds"):
        verdict = auditor.get(f"/api/{service}/audit/verify")
        assert verdict.status_code == 200 and verdict.json()["ok"] is True, (service, verdict.text)
        assert verdict.json()["entries"] > 0
    assert auditor.get(f"/api/intake/cases/{case['id']}").status_code == 403
    assert auditor.get("/api/admin/audit/verify").json()["ok"] is True

    # Erasure: the person's data is gone everywhere; the partner's packet disappears.
    erased = caseworker.delete(f"/api/intake/cases/{case['id']}")
    assert erased.status_code in (200, 204), erased.text
    assert caseworker.get(f"/api/intake/cases/{case['id']}").json()["status"] == "erased"
    eventually(lambda: partner.get(f"/api/partner/referrals/{referral['id']}").json().get("packet") is None)

    # SIGTERM stops everything within a few seconds.
    assert system.stop() == 0

    # Every line our processes and the supervisor wrote is one JSON object (kit.logs; nats-server has its own format).
    for path in (system.state / "logs").glob("*.log"):
        if path.name != "nats.log":
            for line in path.read_text(encoding="utf-8").splitlines():
                assert isinstance(json.loads(line), dict), (path.name, line)

    # Nothing the system wrote holds the person's data in clear.
    leaks = []
    for path in system.state.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in SECRETS:
                for encoded in (secret.encode(), secret.lower().encode(), secret.encode("utf-16-le")):
                    if encoded in data:
                        leaks.append((str(path.relative_to(system.state)), secret))
    assert not leaks, leaks
    assert f"http://127.0.0.1:{system.gateway_port}" in system.console()

    # The operator verifies every audit chain from the databases; an edited entry is named.
    verify = subprocess.run([sys.executable, "-m", "ops.cli", "audit", "verify"], env=system.env,
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    from sqlalchemy import create_engine, text

    intake_url = system.env.get("REHAB_INTAKE_DATABASE_URL") or f"sqlite:///{system.state / 'intake.db'}"
    engine = create_engine(intake_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2"))
    engine.dispose()
    tampered = subprocess.run([sys.executable, "-m", "ops.cli", "audit", "verify"], env=system.env,
                              capture_output=True, text=True, timeout=60)
    assert tampered.returncode == 1 and "chain broken at entry" in tampered.stdout, tampered.stdout
