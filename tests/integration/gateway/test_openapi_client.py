"""The gateway's merged OpenAPI document is one a partner developer can generate a client from.

The gateway runs in-process in front of every service this checkout has (each a process of its own, door.py). Its
`/openapi.json` must have readable, unique, snake_case operationIds; every error answer `application/problem+json`
with the `Problem` schema, which is what the gateway and the services really answer; only the error codes a route
can give; and `openapi-python-client` must generate a client from it without a single warning, a client that imports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.openapi import TAGS
from kit import openapi
from tests.integration.gateway.door import Backends, Door, open_gateway

pytestmark = pytest.mark.integration

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
# The one error answer that is not a problem: a readiness probe's report (kit.http), 503 while not ready.
NOT_A_PROBLEM = {("get", "/readyz", "503")}
# The token and revocation endpoints' errors are RFC 6749 §5.2's, application/json (the 429 a problem document too).
OAUTH_ERRORS = {("post", "/auth/token"): ("400", "401", "429", "503"), ("post", "/auth/revoke"): ("400",)}
FORWARDED = ("/api/intake/", "/api/referrals/", "/api/partner/", "/api/funds/", "/api/reports/")


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


@pytest.fixture
async def document(door: Door, backends: Backends) -> dict:
    answer = await door.client.get("/openapi.json")
    assert answer.status_code == 200
    merged = answer.json()
    for service in backends.urls:
        assert any(path.startswith(f"/api/{service}/") for path in merged["paths"]), f"no path of {service}"
    return merged


def responses(document: dict, method: str, path: str) -> set[int]:
    return {int(code) for code in document["paths"][path][method]["responses"]}


async def test_operation_ids_are_unique_snake_case_and_readable(document: dict):
    ids = [operation.get("operationId") for _path, _method, operation in openapi.operations(document)]

    misnamed = [i for i in ids if not isinstance(i, str) or not SNAKE_CASE.match(i)]
    assert not misnamed, misnamed
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    by_route = {(method, path): op["operationId"] for path, method, op in openapi.operations(document)}
    expected = {
        ("post", "/api/intake/cases"): "cases_create",
        ("get", "/api/intake/cases/{case_id}"): "cases_get",
        ("post", "/api/intake/cases/search"): "cases_search",
        ("post", "/api/partner/referrals/{referral_id}/accept"): "referrals_accept",
        ("post", "/api/funds/grants"): "grants_create",
        ("get", "/api/intake/audit"): "intake_audit_list",
        ("get", "/api/admin/audit"): "admin_audit_list",
        ("post", "/auth/token"): "auth_issue_token",
    }
    assert {route: by_route.get(route) for route in expected} == expected


async def test_every_error_answer_is_a_problem_and_every_tag_is_described(document: dict):
    for path, method, operation in openapi.operations(document):
        for code, response in operation["responses"].items():
            if code in OAUTH_ERRORS.get((method, path), ()):  # RFC 6749 §5.2: application/json
                assert "application/json" in response["content"], (method, path, code)
            elif int(code) >= 400 and (method, path, code) not in NOT_A_PROBLEM:
                assert response.get("content") == PROBLEM, (method, path, code, response.get("content"))
            if int(code) >= 400:
                assert response.get("description"), (method, path, code)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "detail"}
    used = {tag for _p, _m, operation in openapi.operations(document) for tag in operation.get("tags", [])}
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert used <= described.keys() and all(described.values()), described
    assert {"auth", "admin", "intake", "referrals", "partner", "funds", "reports", "health", "audit"} <= used
    assert set(TAGS) >= used


async def test_only_the_codes_a_route_can_give(document: dict):
    assert responses(document, "get", "/healthz") == {200}
    assert responses(document, "get", "/.well-known/jwks.json") == {200}
    assert responses(document, "get", "/auth/me") == {200, 401, 429, 503}  # a token, no role: no 403
    create = responses(document, "post", "/api/intake/cases")
    assert {401, 403, 413, 422} <= create and 404 not in create  # a body, a role, no record in the path
    accept = responses(document, "post", "/api/partner/referrals/{referral_id}/accept")
    assert {404, 409, 413, 415} <= accept  # no body: one sent anyway too large, compressed, or refused (422)
    assert {400, 422} <= accept  # an Idempotency-Key honoured: malformed (400), reused for another request (422)
    if_match = {("patch", "/api/intake/cases/{case_id}"), ("patch", "/api/intake/tasks/{task_id}")}
    for method, path in if_match:
        assert {412, 428} <= responses(document, method, path), path  # If-Match
    assert {400, 409, 422} <= responses(document, "post", "/api/funds/disbursements")  # Idempotency-Key required
    for path, method, _operation in openapi.operations(document):
        codes = responses(document, method, path)
        forwarded = path.startswith(FORWARDED)
        assert forwarded == ({502, 504} <= codes), (method, path)  # only where the gateway forwards
        assert (429 in codes) == (forwarded or path.startswith(("/api/admin/", "/auth/mfa/"))
                                  or path in ("/auth/me", "/auth/token", "/auth/clients/activate",
                                              "/auth/sessions/revoke-all", "/auth/password")), (method, path)
        assert not {412, 428} & codes or (method, path) in if_match, (method, path)
        if method == "get":
            assert 413 not in codes, path


async def test_the_problems_answered_are_the_ones_described(door: Door, document: dict):
    """What the gateway and a service really answer for a refused token and an invalid body fits `Problem`."""
    assert document["components"]["schemas"]["Problem"]["properties"].keys() >= {"type", "title", "status",
                                                                                  "detail", "errors"}
    refused = await door.client.post("/api/intake/cases", json={})
    caseworker = await door.staff("caseworker")
    invalid = await door.client.post("/api/intake/cases", json={"full_name": 42, "unknown": 1}, headers=caseworker)

    for answer, status in ((refused, 401), (invalid, 422)):
        assert answer.status_code == status and answer.headers["content-type"] == "application/problem+json"
        assert str(status) in document["paths"]["/api/intake/cases"]["post"]["responses"]
        problem = openapi.Problem.model_validate(answer.json())
        assert problem.status == status
    issues = openapi.Problem.model_validate(invalid.json()).errors or []
    assert {tuple(issue.loc) for issue in issues} >= {("body", "full_name"), ("body", "<unknown member>")}


async def test_openapi_python_client_generates_a_client_without_warnings(document: dict, tmp_path: Path):
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    tools = Path(sys.executable).parent  # openapi-python-client, and the ruff it formats the client with
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}

    generated = subprocess.run(
        [str(tools / "openapi-python-client"), "generate", "--path", str(spec),
         "--output-path", str(tmp_path / "client")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert not [line for line in output.splitlines() if "warning" in line.lower()], output
    packages = [p for p in (tmp_path / "client").iterdir() if (p / "__init__.py").exists()]
    assert len(packages) == 1, output
    package = packages[0].name
    # Every module of the client imports: each endpoint and each model.
    imported = subprocess.run(
        [sys.executable, "-c",
         "import importlib, pkgutil, sys\n"
         f"package = importlib.import_module({package!r})\n"
         "names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + '.')]\n"
         "for name in names: importlib.import_module(name)\n"
         f"from {package}.api.partner import referrals_accept\n"
         "assert callable(referrals_accept.sync_detailed)\n"
         "print(len(names))"],
        cwd=tmp_path / "client", env=env, capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout.strip()) > 50  # endpoints of every tag, and the models


async def test_the_webhooks_a_partner_receives_are_described_with_their_signature_headers(document: dict):
    """A partner integrator builds their receiver from the document: each event, its body and its three headers."""
    hooks = document["webhooks"]
    assert set(hooks) == {"referral.sent", "referral.cancelled", "referral.message"}
    for name, item in hooks.items():
        operation = item["post"]
        assert {p["name"] for p in operation["parameters"] if p["in"] == "header"} == {
            "webhook-id", "webhook-timestamp", "webhook-signature"}
        assert set(operation["responses"]) == {"200"} and "2xx" in operation["responses"]["200"]["description"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        payload = document["components"]["schemas"][body]
        assert set(payload["required"]) == {"type", "timestamp", "data"}
        data = document["components"]["schemas"][payload["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
        assert set(data["properties"]) == {"referral_id", "status"}, name  # ids and a state: nothing of the person
