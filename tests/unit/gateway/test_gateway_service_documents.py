"""The gateway's copies of the services' documents (gateway/openapi.py `ServiceDocuments`): a service that hangs
costs one request one timeout now and then, never every request its own in turn; the last good copy is served."""

from __future__ import annotations

import asyncio
import time

import httpx

from gateway.openapi import ASK_AGAIN_SECONDS, ServiceDocuments

HANG = 0.3  # what a hung service costs one request: the client's timeout


async def test_a_hung_service_is_asked_once_in_a_while_and_its_last_good_copy_is_served_meanwhile():
    asked: list[str] = []
    hung = False

    async def service(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if hung and request.url.host == "reports":
            await asyncio.sleep(HANG)
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"openapi": "3.1.0", "info": {"title": request.url.host}})

    client = httpx.AsyncClient(transport=httpx.MockTransport(service))
    documents = ServiceDocuments(client, {"intake": "http://intake", "reports": "http://reports"}, max_age=0,
                                 timeout=HANG)
    first = await documents.current()
    hung = True
    await asyncio.sleep(0.01)  # both copies are stale now (max_age 0), but were asked for just now
    started = time.monotonic()
    answers = await asyncio.gather(*(documents.current() for _ in range(10)))
    elapsed = time.monotonic() - started

    assert set(first) == {"intake", "reports"} and all(answer == first for answer in answers)
    assert elapsed < HANG  # nothing was asked again within ASK_AGAIN_SECONDS: no request waited
    assert asked == ["intake", "reports"]

    documents._asked = {name: at - ASK_AGAIN_SECONDS for name, at in documents._asked.items()}  # time passes
    started = time.monotonic()
    answers = await asyncio.gather(*(documents.current() for _ in range(10)))
    elapsed = time.monotonic() - started
    await client.aclose()

    assert all(answer["reports"] == first["reports"] for answer in answers)  # the last good copy
    assert HANG <= elapsed < 2 * HANG  # one timeout in all, not ten one after the other
    assert asked.count("reports") == 2 and asked.count("intake") == 2  # each asked once more


async def test_requests_waiting_while_a_missing_document_is_asked_for_share_that_answer():
    asked: list[str] = []

    async def service(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        await asyncio.sleep(HANG)
        raise httpx.ReadTimeout("no answer", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(service))
    documents = ServiceDocuments(client, {"reports": "http://reports"}, max_age=60, timeout=HANG)
    started = time.monotonic()
    answers = await asyncio.gather(*(documents.current() for _ in range(10)))
    elapsed = time.monotonic() - started
    later = await asyncio.wait_for(documents.current(), timeout=2 * HANG)  # a new request asks again: none held
    await client.aclose()

    assert answers == [{}] * 10 and later == {}
    assert elapsed < 2 * HANG and asked == ["reports", "reports"]  # one ask for the ten, one for the next
