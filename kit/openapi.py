"""The OpenAPI description of every app's routes: readable operationIds and only the error answers a route can give.

`install(app)` right after the app is made (before its routers are included) is all an app does. It sets
`describe_route` as the app's `generate_unique_id_function`, the one hook FastAPI calls for every route as it builds
it, and so the one place every document made from the routes goes through: `app.openapi()` and the gateway's own
`get_openapi(routes=app.routes)` alike. There each route gets

- its operationId, `<resource>_<action>`: the resource is the first path segment after `/api/<area>/` (`cases`,
  `grants`, …; outside `/api/` the route's first tag), the action the route function's name without the resource's
  words (`create_case` → `cases_create`, `read_case` → `cases_get`, `accept` → `referrals_accept`); a resource every
  service has (`audit`) is named with its area (`intake_audit_list`); the app names, at `install`, the few routes
  whose function name says nothing better (`OPERATION_IDS`: the kit's own);
- its error answers, each `application/problem+json` with the `Problem` schema, derived from what the route is:
  see `error_answers`. What a use case gives that its signature does not show, the route declares in
  `responses=`.

`finish(document)` then settles a generated document: error answers as problem+json only, no FastAPI default 422
(`HTTPValidationError`, which this API never answers), the `Problem` schema present. `install` makes `app.openapi()`
finish its document; the gateway finishes the merged one (gateway/openapi.py), where it also adds what the gateway
answers in front of every service (429, 502, 503, 504).
"""

from __future__ import annotations

import collections.abc
import copy
import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from sqlalchemy.orm import Session

from kit.auth import Principal
from kit.idempotency import HEADER as IDEMPOTENCY_KEY
from kit.problems import MEDIA_TYPE, ProblemDoc

SCHEMA = "Problem"
REF = f"#/components/schemas/{SCHEMA}"
_FASTAPI_422 = "#/components/schemas/HTTPValidationError"


class Problem(ProblemDoc):
    """An error answer, `application/problem+json` (RFC 9457). `type` names the kind of problem; `status` repeats
    the HTTP status; `errors` (422 for an invalid request) says which fields are wrong, never with their values."""


# ---- operationIds ------------------------------------------------------------------------------------------------

# Routes whose function name says nothing better (keyed by the function's name): the kit's own here; an app names
# its own at `install(app, operation_ids=…)`.
OPERATION_IDS: dict[str, str] = {"healthz": "health_live", "readyz": "health_ready"}
# Resources every service has: named with their area, so that they stay unique in the gateway's merged document.
AREA_QUALIFIED = frozenset({"audit"})
_VERBS = {"read": "get"}
_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def operation_id(route: Any, names: Mapping[str, str] = OPERATION_IDS) -> str:
    """`<resource>_<action>`, snake_case, from the route's path, tags, function name and method; `names` overrides
    it by function name."""
    name = route.name
    if name in names:
        return names[name]
    segments = [s for s in route.path_format.split("/") if s]
    static = [s for s in segments if not s.startswith("{")]
    if len(static) >= 3 and static[0] == "api":
        area, resource = _word(static[1]), _word(static[2])
        if resource in AREA_QUALIFIED:
            resource = f"{area}_{resource}"
    else:
        resource = _word(str(route.tags[0])) if route.tags else _word(static[0] if static else "root")
    nouns = set(resource.split("_")) | {word[:-1] for word in resource.split("_") if word.endswith("s")}
    words = [w for w in _word(name).split("_") if w and w not in nouns]
    if words:
        words[0] = _VERBS.get(words[0], words[0])
    else:
        method = sorted(route.methods)[0]
        words = ["get" if segments and segments[-1].startswith("{") else "list"] if method == "GET" \
            else [_BY_METHOD.get(method, method.lower())]
    return f"{resource}_{'_'.join(words)}"


def _word(text: str) -> str:
    return _NOT_WORD.sub("_", text.lower()).strip("_")


# ---- error answers -----------------------------------------------------------------------------------------------

IF_MATCH = "If-Match"

# A route declares what its use case answers that its signature does not show, in `responses=`:
# `{409: {"description": "…"}}` becomes a problem answer with that reason beside the derived ones; an answer that is
# not a problem gives its own `content` (a probe's JSON, an OAuth2 error), which is kept as it is.


def key_header(*, required: bool) -> dict[str, Any]:
    """`openapi_extra=` for a POST that takes an Idempotency-Key: honoured when sent, or `required`."""
    return {"parameters": [{
        "in": "header", "name": IDEMPOTENCY_KEY, "required": required,
        "description": "Makes a retry safe: the same key with the same request gets the first answer again, and "
                       "nothing is done twice." + (" Required here." if required else ""),
        "schema": {"type": "string", "minLength": 1, "maxLength": 200}}]}


