"""A NUL character sent to any process — in a path id, a query value or a string of a JSON body — is refused at the
door as a problem (400 for the address, 422 for the body), never a 500. PostgreSQL's text cannot hold a NUL and its
driver refuses one only when the query runs (SQLite stores it): with REHAB_TEST_POSTGRES_URL set this runs against
PostgreSQL, where the old answer was a 500; on SQLite it was a 404 or a 201 that stored the NUL."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gateway.config import GatewaySettings
from kit.auth import TokenIssuer
from services.referrals.config import ReferralsSettings
from services.referrals.main import create_app as create_referrals
from tests.integration.gateway.door import (
    ADMIN_PASSWORD,
    CHEAP_HASHING,
    SERVICES,
    Door,
    open_gateway,
)
from tests.support.apps import bearer, running
from tests.support.nats import free_port

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}
PARTNER = {"category": "medical", "countries": ["LT"], "cities": ["Vilnius"], "languages": ["be"],
           "contact_email": "desk@clinic.example"}


def cursor(*values: object) -> str:
    """A page cursor as anyone can write one: base64 of JSON, escapes and all (the list it names, kit.pagination's
    digest of the query, is wrong too: refused either way, never a 500)."""
    return base64.urlsafe_b64encode(json.dumps(["0" * 12, *values]).encode()).decode().rstrip("=")


def refused(answer: httpx.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status and "NUL character is not allowed" in problem["detail"]
    return problem


@pytest.fixture
async def referrals(tmp_path: Path, secrets_dir: Path, nats_url: str,
                    database_url_factory: Callable[[str], str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = ReferralsSettings(state_dir=tmp_path / "referrals", secrets_dir=secrets_dir, nats_url=nats_url,
                                 database_url=database_url_factory("referrals"))
    async with running(create_referrals(settings)) as client:
        yield client


@pytest.fixture
async def door(tmp_path: Path, secrets_dir: Path, database_url_factory: Callable[[str], str]) -> AsyncIterator[Door]:
    """A gateway on its own database, with no service behind it (as tests/integration/gateway's `door`)."""
    settings = GatewaySettings(
        state_dir=tmp_path / "gateway", secrets_dir=secrets_dir, database_url=database_url_factory("gateway"),
        admin_password=ADMIN_PASSWORD, mfa_required_roles="", nats_url=f"nats://127.0.0.1:{free_port()}",
        **CHEAP_HASHING, **{f"{name}_url": f"http://127.0.0.1:{free_port()}" for name in SERVICES})
    async with open_gateway(settings) as opened:
        yield opened


async def test_a_service_refuses_a_nul_in_a_path_id_a_query_value_and_a_body(
        referrals: httpx.AsyncClient, token_issuer: TokenIssuer):
    admin = bearer(token_issuer, "admin", sub="admin-1")
    caseworker = bearer(token_issuer, "caseworker", sub="caseworker-1")

    assert "path" in refused(await referrals.get("/api/referrals/partners/%00", headers=admin), 400)["detail"]
    assert "query" in refused(await referrals.get("/api/referrals/partners?city=%00", headers=caseworker),
                              400)["detail"]
    sent = rb'{"name": "Clinic\u0000", "category": "medical", "contact_email": "desk@clinic.example"}'
    problem = refused(await referrals.post("/api/referrals/partners", content=sent, headers={**admin, **JSON}), 422)
    assert problem["errors"][0]["loc"] == ["body", "name"]

    # What only looks like one (an escaped backslash, then `u0000`) is text, kept as sent.
    lookalike = await referrals.post("/api/referrals/partners", headers=admin,
                                     json={"name": "Clinic \\u0000", **PARTNER})
    assert lookalike.status_code == 201, lookalike.text
    kept = await referrals.get(f"/api/referrals/partners/{lookalike.json()['id']}", headers=admin)
    assert kept.json()["name"] == "Clinic \\u0000"


async def test_the_gateway_refuses_a_nul_in_a_path_id_a_query_value_and_a_body(door: Door):
    admin = await door.admin()
    auditor = await door.staff("auditor")

    refused(await door.client.post("/api/admin/users/%00/disable", headers=admin), 400)
    signing_in = {"content-type": "application/x-www-form-urlencoded"}
    for form in (b"grant_type=password&username=adm%00in&password=x", b"grant_type=client_credentials&client_id=c%00"):
        answer = refused(await door.client.post("/auth/token", content=form, headers=signing_in), 400)
        assert answer["error"] == "invalid_request"  # what an OAuth2 client reads (RFC 6749 §5.2)
    refused(await door.client.get("/api/admin/audit?target_id=%00", headers=auditor), 400)
    sent = b'{"partner_id": "%s", "name": "Clinic\\u0000API"}' % str(uuid.uuid4()).encode()
    problem = refused(await door.client.post("/api/admin/clients", content=sent, headers={**admin, **JSON}), 422)
    assert problem["errors"][0]["loc"] == ["body", "name"]
    # A route forwarded to a service: its address is refused at the gateway already, before any service is asked;
    # its body is streamed unread to the service, whose own guard reads it once the caller is admitted
    # (test_gateway_with_services): here the caller's role is refused first, the NUL never looked at.
    refused(await door.client.get("/api/intake/cases/%00", headers=admin), 400)
    not_theirs = await door.client.put(f"/api/intake/cases/{uuid.uuid4()}/assignees",
                                       content=rb'{"usernames": ["x\u0000"]}', headers={**admin, **JSON})
    assert not_theirs.status_code == 403 and not_theirs.json()["type"].endswith("/forbidden"), not_theirs.text


async def test_a_cursor_holding_what_the_database_cannot_take_is_an_invalid_cursor(
        referrals: httpx.AsyncClient, door: Door, token_issuer: TokenIssuer):
    """The cursor is base64, so the guard never sees a NUL inside it: kit.pagination refuses it, with the rest of
    what JSON carries and a database does not (a lone surrogate, an integer beyond BIGINT)."""
    caseworker = bearer(token_issuer, "caseworker", sub="caseworker-1")
    service_auditor = bearer(token_issuer, "auditor", sub="auditor-1")
    admin, auditor = await door.admin(), await door.staff("auditor")
    asked = [
        (referrals, "/api/referrals/partners", caseworker, cursor("Clinic\x00", str(uuid.uuid4()))),
        (referrals, "/api/referrals/partners", caseworker, cursor("\ud800", str(uuid.uuid4()))),
        (referrals, "/api/referrals/audit", service_auditor, cursor(2**63)),
        (door.client, "/api/admin/users", admin, cursor("admin\x00")),
        (door.client, "/api/admin/clients", admin, cursor("\ud800")),
        (door.client, "/api/admin/audit", auditor, cursor(10**30)),
    ]
    for client, path, headers, written in asked:
        answer = await client.get(path, params={"cursor": written}, headers=headers)
        assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM, (path, answer.text)
        assert answer.json()["type"].endswith("/invalid-cursor"), path
