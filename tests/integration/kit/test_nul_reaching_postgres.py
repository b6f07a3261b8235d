"""A NUL character that gets past the door (in a body the guard does not read: text/plain here) and reaches
PostgreSQL, whose text and JSON cannot hold one, is a 400 `nul-character` (kit.http's last wall), not a 500; the
next request is served as ever. Runs with REHAB_TEST_POSTGRES_URL (SQLite stores a NUL: nothing is refused there)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.dialects.postgresql import JSONB

from kit import http, logs, problems
from kit.db import UnitOfWork, make_engine, make_session_factory
from tests.support.postgres import create_database, drop_database

POSTGRES = os.environ.get("REHAB_TEST_POSTGRES_URL")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not POSTGRES, reason="needs REHAB_TEST_POSTGRES_URL (the production path)")]

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String),
              Column("data", JSONB))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    assert POSTGRES is not None
    url = create_database(POSTGRES, f"rehab_nul_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    metadata.create_all(engine)
    uow = UnitOfWork(engine, make_session_factory(engine))
    logs.configure("test")
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test-nul-postgres", max_body_bytes=1000)

    @app.post("/notes/{column}")
    async def add(column: str, request: Request) -> dict[str, int]:
        text = (await request.body()).decode()
        values = {"text": text} if column == "text" else {"data": {"note": text}}
        await uow.run(lambda session: session.execute(insert(notes).values(**values)))
        with uow.read() as session:
            return {"notes": len(session.execute(select(notes.c.id)).all())}

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as opened:
            yield opened
    finally:
        await uow.close()
        engine.dispose()
        drop_database(POSTGRES, url)


@pytest.mark.parametrize("column", ["text", "data"])
async def test_a_nul_postgresql_refuses_is_400_and_the_next_request_is_served(client: httpx.AsyncClient,
                                                                              column: str, capsys):
    plain = {"content-type": "text/plain"}
    refused = await client.post(f"/notes/{column}", content=b"Ulyana\x00", headers=plain)

    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json", refused.text
    assert refused.json()["type"].endswith("/nul-character") and "Ulyana" not in refused.text
    logged = capsys.readouterr().out
    assert "unhandled error" not in logged and "Ulyana" not in logged
    served = await client.post(f"/notes/{column}", content=b"Ulyana", headers=plain)
    assert served.status_code == 200 and served.json() == {"notes": 1}
