"""A 422's words are ones a person can act on (kit.problems): what a field takes, never the regex that checks it,
nor pydantic's own workings ("Value error, ", "valid date or datetime", "at most 7 characters", "Field required" for
a body not sent). The services' own request models, on a small app that answers as theirs do."""

from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import Field, field_validator

from gateway.models import UserCreate
from kit import problems
from kit.problems import StrictModel
from services.funds.models import GrantCreate, PaymentCreate
from services.intake.models import CaseCreate
from services.referrals.models import CompleteBody, DeclineBody
from services.reports.api import ProgrammeQuery


class Odd(StrictModel):
    code: str = Field(pattern=r"^[a-z]{2}-[0-9]{3}$")  # a pattern nobody put in words
    count: int = 0

    @field_validator("count")
    @classmethod
    def _small(cls, count: int) -> int:
        if count >= 10:  # (an `assert` here would carry pytest's own explanation)
            raise AssertionError("a count is below 10")
        return count


def app() -> FastAPI:
    made = FastAPI()
    problems.install(made)
    for path, model in (("/users", UserCreate), ("/grants", GrantCreate), ("/payments", PaymentCreate),
                        ("/cases", CaseCreate), ("/decline", DeclineBody), ("/complete", CompleteBody), ("/odd", Odd)):
        async def take(body: model) -> dict:  # type: ignore[valid-type]  (read now: no `from __future__` here)
            return {}
        made.post(path)(take)

    @made.get("/programme")
    async def programme(asked: Annotated[ProgrammeQuery, Query()]) -> dict:
        return {"from": asked.from_, "to": asked.to}

    return made


async def refused(method: str, path: str, **sent: Any) -> dict:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        answer = await client.request(method, path, **sent)
    assert answer.status_code == 422 and answer.headers["content-type"] == problems.MEDIA_TYPE, answer.text
    problem = answer.json()
    for words in ("Value error", "Assertion failed", "should match pattern", "^", "{2,63}", "or datetime"):
        assert words not in answer.text, words
    return problem


USER = {"username": "olga", "password": "a long enough pass phrase", "roles": ["caseworker"]}
PAYMENT = {"method": "bank_transfer", "reference": "TR-2026/04#7"}
PAID = {"currency": "PLN", "amount": "1290.00", "fx_rate": "4.3000", "fx_source": "NBP table A"}


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/users", {**USER, "username": "-olga"},
     "username: must be 3-64 of a-z 0-9 . _ @ -, starting with a letter or digit"),
    ("/users", {**USER, "partner_id": "acme"}, "partner_id: must be a UUID"),
    ("/users", {**USER, "roles": ["caseworker", "boss"]},  # a pattern that is a list of words: the list
     "roles.1: must be one of: admin, caseworker, supervisor, finance, auditor, coordinator, partner_staff"),
    ("/payments", {**PAYMENT, "reference": "Ref with spaces"},
     "reference: must be 1-64 letters, digits and . _ / # : -, starting with a letter or digit"),
    ("/payments", {**PAYMENT, "paid": {**PAID, "currency": "pln"}},
     "paid.currency: must be an ISO 4217 code of 3 capital letters, such as EUR"),
    ("/cases", {"full_name": "A B", "contact": {"email": "nobody"}},
     "contact.email: must be an e-mail address, such as name@example.org"),
    ("/odd", {"code": "ab-12"}, "code: is not in the form this field takes"),  # never the regex
])
async def test_a_pattern_is_said_in_words(path, body, detail):
    problem = await refused("POST", path, json=body)
    assert problem["detail"] == detail
    assert problem["errors"][0]["type"] == "string_pattern_mismatch"  # the stable code stays pydantic's


async def test_every_allowed_value_is_shown_and_other_problems_are_not_read_as_more_values():
    problem = await refused("POST", "/payments", json={"method": "cheque"})
    assert problem["detail"] == ("method: Input should be 'bank_transfer', 'card', 'cash', 'mobile_money', 'crypto' or "
                                 "'other' (and 1 more problem, listed in errors)")
    assert [error["loc"] for error in problem["errors"]] == [["body", "method"], ["body", "reference"]]


