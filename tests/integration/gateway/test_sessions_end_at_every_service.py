"""A session that ends is refused by every service itself within 2 seconds (SPEC §3), not only by the gateway and
not only when its access token expires: someone holding a copied token and calling a service's port directly is
shut out as soon as the person signs out, is signed out everywhere by an admin, or is disabled. The services learn it
from the gateway's `sessions_revoked` events on a real NATS, and still refuse it after a restart.

Real parts: the gateway in-process on its own database, the three services as processes on theirs, one NATS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door, open_gateway

pytestmark = pytest.mark.integration

# A path of each service a caseworker who is also in finance may read: 200 while the session lives, 401 once ended.
READABLE = {"intake": "/api/intake/cases", "referrals": "/api/referrals/referrals", "funds": "/api/funds/disbursements"}
WITHIN = 2.0  # seconds (SPEC §3)
WORKER = ("caseworker", "finance")


@pytest.fixture
async def door(gateway_settings, backends: Backends) -> AsyncIterator[Door]:
    """The gateway, publishing on the services' NATS and signing with their key."""
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url, signin_backoff_seconds=0,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


async def signed_in(door: Door, username: str) -> dict:
    answer = await door.sign_in(username, STAFF_PASSWORD)
    assert answer.status_code == 200, answer.text
    return answer.json()


def answers(backends: Backends, access_token: str) -> dict[str, int]:
    """What each service, called on its own port, answers this token."""
    headers = {"Authorization": f"Bearer {access_token}"}
    return {name: httpx.get(backends.urls[name] + path, headers=headers, timeout=5).status_code
            for name, path in READABLE.items()}


async def refused_everywhere_within(backends: Backends, access_token: str, seconds: float) -> float:
    """How long until every service refuses the token; fails if it takes longer than `seconds`."""
    started = time.monotonic()
    while True:
        seen = await asyncio.to_thread(answers, backends, access_token)
        if all(status == 401 for status in seen.values()):
            return time.monotonic() - started
        assert time.monotonic() - started < seconds, f"still let in after {seconds}s: {seen}"
        await asyncio.sleep(0.05)


async def test_signing_out_shuts_that_session_out_of_every_service_and_leaves_the_others(door: Door,
                                                                                       backends: Backends):
    caseworker = await door.add_user(*WORKER)
    at_the_office = await signed_in(door, caseworker["username"])
    on_the_phone = await signed_in(door, caseworker["username"])
    assert set(answers(backends, at_the_office["access_token"]).values()) == {200}

    revoked = await door.client.post("/auth/revoke", data={"token": at_the_office["refresh_token"]})
    assert revoked.status_code == 200

    await refused_everywhere_within(backends, at_the_office["access_token"], WITHIN)
    assert set(answers(backends, on_the_phone["access_token"]).values()) == {200}, "only the one session ended"
    problem = httpx.get(backends.urls["intake"] + READABLE["intake"], timeout=5,
                        headers={"Authorization": f"Bearer {at_the_office['access_token']}"})
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"].endswith("/session-ended")


async def test_an_admin_signing_someone_out_everywhere_and_disabling_them_each_reach_every_service(
        door: Door, backends: Backends):
    lost_phone = await door.add_user(*WORKER)
    stolen = await signed_in(door, lost_phone["username"])
    answer = await door.client.post(f"/api/admin/users/{lost_phone['id']}/revoke-sessions", headers=await door.admin())
    assert answer.status_code == 204
    await refused_everywhere_within(backends, stolen["access_token"], WITHIN)
    assert set(answers(backends, (await signed_in(door, lost_phone["username"]))["access_token"]).values()) == {200}, \
        "signing in again after being signed out everywhere works"

    coerced = await door.add_user(*WORKER)
    working = await signed_in(door, coerced["username"])
    answer = await door.client.post(f"/api/admin/users/{coerced['id']}/disable", headers=await door.admin())
    assert answer.status_code == 200
    await refused_everywhere_within(backends, working["access_token"], WITHIN)


async def test_a_service_restarted_after_a_sign_out_still_refuses_that_session(door: Door, backends: Backends):
    caseworker = await door.add_user(*WORKER)
    ended = await signed_in(door, caseworker["username"])
    await door.client.post("/auth/revoke", data={"token": ended["refresh_token"]})
    await refused_everywhere_within(backends, ended["access_token"], WITHIN)

    process = backends.processes["referrals"]
    await asyncio.to_thread(process.stop)
    process.start()
    await asyncio.to_thread(process.wait_ready)

    assert answers(backends, ended["access_token"])["referrals"] == 401, "what it refuses is kept in its database"
    alive = await signed_in(door, caseworker["username"])
    assert answers(backends, alive["access_token"])["referrals"] == 200


async def test_a_revoked_partner_client_is_shut_out_of_referrals_itself(door: Door, backends: Backends):
    """A client's tokens carry no session: its revocation is announced as every session of its id ending."""
    client = await door.add_client()
    token = await door.client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_id": client["client_id"], "client_secret": client["client_secret"]})
    assert token.status_code == 200, token.text
    inbox = backends.urls["referrals"] + "/api/partner/referrals"
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert httpx.get(inbox, headers=headers, timeout=5).status_code == 200

    revoked = await door.client.post(f"/api/admin/clients/{client['client_id']}/revoke", headers=await door.admin())
    assert revoked.status_code == 200, revoked.text

    started = time.monotonic()
    while (status := (await asyncio.to_thread(httpx.get, inbox, headers=headers, timeout=5)).status_code) != 401:
        assert time.monotonic() - started < WITHIN, f"still let in after {WITHIN}s: {status}"
        await asyncio.sleep(0.05)
