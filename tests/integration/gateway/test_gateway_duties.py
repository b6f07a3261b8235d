"""Separation of duties at the gateway (SPEC §2): admin holds no other role, nobody changes their own roles, and with
two admins every account, role grant, re-enabling and partner client waits for the other admin; nobody approves
their own request, not even through a second account they minted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gateway import service
from tests.integration.gateway.door import STAFF_PASSWORD, Door, open_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def door(gateway_settings, secrets_dir) -> AsyncIterator[Door]:
    # A refused sign-in (an account awaiting approval) counts as a failure like any other: no wait after it here.
    async with open_gateway(gateway_settings(secrets_dir, signin_backoff_seconds=0)) as opened:
        yield opened


async def create(door: Door, admin: dict[str, str], *roles: str, partner_id: str | None = None):  # noqa: ANN201
    return await door.client.post("/api/admin/users", headers=admin, json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": list(roles), "partner_id": partner_id})


async def pending(door: Door, admin: dict[str, str]) -> list[dict]:
    return (await door.client.get("/api/admin/approvals", params={"status": "pending"}, headers=admin)).json()["items"]


async def test_roles_that_never_combine_are_refused(door: Door):
    admin = await door.admin()
    for roles, partner_id in ((["admin", "caseworker"], None), (["partner_staff", "caseworker"], str(uuid.uuid4())),
                              (["partner_staff"], None), (["caseworker"], str(uuid.uuid4()))):
        answer = await create(door, admin, *roles, partner_id=partner_id)
        assert answer.status_code == 422 and answer.json()["type"].endswith("/roles-not-combinable"), roles


async def test_the_whole_chain_one_admin_then_two_then_approving_ones_own_request_through_a_second_account(door: Door):
    first = await door.admin()
    first_id = (await door.client.get("/auth/me", headers=first)).json()["sub"]

    # One admin: a grant takes effect at once (nobody else could check it).
    alone = await create(door, first, "caseworker")
    assert alone.status_code == 201 and alone.json()["status"] == "active"
    second_made = await door.add_user("admin")  # the door remembers it, to approve its later helpers' accounts
    assert second_made["status"] == "active"
    second = await door.bearer_for(await door.sign_in(second_made["username"], STAFF_PASSWORD))

    # Two admins: the first asks for a finance account; it cannot sign in until the other approves.
    finance = await create(door, first, "finance")
    assert finance.status_code == 201 and finance.json()["status"] == "pending_approval"
    assert (await door.sign_in(finance.json()["username"], STAFF_PASSWORD)).status_code == 400
    (asked,) = [a for a in await pending(door, second) if a["target_id"] == finance.json()["id"]]
    own = await door.client.post(f"/api/admin/approvals/{asked['id']}/approve", headers=first)
    assert own.status_code == 403 and own.json()["type"].endswith("/own-request")
    # ...but its author may withdraw it (its other admin may be gone): the account it would make is not kept
    withdrawn_user = await create(door, first, "caseworker")
    (mine,) = [a for a in await pending(door, second) if a["target_id"] == withdrawn_user.json()["id"]]
    withdrawn = await door.client.post(f"/api/admin/approvals/{mine['id']}/reject", headers=first)
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "rejected", withdrawn.text
    again = await door.client.post("/api/admin/users", headers=first, json={
        "username": withdrawn_user.json()["username"], "password": STAFF_PASSWORD, "roles": ["caseworker"]})
    assert again.status_code == 201, again.text  # the name is free again
    (once_more,) = [a for a in await pending(door, second) if a["target_id"] == again.json()["id"]]
    assert (await door.client.post(f"/api/admin/approvals/{once_more['id']}/reject", headers=first)).status_code == 200

    # The first admin mints a third admin to approve its own requests: that account is pending too, and
    # approving it is the same refusal.
    accomplice = await create(door, first, "admin")
    assert accomplice.json()["status"] == "pending_approval"
    (minting,) = [a for a in await pending(door, second) if a["target_id"] == accomplice.json()["id"]]
    assert minting["action"] == "user.create" and minting["roles"] == ["admin"]  # what the approval would grant
    # ...and whom, by name, asked by whom: an admin judges a name, not an id
    first_name = (await door.client.get("/auth/me", headers=first)).json()["username"]
    assert (minting["target_name"], minting["requested_by_username"]) == (accomplice.json()["username"], first_name)
    assert (await door.sign_in(accomplice.json()["username"], STAFF_PASSWORD)).status_code == 400
    (minted,) = [a for a in await pending(door, first) if a["target_id"] == accomplice.json()["id"]]
    assert (await door.client.post(f"/api/admin/approvals/{minted['id']}/approve", headers=first)).status_code == 403
    rejected = await door.client.post(f"/api/admin/approvals/{minted['id']}/reject", headers=second)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"

    # The other admin approves the finance account: now it works.
    approved = await door.client.post(f"/api/admin/approvals/{asked['id']}/approve", headers=second)
    assert approved.status_code == 200 and approved.json()["decided_by"] != first_id
    assert (await door.sign_in(finance.json()["username"], STAFF_PASSWORD)).status_code == 200
    again = await door.client.post(f"/api/admin/approvals/{asked['id']}/approve", headers=second)
    assert again.status_code == 409

    # Nobody changes their own roles, not even with a second admin around.
    own_roles = await door.client.post(f"/api/admin/users/{first_id}/roles", headers=first,
                                       json={"roles": ["admin", "finance"]})
    assert own_roles.status_code in (403, 422)
    assert (await door.client.post(f"/api/admin/users/{first_id}/roles", headers=first,
                                   json={"roles": ["finance"]})).status_code == 403

    # A role grant to someone else waits for the other admin.
    grant = await door.client.post(f"/api/admin/users/{alone.json()['id']}/roles", headers=first,
                                   json={"roles": ["caseworker", "supervisor"]})
    assert grant.status_code == 200 and grant.json() == {  # what is in force, and what was asked for
        "id": alone.json()["id"], "roles": ["caseworker"], "status": "pending_approval",
        "requested_roles": ["caseworker", "supervisor"]}
    (role_ask,) = [a for a in await pending(door, second) if a["action"] == "user.roles"]
    assert (role_ask["target_name"], role_ask["target_roles"], role_ask["roles"]) == (
        alone.json()["username"], ["caseworker"], ["caseworker", "supervisor"])
    await door.client.post(f"/api/admin/approvals/{role_ask['id']}/approve", headers=second)
    token = await door.bearer_for(await door.sign_in(alone.json()["username"], STAFF_PASSWORD))
    assert (await door.client.get("/auth/me", headers=token)).json()["roles"] == ["caseworker", "supervisor"]

    # Re-enabling and partner clients wait for approval too; disabling acts at once.
    target = alone.json()["id"]
    assert (await door.client.post(f"/api/admin/users/{target}/disable", headers=first)).json()["disabled"] is True
    enabled = await door.client.post(f"/api/admin/users/{target}/enable", headers=first)
    assert enabled.json()["disabled"] is True and enabled.json()["status"] == "pending_approval"
    asked_twice = await door.client.post(f"/api/admin/users/{target}/enable", headers=first)  # a second click
    assert asked_twice.json()["status"] == "pending_approval"
    assert [a["action"] for a in await pending(door, second)] == ["user.enable"]  # one request to decide, not two
    client = await door.client.post("/api/admin/clients", headers=first,
                                    json={"partner_id": str(uuid.uuid4()), "name": "Clinic API"})
    assert client.json()["status"] == "pending_approval"
    early = await door.client_sign_in(client.json()["client_id"], client.json()["client_secret"])
    assert early.status_code == 400 and early.json()["error"] == "invalid_grant"  # not "wrong secret": not yet
    assert "awaits another admin's approval" in early.json()["error_description"]
    assert (await door.client_sign_in(client.json()["client_id"], "not-the-secret")).status_code == 401
    (client_ask,) = [a for a in await pending(door, second) if a["action"] == "client.create"]
    assert (client_ask["target_name"], client_ask["partner_id"]) == ("Clinic API", client.json()["partner_id"])
    # A factor reset too, and the answer says it waits (whether or not the person had set one up yet).
    reset = await door.client.post(f"/api/admin/users/{finance.json()['id']}/reset-mfa", headers=first)
    assert reset.status_code == 200 and reset.json()["status"] == "pending_approval"
    assert "user.reset_mfa" in [a["action"] for a in await pending(door, second)]

    auditor = await door.staff("auditor")
    trail = (await door.client.get("/api/admin/audit", headers=auditor)).json()["items"]
    assert {"approval.request", "approval.approve", "approval.reject"} <= {e["action"] for e in trail}
    # who each actor is, through the API too (an outside review's find: ids alone, and the user list refused)
    users = await door.client.get("/api/admin/users", headers=auditor)
    named = {u["id"]: u["username"] for u in users.json()["items"]}
    actors = {e["actor"] for e in trail if e["action"].startswith("approval.")}
    assert users.status_code == 200 and actors <= named.keys()
    for change in (("POST", "/api/admin/users"), ("POST", f"/api/admin/users/{finance.json()['id']}/disable")):
        assert (await door.client.request(*change, headers=auditor, json={})).status_code == 403  # reading only


async def test_a_partners_staff_member_signs_in_for_that_partner_only(door: Door):
    partner_id = str(uuid.uuid4())
    user = await door.add_user("partner_staff", partner_id=partner_id)

    token = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    me = (await door.client.get("/auth/me", headers=token)).json()

    assert me["roles"] == ["partner_staff"] and me["partner_id"] == partner_id
    assert (await door.client.get("/api/intake/cases", headers=token)).status_code == 403


async def test_an_admin_who_disables_the_other_admins_still_cannot_grant_anything_alone(door: Door):
    first = await door.admin()
    second_made = await door.add_user("admin")  # the door's checker: it approves the third admin
    third_made = await door.add_user("admin")
    third = await door.bearer_for(await door.sign_in(third_made["username"], STAFF_PASSWORD))
    second_id, third_id = second_made["id"], third_made["id"]

    # Disabling acts at once (a stolen account is stopped now) but waits for a confirmation: meanwhile the disabled
    # admin still counts, and the first admin's grants still wait for another admin.
    disabled = await door.client.post(f"/api/admin/users/{second_id}/disable", headers=first)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert disabled.json()["confirmation_pending"] is True  # said in the answer, not only on the approvals list
    assert (await door.sign_in(second_made["username"], STAFF_PASSWORD)).status_code == 400
    assert (await create(door, first, "caseworker", "supervisor")).json()["status"] == "pending_approval"
    (confirm,) = [a for a in await pending(door, third) if a["action"] == "user.disable"]
    assert confirm["target_id"] == second_id
    own = await door.client.post(f"/api/admin/approvals/{confirm['id']}/approve", headers=first)
    assert own.status_code == 403 and own.json()["type"].endswith("/own-request")

    # Another admin rejects it: the account is enabled again.
    rejected = await door.client.post(f"/api/admin/approvals/{confirm['id']}/reject", headers=third)
    assert rejected.status_code == 200
    assert (await door.sign_in(second_made["username"], STAFF_PASSWORD)).status_code == 200

    # Confirmed, the disabled admin no longer counts. Then the first admin disables the last other one: still
    # nothing the first admin grants takes effect alone, until the operator confirms it from the machine.
    await door.client.post(f"/api/admin/users/{second_id}/disable", headers=first)
    (confirm,) = [a for a in await pending(door, third) if a["action"] == "user.disable"]
    assert (await door.client.post(f"/api/admin/approvals/{confirm['id']}/approve", headers=third)).status_code == 200
    assert (await door.client.post(f"/api/admin/users/{third_id}/disable", headers=first)).json()["disabled"] is True
    assert (await create(door, first, "finance")).json()["status"] == "pending_approval"
    again = await door.client.post(f"/api/admin/users/{second_id}/enable", headers=first)
    assert again.json()["disabled"] is True  # enabling waits for approval too: nobody is left to give it
    runtime = door.runtime
    await runtime.uow.run(lambda session: service.set_user_disabled(
        session=session, audit=runtime.audit, user_id=third_id, disabled=True, actor="operator:test",
        by_operator=True))
    alone = await create(door, first, "finance")
    assert alone.status_code == 201 and alone.json()["status"] == "active"


async def test_an_admin_enabled_again_on_approval_leaves_no_disabling_waiting_to_be_confirmed(door: Door):
    first = await door.admin()
    second_made = await door.add_user("admin")
    third_made = await door.add_user("admin")
    third = await door.bearer_for(await door.sign_in(third_made["username"], STAFF_PASSWORD))

    await door.client.post(f"/api/admin/users/{second_made['id']}/disable", headers=first)
    await door.client.post(f"/api/admin/users/{second_made['id']}/enable", headers=first)
    (enabling,) = [a for a in await pending(door, third) if a["action"] == "user.enable"]
    assert (await door.client.post(f"/api/admin/approvals/{enabling['id']}/approve", headers=third)).status_code == 200

    assert (await door.sign_in(second_made["username"], STAFF_PASSWORD)).status_code == 200
    assert await pending(door, third) == []  # the disabling it was asked to confirm went with the enabling
