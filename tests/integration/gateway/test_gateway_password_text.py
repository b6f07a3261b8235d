"""A password is text the hasher must encode: one it cannot (a lone surrogate, which JSON's `\\ud800` escape can
carry) is an invalid request (422 problem), never a 500; the password policy still words its own refusals."""

from __future__ import annotations

import pytest

from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def test_a_password_holding_a_lone_surrogate_is_an_invalid_request(door: Door):
    # Written as JSON text by hand: httpx's json= cannot encode a lone surrogate, a client's own encoder can.
    body = rb'{"username": "aliaksei.surrogate", "password": "Abcdefgh-ijkl-\ud800-mnop", "roles": ["caseworker"]}'
    answer = await door.client.post("/api/admin/users", content=body,
                                    headers={**await door.admin(), "Content-Type": "application/json"})

    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == 422 and problem["type"].endswith("/validation-error")
    assert [issue["loc"] for issue in problem["errors"]] == [["body", "password"]]
    assert "\ud800" not in answer.text and "Abcdefgh" not in answer.text  # what was sent is not echoed


@pytest.mark.parametrize(("password", "said"), [
    ("", "at least 12 characters"),
    ("Short-1", "at least 12 characters"),
    ("Long-" + "p" * 300, "at most 256 characters"),
])
async def test_the_password_policy_still_says_what_is_wrong(door: Door, password: str, said: str):
    answer = await door.client.post("/api/admin/users", headers=await door.admin(), json={
        "username": "aliaksei.policy", "password": password, "roles": ["caseworker"]})

    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["type"].endswith("/weak-password") and said in answer.json()["detail"]
