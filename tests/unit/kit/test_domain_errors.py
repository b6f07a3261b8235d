"""Domain errors are answered in one place: each kind with its one status, as problem+json with its code as the
type; and a service publishes only the payload its subject carries."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import MetaData, select
from sqlmodel import Session, create_engine

from kit import errors, problems
from kit.events import Publisher
from kit.tables import KitTables


@pytest.mark.parametrize(("error", "status"), [
    (errors.NotFound("There is no such grant.", code="grant-not-found"), 404),
    (errors.Conflict("This case is closed.", code="case-closed"), 409),
    (errors.Invalid("Wrong currency.", code="currency-mismatch"), 422),
    (errors.Refused("Four eyes.", code="four-eyes"), 403),
    (errors.Stale("Read it again.", code="stale-etag"), 412),
    (errors.BadCursor(), 400),
    (errors.Unreadable("Could not be decrypted.", code="undecryptable"), 500),
])
def test_each_domain_error_is_answered_with_its_status_as_a_problem(error, status):
    app = FastAPI()
    problems.install(app)

    @app.get("/")
    def refuse() -> None:
        raise error

    answer = TestClient(app).get("/")
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == problems.PROBLEM_TYPE_BASE + error.code
    assert answer.json()["detail"] == error.detail


def test_a_subclass_of_a_kind_is_answered_as_that_kind():
    class AlreadyPaid(errors.Conflict):
        pass

    assert problems.status_of(AlreadyPaid("paid", code="already-paid")) == 409


class Opened(BaseModel):
    case_id: str


class Closed(BaseModel):
    case_id: str


def test_a_publisher_writes_its_subjects_payload_and_refuses_another(tmp_path):
    metadata = MetaData()
    tables = KitTables(metadata)
    engine = create_engine(f"sqlite:///{tmp_path / 'e.db'}")
    metadata.create_all(engine)
    publish = Publisher("/rehab/test", {"rehab.test.opened": Opened}, tables)
    with Session(engine) as session:
        publish(session, "rehab.test.opened", Opened(case_id="c1"), about="c1")
        with pytest.raises(TypeError):
            publish(session, "rehab.test.opened", Closed(case_id="c1"), about="c1")
        with pytest.raises(TypeError):
            publish(session, "rehab.test.closed", Closed(case_id="c1"), about="c1")
        rows = session.execute(select(tables.outbox.c.subject, tables.outbox.c.aggregate_id)).all()
    assert rows == [("rehab.test.opened", "c1")]
