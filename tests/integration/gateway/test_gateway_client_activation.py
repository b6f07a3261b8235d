"""A partner's API client is split between two admins, as an account is (gateway/activation.py): the secret shown to
the admin who issues it is a setup secret that gets no token; the admin who approves it is shown its activation code
once; the partner's system exchanges both at POST /auth/clients/activate for a secret the server makes, which neither
admin sees. Alone, neither admin can take tokens as the partner."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import Boolean, column, create_engine, select, table
from sqlmodel.sql.sqltypes import UTCDateTime

from gateway import activation
from gateway.models import MIGRATIONS_DIR, ApiClient, kit_tables
from kit import migrations
from tests.integration.gateway.door import CHEAP_HASHING, Door, open_gateway

pytestmark = pytest.mark.integration

CODE = re.compile(r"^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$")
BEFORE_ACTIVATION = "e4a6c8d0f2b5"  # the revision before clients were activated
PROBLEM = "application/problem+json"


async def issue(door: Door, admin: dict[str, str]) -> dict:
    made = await door.client.post("/api/admin/clients", headers=admin,
                                  json={"partner_id": str(uuid.uuid4()), "name": "Clinic API"})
    assert made.status_code == 201, made.text
    assert made.headers["cache-control"] == "no-store"
    return made.json()


def refusal(answer) -> tuple[int, dict]:  # noqa: ANN001
    """What a refused activation tells its caller: the same, whatever was wrong."""
    return answer.status_code, answer.json()


async def audit_of(door: Door, client_id: str) -> list[tuple[str, str]]:
    with door.runtime.session_factory() as session:
        rows = session.execute(select(kit_tables.audit.c.actor, kit_tables.audit.c.action)
                               .where(kit_tables.audit.c.target_id == client_id)
                               .order_by(kit_tables.audit.c.seq)).all()
    return [(actor, action) for actor, action in rows]


async def test_with_two_admins_the_issuer_holds_a_setup_secret_and_the_approver_a_code_and_only_both_activate(
        door: Door):
    first = await door.admin()
    await door.add_user("admin")  # the door's second admin approves what the first asks
    issued = await issue(door, first)
    client_id, setup = issued["client_id"], issued["client_secret"]
    assert issued["status"] == "pending_approval"

    # Awaiting approval: no token (said so to the right setup secret), and no activation either (the one answer every
    # refusal of an activation gets).
    early = await door.client_sign_in(client_id, setup)
    assert early.status_code == 400 and "awaits another admin's approval" in early.json()["error_description"]
    unapproved = await door.activate_client(client_id, setup)
    assert unapproved.status_code == 400 and unapproved.headers["content-type"] == PROBLEM
    assert unapproved.json()["type"].endswith("/client-activation-refused")

    approval = await door.approve_for(client_id)
    code = approval["activation_code"]
    assert code and CODE.match(code), "the approving admin is shown the client's code"
    listed = (await door.client.get("/api/admin/approvals", headers=first)).json()["items"]
    assert code not in str(listed) and all(a["activation_code"] is None for a in listed), "shown once"
    with door.runtime.session_factory() as session:
        kept = session.get(ApiClient, client_id)
        assert kept.activation_hash == activation.digest(code) and kept.activated_at is None
        stored = str(list(session.execute(select(ApiClient.__table__)))) + str(list(session.execute(
            select(kit_tables.audit))))
    assert code not in stored and code.replace("-", "") not in stored

    # Approved: the issuing admin's setup secret still gets no token — the word that it must be activated, which a
    # wrong secret is never told.
    alone = await door.client_sign_in(client_id, setup)
    assert alone.status_code == 400 and alone.json()["error"] == "invalid_grant"
    assert "activated" in alone.json()["error_description"]
    assert alone.headers["cache-control"] == "no-store"
    wrong = await door.client_sign_in(client_id, setup + "x")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert "activated" not in wrong.json()["error_description"]

    # One half is not enough, nor a wrong half: one answer for every refusal, whatever was wrong.
    refused = [refusal(unapproved)]
    for client, secret, typed in ((client_id, setup, None), (client_id, setup, "2222-3333-4444"),
                                  (client_id, "not-the-setup-secret", code), ("pc_" + "0" * 24, setup, code)):
        refused.append(refusal(await door.activate_client(client, secret, typed)))
    assert all(answer == refused[0] for answer in refused), refused
    assert (await door.client_sign_in(client_id, setup)).status_code == 400, "still not activated"

    # Both halves: the client's own secret, made by the server, in this answer alone.
    activated = await door.activate_client(client_id, setup, code.lower().replace("-", " "))
    assert activated.status_code == 200, activated.text
    assert activated.headers["cache-control"] == "no-store"
    own = activated.json()["client_secret"]
    assert activated.json()["client_id"] == client_id and own != setup and len(own) >= 40
    partner = await door.bearer_for(await door.client_sign_in(client_id, own))
    me = (await door.client.get("/auth/me", headers=partner)).json()
    assert (me["sub"], me["roles"]) == (client_id, ["partner"])
    shown = (await door.client.get("/api/admin/clients", headers=first)).json()["items"]
    assert [c["activated"] for c in shown if c["client_id"] == client_id] == [True]
    assert own not in str(shown)

    # The setup secret works no more: neither for a token nor for a second activation.
    setup_again = await door.client_sign_in(client_id, setup)
    assert (setup_again.status_code, setup_again.json()["error"]) == (401, "invalid_client")
    assert refusal(await door.activate_client(client_id, setup, code)) == refused[0]
    assert refusal(await door.activate_client(client_id, own)) == refused[0]
    assert (await door.client_sign_in(client_id, own)).status_code == 200

    trail = await audit_of(door, client_id)
    assert (client_id, "client.activated") in trail and (client_id, "signin.refused") in trail
    assert trail.count((client_id, "signin.failed")) >= 4  # the wrong halves, the setup secret used again
    with door.runtime.session_factory() as session:
        every = str(list(session.execute(select(kit_tables.audit))))
    assert setup not in every and own not in every


async def test_a_lone_admins_client_is_activated_with_its_setup_secret_alone(door: Door):
    issued = await door.add_client(activated=False)
    assert issued["status"] == "active" and issued["activation_code"] is None  # nobody to split with
    setup = issued["client_secret"]
    assert (await door.client_sign_in(issued["client_id"], setup)).status_code == 400
    listed = (await door.client.get("/api/admin/clients", headers=await door.admin())).json()["items"]
    assert [c["activated"] for c in listed] == [False]

    activated = await door.activate_client(issued["client_id"], setup)

    assert activated.status_code == 200, activated.text
    assert (await door.client_sign_in(issued["client_id"], activated.json()["client_secret"])).status_code == 200
    assert (await door.client_sign_in(issued["client_id"], setup)).status_code == 401


async def test_a_client_name_is_one_line_a_reader_sees(door: Door):
    """An outside review's find: a name of zero-width spaces, a lone right-to-left override, or one holding a line
    break and tabs (a made-up row in `rehab clients list`) was taken; the approving admin saw it blank or reversed."""
    admin = await door.admin()
    for name in ("x\r\npc_0000000000000000000000ff\t<partner>\tactive", "\u200b\u200b", "\u202e"):
        refused = await door.client.post("/api/admin/clients", headers=admin,
                                         json={"partner_id": str(uuid.uuid4()), "name": name})
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM, name
    kept = await door.client.post("/api/admin/clients", headers=admin,
                                  json={"partner_id": str(uuid.uuid4()), "name": "Клініка \u202eAPI"})
    assert kept.status_code == 201 and kept.json()["name"] == "Клініка API"


async def test_a_revoked_client_cannot_be_activated(door: Door):
    issued = await door.add_client(activated=False)
    other = await door.add_client(activated=False)
    revoked = await door.client.post(f"/api/admin/clients/{issued['client_id']}/revoke", headers=await door.admin())
    assert revoked.status_code == 200

    refused = await door.activate_client(issued["client_id"], issued["client_secret"])
    wrong = await door.activate_client(other["client_id"], "not-the-setup-secret")

    assert refused.status_code == 400 and refusal(refused) == refusal(wrong)
    assert (await door.client_sign_in(issued["client_id"], issued["client_secret"])).status_code == 401


async def test_a_rejected_client_cannot_be_activated(door: Door):
    first = await door.admin()
    await door.add_user("admin")
    issued = await issue(door, first)
    pending = (await door.client.get("/api/admin/approvals", params={"status": "pending"},
                                     headers=door._checker)).json()["items"]
    (asked,) = [a for a in pending if a["target_id"] == issued["client_id"]]
    rejected = await door.client.post(f"/api/admin/approvals/{asked['id']}/reject", headers=door._checker)
    assert rejected.status_code == 200 and rejected.json()["activation_code"] is None

    refused = await door.activate_client(issued["client_id"], issued["client_secret"])

    assert refused.status_code == 400 and refused.json()["type"].endswith("/client-activation-refused")


async def test_two_activations_at_once_give_one_secret(door: Door):
    issued = await door.add_client(activated=False)

    answers = await asyncio.gather(*(door.activate_client(issued["client_id"], issued["client_secret"])
                                     for _ in range(3)))

    assert sorted(answer.status_code for answer in answers) == [200, 400, 400]
    (own,) = [answer.json()["client_secret"] for answer in answers if answer.status_code == 200]
    assert (await door.client_sign_in(issued["client_id"], own)).status_code == 200


async def test_activations_are_limited_per_address_like_sign_ins(gateway_settings, secrets_dir):
    async with open_gateway(gateway_settings(secrets_dir, signin_rate_limit="4/minute")) as door:
        issued = await door.add_client(activated=False)
        for _ in range(3):
            assert (await door.activate_client(issued["client_id"], "a-guess")).status_code == 400

        limited = await door.activate_client(issued["client_id"], issued["client_secret"])
        token = await door.client_sign_in(issued["client_id"], issued["client_secret"])

        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert token.status_code == 429, "one budget for sign-ins and activations"


async def test_missing_fields_are_an_invalid_request_and_the_route_is_documented(door: Door):
    missing = await door.client.post("/auth/clients/activate", data={"client_id": "pc_" + "0" * 24})
    as_json = await door.client.post("/auth/clients/activate", json={"client_id": "x", "client_secret": "y"})

    for answer in (missing, as_json):
        assert answer.status_code == 400 and answer.json()["type"].endswith("/invalid-request")
        assert answer.headers["content-type"] == PROBLEM
    document = (await door.client.get("/openapi.json")).json()
    operation = document["paths"]["/auth/clients/activate"]["post"]
    form = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert "security" not in operation and {"200", "400", "429"} <= set(operation["responses"])
    assert form["schema"]


async def test_clients_made_before_activation_existed_keep_working(gateway_settings, secrets_dir,
                                                                    database_url_factory):
    """The upgrade marks the clients that could take tokens as activated: a partner's system in use goes on. One
    still waiting for approval is activated as a new one is."""
    url = database_url_factory("gateway")
    engine = create_engine(url)
    cfg = migrations.config_for(MIGRATIONS_DIR, url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, BEFORE_ACTIVATION)
        secret_hash = PasswordHasher(time_cost=CHEAP_HASHING["argon2_time_cost"],
                                     memory_cost=CHEAP_HASHING["argon2_memory_kib"], parallelism=1).hash("in-use")
        clients = table("api_clients", *(column(name) for name in ("client_id", "partner_id", "name", "secret_hash")),
                        column("pending_approval", Boolean()), column("created_at", UTCDateTime()))
        for client_id, pending in (("pc_" + "1" * 24, False), ("pc_" + "2" * 24, True)):
            conn.execute(clients.insert().values(client_id=client_id, partner_id=str(uuid.uuid4()), name="Clinic API",
                                                 secret_hash=secret_hash, pending_approval=pending,
                                                 created_at=datetime(2026, 11, 1, 10, tzinfo=UTC)))
    engine.dispose()

    async with open_gateway(gateway_settings(secrets_dir, database_url=url)) as door:  # it migrates as it starts
        assert (await door.client_sign_in("pc_" + "1" * 24, "in-use")).status_code == 200
        with door.runtime.session_factory() as session:
            waiting = session.get(ApiClient, "pc_" + "2" * 24)
            assert waiting.activated_at is None and waiting.pending_approval
