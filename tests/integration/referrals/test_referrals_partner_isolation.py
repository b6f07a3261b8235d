"""Two partners side by side: each sees only what is addressed to it, on every partner path and verb, and no partner
reaches a staff path. The paths are read from the app itself, so a partner path added later is tried too."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tests.integration.referrals.desk import people

pytestmark = pytest.mark.integration

PERSON = people()[3]
PACKET = {"display_name": PERSON["latin_lacinka"], "contact": "+48 500 000 001"}
BODIES = {"decline": {"reason": "not ours"}, "complete": {"outcome": "done", "cost_estimate": None},
          "messages": {"text": "is this one ours?"}}
PARTNER_FIELDS = {"id", "status", "need_category", "created_at", "updated_at", "packet_available", "packet",
                  "unread_messages"}


def routes(desk, prefix: str) -> list[tuple[str, str]]:
    """Every (method, path) the app documents under `prefix`, read from its OpenAPI document."""
    paths = desk.app.openapi()["paths"]
    return sorted((method.upper(), path) for path, operations in paths.items() if path.startswith(prefix)
                  for method in operations)


async def test_a_partner_sees_nothing_of_another_partner_on_any_path_or_verb(desk):
    ours = await desk.add_partner("medical")
    theirs = await desk.add_partner("medical")  # same category: a real temptation
    case = await desk.open_case(categories=["medical"])
    their_referrals = {}
    for state, steps in {"sent": [], "accepted": ["accept"], "in_progress": ["accept", "start"],
                         "completed": ["accept", "start", "complete"], "declined": ["decline"]}.items():
        referral = await desk.sent_referral(case, theirs, packet=PACKET)
        for step in steps:
            assert (await desk.partner_step(theirs, referral, step, BODIES.get(step))).status_code == 200
        their_referrals[state] = referral
    cancelled = await desk.sent_referral(case, theirs, packet=PACKET)
    await desk.client.post(f"/api/referrals/referrals/{cancelled}/cancel", headers=desk.caseworker())
    their_referrals["cancelled"] = cancelled
    our_referral = await desk.sent_referral(case, ours, packet=PACKET)

    partner_routes = routes(desk, "/api/partner")
    assert partner_routes == [
        ("GET", "/api/partner/referrals"), ("GET", "/api/partner/referrals/{referral_id}"),
        ("GET", "/api/partner/referrals/{referral_id}/messages"),
        ("POST", "/api/partner/referrals/{referral_id}/accept"), ("POST", "/api/partner/referrals/{referral_id}/complete"),
        ("POST", "/api/partner/referrals/{referral_id}/decline"),
        ("POST", "/api/partner/referrals/{referral_id}/messages"), ("POST", "/api/partner/referrals/{referral_id}/start"),
    ]
    with desk.session() as session:
        events_before = session.execute(select(func.count()).select_from(desk.runtime.tables.outbox)).scalar_one()

    async def call(method: str, path: str, referral_id: str, partner_id: str):
        action = path.rsplit("/", 1)[-1]
        return await desk.client.request(method, path.replace("{referral_id}", referral_id),
                                         json=BODIES.get(action), headers=desk.partner(partner_id))

    for method, path in partner_routes:
        if "{referral_id}" not in path:
            continue
        unknown = await call(method, path, str(uuid.uuid4()), ours)
        assert unknown.status_code == 404, (method, path, unknown.text)
        not_a_uuid = await call(method, path, "not-a-referral-id", ours)
        assert not_a_uuid.status_code == 404 and not_a_uuid.json() == unknown.json()
        for state, referral in their_referrals.items():
            response = await call(method, path, referral, ours)
            assert response.status_code == 404, (method, path, state, response.text)
            assert response.json() == unknown.json(), (method, path, state)  # the same body: nothing to tell apart
            assert response.headers["content-type"] == "application/problem+json"

    # Nothing of theirs moved, nothing was published, and every attempt is in the audit trail.
    for state, referral in their_referrals.items():
        detail = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).json()
        assert detail["status"] == state
    with desk.session() as session:
        assert session.execute(select(func.count()).select_from(desk.runtime.tables.outbox)).scalar_one() == events_before
    attempts = [entry for entry in await desk.audit_trail() if entry == (f"client-{ours[:8]}", "partner.referral.denied")]
    by_id = [path for _, path in partner_routes if "{referral_id}" in path]
    assert len(attempts) == len(by_id) * (2 + len(their_referrals))

    # Lists show only one's own, whatever the query says.
    for query in ("", "?status=sent", f"?partner_id={theirs}", "?limit=200"):
        listed = await desk.client.get(f"/api/partner/referrals{query}", headers=desk.partner(ours))
        assert [r["id"] for r in listed.json()["items"]] == [our_referral], query
    theirs_listed = (await desk.client.get("/api/partner/referrals?limit=200", headers=desk.partner(theirs))).json()
    assert sorted(r["id"] for r in theirs_listed["items"]) == sorted(their_referrals.values())

    # What a partner sees of its own: need-to-know, never intake's case id.
    mine = (await desk.client.get(f"/api/partner/referrals/{our_referral}", headers=desk.partner(ours))).json()
    assert set(mine) == PARTNER_FIELDS and mine["packet"]["display_name"] == PERSON["latin_lacinka"]
    assert case not in str(theirs_listed) and case not in str(mine)
    accepted = await desk.partner_step(ours, our_referral, "accept")
    assert accepted.status_code == 200 and case not in accepted.text


async def test_partners_never_reach_staff_paths_nor_staff_partner_paths(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    staff_routes = routes(desk, "/api/referrals")
    assert ("GET", "/api/referrals/referrals/{referral_id}") in staff_routes and len(staff_routes) >= 9

    def fill(path: str) -> str:
        return path.replace("{referral_id}", referral).replace("{partner_id}", partner)

    for method, path in staff_routes:
        response = await desk.client.request(method, fill(path), json={}, headers=desk.partner(partner))
        assert response.status_code == 403, (method, path, response.status_code)
    for method, path in routes(desk, "/api/partner"):
        for role in ("caseworker", "admin", "finance", "auditor"):
            response = await desk.client.request(method, fill(path), json=BODIES.get(path.rsplit("/", 1)[-1]),
                                                 headers=desk.staff(role))
            assert response.status_code == 403, (method, path, role)
        assert (await desk.client.request(method, fill(path))).status_code == 401
    # Caseworkers cannot act for the partner, and admins cannot read referrals (they hold personal data).
    assert (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.admin())).status_code == 403
    assert (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.staff("auditor"))).status_code == 403
    detail = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).json()
    assert detail["status"] == "sent"