HONOURS_KEY = key_header(required=False)
NEEDS_KEY = key_header(required=True)
# A transition the record's state refuses (a referral already closed, a disbursement already paid): 409, `type` why.
STATE_REFUSES = "The record's state does not allow this now (the problem's `type` says why)."

_WHY: dict[str, tuple[int, str]] = {
    "token": (401, "No valid access token: missing, invalid or expired (WWW-Authenticate says which)."),
    "role": (403, "The token's role does not allow this."),
    "path": (404, "There is no such record (or none the caller may see)."),
    "body-unreadable": (400, "The body cannot be read (not UTF-8, or a broken form)."),
    "cursor": (400, "The cursor is not one this API gave out."),
    "nul": (400, "The path or the query string holds a NUL character (kit.http refuses it)."),
    "key-invalid": (400, f"The {IDEMPOTENCY_KEY} is not 1 to 200 characters."),
    "key-missing": (400, f"This request needs an {IDEMPOTENCY_KEY} header."),
    "key-in-flight": (409, f"A request with this {IDEMPOTENCY_KEY} is still being processed."),
    "stale": (412, "The ETag in If-Match is not the record's current one: read it again, then change it."),
    "body-size": (413, "The body is larger than this API takes."),
    "body-media": (415, "The body is not sent as this route takes it (a Content-Encoding, or JSON sent as another "
                        "Content-Type)."),
    "invalid": (422, "The request is not valid: `errors` lists what is wrong and where."),
    "no-body": (422, "This request takes no body: one with something in it (other than `{}` or `null`) is refused."),
    "no-body-size": (413, "A body larger than this API takes (this request takes none)."),
    "no-body-media": (415, "A body sent with a Content-Encoding, or as multipart/form-data (this request takes "
                          "none)."),
    "key-reused": (422, f"This {IDEMPOTENCY_KEY} was already used with a different request."),
    "if-match-missing": (428, "This change needs the record's ETag in If-Match."),
    "database": (503, "The database is not available right now; try again shortly (Retry-After)."),
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}}


def describe_route(route: Any, names: Mapping[str, str] = OPERATION_IDS) -> str:
    """The app's `generate_unique_id_function`: names the route and writes its error answers onto it."""
    name = operation_id(route, names)
    if getattr(route, "include_in_schema", True):
        if roles := roles_of(route):  # who may use it, for a reader of the document: not only learnt from a 403
            route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": roles}
        declared = route.responses or {}
        answers = {code: problem_answer(code, why) for code, why in error_answers(route).items()}
        for code, answer in declared.items():
            if _is_error(code) and answer.get("content"):  # not (only) a problem: its own content stands
                derived = answers[int(code)]
                answers[int(code)] = {"description": derived["description"],
                                      "content": copy.deepcopy(answer["content"]),
                                      **({"headers": derived["headers"]} if "headers" in derived
                                         and MEDIA_TYPE in answer["content"] else {}),
                                      **copy.deepcopy({k: v for k, v in answer.items() if k == "headers"})}
        route.responses = {**{code: answer for code, answer in declared.items() if not _is_error(code)}, **answers}
    return name


