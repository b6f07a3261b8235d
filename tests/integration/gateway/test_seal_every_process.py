"""Seal and unseal (SPEC §8): an admin's `POST /api/admin/seal` makes every process forget its keys within 2 seconds —
whatever needs a key answers 503 problem `/sealed`, what needs none (/healthz, /readyz) still answers — and
`rehab unseal`'s command (the operator's signature) opens them again without a restart. A command signed by anyone
else is ignored.

Real parts: the gateway in-process on its own database, the three services as processes on theirs, one NATS; the
commands are kit.control's own, signed with the nkey seeds `ensure_secrets` made."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from kit import control, nats_auth
from tests.integration.gateway.door import Backends, Door, ServiceProcess, open_gateway
from tests.integration.gateway.matrix import ROLES, allowed_roles

pytestmark = pytest.mark.integration

WITHIN = 2.0  # seconds (SPEC §8)
PROCESSES = {"gateway", "intake", "referrals", "funds", "reports"}


@pytest.fixture
async def door(gateway_settings, backends: Backends) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url, signin_backoff_seconds=0,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        # The gateway's control subscription is up once its bus is connected.
        deadline = time.monotonic() + 10
        while not (opened.runtime.bus.nc and opened.runtime.bus.nc.is_connected):
            assert time.monotonic() < deadline, "the gateway never connected to NATS"
            await asyncio.sleep(0.05)
        try:
            yield opened
        finally:  # never leave the module's services sealed for the next test
            await control.publish_command(backends.nats_url, operator_seed(backends), "unseal", wait=0.5)


def operator_seed(backends: Backends):
    return backends.secrets_dir / nats_auth.seed_file_name(nats_auth.OPERATOR)


def key_needing_answers(backends: Backends, auditor: dict, caseworker: dict, case_id: str) -> dict[str, httpx.Response]:
    """At each service's own port: its audit chain verified (the audit key), and intake's case read (its data key)."""
    answers = {name: httpx.get(f"{url}/api/{name}/audit/verify", headers=auditor, timeout=5)
               for name, url in backends.urls.items()}
    answers["intake case"] = httpx.get(f"{backends.urls['intake']}/api/intake/cases/{case_id}", headers=caseworker,
                                       timeout=5)
    return answers


def sealed(answer: httpx.Response) -> bool:
    return (answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
            and answer.json()["type"].endswith("/sealed") and "retry-after" in answer.headers)


async def test_an_admin_seals_every_process_and_the_operator_unseals_them_without_a_restart(door: Door,
                                                                                          backends: Backends):
    caseworker = await door.staff("caseworker")
    auditor = await door.staff("auditor")
    admin = await door.admin()
    created = await door.client.post("/api/intake/cases", headers=caseworker, json={"full_name": "Alesia Bialiatska",
                                                                                   "country": "LT"})
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    before = await asyncio.to_thread(key_needing_answers, backends, auditor, caseworker, case_id)
    assert {name: answer.status_code for name, answer in before.items()} == dict.fromkeys(before, 200)

    started = time.monotonic()
    answer = await door.client.post("/api/admin/seal", headers=admin)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["broadcast"] == "sent"
    assert body["processes"][0]["process"] == "gateway", "the gateway that answered is first"
    assert {p["process"] for p in body["processes"]} == PROCESSES, body
    assert all(p["sealed"] for p in body["processes"])

    during = await asyncio.to_thread(key_needing_answers, backends, auditor, caseworker, case_id)
    assert time.monotonic() - started < WITHIN + 1.5  # the answer waited its 2 s for confirmations; no more
    assert {name for name, seen in during.items() if not sealed(seen)} == set(), \
        {name: (seen.status_code, seen.text[:200]) for name, seen in during.items()}
    through_gateway = await door.client.get(f"/api/intake/cases/{case_id}", headers=caseworker)
    assert sealed(through_gateway)
    own = await door.client.get("/api/admin/audit/verify", headers=auditor)
    assert sealed(own), own.text
    for url in backends.urls.values():
        assert httpx.get(url + "/healthz", timeout=5).status_code == 200
        ready = httpx.get(url + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["keys"] == "sealed", "sealed is reported, never unready"
    assert (await door.client.get("/readyz")).json()["keys"] == "sealed"
    status = (await door.client.get("/api/admin/status", headers=admin)).json()
    assert status["gateway"]["keys"] == "sealed"
    assert {name: state["keys"] for name, state in status["services"].items()} == dict.fromkeys(backends.urls, "sealed")
    assert (await door.client.post("/auth/token", data={"grant_type": "password", "username": "admin",
                                                         "password": "whatever"})).status_code == 503
    # Someone signing in to the console meanwhile reads a page saying so, not a JSON problem.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door.app), base_url="http://testserver") as visitor:
        form = (await visitor.get("/", headers={"Accept": "text/html"})).text
        pre_session = re.search(r'name="pre_session" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
        page = await visitor.post("/console/sign-in", headers={"Accept": "text/html"},
                                  data={"username": "admin", "password": "whatever", "pre_session": pre_session})
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html"), page.text[:200]
    assert "The system is sealed" in page.text

    # A process restarted while sealed (a crash, the supervisor, Kubernetes) comes back sealed, not open.
    assert (backends.root / control.SEAL_MARK).exists() and (door.settings.state_dir / control.SEAL_MARK).exists()
    intake = backends.processes["intake"]
    assert intake.proc is not None
    intake.proc.kill()
    intake.proc.wait()
    intake.start()
    await asyncio.to_thread(intake.wait_ready)
    assert httpx.get(intake.url + "/readyz", timeout=5).json()["keys"] == "sealed"
    assert sealed(httpx.get(f"{intake.url}/api/intake/cases/{case_id}", headers=caseworker, timeout=5))

    # Anybody but the operator and the gateway: ignored, nobody answers.
    intake_seed = backends.secrets_dir / nats_auth.seed_file_name("intake")
    assert await control.publish_command(backends.nats_url, intake_seed, "unseal", wait=1.0) == []
    assert sealed(httpx.get(f"{backends.urls['intake']}/api/intake/cases/{case_id}", headers=caseworker, timeout=5))

    answers = await control.publish_command(backends.nats_url, operator_seed(backends), "unseal")
    assert {a["process"] for a in answers} == PROCESSES and not any(a["sealed"] for a in answers), answers
    after = await asyncio.to_thread(key_needing_answers, backends, auditor, caseworker, case_id)
    assert {name: answer.status_code for name, answer in after.items()} == dict.fromkeys(after, 200)
    assert after["intake case"].json()["full_name"] == "Alesia Bialiatska"
    assert after["intake"].json()["ok"] is True, "the chain the seal interrupted is whole"
    assert (await door.client.get(f"/api/intake/cases/{case_id}", headers=caseworker)).status_code == 200
    assert (await door.client.get("/api/admin/status", headers=admin)).json()["gateway"]["keys"] == "unsealed"
    assert not (backends.root / control.SEAL_MARK).exists() and not (door.settings.state_dir / control.SEAL_MARK).exists()


async def test_seal_is_for_admins_only(door: Door):
    assert allowed_roles("POST", "/api/admin/seal") == {"admin"}  # the matrix's table, which does not walk it
    assert (await door.client.post("/api/admin/seal")).status_code == 401
    for role in ROLES:
        if role == "admin":
            continue
        headers = await (door.partner() if role == "partner" else door.partner_staff() if role == "partner_staff"
                         else door.staff(role))
        answer = await door.client.post("/api/admin/seal", headers=headers)
        assert answer.status_code == 403, (role, answer.text)
    assert not door.runtime.custody.sealed


async def test_a_process_started_elsewhere_after_a_seal_starts_sealed_from_the_seal_recorded_on_nats(
        door: Door, backends: Backends, tmp_path):
    """A new pod (rescheduled, scaled up) has no seal mark in its state folder: it learns of the seal from the state
    the seal recorded on NATS, before it serves anything; the unseal's record lets the next one start open."""
    auditor = await door.staff("auditor")
    answer = await door.client.post("/api/admin/seal", headers=await door.admin())
    assert answer.status_code == 202 and answer.json()["broadcast"] == "sent", answer.text

    def elsewhere(folder: str) -> ServiceProcess:
        process = ServiceProcess("referrals", state_dir=tmp_path / folder, secrets_dir=backends.secrets_dir,
                                 nats_url=backends.nats_url, database_url=backends.database("referrals"))
        process.start()
        return process

    pod = elsewhere("pod-1")
    try:
        await asyncio.to_thread(pod.wait_ready)
        ready = httpx.get(pod.url + "/readyz", timeout=5).json()
        assert ready["keys"] == "sealed", ready
        assert sealed(httpx.get(f"{pod.url}/api/referrals/audit/verify", headers=auditor, timeout=5))
    finally:
        pod.stop()

    unsealed = await control.publish_command(backends.nats_url, operator_seed(backends), "unseal")
    assert unsealed and not any(a["sealed"] for a in unsealed), unsealed
    pod = elsewhere("pod-2")
    try:
        await asyncio.to_thread(pod.wait_ready)
        assert httpx.get(pod.url + "/readyz", timeout=5).json()["keys"] == "unsealed"
        await asyncio.sleep(control.RECORD_EVERY + 1)  # and the next look at the record changes nothing
        assert httpx.get(pod.url + "/readyz", timeout=5).json()["keys"] == "unsealed"
    finally:
        pod.stop()
