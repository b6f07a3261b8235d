"""kit.http: a body over its limit is 413 in words a person reads, written as every other problem is. An outside
review found an upload over the limit told "The request body exceeds 21037056 bytes." (20 MiB and the multipart
allowance, in bytes), in JSON with spaces after its separators where every other problem has none."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from gateway.routing import UPLOADS
from kit import http, problems
from services.intake.api import UPLOAD_LIMIT

DOCUMENT_LIMIT = 20 * 2**20 + 64 * 2**10  # what intake and the gateway take on a document's route
MULTIPART = {"content-type": "multipart/form-data; boundary=b"}
DOCUMENT_WORDS = "A document may be at most 20 MiB (with its form around it)."


def compact(answer: httpx.Response) -> bool:
    """Whether the body is written as the problem writer writes every problem: no spaces after separators."""
    return answer.content == json.dumps(answer.json(), separators=(",", ":"), ensure_ascii=False).encode()


def app() -> FastAPI:
    made = FastAPI()
    problems.install(made)
    http.install(made, service="test-body-limit", max_body_bytes=10_000,
                 body_limits=[http.BodyLimit("POST", re.compile(r"/documents"), DOCUMENT_LIMIT, what="A document"),
                              http.BodyLimit("POST", re.compile(r"/small"), 2 * 2**20 + 64 * 2**10, what="A document")])

    @made.post("/documents")
    @made.post("/small")
    async def upload(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    @made.post("/notes")
    async def note(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    return made


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://t") as opened:
        yield opened


async def test_a_document_over_its_limit_is_told_in_mib_by_the_problem_writer(client: httpx.AsyncClient):
    declared = await client.post("/documents", content=b"--b--\r\n",
                                 headers={**MULTIPART, "content-length": str(DOCUMENT_LIMIT + 1)})

    assert declared.status_code == 413 and declared.headers["content-type"] == "application/problem+json"
    assert declared.json() == {"type": "https://rehab.support/problems/content-too-large",
                               "title": "Content Too Large", "status": 413, "detail": DOCUMENT_WORDS}
    assert compact(declared), declared.text
    assert declared.headers["content-length"] == str(len(declared.content))


async def test_a_streamed_document_over_its_limit_is_told_the_same(client: httpx.AsyncClient):
    async def three_mib() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(3 * 16):
            yield b"a" * (64 * 1024)

    streamed = await client.post("/small", content=three_mib(), headers=MULTIPART)

    assert streamed.status_code == 413 and compact(streamed), streamed.text
    assert streamed.json()["detail"] == "A document may be at most 2 MiB (with its form around it)."


async def test_any_other_body_keeps_its_byte_count_and_the_same_writer(client: httpx.AsyncClient):
    note = await client.post("/notes", content=b'{"x": "' + b"a" * 20_000 + b'"}',
                             headers={"content-type": "application/json"})
    as_json = await client.post("/documents", content=b"[" + b"1," * 6_000 + b"1]",
                                headers={"content-type": "application/json"})  # JSON on an upload route: its limit

    for answer in (note, as_json):
        assert answer.status_code == 413 and compact(answer), answer.text
        assert answer.json()["detail"] == "The request body exceeds 10000 bytes."


def test_intake_and_the_gateway_say_a_document_s_limit_in_mib():
    assert UPLOAD_LIMIT.too_large == DOCUMENT_WORDS
    assert [limit.too_large for limit in UPLOADS] == [DOCUMENT_WORDS] * len(UPLOADS) and UPLOADS


def test_the_problems_written_below_any_response_are_the_writer_s_too():
    body = http._problem_bytes(414, "URI Too Long", "The address is too long.", "uri-too-long")

    assert body == problems.problem_response(414, "The address is too long.", kind="uri-too-long",
                                             title="URI Too Long").body
    assert b", " not in body and b'": ' not in body
