"""A request body takes JSON's types as JSON writes them where a lax reading would change what was meant (kit.problems
.StrictModel): a date given as a number is refused, not read as seconds since 1970; true or false must be a JSON
boolean. Everything else pydantic reads as before."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import Field

from kit import problems
from kit.problems import StrictModel


class Person(StrictModel):
    born: date | None = None
    seen_at: Annotated[datetime, Field(description="when")] | None = None
    consented: bool = False
    maybe: bool | str | None = None  # a union with text: text is what it is, not a boolean written as one
    count: int = 0


def app() -> TestClient:
    api = FastAPI()
    problems.install(api)

    @api.post("/people")
    async def take(body: Person) -> dict:
        return body.model_dump(mode="json")

    return TestClient(api)


@pytest.mark.parametrize("body, where", [
    ({"born": 19900101}, "born"), ({"born": 1.5}, "born"), ({"born": True}, "born"),
    ({"seen_at": 1700000000}, "seen_at"),
    ({"consented": "yes"}, "consented"), ({"consented": 1}, "consented"), ({"consented": "false"}, "consented"),
])
def test_a_date_as_a_number_or_a_boolean_as_anything_else_is_422_saying_where(body: dict, where: str) -> None:
    answer = app().post("/people", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == problems.MEDIA_TYPE
    assert [issue["loc"] for issue in answer.json()["errors"]] == [["body", where]]


def test_json_as_json_writes_it_is_read_as_before() -> None:
    answer = app().post("/people", json={"born": "1990-01-01", "seen_at": "2026-12-04T10:00:00Z", "consented": True,
                                          "maybe": "yes", "count": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json()["born"] == "1990-01-01" and answer.json()["consented"] is True
    assert answer.json()["maybe"] == "yes"
    assert Person(born=date(1990, 1, 1), consented=False).born == date(1990, 1, 1)  # Python values, as code passes


@pytest.mark.parametrize("written", [
    "0", "19900101", "1798761600", "1798761600.5",  # numbers in text: pydantic read them as seconds since 1970
    "2026-01-01T00:00:00+05:00", "2026-01-01T00:00:00Z", "2026-01-01 00:00",  # a date and time at midnight
    "2026-1-1", " 2026-01-01", "2026-01-01\n", "٢٠٢٦-٠١-٠١",  # not YYYY-MM-DD as written
])
def test_a_date_is_text_written_yyyy_mm_dd_nothing_else(written: str) -> None:
    answer = app().post("/people", json={"born": written})
    assert answer.status_code == 422 and answer.headers["content-type"] == problems.MEDIA_TYPE, answer.text
    assert answer.json()["errors"] == [{"loc": ["body", "born"], "msg": "must be a date written YYYY-MM-DD",
                                        "type": "date_type"}]


def test_a_date_written_yyyy_mm_dd_or_null_is_read_and_a_day_that_is_none_still_refused() -> None:
    assert app().post("/people", json={"born": "2027-01-01"}).json()["born"] == "2027-01-01"
    assert app().post("/people", json={"born": None}).json()["born"] is None
    assert app().post("/people", json={"born": "2026-02-30"}).status_code == 422
    assert Person(born=date(2027, 1, 1)).born == date(2027, 1, 1)  # a Python caller's date
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        Person(born=datetime(2027, 1, 1))  # a date and time is more than a date


class Payee(StrictModel):
    name: str


class Payment(StrictModel):
    payee: Payee


def test_a_member_no_schema_has_is_422_without_its_name() -> None:
    """Its name is the sender's choice, a person's name and number too: a client's log keeps the answer."""
    api = FastAPI()
    problems.install(api)

    @api.post("/payments")
    async def pay(body: Payment) -> dict:
        return body.model_dump()

    name = "Аляксандр Тэставы, +375291234567" * 50
    answer = TestClient(api).post("/payments", json={name: "x", "payee": {"name": "A", "nickname " + name: 1}})

    assert answer.status_code == 422 and "Аляксандр" not in answer.text and "375291234567" not in answer.text
    assert "nickname" not in answer.text
    problem = answer.json()
    assert problem["errors"] == [
        {"loc": ["body", "payee", "<unknown member>"], "msg": "An unknown member (not in this schema)",
         "type": "extra_forbidden"},
        {"loc": ["body", "<unknown member>"], "msg": "An unknown member (not in this schema)", "type": "extra_forbidden"}]
    assert problem["detail"] == "payee: An unknown member (not in this schema) (and 1 more problem, listed in errors)"
