"""Bad input from every kind of caller: schemathesis generates requests (valid and invalid) for every operation of
the gateway's merged OpenAPI document and sends each one as every role, a partner client and nobody at all.

What must hold for each answer: never a 5xx; every error an RFC 9457 problem (`application/problem+json` with
`type`, `title`, `status`, `detail`, and `status` equal to the HTTP status); and the answer as the document says:
a status code the operation lists (kit.openapi derives them from each route: one it cannot give is not listed, so
one it gives and does not list is a finding), a content type listed for that code, a body of that code's schema.

Bounded for CI: a few examples per operation and generation mode, derandomized (the same requests on every run),
no shrinking.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.system import ADMIN_PASSWORD, STAFF_PASSWORD, System, activated, sign_in

pytestmark = pytest.mark.e2e

ROLES = ("admin", "caseworker", "finance", "auditor")
EXAMPLES_PER_OPERATION = 4


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    # Rate limits would turn most of the generated requests into 429s, which say nothing about the routes behind.
    running = System(tmp_path_factory.mktemp("fuzz"), env={"REHAB_API_RATE_LIMIT": "100000/minute",
                                                           "REHAB_SIGNIN_RATE_LIMIT": "100000/minute"})
    try:
        running.start()
        yield running
    finally:
        running.cleanup()


@pytest.fixture(scope="module")
def callers(system: System) -> dict[str, dict[str, str]]:
    """Authorization headers for each staff role, a partner's API client, and an anonymous caller."""
    admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    headers = {"admin": {"Authorization": f"Bearer {admin.token}"}}
    for role in ROLES[1:]:
        made = admin.post("/api/admin/users", json={"username": f"fuzz-{role}", "password": STAFF_PASSWORD,
                                                     "roles": [role]})
        assert made.status_code == 201, made.text
        user = sign_in(system.url, grant_type="password", username=f"fuzz-{role}", password=STAFF_PASSWORD)
        headers[role] = {"Authorization": f"Bearer {user.token}"}
    clinic = admin.post("/api/referrals/partners", json={
        "name": f"Fuzz clinic {uuid.uuid4().hex[:6]}", "category": "medical", "countries": ["LT"],
        "cities": ["Vilnius"], "languages": ["be"], "contact_email": "fuzz@clinic.example"})
    assert clinic.status_code == 201, clinic.text
    client = admin.post("/api/admin/clients", json={"partner_id": clinic.json()["id"], "name": "fuzz client"})
    assert client.status_code == 201, client.text
    partner = sign_in(system.url, grant_type="client_credentials", **activated(system.url, client.json()))
    headers["partner"] = {"Authorization": f"Bearer {partner.token}"}
    headers["anonymous"] = {}
    return headers


@pytest.fixture(scope="module")
def merged_openapi(system: System) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(system.url + "/openapi.json")
    schema.config.update(base_url=system.url, request_timeout=10)
    return schema


def problem_details(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx/5xx answer is application/problem+json with type, title, status and detail (RFC 9457); the token
    endpoint's and the revocation endpoint's are RFC 6749's, application/json, with the problem's fields beside
    `error` (SPEC §3, §6)."""
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    oauth = case.path in ("/auth/token", "/auth/revoke") and content_type == "application/json"
    assert content_type == "application/problem+json" or oauth, (
        f"{response.status_code} answered with content-type {content_type!r}, not application/problem+json")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} problem body is not JSON") from None
    missing = [key for key in ("type", "title", "status", "detail") if not isinstance(body, dict) or key not in body]
    assert not missing, f"{response.status_code} problem lacks {missing}"
    assert body["status"] == response.status_code, f"problem status {body['status']} != HTTP {response.status_code}"
    assert not oauth or body.get("error"), "a token endpoint error without RFC 6749's `error`"


CHECKS = [not_a_server_error, problem_details, status_code_conformance, content_type_conformance,
          response_schema_conformance]


# Not `schemathesis.pytest.from_fixture(...)` + `@schema.parametrize()`: with pytest 9 its lazy loader fails
# (`'Function' object has no attribute '_nodeid'`, schemathesis 4.32.5). Driving each operation's strategy with
# Hypothesis directly does the same work, and lets one run report every finding instead of stopping at the first.
@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_server_error_and_every_error_is_a_problem(
    system: System, merged_openapi: schemathesis.BaseSchema, callers: dict[str, dict[str, str]],
    mode: schemathesis.GenerationMode,
) -> None:
    findings: list[str] = []
    # Not the seal (SPEC §8): an admin's request with no input to vary, which would seal the system under test and
    # turn every later request that needs a key into a 503. tests/integration/gateway/test_seal_every_process.py.
    operations = [result.ok() for result in merged_openapi.get_all_operations()
                  if result.ok().label != "POST /api/admin/seal"]
    assert len(operations) > 40  # every service's routes are in the merged document
    answered_before = gateway_requests(system)
    for operation in operations:
        found = _fuzz(operation, mode, callers)
        if found:
            findings.append(f"===== {operation.label}\n{found}")
    assert not findings, f"{len(findings)} operations answered badly:\n" + "\n".join(findings)
    # The checks above looked at real answers: the gateway counted them (a few per operation and caller).
    assert gateway_requests(system) - answered_before > 2 * len(operations) * len(callers)


def gateway_requests(system: System) -> float:
    """Requests the gateway has answered so far, from its own /metrics (on its metrics port, not the public one)."""
    metrics = system.metrics("gateway")
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith('rehab_http_requests_total{') and 'service="gateway"' in line)


def _fuzz(operation: schemathesis.APIOperation, mode: schemathesis.GenerationMode,
          callers: dict[str, dict[str, str]]) -> str | None:
    """Send a few generated requests for one operation as every caller; the first bad answers, described."""

    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def each_case(case: schemathesis.Case) -> None:
        failures = []
        for caller, headers in callers.items():
            try:
                case.call_and_validate(headers=headers, checks=CHECKS)
            except AssertionError as failure:  # schemathesis' failures (and groups of them) are AssertionErrors
                failures.append(f"--- as {caller}:\n{failure}")
        assert not failures, "\n".join(failures)

    try:
        each_case()
    except Unsatisfiable:
        return None  # no invalid request exists for it (e.g. no parameters, or only a path id): nothing to send
    except AssertionError as failure:
        return str(failure)
    return None


def test_the_schema_covers_every_service(merged_openapi: schemathesis.BaseSchema) -> None:
    """The fuzzing above means something only if the merged document holds every service's routes."""
    paths = set(merged_openapi.raw_schema["paths"])
    for prefix in ("/auth/", "/api/admin/", "/api/intake/", "/api/referrals/", "/api/partner/", "/api/funds/"):
        assert any(path.startswith(prefix) for path in paths), prefix

