"""The partner directory: only admins change it, admins and caseworkers search it; and the service's start-up."""

from __future__ import annotations

import pytest


from kit import migrations
from services.referrals.main import SPEC

pytestmark = pytest.mark.integration


async def test_the_service_starts_migrated_and_documents_its_events(desk):
    ready = (await desk.client.get("/readyz")).json()
    assert ready["database"] == "ok" and ready["migrations"] == "current"
    migrations.check(desk.runtime.engine, SPEC.migrations_dir)  # the models and the one revision agree

    channels = (await desk.client.get("/asyncapi.json")).json()["channels"]
    assert {c["address"] for c in channels.values()} == {
        *(f"rehab.referrals.referral.{e}"
          for e in ("sent", "accepted", "declined", "started", "completed", "cancelled", "message")),
        "rehab.referrals.case.break_glass"}


async def test_admins_keep_the_directory_and_caseworkers_search_it(desk):
    client = desk.client
    vilnius = await desk.add_partner("medical", name="Vilnius Rehab Clinic", countries=["lt"], cities=["Vilnius"],
                                     languages=["be", "ru", "lt"], capacity_note="about two weeks' wait")
    warsaw = await desk.add_partner("psychological", name="Warsaw Trauma Centre", countries=["PL"],
                                    cities=["Warszawa", "Białystok"], languages=["ru", "pl"])
    tbilisi = await desk.add_partner("legal", name="Tbilisi Legal Aid", countries=["GE"], cities=["Tbilisi"],
                                     languages=["ru", "en"], active=False)

    created = (await client.get(f"/api/referrals/partners/{vilnius}", headers=desk.admin())).json()
    assert created["countries"] == ["LT"] and created["languages"] == ["be", "ru", "lt"]
    assert created["capacity_note"] == "about two weeks' wait" and created["active"] is True

    async def names(query: str, headers=None) -> list[str]:
        response = await client.get(f"/api/referrals/partners?{query}", headers=headers or desk.caseworker())
        assert response.status_code == 200, response.text
        return [p["name"] for p in response.json()["items"]]

    assert await names("") == ["Tbilisi Legal Aid", "Vilnius Rehab Clinic", "Warsaw Trauma Centre"]
    assert await names("", desk.admin()) == await names("")
    assert await names("category=psychological") == ["Warsaw Trauma Centre"]
    assert await names("country=lt") == ["Vilnius Rehab Clinic"]
    assert await names("city=bia%C5%82ystok") == ["Warsaw Trauma Centre"]  # any letter case
    assert await names("city=  VILNIUS ") == ["Vilnius Rehab Clinic"]
    assert await names("language=ru") == ["Tbilisi Legal Aid", "Vilnius Rehab Clinic", "Warsaw Trauma Centre"]
    assert await names("language=ru&country=PL&category=psychological") == ["Warsaw Trauma Centre"]
    assert await names("language=pl&country=LT") == []
    assert await names("active=true") == ["Vilnius Rehab Clinic", "Warsaw Trauma Centre"]
    assert await names("active=false") == ["Tbilisi Legal Aid"]

    first = (await client.get("/api/referrals/partners?limit=2", headers=desk.caseworker())).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = (await client.get(f"/api/referrals/partners?limit=2&cursor={first['next_cursor']}",
                             headers=desk.caseworker())).json()
    assert [p["name"] for p in rest["items"]] == ["Warsaw Trauma Centre"] and rest["next_cursor"] is None

    # Only an admin changes the directory: deactivate, note capacity, move to another city.
    patched = await client.patch(f"/api/referrals/partners/{warsaw}", headers=desk.admin(),
                                 json={"active": False, "capacity_note": "full until March", "cities": ["Kraków"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["active"] is False and patched.json()["capacity_note"] == "full until March"
    assert await names("city=warszawa") == []
    assert await names("city=krak%C3%B3w") == ["Warsaw Trauma Centre"]
    reopened = await client.patch(f"/api/referrals/partners/{tbilisi}", json={"active": True}, headers=desk.admin())
    assert reopened.json()["active"] is True and reopened.json()["cities"] == ["Tbilisi"]

    for method, path, body in (("POST", "/api/referrals/partners", {"name": "X", "category": "legal",
                                                                    "contact_email": "a@b.example"}),
                               ("PATCH", f"/api/referrals/partners/{vilnius}", {"active": False})):
        for headers in (desk.caseworker(), desk.partner(vilnius), {}):
            refused = await client.request(method, path, json=body, headers=headers)
            assert refused.status_code in (401, 403), (method, path, refused.status_code)
    assert (await client.get(f"/api/referrals/partners/{vilnius}", headers=desk.admin())).json()["active"] is True
    assert (await client.get("/api/referrals/partners", headers=desk.staff("finance"))).status_code == 403

    # Every change to the directory is in the audit trail.
    assert await desk.audit_trail(warsaw) == [("admin-1", "partner.create"), ("admin-1", "partner.update")]
    for role in ("admin", "caseworker", "finance"):
        assert (await client.get("/api/referrals/audit/verify", headers=desk.staff(role))).status_code == 403


async def test_a_partner_added_with_an_idempotency_key_is_added_once(desk):
    body = {"name": "Clinic Retried", "category": "medical", "countries": ["LT"], "contact_email": "a@c.example"}
    once = {**desk.admin(), "Idempotency-Key": "add-clinic-retried"}
    first = await desk.client.post("/api/referrals/partners", json=body, headers=once)
    again = await desk.client.post("/api/referrals/partners", json=body, headers=once)
    other = await desk.client.post("/api/referrals/partners", json={**body, "name": "Another"}, headers=once)

    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    listed = (await desk.client.get("/api/referrals/partners", headers=desk.admin())).json()["items"]
    assert [p["name"] for p in listed].count("Clinic Retried") == 1 and "Another" not in [p["name"] for p in listed]


async def test_the_directory_refuses_what_it_cannot_keep(desk):
    client = desk.client
    good = {"name": "Clinic", "category": "medical", "contact_email": "a@clinic.example"}
    for bad in ({**good, "category": "dentistry"}, {**good, "countries": ["Lithuania"]},
                {**good, "languages": ["Belarusian!"]}, {**good, "contact_email": "nobody"},
                {**good, "name": " "}, {**good, "unknown": 1}, {k: v for k, v in good.items() if k != "name"},
                {**good, "name": "Clinic\r\nActive partner"}, {**good, "name": "\u200b\u202e"}):
        response = await client.post("/api/referrals/partners", json=bad, headers=desk.admin())
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    for query in ("country=Poland", "language=Belarusian!"):  # a filter that could never match is said wrong
        refused = await client.get(f"/api/referrals/partners?{query}", headers=desk.admin())
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json", query
    partner = await desk.add_partner()
    for bad in ({"category": "legal"}, {"name": None}, {"active": "maybe"}):
        response = await client.patch(f"/api/referrals/partners/{partner}", json=bad, headers=desk.admin())
        assert response.status_code == 422, bad
    missing = await client.patch("/api/referrals/partners/00000000-0000-4000-8000-000000000000",
                                 json={"active": False}, headers=desk.admin())
    assert missing.status_code == 404 and missing.json()["type"].endswith("/partner-unknown")
    assert (await client.get("/api/referrals/partners?cursor=garbage", headers=desk.admin())).status_code == 400

