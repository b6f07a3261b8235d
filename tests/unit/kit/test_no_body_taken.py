"""SPEC §6: unknown JSON fields are 422 — on a route that takes no body (a partner's accept, a case's close) too,
where FastAPI alone ignores whatever was sent. And a service answers a path with a trailing slash 404, never a 307 to
its own address (which the gateway would pass on)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from kit import problems


class Reason(problems.StrictModel):
    reason: str


def app() -> FastAPI:
    made = FastAPI(redirect_slashes=False, dependencies=[Depends(problems.no_fields_where_no_body_is_taken)])
    problems.install(made)

    @made.post("/referrals/{referral_id}/accept")
    async def accept(referral_id: str) -> dict:
        return {"accepted": referral_id}

    @made.post("/referrals/{referral_id}/decline")
    async def decline(referral_id: str, body: Reason) -> dict:
        return {"declined": referral_id, "reason": body.reason}

    return made


async def ask(method: str, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("sent", [{}, {"content": b""}, {"json": {}}, {"json": None}, {"content": b"  "}])
async def test_nothing_sent_where_nothing_is_taken_is_fine(sent):
    answer = await ask("POST", "/referrals/r1/accept", **sent)
    assert answer.status_code == 200 and answer.json() == {"accepted": "r1"}


@pytest.mark.parametrize("sent", [{"json": {"foo": 1}}, {"json": [1]}, {"json": "x"},
                                  {"content": b"{not json", "headers": {"content-type": "application/json"}},
                                  # a reviewer's: the same fields under another type, or none, went ahead
                                  {"content": b'{"foo": 1}', "headers": {"content-type": "text/plain"}},
                                  {"content": b'{"foo": 1}', "headers": {"content-type": "application/merge-patch+json"}},
                                  {"content": b'{"foo": 1}'},
                                  {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
                                  # a reviewer's: text that is not JSON was 415 "This takes a JSON body", which it
                                  # does not (and sent as JSON, would only be refused again)
                                  {"content": b"hello", "headers": {"content-type": "text/plain"}},
                                  {"content": b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser goes: was 500
                                   "headers": {"content-type": "application/json"}}])
async def test_something_sent_where_nothing_is_taken_is_422(sent):
    answer = await ask("POST", "/referrals/r1/accept", **sent)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json", answer.text
    assert answer.json()["type"].endswith("/validation-error")
    assert [e["msg"].startswith("This request takes no body") for e in answer.json()["errors"]] == [True]
    if sent.get("json") == {"foo": 1}:
        assert answer.json()["errors"] == [{"loc": ["body"], "msg": "This request takes no body",
                                            "type": "extra_forbidden"}]


async def test_what_the_members_sent_are_called_is_not_said_back():
    name = "Аляксандр Тэставы, +375291234567"
    answer = await ask("POST", "/referrals/r1/accept", json={name: "x"})
    assert answer.status_code == 422 and "Аляксандр" not in answer.text and "375291234567" not in answer.text


async def test_a_route_with_a_body_checks_its_own():
    assert (await ask("POST", "/referrals/r1/decline", json={"reason": "full"})).status_code == 200
    assert (await ask("POST", "/referrals/r1/decline", json={"reason": "full", "x": 1})).status_code == 422


async def test_a_trailing_slash_is_404_not_a_redirect_to_the_process():
    answer = await ask("POST", "/referrals/r1/accept/")
    assert answer.status_code == 404 and "location" not in answer.headers
