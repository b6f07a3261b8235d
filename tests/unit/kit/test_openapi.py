"""kit.openapi: operationIds derived from path and function name, and each route's error answers derived from what
the route is (its dependencies, parameters, body), every one application/problem+json with the Problem schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path
from fastapi.openapi.utils import get_openapi
from fastapi.testclient import TestClient
from sqlmodel import Session

from kit import openapi, problems
from kit.auth import Principal, current_principal, require_roles
from kit.problems import StrictModel

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Thing(StrictModel):
    name: str
    size: int


def a_session() -> Iterator[Session]:
    yield None  # type: ignore[misc]  # never called: only the document is looked at


Caseworker = Annotated[Principal, Depends(require_roles("caseworker"))]
Anyone = Annotated[Principal, Depends(current_principal)]
Database = Annotated[Session, Depends(a_session)]
CaseId = Annotated[str, Path(max_length=36)]

intake = APIRouter(prefix="/api/intake", tags=["intake"])
partner = APIRouter(prefix="/api/partner", tags=["partner"])
audit = APIRouter(prefix="/api/intake", tags=["audit"])
health = APIRouter(tags=["health"])


@intake.post("/cases", status_code=201, openapi_extra=openapi.HONOURS_KEY)
async def create_case(body: Thing, principal: Caseworker) -> dict:
    return {}


@intake.get("/cases/{case_id}")
async def read_case(case_id: CaseId, principal: Caseworker, session: Database) -> dict:
    return {}


@intake.patch("/cases/{case_id}", responses={409: {"description": "The case is closed."}})
async def update_case(case_id: CaseId, body: Thing, principal: Caseworker,
                      if_match: Annotated[str | None, Header()] = None) -> dict:
    return {}


@intake.post("/cases/search")
async def search_cases(principal: Caseworker, q: Annotated[str, Body(embed=True)]) -> dict:
    return {}


@intake.get("/cases")
async def list_cases(principal: Caseworker, cursor: str | None = None) -> dict:
    return {}


@intake.post("/grants", openapi_extra={"parameters": [{"in": "header", "name": "Idempotency-Key", "required": True,
                                                        "schema": {"type": "string"}}]})
async def create_grant(body: Thing, principal: Caseworker) -> dict:
    return {}


@intake.post("/cases/{case_id}/archive", responses={409: {"description": "The case was erased."}})
async def archive_case(case_id: str, principal: Caseworker) -> dict:
    return {}


@partner.post("/referrals/{referral_id}/accept", openapi_extra=openapi.HONOURS_KEY,
              responses={409: {"description": "The referral's state does not allow this."}})
async def accept(referral_id: str, principal: Caseworker) -> dict:
    return {}


@audit.get("/audit")
async def list_audit(principal: Caseworker) -> dict:
    return {}


@intake.get("/me")
async def me(principal: Anyone) -> dict:
    return {}


@health.get("/readyz", responses={503: {"description": "Not ready (a probe's answer, not a problem).",
                                         "content": {"application/json": {"schema": {"type": "object"}}}}})
async def readyz() -> dict:
    return {}


@intake.post("/sign-in", responses={
    400: {"description": "Wrong.", "content": {"application/json": {"schema": {"type": "object"}}}},
    429: {"description": "Too many.", "content": {"application/json": {"schema": {"type": "object"}},
                                                  openapi.MEDIA_TYPE: {"schema": {"$ref": openapi.REF}}}}})
async def sign_in(body: Thing) -> dict:
    return {}


@intake.get("/tell-me")
async def tell_me(principal: Anyone) -> dict:
    return {}


@health.get("/healthz")
async def healthz() -> dict:
    return {}


@intake.delete("/things/{thing_id}")
async def whatever(thing_id: str, principal: Caseworker) -> dict:
    return {}


def make_app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    openapi.install(app, operation_ids={"tell_me": "tales_get"})
    for router in (intake, partner, audit, health):
        app.include_router(router)
    return app


@pytest.fixture(scope="module")
def document() -> dict:
    return make_app().openapi()


def answers(document: dict, method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_operation_ids_are_resource_then_action(document: dict):
    ids = {(method, path): operation["operationId"] for path, method, operation in openapi.operations(document)}

    assert ids[("post", "/api/intake/cases")] == "cases_create"
    assert ids[("get", "/api/intake/cases/{case_id}")] == "cases_get"  # read → get
    assert ids[("post", "/api/intake/cases/search")] == "cases_search"
    assert ids[("get", "/api/intake/cases")] == "cases_list"
    assert ids[("post", "/api/intake/grants")] == "grants_create"
    assert ids[("post", "/api/partner/referrals/{referral_id}/accept")] == "referrals_accept"
    assert ids[("get", "/api/intake/audit")] == "intake_audit_list"  # every service has one: named with its area
    assert ids[("get", "/healthz")] == "health_live"  # from the kit's table
    assert ids[("get", "/api/intake/tell-me")] == "tales_get"  # from the app's, given at install
    assert ids[("delete", "/api/intake/things/{thing_id}")] == "things_whatever"
    assert len(set(ids.values())) == len(ids)


def test_only_the_answers_a_route_can_give(document: dict):
    assert answers(document, "get", "/healthz") == {"200"}
    assert answers(document, "get", "/api/intake/me") == {"200", "401"}  # a token, no role
    # cases_create honours an Idempotency-Key (openapi.HONOURS_KEY): 409 while the first is in flight, and the
    # optional header documented.
    assert answers(document, "post", "/api/intake/cases") == {"201", "400", "401", "403", "409", "413", "415", "422"}
    parameters = document["paths"]["/api/intake/cases"]["post"]["parameters"]
    key = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and not key["required"]
    # A path or a query parameter: 400 for a NUL character in it (kit.http refuses it before any route).
    assert answers(document, "get", "/api/intake/cases/{case_id}") == {"200", "400", "401", "403", "404", "422",
                                                                        "503"}
    assert answers(document, "patch", "/api/intake/cases/{case_id}") == {  # If-Match: 412, 428; cases_update's
        "200", "400", "401", "403", "404", "409", "412", "413", "415", "422", "428"}  # 409: the route declares it
    assert answers(document, "get", "/api/intake/cases") == {"200", "400", "401", "403"}  # a cursor: 400, no 422
    assert answers(document, "post", "/api/intake/grants") == {"200", "400", "401", "403", "409", "413", "415", "422"}
    # A POST, PUT, PATCH or DELETE that takes no body: one sent anyway is too large (413), compressed (415) or
    # refused for being there (422), as a reviewer generating a client found undeclared.
    assert answers(document, "post", "/api/intake/cases/{case_id}/archive") == {"200", "400", "401", "403", "404",
                                                                                 "409", "413", "415", "422"}
    # An unconstrained string in the path cannot be invalid (no FastAPI 422: the archive above); the 409 of a
    # referral in the wrong state is declared by the route; it honours an Idempotency-Key (HONOURS_KEY): 400 for a
    # malformed key, 422 for one reused with another request.
    assert answers(document, "post", "/api/partner/referrals/{referral_id}/accept") == {
        "200", "400", "401", "403", "404", "409", "413", "415", "422"}
    assert "takes no body" in document["paths"]["/api/partner/referrals/{referral_id}/accept"]["post"][
        "responses"]["422"]["description"]
    assert answers(document, "delete", "/api/intake/things/{thing_id}") == {"200", "400", "401", "403", "404", "413",
                                                                            "415", "422"}


NOT_PROBLEMS = {("get", "/readyz", "503"), ("post", "/api/intake/sign-in", "400"),
                ("post", "/api/intake/sign-in", "429")}


def test_every_error_answer_is_a_problem(document: dict):
    for path, method, operation in openapi.operations(document):
        for code, response in operation["responses"].items():
            if int(code) >= 400 and (method, path, code) not in NOT_PROBLEMS:
                assert response["content"] == PROBLEM, (method, path, code)
                assert response["description"], (method, path, code)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ValidationIssue"}
    archive = document["paths"]["/api/intake/cases/{case_id}/archive"]["post"]["responses"]["409"]
    assert archive["description"] == "The case was erased."  # what the route declares, as a problem


def test_the_422_answered_is_the_problem_described():
    app = make_app()
    client = TestClient(app)

    @app.post("/echo")
    async def echo(body: Thing) -> dict:
        return {}

    answer = client.post("/echo", json={"name": "x", "size": "big", "extra": 1})

    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    problem = openapi.Problem.model_validate(answer.json())
    assert (problem.status, problem.title) == (422, "Invalid request")
    assert {tuple(issue.loc) for issue in problem.errors or []} == {("body", "size"), ("body", "<unknown member>")}
    assert "big" not in answer.text  # never the value sent


def test_a_document_made_from_the_routes_directly_carries_the_same_answers(document: dict):
    """The gateway makes its own document with get_openapi(routes=app.routes), not app.openapi()."""
    direct = openapi.finish(get_openapi(title="t", version="1", routes=make_app().routes))

    assert direct["paths"] == document["paths"]


def test_a_route_added_to_the_app_itself_is_described_too():
    app = make_app()

    @app.get("/api/intake/notes/{note_id}")
    async def read_note(note_id: CaseId, principal: Caseworker) -> dict:
        return {}

    operation = app.openapi()["paths"]["/api/intake/notes/{note_id}"]["get"]
    assert operation["operationId"] == "notes_get"
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "422"}


def test_an_answer_declared_with_its_own_content_keeps_it(document: dict):
    """A probe's JSON, an OAuth2 error: not (only) a problem, and the document says what it is."""
    ready = document["paths"]["/readyz"]["get"]["responses"]["503"]
    assert ready["content"] == {"application/json": {"schema": {"type": "object"}}}
    assert "headers" not in ready  # a probe's answer: no Retry-After promised
    sign_in = document["paths"]["/api/intake/sign-in"]["post"]["responses"]
    assert sign_in["400"]["content"] == {"application/json": {"schema": {"type": "object"}}}
    assert sign_in["400"]["description"].startswith("The body cannot be read")  # the derived reasons stay
    assert "Wrong." in sign_in["400"]["description"]
    # beside problem+json: both kept, through finish() too, and the problem's Retry-After with them
    assert sign_in["429"]["content"] == {"application/json": {"schema": {"type": "object"}}, **PROBLEM}
    assert "Retry-After" in sign_in["429"]["headers"]
    assert openapi.finish(document)["paths"]["/api/intake/sign-in"]["post"]["responses"] == sign_in
