"""A document through the gateway (SPEC §4): the upload route alone takes a body over the gateway's 1 MB limit (up to
intake's 20 MiB and the multipart around it), and a long answer is passed on as it arrives, with its length."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from tests.integration.gateway.door import Backends, Door, open_gateway

pytestmark = pytest.mark.integration


@pytest.fixture
async def door(backends: Backends, gateway_settings) -> AsyncIterator[Door]:
    if "intake" not in backends.urls:
        pytest.skip("intake does not exist in this checkout")
    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    async with open_gateway(settings) as opened:
        yield opened


async def test_a_document_of_5_mb_goes_in_and_comes_back_through_the_gateway(door: Door):
    caseworker = await door.staff("caseworker")
    case = (await door.client.post("/api/intake/cases", json={"full_name": "Алесь Бяляцкі"},
                                   headers=caseworker)).json()
    data = b"".join(f"{i:08d} a line of a long statement\n".encode() for i in range(5 * 1024 * 1024 // 36))
    added = await door.client.post(f"/api/intake/cases/{case['id']}/documents", headers=caseworker,
                                   files={"file": ("statement.txt", data, "text/plain")}, data={"kind": "legal"})
    assert added.status_code == 201, added.text
    document = added.json()
    assert document["size"] == len(data) and document["sha256"] == hashlib.sha256(data).hexdigest()

    async with door.client.stream("GET", f"/api/intake/documents/{document['id']}/content",
                                  headers=caseworker) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["x-content-type-options"] == "nosniff"
        pieces = [piece async for piece in response.aiter_raw()]
    assert b"".join(pieces) == data

    listed = await door.client.get(f"/api/intake/cases/{case['id']}/documents", headers=caseworker)
    assert [d["id"] for d in listed.json()["items"]] == [document["id"]]


async def test_over_20_mib_is_413_at_the_gateway_and_other_routes_keep_1_mb(door: Door):
    caseworker = await door.staff("caseworker")
    case = (await door.client.post("/api/intake/cases", json={"full_name": "Марфа Рабкова"},
                                   headers=caseworker)).json()
    big = await door.client.post(f"/api/intake/cases/{case['id']}/documents", headers=caseworker,
                                 files={"file": ("big.txt", b"a" * 21_000_000, "text/plain")}, data={"kind": "other"})
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"
    note = await door.client.post(f"/api/intake/cases/{case['id']}/needs", headers=caseworker,
                                  json={"category": "legal", "urgency": "low", "notes": "x" * 1_100_000})
    assert note.status_code == 413  # the larger limit is the upload route's alone
