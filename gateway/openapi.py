"""One OpenAPI document for the whole public API: the gateway's own paths plus each service's public paths.

Services are asked for their `/openapi.json` when the gateway starts and again when a copy is missing or old; a
service that is down is left out until it answers. Only paths under a prefix the gateway forwards to that service
are kept (no health, metrics or internal paths). Schemas with the same name and the same content are shared; on a
clash the service's copy is renamed `<service>_<Name>`, and so is an operationId (`<service>_<id>`).

Each operation already lists the error answers its own route can give (kit.openapi); the merge adds those the
gateway gives in front of it: on every path that needs a token, 429 (the caller's request budget) and 503 (the
caller's standing is read from the gateway's database); on every forwarded path also 401 and 403 (the gateway's own
token and role check), 502, 503 and 504 (the service gave no usable answer, is down, or is too slow). Every tag has
a description (`TAGS`).
"""

from __future__ import annotations

import asyncio
import copy
import html
import time
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.routing import ROUTES, Route
from kit import logs
from kit import openapi as described

log = logs.get("gateway.openapi")

SECURITY_SCHEME = "OAuth2"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_REF_PREFIX = "#/components/schemas/"


def security_schemes() -> dict[str, Any]:
    return {
        SECURITY_SCHEME: {
            "type": "oauth2",
            "description": "Short-lived EdDSA-signed JWT access tokens from POST /auth/token, sent as a bearer token.",
            "flows": {
                "password": {"tokenUrl": "/auth/token", "scopes": {}},
                "clientCredentials": {"tokenUrl": "/auth/token", "scopes": {}},
            },
        }
    }


def needs_token(path: str) -> bool:
    return path.startswith(("/api/", "/auth/mfa/")) or path in ("/auth/me", "/auth/sessions/revoke-all",
                                                                 "/auth/password")


# Every tag of the public document, with what its operations are for (in the order a reader meets them).
TAGS: dict[str, str] = {
    "auth": "Access tokens (OAuth2: the password grant for staff with a one-time code once they have a second "
            "factor, refresh_token, client_credentials for partner API clients), revocation (RFC 7009) and signing "
            "out everywhere, the second factor's enrolment, the caller, and the key that signs the tokens.",
    "admin": "Staff users, partner API clients, and the state of the whole system (admin; the state for auditors too).",
    "intake": "Cases of released people (caseworkers): personal data encrypted per case, duplicates across scripts "
              "and spellings, needs, consent and the case's timeline.",
    "referrals": "The partner directory (admin; caseworkers read it) and the referrals caseworkers send to partners.",
    "partner": "For partner API clients: the referrals addressed to their organisation, and their answers to them.",
    "funds": "Grants, aid disbursements on a double-entry ledger, cost estimates from referrals, and reports "
             "(finance; caseworkers request aid).",
    "reports": "Programme reports: cases, needs, referrals and aid per month, anonymous, small numbers suppressed "
               "(coordinators and finance).",
    "audit": "Each component's append-only, hash-chained audit trail, and a check of its chain (auditors).",
    "health": "Whether the gateway answers, and whether it can serve (its database and migrations).",
}

# What the gateway answers itself, in front of a route.
_ADMISSION = {
    429: "Too many requests from this caller: wait for Retry-After seconds.",
    503: "The gateway cannot serve this right now: its database, or the service behind it, is not available; try "
         "again after Retry-After.",
}
_FORWARDING = {
    401: "No valid access token: missing, invalid or expired, or its user disabled or its client revoked.",
    403: "The token's role does not allow this.",
    502: "The service behind the gateway gave no usable answer.",
    503: _ADMISSION[503],
    504: "The service behind the gateway did not answer in time.",
}


