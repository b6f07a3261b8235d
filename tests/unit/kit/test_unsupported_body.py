"""kit.problems: a body refused for how it was sent is 415, saying how to send it; not a 422 about a "dictionary"
the caller never wrote. What the body says stays 422."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kit import http, problems
from kit.problems import StrictModel


class Amount(StrictModel):
    amount: str


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test", max_body_bytes=10_000)

    @app.post("/pay")
    async def pay(body: Amount) -> Amount:
        return body

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as opened:
        yield opened


JSON = b'{"amount": "10.00"}'


@pytest.mark.parametrize(("headers", "body", "says"), [
    ({"content-type": "text/plain"}, JSON, "Content-Type: application/json"),
    ({"content-type": "application/x-www-form-urlencoded"}, b"amount=10.00", "Content-Type: application/json"),
    # no timestamp in the gzip header: the test's id is the same in every pytest-xdist worker
    ({"content-type": "application/json", "content-encoding": "gzip"}, gzip.compress(JSON, mtime=0),
     "Content-Encoding"),
])
async def test_a_body_sent_in_a_way_the_route_does_not_take_is_415(client: httpx.AsyncClient, headers: dict,
                                                                    body: bytes, says: str):
    answer = await client.post("/pay", content=body, headers=headers)
    assert answer.status_code == 415 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/unsupported-media-type") and says in answer.json()["detail"]


async def test_what_a_json_body_says_wrong_and_a_missing_body_stay_422(client: httpx.AsyncClient):
    wrong = await client.post("/pay", content=b'{"amount": 10}', headers={"content-type": "application/json"})
    missing = await client.post("/pay")
    assert wrong.status_code == missing.status_code == 422
    assert (await client.post("/pay", content=JSON, headers={"content-type": "application/json"})).status_code == 200