def error_answers(route: Any) -> dict[int, str]:
    """The error codes `route` can answer, each with why:

    - 401 where a dependency authenticates the caller (one that makes a `kit.auth.Principal` from the request),
      403 where one checks the caller's role (one that makes a Principal from another);
    - 404 where the path names a record;
    - 400, 413 and 422 where there is a body (unreadable, too large, invalid); 413, 415 and 422 where a POST,
      PUT, PATCH or DELETE takes none (one sent too large, compressed, or with something in it); 422 where a query,
      path or header parameter can be invalid (required, typed or constrained; a plain optional string cannot);
      400 for a `cursor`, and for a NUL character where the route takes path or query parameters;
    - for an Idempotency-Key (declared by the route: `HONOURS_KEY`, `NEEDS_KEY`): 400 (malformed, or missing where
      required), 409 (the first request still in flight), 422 (the key reused for another request);
    - 412 and 428 where the route reads If-Match (a stale ETag; none sent);
    - 503 where the route holds a database session or a service's `Runtime` (the database away);
    - what the route declares in `responses=` (what its use case answers that its signature does not show).
    """
    dependant = _dependant(route)
    why: dict[int, list[str]] = {}

    def add(reason: str) -> None:
        code, text = _WHY[reason]
        if text not in why.setdefault(code, []):
            why[code].append(text)

    calls = list(_calls(dependant))
    if any(_makes_principal(call) for call in calls):
        add("token")
    if any(_makes_principal(each.call) and any(_makes_principal(sub.call) for sub in each.dependencies)
           for each in _dependants(dependant)):
        add("role")
        if roles := roles_of(route):
            why[403] = [f"Only {', '.join(roles)} may use this path: the token's roles hold none of them."]
    fields = _fields(dependant)
    if fields["path"]:
        add("path")
    if fields["path"] or fields["query"]:
        add("nul")
    body = fields["body"]
    if body:
        add("body-unreadable")
        add("body-size")
        add("body-media")
        if any(_can_be_invalid(field, in_body=True) for field in body):
            add("invalid")
    elif set(getattr(route, "methods", ())) & {"POST", "PUT", "PATCH", "DELETE"} and not _reads_its_own_body(route):
        # kit.http's limits and guard meet a body before any route, and kit.problems refuses one where none is taken
        add("no-body-size")
        add("no-body-media")
        add("no-body")
    if any(_can_be_invalid(field) for kind in ("path", "query", "header", "cookie") for field in fields[kind]):
        add("invalid")
    if any(field.alias == "cursor" or field.name == "cursor" for field in fields["query"]):
        add("cursor")
    key = _idempotency_header(route)
    if key is not None:
        if key.get("required"):
            add("key-missing")
        add("key-invalid")
        add("key-in-flight")
        add("key-reused")
    if any(_header_name(field) == IF_MATCH.lower() for field in fields["header"]):
        add("stale")
        add("if-match-missing")
    if any(_holds_database(call) for call in calls):
        add("database")
    for code, answer in (route.responses or {}).items():
        if _is_error(code) and answer.get("model") is not Problem:  # not ours, from an earlier build of the route
            text = answer.get("description") or HTTPStatus(int(code)).phrase
            if text not in why.setdefault(int(code), []):
                why[int(code)].append(text)
    return {code: " ".join(texts) for code, texts in sorted(why.items())}


def roles_of(route: Any) -> list[str] | None:
    """The roles a route lets in, from its role checks (`kit.auth.require_roles`, `require_partner`, the gateway's
    `gateway_role`: each carries `roles`); with several checks, the roles every one lets in. None without one."""
    found = [frozenset(roles) for call in _calls(_dependant(route)) if (roles := getattr(call, "roles", None))]
    return sorted(frozenset.intersection(*found)) if found else None


def _reads_its_own_body(route: Any) -> bool:
    """A route that reads its body itself (an upload), described by its `openapi_extra`'s requestBody."""
    return "requestBody" in (getattr(route, "openapi_extra", None) or {})


def problem_answer(code: int, why: str) -> dict[str, Any]:
    """One error answer as FastAPI takes it in `responses=`: the `Problem` model, as problem+json."""
    answer: dict[str, Any] = {"model": Problem, "description": why,
                              "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}
    if code in (429, 503):
        answer["headers"] = copy.deepcopy(_RETRY_AFTER)
    return answer


def _is_error(code: int | str) -> bool:
    return str(code).isdigit() and int(code) >= 400


def _dependant(route: Any) -> Dependant:
    """The route's dependencies. FastAPI calls `describe_route` before it builds them for this route: an included
    route has them from its original route; a route added to the app itself gets them read here."""
    built = getattr(route, "dependant", None) or getattr(getattr(route, "original_route", None), "dependant", None)
    if built is not None:
        return built
    dependant = get_dependant(path=route.path_format, call=route.endpoint)
    for depends in getattr(route, "dependencies", None) or []:
        dependant.dependencies.append(get_dependant(path=route.path_format, call=depends.dependency))
    return dependant


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for each in _dependants(dependant):
        if each.call is not None:
            yield each.call


def _fields(dependant: Dependant) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {"path": [], "query": [], "header": [], "cookie": [], "body": []}
    for each in _dependants(dependant):
        found["path"] += each.path_params
        found["query"] += each.query_params
        found["header"] += each.header_params
        found["cookie"] += each.cookie_params
        found["body"] += each.body_params
    return found


def _header_name(field: Any) -> str:
    return str(field.alias or field.name).replace("_", "-").lower()


def _can_be_invalid(field: Any, *, in_body: bool = False) -> bool:
    """Whether FastAPI can refuse this parameter (422): a JSON body always can; a parameter when it is required
    (a path parameter is always there), typed other than as a string, or constrained."""
    info = field.field_info
    if in_body and not isinstance(info, params.Form):
        return True
    if info.metadata or (info.is_required() and not isinstance(info, params.Path)):
        return True
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return annotation != [str]
    return annotation is not str


def _returned(call: Callable[..., Any] | None) -> Any:
    """What `call` is annotated to return (with `from __future__ import annotations` too), or None."""
    annotation = getattr(call, "__annotations__", {}).get("return") if call is not None else None
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, getattr(call, "__globals__", {}))  # noqa: S307 - the module's own annotation
        except Exception:
            return None
    return annotation


