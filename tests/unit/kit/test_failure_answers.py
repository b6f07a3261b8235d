"""kit.http's last wall: what a request that failed is answered. An app's own page for a failure (`failure_page`)
is asked first — Starlette runs an app's `Exception` handler outside every middleware, so for a route's failure it
never ran, and a person's browser got JSON — and the problem answers when it gives none or itself fails. A NUL
character that PostgreSQL refuses is the caller's to mend: a 400, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from kit import http, logs, problems

PROBLEM = "application/problem+json"
SECRET = "Ulyana Thornquist-Vasilevskaya"

ASKED: list[int] = []  # the statuses the failure page was asked for


async def a_page(request: Request, status: int) -> Response | None:
    ASKED.append(status)
    if request.url.path.startswith("/api/"):
        return None  # a script's: the problem
    if request.url.path.startswith("/page-fails/"):
        raise RuntimeError("the page's own template is broken")
    return HTMLResponse(f"<h1>Something went wrong ({status})</h1>", status_code=status)


class DatabaseGoneInFront:
    """A middleware whose database is out of reach: what escapes every route's handlers, to the last wall."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/database-gone"):
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        await self.app(scope, receive, send)


def failing_app() -> FastAPI:
    logs.configure("test")  # the processes' logging: exceptions by type and place, never their messages
    app = FastAPI()
    problems.install(app)
    app.add_middleware(DatabaseGoneInFront)
    http.install(app, service="test-failures", max_body_bytes=1000, failure_page=a_page)

    @app.get("/{prefix:path}/boom")
    async def boom(prefix: str) -> None:
        raise RuntimeError(f"a message quoting {SECRET}")

    @app.post("/nul/{what}")
    async def stored(what: str) -> None:
        refusals = {"text": psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"),
                    "json": psycopg.errors.UntranslatableCharacter(
                        f'unsupported Unicode escape sequence\nDETAIL:  \\u0000 cannot be converted to text.\n'
                        f'CONTEXT:  JSON data, line 1: {{"name": "{SECRET}\\u0000...'),
                    "other": psycopg.errors.NumericValueOutOfRange("numeric field overflow")}
        raise DataError("INSERT INTO notes (text) VALUES (%(text)s)", {"text": SECRET}, refusals[what])

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    ASKED.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=failing_app(), raise_app_exceptions=False),
                                 base_url="http://t") as opened:
        yield opened


async def test_a_route_that_fails_gets_the_app_s_page(client: httpx.AsyncClient, capsys):
    answer = await client.get("/console/boom")

    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert answer.text == "<h1>Something went wrong (500)</h1>" and ASKED == [500]
    assert answer.headers["x-request-id"] and answer.headers["x-content-type-options"] == "nosniff"
    assert "unhandled error" in capsys.readouterr().out  # logged as before


async def test_a_database_out_of_reach_is_asked_for_as_503_and_the_page_says_when_to_try_again(
        client: httpx.AsyncClient):
    page = await client.get("/console/database-gone")
    problem = await client.get("/api/database-gone")

    assert ASKED == [503, 503]
    assert page.status_code == 503 and page.text == "<h1>Something went wrong (503)</h1>"
    assert page.headers["retry-after"] == "1"  # as the problem's
    assert problem.status_code == 503 and problem.headers["content-type"] == PROBLEM
    assert problem.json()["type"].endswith("/database-unavailable") and problem.headers["retry-after"] == "1"


async def test_a_page_of_none_leaves_the_problem(client: httpx.AsyncClient):
    answer = await client.get("/api/boom")

    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM and ASKED == [500]
    assert answer.json()["type"].endswith("/internal-server-error") and SECRET not in answer.text


async def test_a_page_that_fails_itself_leaves_the_problem(client: httpx.AsyncClient, capsys):
    answer = await client.get("/page-fails/boom")

    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM and ASKED == [500]
    assert answer.json()["type"].endswith("/internal-server-error")
    logged = capsys.readouterr().out
    assert "failure page failed" in logged and SECRET not in logged


@pytest.mark.parametrize("what", ["text", "json"])
async def test_a_nul_postgresql_refuses_is_a_400_not_a_failure(client: httpx.AsyncClient, what: str, capsys):
    answer = await client.post(f"/nul/{what}")

    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/nul-character") and "NUL character is not allowed" in problem["detail"]
    assert ASKED == [] and SECRET not in answer.text
    logged = capsys.readouterr().out
    assert "unhandled error" not in logged and "NUL character refused by the database" in logged
    assert SECRET not in logged


async def test_any_other_value_postgresql_refuses_is_still_a_failure(client: httpx.AsyncClient):
    answer = await client.post("/nul/other")
    assert answer.status_code == 500 and ASKED == [500]
