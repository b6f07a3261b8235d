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