def merge(gateway_doc: dict[str, Any], service_docs: dict[str, dict[str, Any]],
          routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The merged document; `service_docs` maps a service name to its own OpenAPI document."""
    merged = copy.deepcopy(gateway_doc)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components = merged.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    tags = {tag["name"]: tag for tag in merged.get("tags", [])}

    operation_ids = {operation["operationId"] for _path, _method, operation in described.operations(merged)
                     if "operationId" in operation}
    for service, doc in sorted(service_docs.items()):
        prefixes = tuple(route.prefix + "/" for route in routes if route.backend == service)
        public = {path: item for path, item in doc.get("paths", {}).items() if path.startswith(prefixes)}
        theirs = doc.get("components", {}).get("schemas", {})
        renames = _renames(service, theirs, schemas)
        for name, schema in theirs.items():
            schemas.setdefault(renames[name], _rewrite_refs(schema, renames))
        for path, item in public.items():
            if path in paths:
                continue
            paths[path] = _rewrite_refs(copy.deepcopy(item), renames)
            for method in _METHODS:
                operation = paths[path].get(method)
                if operation is None:
                    continue
                _answer(operation, _FORWARDING)
                if "operationId" in operation:
                    if operation["operationId"] in operation_ids:
                        operation["operationId"] = f"{service}_{operation['operationId']}"
                    operation_ids.add(operation["operationId"])
        for name, item in doc.get("webhooks", {}).items():  # what partners receive (referrals describes them)
            merged.setdefault("webhooks", {}).setdefault(name, _rewrite_refs(copy.deepcopy(item), renames))
        for tag in doc.get("tags", []):
            tags.setdefault(tag["name"], tag)

    for path, item in paths.items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None and needs_token(path):
                operation["security"] = [{SECURITY_SCHEME: []}]
                _answer(operation, _ADMISSION)
    components["securitySchemes"] = security_schemes()
    merged["tags"] = _tags(paths, tags)
    merged["paths"] = dict(sorted(paths.items()))
    return described.finish(merged)


def _answer(operation: dict[str, Any], answers: dict[int, str]) -> None:
    """Add the gateway's own error answers to an operation. Where the route gives the same code already, its
    description stays; for 503 the gateway's cause is added beside the route's (the database behind the service)."""
    responses = operation.setdefault("responses", {})
    for code, why in answers.items():
        existing = responses.get(str(code))
        if existing is None:
            responses[str(code)] = described.problem_response(why, code)
        elif code == 503 and why not in existing.get("description", ""):
            existing["description"] = f"{existing.get('description', '').rstrip()} {why}".strip()
            existing.setdefault("headers", described.problem_response(why, code)["headers"])


def _tags(paths: dict[str, Any], declared: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tag the documents declare or the operations use, each with its description (`TAGS`, else the one
    its document gave)."""
    used = {tag for item in paths.values() for method in _METHODS if method in item
            for tag in item[method].get("tags", [])} | declared.keys()
    order = [name for name in TAGS if name in used] + sorted(used - TAGS.keys())
    return [{"name": name, "description": TAGS.get(name) or declared.get(name, {}).get("description", "")}
            for name in order]


def _renames(service: str, theirs: dict[str, Any], ours: dict[str, Any]) -> dict[str, str]:
    """Which of a service's schema names must be renamed so as not to collide with a different schema of ours.

    A schema equal to ours is shared, unless it refers to a schema that had to be renamed (then it differs too).
    """
    renamed = {name for name, schema in theirs.items() if name in ours and ours[name] != schema}
    changed = True
    while changed:
        changed = False
        for name, schema in theirs.items():
            if name not in renamed and _referenced(schema) & renamed:
                renamed.add(name)
                changed = True
    return {name: f"{service}_{name}" if name in renamed else name for name in theirs}


def _referenced(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            found.add(ref.removeprefix(_REF_PREFIX))
        for value in node.values():
            found |= _referenced(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced(value)
    return found


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {key: _rewrite_refs(value, renames) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            name = ref.removeprefix(_REF_PREFIX)
            out["$ref"] = _REF_PREFIX + renames.get(name, name)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(value, renames) for value in node]
    return node


ASK_AGAIN_SECONDS = 5.0  # a service whose document did not come is not asked again sooner


class ServiceDocuments:
    """The services' own documents (OpenAPI or AsyncAPI, by `path`), each kept until it is `max_age` seconds old
    and then asked for again."""

    def __init__(self, client: httpx.AsyncClient, urls: Mapping[str, str], *, max_age: float, timeout: float,
                 path: str = "/openapi.json") -> None:
        self._client = client
        self._path = path
        self._urls = urls
        self._max_age = max_age
        self._timeout = timeout
        self._docs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._asked: dict[str, float] = {}  # when each service was last asked, answered or not
        self._refreshing: asyncio.Lock = asyncio.Lock()

    @property
    def version(self) -> tuple[tuple[str, float], ...]:
        """Changes whenever a document is fetched again, so a merge can be reused until then."""
        return tuple(sorted((name, at) for name, (at, _doc) in self._docs.items()))

    async def current(self) -> dict[str, dict[str, Any]]:
        """Every document held, those due asked for first. Requests that arrive while the documents are being asked
        for share that answer instead of each asking in turn; one that has a copy of everything due is answered with
        the copies at once. A stale copy whose service did not answer is asked for again only after
        `ASK_AGAIN_SECONDS`: a hung service costs one request one timeout now and then, not every request its own."""
        arrived = time.monotonic()
        due = self._due(arrived)
        if due and not (self._refreshing.locked() and all(name in self._docs for name in due)):
            async with self._refreshing:  # again inside: what was asked for while this request waited is not due
                await asyncio.gather(*(self._fetch(name) for name in self._due(arrived)))
        return {name: doc for name, (_at, doc) in self._docs.items()}

    def _due(self, arrived: float) -> list[str]:
        """Not asked for since `arrived`, and missing, or stale and not asked for in the last `ASK_AGAIN_SECONDS`."""
        now = time.monotonic()
        due = []
        for name in self._urls:
            asked = self._asked.get(name, float("-inf"))
            if asked >= arrived:
                continue
            if name not in self._docs or (now - self._docs[name][0] > self._max_age
                                          and now - asked >= ASK_AGAIN_SECONDS):
                due.append(name)
        return due

    async def _fetch(self, name: str) -> None:
        self._asked[name] = time.monotonic()
        try:
            response = await self._client.get(self._urls[name] + self._path, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as error:
            # Keep the last good copy (the service's contract did not go away with it); retry on the next request.
            log.info("service document unavailable", backend=name, error_type=type(error).__name__)
            return
        self._docs[name] = (time.monotonic(), document)


def docs_page(document: dict[str, Any]) -> str:
    """A self-contained page listing every operation (no script, no style, nothing loaded from elsewhere)."""
    rows = []
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            summary = operation.get("summary") or operation.get("operationId") or ""
            secured = "token" if operation.get("security") else "public"
            rows.append(f"<tr><td>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(summary)}</td><td>{secured}</td></tr>")
    title = html.escape(document.get("info", {}).get("title", "API"))
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{title}</title></head><body><h1>{title}</h1>"
        "<p>The whole document: <a href=\"/openapi.json\">/openapi.json</a>. "
        "Access tokens: <code>POST /auth/token</code> (OAuth2, form-encoded).</p>"
        "<table><thead><tr><th>method</th><th>path</th><th>what</th><th>access</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></body></html>"
    )
