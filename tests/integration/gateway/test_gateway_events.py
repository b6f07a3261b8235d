"""The gateway tells the services who the staff are (SPEC §5): an account that takes effect, a roles change, a
disabling, an enabling — and sessions revoked — each put exactly one event on the stream GATEWAY of a real NATS,
written to the gateway's outbox in the same unit of work as the change. Never a password or a hash. With NATS down
the gateway works as ever (and stays ready); the events go out when NATS returns. Staff access tokens carry the
`username` the services name assignees by."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jwt
import nats
import nats.js.errors
import pytest
from sqlalchemy import func, select

from gateway import events
from gateway.models import User, kit_tables
from tests.integration.gateway.door import (
    ADMIN_PASSWORD,
    EXTERNAL_NATS,
    STAFF_PASSWORD,
    Door,
    open_gateway,
)
from tests.support.nats import EmbeddedNats, free_port, patient_jetstream

pytestmark = pytest.mark.integration

STREAM = "GATEWAY"
USER_FIELDS = {"user_id", "username", "roles", "partner_id", "occurred_at"}
REVOKED_FIELDS = {"user_id", "session_ids", "all", "occurred_at"}


@pytest.fixture
def gateway_nats(tmp_path: Path) -> Iterator[str]:
    """A NATS for the gateway: the shared test server with no GATEWAY stream left from before, or a fresh one."""
    if EXTERNAL_NATS:
        async def forget() -> None:
            nc = await nats.connect(EXTERNAL_NATS, connect_timeout=3)
            try:
                await patient_jetstream(nc).delete_stream(STREAM)
            except nats.js.errors.NotFoundError:
                pass
            await nc.close()

        asyncio.run(forget())
        yield EXTERNAL_NATS
        return
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
async def door(gateway_settings, secrets_dir, gateway_nats) -> AsyncIterator[Door]:
    async with open_gateway(gateway_settings(secrets_dir, nats_url=gateway_nats, signin_backoff_seconds=0)) as opened:
        yield opened


async def stream_messages(url: str, count: int, timeout: float = 15) -> list[Any]:
    """The GATEWAY stream's messages once it holds `count` (more fails), read one by one, in order."""
    nc = await nats.connect(url, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=3)
        deadline = time.monotonic() + timeout
        held = 0
        while True:
            try:
                held = (await js.stream_info(STREAM)).state.messages
            except nats.js.errors.NotFoundError:
                held = 0
            if held >= count:
                break
            assert time.monotonic() < deadline, f"{held} of {count} events on {STREAM}"
            await asyncio.sleep(0.05)
        info = await js.stream_info(STREAM)
        assert info.state.messages == count, "one event per change, none twice"
        return [await js.get_msg(STREAM, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
    finally:
        await nc.close()


def unsent(door: Door) -> int:
    outbox = kit_tables.outbox
    with door.runtime.uow.read() as session:
        return session.execute(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))).scalar_one()


