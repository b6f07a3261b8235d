"""The gateway in front of every service this checkout has, each running as its own process (started once for
this module): forwarding, one merged OpenAPI document, readiness; bad tokens refused at the gateway and at each
service called directly; and the role × route matrix.

The matrix walks every operation of the merged OpenAPI document, through the gateway, as each role (and as a partner
of another partner organisation), and checks the answer against what SPEC §2 says that role may do. The operations
come from the document, so a route added later is walked without anyone remembering to add it; only the table of
who may do what is written by hand (from SPEC §2 and §4, in matrix.py, which also judges every service walked on its
own port in test_role_matrix_direct.py), and an operation no row covers fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote, quote_plus

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit.secrets import TOKEN_PRIVATE_KEY_FILE, TOKEN_PUBLIC_KEY_FILE
from tests.integration.gateway.door import (
    STAFF_PASSWORD,
    Backends,
    Door,
    names,
    open_gateway,
)
from tests.integration.gateway.matrix import ROLES, operations, walk

pytestmark = pytest.mark.integration


# --- forwarding, the merged document, readiness ----------------------------------------------------------------------

GATEWAY_PATHS = {"/auth/token", "/auth/revoke", "/auth/clients/activate", "/auth/me", "/auth/sessions/revoke-all",
                 "/auth/mfa/totp/enrol", "/auth/mfa/totp/confirm", "/auth/password", "/.well-known/jwks.json",
                 "/healthz", "/readyz"}
SECURED_GATEWAY_PATHS = {"/auth/me", "/auth/sessions/revoke-all", "/auth/mfa/totp/enrol", "/auth/mfa/totp/confirm",
                         "/auth/password"}


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


def a_name() -> str:
    return names("belarusian")[0]


async def test_a_request_reaches_its_service_and_its_answer_comes_back_as_it_was(door: Door, backends: Backends,
                                                                                capfd: pytest.CaptureFixture[str]):
    if "intake" not in backends.urls:
        pytest.skip("intake does not exist in this checkout")
    caseworker = await door.staff("caseworker")

    created = await door.client.post("/api/intake/cases", headers={**caseworker, "X-Request-ID": "trace-me-42"},
                                     json={"full_name": a_name(), "country": "LT"})

    assert created.status_code == 201, created.text
    rid = created.headers["x-request-id"]  # the gateway's own: a caller's string is never logged or audited
    assert rid != "trace-me-42" and len(rid) == 32
    assert created.headers["location"].startswith("/api/intake/cases/")  # the service's own header, passed through
    case = created.json()
    assert case["status"] == "open" and case["reference"]
    found = await door.client.post("/api/intake/cases/search", json={"q": a_name(), "limit": 5}, headers=caseworker)
    assert found.status_code == 200 and case["id"] in [c["id"] for c in found.json()["items"]]
    read = await door.client.get(f"/api/intake/cases/{case['id']}", headers=caseworker)
    assert read.status_code == 200 and read.json()["full_name"] == a_name()
    missing = await door.client.get("/api/intake/cases/00000000-0000-4000-8000-000000000000", headers=caseworker)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    printed = capfd.readouterr().out
    assert '"route": "/api/intake/{path}"' in printed  # the gateway logged the requests…
    assert rid in printed and "trace-me-42" not in printed  # …by its own request id and route template…
    for written in (a_name(), json.dumps(a_name())[1:-1], quote(a_name()), quote_plus(a_name())):
        assert written not in printed  # …never a body or a query string, in any encoding


async def test_a_partner_s_account_or_client_is_bound_only_to_a_partner_the_directory_holds(door: Door):
    admin, nowhere = await door.admin(), str(uuid.uuid4())
    client = await door.client.post("/api/admin/clients", headers=admin, json={"partner_id": nowhere, "name": "API"})
    staff = await door.client.post("/api/admin/users", headers=admin, json={
        "username": door.next_username(), "password": STAFF_PASSWORD, "roles": ["partner_staff"],
        "partner_id": nowhere})
    for refused in (client, staff):  # a typo would give working credentials bound to nobody's referrals
        assert refused.status_code == 422 and refused.json()["type"].endswith("/partner-unknown"), refused.text
    held = await door.some_partner()
    made = await door.client.post("/api/admin/clients", headers=admin, json={"partner_id": held, "name": "API"})
    assert made.status_code == 201 and made.json()["partner_id"] == held


async def test_a_stranger_s_body_is_never_parsed_at_the_gateway_and_a_caller_s_is_guarded_at_the_service(door: Door):
    """A service's body streams to it unread, after the gateway admitted its caller: a stranger's megabyte of JSON is
    not parsed on the gateway's loop; the same body from a caseworker meets the service's own guard. An upload route
    takes a large body as a document only: JSON there keeps the ordinary limit."""
    deep = b"[" * 10_000 + b"]" * 10_000
    twice = b'{"full_name": "A", ' + b" " * 300_000 + b'"full_name": "B"}'
    nul = b'{"full_name": "A\u0000"}'
    caseworker = await door.staff("caseworker")
    for body, kind in ((deep, "json-too-deep"), (twice, "json_duplicate_member"), (nul, "string_nul_character")):
        stranger = await door.client.post("/api/intake/cases", content=body,
                                          headers={"Content-Type": "application/json"})
        assert stranger.status_code == 401, stranger.text  # asked who first: the body was never read here
        sent = await door.client.post("/api/intake/cases", content=body,
                                      headers={**caseworker, "Content-Type": "application/json"})
        assert sent.status_code in (400, 422) and kind in sent.text, (kind, sent.text)
    case = await door.client.post("/api/intake/cases", json={"full_name": a_name()}, headers=caseworker)
    big_json = b'{"kind": "' + b"x" * 2_000_000 + b'"}'
    as_json = await door.client.post(f"/api/intake/cases/{case.json()['id']}/documents", content=big_json,
                                     headers={**caseworker, "Content-Type": "application/json"})
    assert as_json.status_code == 413 and as_json.headers["content-type"] == "application/problem+json"


async def test_paths_that_climb_out_of_their_prefix_are_not_forwarded(door: Door):
    partner = await door.partner()

    # (HTTP clients remove literal dot segments before sending; encoded ones reach the gateway.)
    for path in ("/api/partner/%2e%2e/intake/cases", "/api/partner/%2E%2E/referrals/referrals",
                 "/api/partner/%2e/referrals"):
        answer = await door.client.get(path, headers=partner)
        assert answer.status_code == 404, path


async def test_one_openapi_document_covers_the_gateway_and_every_service(door: Door, backends: Backends):
    document = (await door.client.get("/openapi.json")).json()

    paths = set(document["paths"])
    assert {"/auth/token", "/auth/me", "/api/admin/users", "/api/admin/clients", "/api/admin/audit"} <= paths
    for service in backends.urls:
        assert any(p.startswith(f"/api/{service}/") for p in paths), f"nothing of {service} in the document"
    assert all(p.startswith("/api/") or p in GATEWAY_PATHS for p in paths), sorted(paths)
    scheme = document["components"]["securitySchemes"]["OAuth2"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert scheme["flows"]["clientCredentials"]["tokenUrl"] == "/auth/token"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = path.startswith("/api/") or path in SECURED_GATEWAY_PATHS
            assert bool(operation.get("security")) == secured, (method, path)
    unresolved = refs(document) - {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}
    assert not unresolved
    docs = await door.client.get("/docs")
    assert docs.status_code == 200 and "/api/admin/users" in docs.text and "<script" not in docs.text


async def test_one_asyncapi_document_names_every_event_subject_with_its_payload(door: Door, backends: Backends):
    answer = await door.client.get("/asyncapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["asyncapi"].startswith("3.")
    subjects = {channel["address"] for channel in document["channels"].values()}
    expected = {"rehab.intake.case.opened", "rehab.intake.consent.changed", "rehab.referrals.referral.sent",
                "rehab.referrals.referral.completed", "rehab.funds.disbursement.paid"}
    wanted = {s for s in expected if s.split(".")[1] in backends.urls}
    assert wanted and wanted <= subjects, sorted(subjects)
    # The gateway's own: who the staff are.
    assert {"rehab.gateway.user.created", "rehab.gateway.user.roles_changed", "rehab.gateway.user.disabled",
            "rehab.gateway.user.enabled", "rehab.gateway.user.sessions_revoked"} <= subjects
    schemas = document["components"]["schemas"]
    assert set(schemas["UserChanged"]["properties"]) == {"user_id", "username", "roles", "partner_id", "occurred_at"}
    unresolved = refs(document) - {f"#/components/{kind}/{name}" for kind in ("schemas", "messages")
                                   for name in document["components"][kind]} - {
        f"#/channels/{key}" for key in document["channels"]} - {
        f"#/channels/{key}/messages/{key}" for key in document["channels"]}
    assert not unresolved, unresolved
    payloads = " ".join(str(document["components"]["schemas"]).lower().split())
    assert all(word not in payloads for word in ("full_name", "phone", "payee", "display_name"))


def refs(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


async def test_readiness_is_the_gateways_own_and_the_status_asks_every_service(door: Door, backends: Backends):
    ready = await door.client.get("/readyz")

    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "migrations": "current", "keys": "unsealed"}
    assert (await door.client.get("/healthz")).json() == {"status": "ok"}
    status = (await door.client.get("/api/admin/status", headers=await door.admin())).json()
    for service in backends.urls:
        assert status["services"][service]["status"] == "ready"
    assert status["gateway"] == ready.json() and status["key_custody"] == "file"


# --- bad tokens ------------------------------------------------------------------------------------------------------

# One path per prefix, fixed by SPEC §4, with a role that may use it.
PROBES = {
    "intake": [("/api/intake/cases", "caseworker", None)],
    "referrals": [("/api/referrals/partners", "admin", None),
                  ("/api/partner/referrals", "partner", "6f1d0c3a-58b2-4e0f-9d6c-2a7b3c4d5e6f")],
    "funds": [("/api/funds/grants", "finance", None)],
    "reports": [("/api/reports/programme", "finance", None)],
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub: str, roles: list[str], partner_id: str | None, **changes: object) -> dict:
    now = int(time.time())
    base = {"iss": "rehab-gateway", "aud": "rehab-api", "sub": sub, "iat": now, "nbf": now, "exp": now + 300,
            "jti": str(uuid.uuid4()), "roles": roles}
    if partner_id:
        base["partner_id"] = partner_id
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def unsigned(header: dict, payload: dict) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())


def hs256(payload: dict, secret: bytes) -> str:
    signing_input = unsigned({"alg": "HS256", "typ": "JWT"}, payload)
    return signing_input + "." + b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def bad_tokens(backends: Backends, sub: str, roles: list[str], partner_id: str | None) -> dict[str, str]:
    """Every way a token can be wrong, each otherwise carrying a role that may use the path."""
    private_key = serialization.load_pem_private_key((backends.secrets_dir / TOKEN_PRIVATE_KEY_FILE).read_bytes(), None)
    public_pem = (backends.secrets_dir / "intake" / TOKEN_PUBLIC_KEY_FILE).read_bytes()
    public_raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    good = claims(sub, roles, partner_id)
    valid = jwt.encode(good, private_key, algorithm="EdDSA")
    head, _payload, signature = valid.split(".")
    forged = {**good, "roles": ["admin", "auditor"]}
    now = int(time.time())
    return {
        "signed by another key": jwt.encode(good, Ed25519PrivateKey.generate(), algorithm="EdDSA"),
        "forged claims under a real signature": f"{head}.{b64url(json.dumps(forged).encode())}.{signature}",
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, good) + ".",
        "HS256 keyed with the public key (PEM)": hs256(good, public_pem),
        "HS256 keyed with the public key (raw)": hs256(good, public_raw),
        "expired": jwt.encode(claims(sub, roles, partner_id, iat=now - 1200, nbf=now - 1200, exp=now - 600),
                              private_key, algorithm="EdDSA"),
        "without expiry": jwt.encode(claims(sub, roles, partner_id, exp=None), private_key, algorithm="EdDSA"),
        "for another audience": jwt.encode(claims(sub, roles, partner_id, aud="another-api"), private_key,
                                           algorithm="EdDSA"),
        "from another issuer": jwt.encode(claims(sub, roles, partner_id, iss="someone-else"), private_key,
                                          algorithm="EdDSA"),
        "not a JWT": "not-a-jwt",
    }


def valid_token(backends: Backends, sub: str, roles: list[str], partner_id: str | None) -> str:
    return backends.issuer().issue(sub=sub, roles=roles, partner_id=partner_id)


@pytest.mark.parametrize("service", ["intake", "referrals", "funds"])
def test_each_service_called_directly_refuses_every_bad_token(backends: Backends, service: str):
    if service not in backends.urls:
        pytest.skip(f"{service} does not exist in this checkout yet")
    with httpx.Client(base_url=backends.urls[service], timeout=10) as client:
        for path, role, partner_id in PROBES[service]:
            token = valid_token(backends, "probe", [role], partner_id)
            good = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert good.status_code not in (401, 403), (path, good.status_code, good.text)
            assert client.get(path).status_code == 401
            for kind, token in bad_tokens(backends, "probe", [role], partner_id).items():
                answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 401, (service, path, kind, answer.status_code)
                assert answer.headers["content-type"] == "application/problem+json"


async def test_the_gateway_refuses_every_bad_token(door: Door, backends: Backends):
    staff = {role: await door.add_user(role) for role in ("admin", "caseworker", "finance")}
    partner = await door.add_client()
    probes = [probe for service in backends.urls for probe in PROBES[service]] + [("/auth/me", "caseworker", None)]
    for path, role, _ in probes:
        sub, partner_id = (partner["client_id"], partner["partner_id"]) if role == "partner" else (staff[role]["id"], None)
        good = await door.client.get(path, headers={
            "Authorization": f"Bearer {valid_token(backends, sub, [role], partner_id)}"})
        assert good.status_code not in (401, 403), (path, good.status_code, good.text)
        assert (await door.client.get(path)).status_code == 401
        for kind, token in bad_tokens(backends, sub, [role], partner_id).items():
            answer = await door.client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 401, (path, kind, answer.status_code)
            assert answer.headers["content-type"] == "application/problem+json"


# --- the role × route matrix (the table and the walker: matrix.py) -----------------------------------------------

async def test_every_route_answers_each_role_as_the_spec_says(door: Door, backends: Backends):
    document = (await door.client.get("/openapi.json")).json()
    for service in backends.urls:
        prefix = "/api/partner/" if service == "referrals" else f"/api/{service}/"
        assert any(path.startswith(f"/api/{service}/") for path in document["paths"]), \
            f"the merged document has no path of {service}: is its /openapi.json broken?"
        assert any(path.startswith(prefix) for path in document["paths"])
    tokens = {role: await (door.partner() if role == "partner" else door.partner_staff() if role == "partner_staff"
                           else door.staff(role)) for role in ROLES}
    other_partner = await door.partner()

    mismatches, walked = await walk(door.client, operations(document), tokens, other_partner,
                                    where="through the gateway")

    assert walked >= 5 * len(ROLES), "too few operations walked: is the merged document complete?"
    assert not mismatches, "\n".join(mismatches)
    # The merged document says who may use each route of the services and the admin's, as each service's does
    # (checked against the table by the walk): a reader learns it there, not from a 403.
    for method, path, operation in operations(document):
        if path.startswith(("/api/intake/", "/api/referrals/", "/api/funds/", "/api/reports/", "/api/partner/",
                            "/api/admin/")):
            assert operation.get("x-roles"), f"{method} {path} does not say who may use it"
            assert "Only " in operation["responses"]["403"]["description"], (method, path)