MONEY = 'must be a decimal string, such as "300.00" (a JSON number is refused: it may lose cents)'


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/grants", {"donor": "D", "code": "G-1", "currency": "EUR", "amount": 300, "starts_on": "2026-01-01",
                 "ends_on": "2026-12-31", "categories": ["medical"]}, f"amount: {MONEY}"),
    ("/payments", {**PAYMENT, "paid": {**PAID, "amount": 1290.5}}, f"paid.amount: {MONEY}"),
    ("/payments", {**PAYMENT, "paid": {**PAID, "fx_rate": 4.3}},
     'paid.fx_rate: must be a decimal string, such as "4.3000" (a JSON number is refused: it may lose digits)'),
    ("/complete", {"outcome": "done", "cost_estimate": {"amount": 120, "currency": "EUR"}},
     f"cost_estimate.amount: {MONEY}"),
    ("/complete", {"outcome": "done", "cost_estimate": {"amount": True, "currency": "EUR"}},
     'cost_estimate.amount: must be a decimal string, such as "300.00"'),  # not a number: nothing said of one
])
async def test_money_sent_as_a_number_is_told_to_be_a_decimal_string(path, body, detail):
    problem = await refused("POST", path, json=body)
    assert problem["detail"] == detail and problem["errors"][0]["type"] == "string_type"


async def test_money_as_a_decimal_string_still_passes():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        answer = await client.post("/complete", json={"outcome": "done",
                                                      "cost_estimate": {"amount": "120.00", "currency": "EUR"}})
    assert answer.status_code == 200, answer.text


async def test_a_value_error_or_an_assertion_says_its_own_words_only():
    grant = {"donor": "D", "code": "G-1", "currency": "EUR", "amount": "300.5", "starts_on": "2026-01-01",
             "ends_on": "2025-12-31", "categories": ["medical"]}
    problem = await refused("POST", "/grants", json=grant)
    assert problem["detail"].startswith("amount: EUR amounts have") and "Value error" not in problem["detail"]
    assert problem["errors"][1]["msg"] == "a grant cannot end before it starts"
    odd = await refused("POST", "/odd", json={"code": "ab-123", "count": 12})
    assert odd["detail"] == "count: a count is below 10"


@pytest.mark.parametrize(("born", "detail"), [
    ("1990-13-01", "date_of_birth: must be a date written YYYY-MM-DD; month value is outside expected range of 1-12"),
    ("1990-02-30", "date_of_birth: must be a date written YYYY-MM-DD; day value is outside expected range"),
    ("19900101", "date_of_birth: must be a date written YYYY-MM-DD"),
    (19900101, "date_of_birth: must be a date written YYYY-MM-DD"),  # not seconds since 1970
])
async def test_a_date_is_said_to_be_written_yyyy_mm_dd(born, detail):
    assert (await refused("POST", "/cases", json={"full_name": "A B", "date_of_birth": born}))["detail"] == detail


@pytest.mark.parametrize("month", ["2026-01-01", "2026-13", "2026-3", "٢٠٢٦-03", "x" * 300])
async def test_a_month_not_written_yyyy_mm_is_told_so_whatever_its_length(month):
    problem = await refused("GET", "/programme", params={"from": month})
    assert problem["detail"] == "query.from: must be a month written YYYY-MM, such as 2026-03"


async def test_a_month_written_yyyy_mm_or_none_is_taken():
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        assert (await client.get("/programme", params={"from": "2026-03", "to": ""})).json() == {
            "from": "2026-03", "to": ""}


async def test_a_missing_body_is_said_to_be_needed_with_its_members():
    problem = await refused("POST", "/decline")
    assert problem["detail"] == 'This request needs a JSON body: {"reason": …}'
    assert problem["errors"] == [{"loc": ["body"], "msg": problem["detail"], "type": "missing"}]
    assert (await refused("POST", "/users"))["detail"] == (
        'This request needs a JSON body: {"username": …, "password": …, "roles": …}')
