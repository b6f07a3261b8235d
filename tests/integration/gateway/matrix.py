"""Who may use which route (SPEC §2, §4): one table, and a walker that checks every operation of an OpenAPI
document against it, as each role.

The same table judges the gateway's merged document (walked through the gateway) and each service's own document
(walked on the service's own port, with no gateway in front: every service re-checks the role itself, SPEC §2).
The operations come from the documents, so a route added later is walked without anyone remembering to add it;
only the table is written by hand, and an operation no row covers is a failure.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx

from gateway.routing import route_for

ANY = "*"
STAFF = ("admin", "caseworker", "supervisor", "finance", "auditor", "coordinator")
PEOPLE = (*STAFF, "partner_staff")
PARTNER_ROLES = ("partner", "partner_staff")
ROLES = (*PEOPLE, "partner")


@dataclass(frozen=True)
class Rule:
    method: str
    path: str  # a regular expression over the document's path template
    allowed: frozenset[str]


def rule(method: str, path: str, *allowed: str) -> Rule:
    return Rule(method, path, frozenset(allowed))


ID = r"\{[^/]+\}"
# First match wins. Deny by default: an operation no rule matches is a failure of the walk.
WHO_MAY = [
    rule(ANY, r"^/api/(intake|referrals|funds|reports|admin)/audit(/verify)?$", "auditor"),  # audit trails: auditors only
    rule("GET", r"^/api/admin/status$", "admin", "auditor"),  # every backend's state, the key custody
    rule("GET", r"^/api/admin/users$", "admin", "auditor"),  # who each user id of a trail is (auditors read only)
    rule(ANY, r"^/api/admin/", "admin"),  # staff users and partner API clients
    rule(ANY, r"^/auth/me$", *ROLES),
    rule(ANY, r"^/auth/mfa/", *PEOPLE),  # a second factor is for people, not API clients
    rule(ANY, r"^/auth/sessions/revoke-all$", *PEOPLE),
    rule(ANY, r"^/auth/password$", *PEOPLE),  # one's own password
    # Supervisors see the whole caseload (no personal data) and assign cases (SPEC §2, §4).
    rule("GET", r"^/api/intake/cases$", "caseworker", "supervisor"),
    rule("PUT", rf"^/api/intake/cases/{ID}/assignees$", "caseworker", "supervisor"),
    rule("POST", rf"^/api/intake/cases/{ID}/assignees$", "caseworker", "supervisor"),  # one more, after them
    rule("GET", r"^/api/intake/caseworkers$", "caseworker", "supervisor"),  # whom a case can be given to
    rule(ANY, r"^/api/intake/", "caseworker"),  # cases, needs, consent, timeline, erasure
    rule("GET", rf"^/api/referrals/partners(/{ID})?$", "admin", "caseworker"),  # the partner directory
    rule(ANY, r"^/api/referrals/partners", "admin"),
    rule(ANY, r"^/api/referrals/referrals", "caseworker"),
    # Intake's word that a case's consent changed, sent with the caseworker's token (intake then decides who may).
    rule("POST", rf"^/api/referrals/cases/{ID}/consent-changed$", "caseworker"),
    rule(ANY, r"^/api/partner/", *PARTNER_ROLES),  # only through the partner API
    rule(ANY, rf"^/api/funds/disbursements(/{ID})?$", "caseworker", "finance"),  # caseworkers request aid
    rule("GET", r"^/api/funds/grants/open$", "caseworker", "finance"),  # the grants aid is requested from
    rule(ANY, r"^/api/funds/", "finance"),  # grants, approve/pay/void, cost estimates, reports
    rule(ANY, r"^/api/reports/", "coordinator", "finance"),  # programme reports: anonymous counts (SPEC §9)
]
# No token needed: the gateway's token endpoints and keys, and every process's health.
PUBLIC = {"/auth/token", "/auth/revoke", "/auth/clients/activate", "/.well-known/jwks.json", "/healthz", "/readyz"}
# Walked last: it ends the walker's own session, and every later request of that role would be refused.
ENDS_THE_SESSION = ("POST", "/auth/sessions/revoke-all")

# Not walked: an admin's seal would seal the system under the walk, and every later answer that needs a key would be
# a 503. Who may seal is checked by tests/integration/gateway/test_seal_every_process.py against this same table.
NOT_WALKED = {("POST", "/api/admin/seal")}

Operation = tuple[str, str, dict]


def allowed_roles(method: str, path: str) -> frozenset[str] | None:
    for candidate in WHO_MAY:
        if candidate.method in (ANY, method) and re.search(candidate.path, path):
            return candidate.allowed
    return None


def operations(document: dict) -> list[Operation]:
    found = [(method.upper(), path, operation) for path, item in document["paths"].items()
             for method, operation in item.items() if method in ("get", "post", "put", "patch", "delete")
             and (method.upper(), path) not in NOT_WALKED]
    return sorted(found, key=lambda op: (op[0], op[1]) == ENDS_THE_SESSION)


def service_operations(document: dict, service: str) -> tuple[list[Operation], list[str]]:
    """A service's own document, split by gateway/routing.py: the operations under a prefix the gateway forwards to
    this service (their paths are the same on both sides: the gateway forwards the path as it is), and the strays —
    anything else that is not a public health path, which no rule of the table is about."""
    walked, strays = [], []
    for method, path, operation in operations(document):
        route = route_for(path)
        if path in PUBLIC or (route is not None and route.backend == service):
            walked.append((method, path, operation))
        else:
            strays.append(f"{method} {path}")
    return walked, strays


def concrete(path: str) -> str:
    """The path with a fresh UUID in every parameter: the answers are about access, not about data."""
    return re.sub(ID, lambda _m: str(uuid.uuid4()), path)


def id_filters(operation: dict) -> dict[str, str]:
    """A fresh UUID for every query parameter that takes one (`?case_id=`): a scoped list is a fair request."""
    def takes_uuid(schema: dict) -> bool:
        return schema.get("format") == "uuid" or any(takes_uuid(s) for s in schema.get("anyOf", []))

    return {p["name"]: str(uuid.uuid4()) for p in operation.get("parameters", [])
            if p.get("in") == "query" and takes_uuid(p.get("schema", {}))}


def need_to_know(answer: httpx.Response) -> bool:
    return (answer.status_code == 403 and answer.headers.get("content-type", "").startswith("application/problem+json")
            and answer.json().get("type", "").endswith("/need-to-know"))


async def walk(client: httpx.AsyncClient, ops: list[Operation], tokens: dict[str, dict[str, str]],
               other_partner: dict[str, str], *, where: str, documents_security: bool = True) -> tuple[list[str], int]:
    """Every operation of `ops`, through `client`, without a token and as each role of `tokens` (and as a partner of
    another organisation): the mismatches with WHO_MAY, and how many role × operation answers were checked.
    `documents_security`: the document marks what needs a token (the gateway's merged one does)."""
    mismatches: list[str] = []
    walked = 0
    for method, path, operation in ops:
        if path in PUBLIC:
            assert "security" not in operation, path
            continue
        allowed = allowed_roles(method, path)
        if allowed is None:
            mismatches.append(f"{method} {path} {where}: no rule says who may use it (add one from SPEC §2)")
            continue
        if documents_security:
            assert operation.get("security"), f"{method} {path} is not marked as needing a token"
        # What the document tells its reader (kit.openapi.roles_of) is what the walk finds: the same table.
        declared = operation.get("x-roles")
        if declared is not None and frozenset(declared) != allowed:
            mismatches.append(f"{method} {path} {where}: the document says x-roles {declared}, the rule "
                              f"{sorted(allowed)}")
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        query = id_filters(operation)

        anonymous = await client.request(method, url, json=body, params=query)
        if anonymous.status_code != 401:
            mismatches.append(f"{method} {path} {where} without a token: {anonymous.status_code}, expected 401")
        for role, headers in tokens.items():
            answer = await client.request(method, url, json=body, params=query, headers=headers)
            walked += 1
            # A caseworker's role lets them in; need-to-know then refuses a case not assigned to them (these ids
            # are fresh), a 403 of its own kind.
            if role in allowed and answer.status_code in (401, 403) and not need_to_know(answer):
                mismatches.append(f"{method} {path} {where} as {role}: {answer.status_code}, but {role} may use it")
            elif role not in allowed and answer.status_code != 403:
                mismatches.append(f"{method} {path} {where} as {role}: {answer.status_code}, expected 403")
            elif answer.status_code >= 500:
                mismatches.append(f"{method} {path} {where} as {role}: {answer.status_code} {answer.text[:200]}")
        if "partner" in allowed and "{" in path:  # (and partner_staff: the same rule, the same code)
            # Another partner's record is not found, never forbidden, never shown.
            answer = await client.request(method, url, json=body, params=query, headers=other_partner)
            if answer.status_code not in (404, 422):
                mismatches.append(f"{method} {path} {where} as another partner: {answer.status_code}, expected 404")
    return mismatches, walked
