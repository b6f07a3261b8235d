"""The unit of work on a real PostgreSQL whose connection dies under a unit (a crash, a restart): every unit of that
shared transaction is told the real cause, a database error the API answers with 503, and none of them a
"roll back first" error that would surface as a 500. The next batch works on a fresh connection."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import DBAPIError

from kit.db import UnitOfWork, make_engine, make_session_factory
from tests.support.postgres import create_database, drop_database

POSTGRES = os.environ.get("REHAB_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs REHAB_TEST_POSTGRES_URL (the production path)")

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String))


@pytest.fixture
def uow():
    url = create_database(POSTGRES, f"rehab_uow_{uuid.uuid4().hex[:8]}")
    engine = make_engine(url)
    metadata.create_all(engine)
    try:
        yield UnitOfWork(engine, make_session_factory(engine))
    finally:
        engine.dispose()
        drop_database(POSTGRES, url)


def add(value: str):
    def work(session):
        session.execute(insert(notes).values(text=value))
        return value
    return work


def killed_connection(session):
    # What a server crash does to the socket, done by the server itself on this unit's own connection.
    session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))


async def test_a_connection_lost_under_one_unit_fails_every_unit_of_its_transaction_with_the_real_cause(uow):
    outcomes = await asyncio.gather(uow.run(add("before")), uow.run(killed_connection), uow.run(add("after")),
                                    return_exceptions=True)

    assert all(isinstance(outcome, DBAPIError) and outcome.connection_invalidated for outcome in outcomes), outcomes
    assert await uow.run(add("next batch")) == "next batch"
    with uow.read() as session:
        assert list(session.execute(select(notes.c.text)).scalars()) == ["next batch"]