def _makes_principal(call: Callable[..., Any] | None) -> bool:
    return _returned(call) is Principal


def _holds_database(call: Callable[..., Any] | None) -> bool:
    """A dependency giving the route a database session (itself, or yielded by a generator), or a runtime holding
    the kit's unit of work (`uow`: a service's `kit.service.Runtime`, the gateway's), whose every use case runs in
    it: either answers 503 while the database is away."""
    returned = _returned(call)
    origin = typing.get_origin(returned)
    if origin in (collections.abc.Iterator, collections.abc.AsyncIterator, collections.abc.Generator,
                  collections.abc.AsyncGenerator):
        returned = typing.get_args(returned)[0]
    if not isinstance(returned, type):
        return False
    return issubclass(returned, Session) or (
        dataclasses.is_dataclass(returned) and any(each.name == "uow" for each in dataclasses.fields(returned)))


def _idempotency_header(route: Any) -> dict[str, Any] | None:
    for parameter in (route.openapi_extra or {}).get("parameters", []):
        if parameter.get("in") == "header" and str(parameter.get("name", "")).lower() == IDEMPOTENCY_KEY.lower():
            return parameter
    return None


# ---- the document ------------------------------------------------------------------------------------------------

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def problem_response(why: str, code: int | None = None) -> dict[str, Any]:
    """An error answer as it stands in a document."""
    response: dict[str, Any] = {"description": why, "content": {MEDIA_TYPE: {"schema": {"$ref": REF}}}}
    if code in (429, 503):
        response["headers"] = copy.deepcopy(_RETRY_AFTER)
    return response


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Settle a generated document in place (and return it): every error answer problem+json only, with the
    `Problem` schema; FastAPI's default 422 gone where the route cannot answer 422 and from webhooks (a receiver's
    answers are not ours to describe); its schemas gone when unused."""
    for _path, _method, operation in operations(document):
        responses = operation.get("responses", {})
        for code in list(responses):
            if not _is_error(code):
                continue
            response = responses[code]
            content = response.get("content") or {}
            if MEDIA_TYPE in content or not content:
                # FastAPI repeats a problem answer's model as application/json: only a media type declared beside
                # problem+json stays (the token endpoint's 429 is an OAuth2 error or a problem document).
                beside = {kind: each for kind, each in content.items()
                          if kind != MEDIA_TYPE and each.get("schema") != {"$ref": REF}}
                response["content"] = {MEDIA_TYPE: {"schema": {"$ref": REF}}, **beside}
            elif _FASTAPI_422 in repr(content):
                del responses[code]  # FastAPI's own, for a route whose parameters cannot be invalid
        operation["responses"] = dict(sorted(responses.items()))
    for item in document.get("webhooks", {}).values():
        for method in _METHODS:
            if method in item:  # what a receiver answers is the receiver's: only what the webhook says it expects
                responses = item[method].get("responses", {})
                responses.pop("422", None)
                for response in responses.values():
                    if response.get("content") == {"application/json": {"schema": {}}}:
                        del response["content"]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    if SCHEMA not in schemas:
        generated = Problem.model_json_schema(ref_template="#/components/schemas/{model}", mode="serialization")
        for name, schema in generated.pop("$defs", {}).items():
            schemas.setdefault(name, schema)
        schemas[SCHEMA] = generated
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in schemas and f"#/components/schemas/{unused}" not in repr(_without(document, unused)):
            del schemas[unused]
    return document


def _without(document: dict[str, Any], schema: str) -> dict[str, Any]:
    """The document less one schema's own definition: is it referred to from anywhere else?"""
    rest = dict(document)
    rest["components"] = {**document.get("components", {}),
                          "schemas": {k: v for k, v in document["components"]["schemas"].items() if k != schema}}
    return rest


def install(app: FastAPI, *, operation_ids: Mapping[str, str] | None = None) -> None:
    """Name and describe every route this app gets from now on, and finish the document `app.openapi()` serves.
    `operation_ids`: the app's routes whose function name says nothing better, by function name."""
    app.router.generate_unique_id_function = functools.partial(
        describe_route, names={**OPERATION_IDS, **(operation_ids or {})})
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