async def everything_sent(door: Door, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while unsent(door):
        assert time.monotonic() < deadline, "the outbox was not relayed"
        await asyncio.sleep(0.05)


async def create(door: Door, username: str, *roles: str) -> dict:
    answer = await door.client.post("/api/admin/users", headers=await door.admin(),
                                    json={"username": username, "password": STAFF_PASSWORD, "roles": list(roles)})
    assert answer.status_code == 201, answer.text
    return answer.json()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def test_each_account_change_puts_exactly_one_event_on_the_gateway_stream(door: Door, gateway_nats: str):
    admin = await door.admin()

    # One admin: everything takes effect at once.
    worker = await create(door, "events.worker", "caseworker")
    assert worker["status"] == "active"
    signed_in = (await door.sign_in("events.worker", STAFF_PASSWORD)).json()
    first_sid = claims_of(signed_in["access_token"])["sid"]
    changed = await door.client.post(f"/api/admin/users/{worker['id']}/roles", headers=admin,
                                     json={"roles": ["caseworker", "supervisor"]})
    assert changed.json()["status"] == "active", changed.text
    assert (await door.client.post(f"/api/admin/users/{worker['id']}/disable", headers=admin)).status_code == 200
    enabled = await door.client.post(f"/api/admin/users/{worker['id']}/enable", headers=admin)
    assert enabled.status_code == 200 and enabled.json()["status"] == "active"  # a lone admin: at once
    again = (await door.sign_in("events.worker", STAFF_PASSWORD)).json()
    second_sid = claims_of(again["access_token"])["sid"]
    assert (await door.client.post("/auth/revoke", data={"token": again["refresh_token"]})).status_code == 200

    # Two admins: each change waits for the other admin, and is announced only when approved.
    checker = await door.add_user("admin", username="events.checker")
    late = await create(door, "events.finance", "finance")
    assert late["status"] == "pending_approval"
    await door.approve_for(late["id"])
    pending = await door.client.post(f"/api/admin/users/{late['id']}/roles", headers=admin,
                                     json={"roles": ["finance", "auditor"]})
    assert pending.json()["status"] == "pending_approval"
    await door.approve_for(late["id"])
    assert (await door.client.post(f"/api/admin/users/{late['id']}/disable", headers=admin)).status_code == 200
    assert (await door.client.post(f"/api/admin/users/{late['id']}/enable", headers=admin)).json()["disabled"]
    await door.approve_for(late["id"])
    # Asked and rejected, or asked and not decided yet: nothing to announce.
    refused = await create(door, "events.refused", "caseworker")
    (asked,) = [a for a in (await door.client.get("/api/admin/approvals", params={"status": "pending"},
                                                  headers=admin)).json()["items"] if a["target_id"] == refused["id"]]
    checker_token = await door.bearer_for(await door.sign_in("events.checker", STAFF_PASSWORD))
    rejected = await door.client.post(f"/api/admin/approvals/{asked['id']}/reject", headers=checker_token)
    assert rejected.status_code == 200, rejected.text
    asked_only = await door.client.post(f"/api/admin/users/{late['id']}/roles", headers=admin,
                                        json={"roles": ["coordinator"]})
    assert asked_only.json()["status"] == "pending_approval"

    with door.runtime.uow.read() as session:
        admin_id = session.execute(select(User.id).where(User.username == "admin")).scalar_one()
        hashes = list(session.execute(select(User.password_hash)).scalars())
    w, f = worker["id"], late["id"]
    expected = [
        (events.USER_CREATED, admin_id, {"username": "admin", "roles": ["admin"]}),
        (events.USER_CREATED, w, {"username": "events.worker", "roles": ["caseworker"]}),
        (events.USER_ROLES_CHANGED, w, {"username": "events.worker", "roles": ["caseworker", "supervisor"]}),
        (events.USER_DISABLED, w, {"roles": ["caseworker", "supervisor"]}),
        (events.USER_SESSIONS_REVOKED, w, {"session_ids": [first_sid], "all": True}),
        (events.USER_ENABLED, w, {"roles": ["caseworker", "supervisor"]}),
        (events.USER_SESSIONS_REVOKED, w, {"session_ids": [second_sid], "all": False}),
        (events.USER_CREATED, checker["id"], {"username": "events.checker", "roles": ["admin"]}),
        (events.USER_CREATED, f, {"username": "events.finance", "roles": ["finance"]}),
        (events.USER_ROLES_CHANGED, f, {"roles": ["auditor", "finance"]}),
        (events.USER_DISABLED, f, {"roles": ["auditor", "finance"]}),
        (events.USER_SESSIONS_REVOKED, f, {"session_ids": [], "all": True}),
        (events.USER_ENABLED, f, {"username": "events.finance", "roles": ["auditor", "finance"]}),
    ]
    await everything_sent(door)  # every event was in the outbox when its change was answered
    messages = await stream_messages(gateway_nats, len(expected))

    assert [(m.subject, json.loads(m.data)["subject"]) for m in messages] == [(s, about) for s, about, _ in expected]
    for message, (subject, about, wanted) in zip(messages, expected, strict=True):
        envelope = json.loads(message.data)
        assert envelope["type"] == subject and envelope["source"] == "/rehab/gateway"
        assert message.headers["Nats-Msg-Id"] == envelope["id"]
        data = envelope["data"]
        assert set(data) == (REVOKED_FIELDS if subject == events.USER_SESSIONS_REVOKED else USER_FIELDS), subject
        assert data["user_id"] == about and data["occurred_at"]
        assert {key: data[key] for key in wanted} == wanted, (subject, data)
        if "partner_id" in data:
            assert data["partner_id"] is None
        # Who the staff are, and nothing of their secrets: no password, no hash, under any name.
        raw = message.data.decode() + json.dumps(dict(message.headers or {}))
        for secret in (STAFF_PASSWORD, ADMIN_PASSWORD, *hashes):
            assert secret not in raw
        assert not any(word in raw.lower() for word in ("password", "hash", "argon2", "secret", "totp"))


async def test_with_nats_down_the_gateway_works_and_its_events_go_out_when_nats_returns(
        gateway_settings, secrets_dir, tmp_path: Path):
    server = EmbeddedNats(tmp_path / "nats", port=free_port())  # not started yet
    settings = gateway_settings(secrets_dir, nats_url=server.url)
    try:
        async with open_gateway(settings) as door:
            ready = await door.client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "ready"
            worker = await create(door, "events.offline", "caseworker")
            assert worker["status"] == "active"
            assert unsent(door) == 2  # the first admin and this account, kept in the outbox

            server.start()
            await everything_sent(door, timeout=20)
            messages = await stream_messages(server.url, 2)
            assert [(m.subject, json.loads(m.data)["data"]["username"]) for m in messages] == [
                (events.USER_CREATED, "admin"), (events.USER_CREATED, "events.offline")]
    finally:
        server.stop()


async def test_staff_access_tokens_name_their_user(gateway_settings, secrets_dir):
    async with open_gateway(gateway_settings(secrets_dir)) as door:
        await create(door, "events.named", "caseworker")
        signed_in = (await door.sign_in("events.named", STAFF_PASSWORD)).json()
        assert claims_of(signed_in["access_token"])["username"] == "events.named"
        renewed = await door.client.post("/auth/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": signed_in["refresh_token"]})
        assert renewed.status_code == 200, renewed.text
        assert claims_of(renewed.json()["access_token"])["username"] == "events.named"
        admin = (await door.sign_in("admin", ADMIN_PASSWORD)).json()
        assert claims_of(admin["access_token"])["username"] == "admin"
