"""Whatever goes wrong inside a request, the caller gets a problem document and the log gets no traceback."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.exc import OperationalError

from kit import http, logs, problems
from tests.support.apps import running

pytestmark = pytest.mark.integration

SECRET = "Ulyana Thornquist-Vasilevskaya"


def app_that_fails() -> FastAPI:
    logs.configure("test")
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test", max_body_bytes=1000)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"a message quoting {SECRET}")

    @router.get("/database-gone")
    async def database_gone() -> None:
        raise OperationalError("SELECT … WHERE name = ?", (SECRET,), Exception("server closed the connection"))

    app.include_router(router)
    return app


async def test_an_unexpected_error_is_a_500_problem_and_its_message_is_not_logged(capsys):
    async with running(app_that_fails()) as client:
        answer = await client.get("/boom")
        gone = await client.get("/database-gone")
    assert answer.status_code == 500 and answer.headers["content-type"] == "application/problem+json"
    assert SECRET not in answer.text
    assert gone.status_code == 503 and gone.headers["retry-after"] == "1" and SECRET not in gone.text
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert "RuntimeError" in out.out and "Traceback" not in out.out + out.err
