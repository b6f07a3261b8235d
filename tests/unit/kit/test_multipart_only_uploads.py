"""kit.http: multipart/form-data is taken only by an app's upload routes (the `body_limits` it declares). A form sent
so anywhere else reached its route unread by the guard, a NUL character in it too (on PostgreSQL a 500); now it is
refused before the route, 415, saying how a form is sent. An upload's own fields are checked by its reader."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Form, Request

from kit import http, problems
from kit.uploads import read_multipart

PROBLEM = "application/problem+json"
MULTIPART = {"content-type": "multipart/form-data; boundary=b"}


def multipart(**fields: bytes) -> bytes:
    return b"".join(f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
                    for name, value in fields.items()) + b"--b--\r\n"


SIGNED_IN: list[str] = []  # who the form route was run for


def app_with_an_upload() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test-multipart", max_body_bytes=10_000,
                 body_limits=[http.BodyLimit("POST", re.compile(r"/documents"), 100_000)])

    @app.post("/token")
    async def token(username: Annotated[str, Form()]) -> dict[str, str]:
        SIGNED_IN.append(username)
        return {"username": username}

    @app.post("/documents")
    async def upload(request: Request) -> dict[str, dict[str, str]]:
        return {"fields": (await read_multipart(request, max_file_bytes=1000, max_field_bytes=100_000)).fields}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    SIGNED_IN.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with_an_upload()),
                                 base_url="http://t") as opened:
        yield opened


async def test_a_form_sent_as_multipart_is_415_before_its_route(client: httpx.AsyncClient):
    answer = await client.post("/token", content=multipart(username=b"adm\x00in"), headers=MULTIPART)

    assert answer.status_code == 415 and answer.headers["content-type"] == PROBLEM, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/multipart-not-here") and answer.headers["x-request-id"]
    assert "Only a document is sent as multipart/form-data" in problem["detail"] and "URL-encoded" in problem["detail"]
    assert SIGNED_IN == []  # the route never ran


async def test_the_same_form_url_encoded_and_a_document_as_multipart_are_taken(client: httpx.AsyncClient):
    form = await client.post("/token", data={"username": "admin"})
    assert form.status_code == 200 and form.json() == {"username": "admin"}
    upload = await client.post("/documents", content=multipart(kind=b"letter"), headers=MULTIPART)
    assert upload.status_code == 200 and upload.json() == {"fields": {"kind": "letter"}}
    elsewhere = await client.put("/documents", content=multipart(kind=b"letter"), headers=MULTIPART)
    assert elsewhere.status_code == 415  # an upload route is its method and path


async def test_a_nul_in_an_upload_s_field_is_400_from_its_reader(client: httpx.AsyncClient):
    answer = await client.post("/documents", content=multipart(kind=b"let\x00ter"), headers=MULTIPART)
    assert answer.status_code == 400 and answer.json()["type"].endswith("/nul-character"), answer.text


async def test_an_upload_route_s_larger_limit_is_a_document_s_only(client: httpx.AsyncClient):
    """JSON is read whole and parsed before any route: on an upload route it keeps the ordinary limit, so that a
    stranger's 20 MB of JSON is never parsed where a 20 MB photo is taken."""
    json_body = b'{"kind": "' + b"x" * 50_000 + b'"}'  # over 10,000, under the upload's 100,000
    as_json = await client.post("/documents", content=json_body, headers={"content-type": "application/json"})
    as_document = await client.post("/documents", content=multipart(kind=b"x" * 50_000), headers=MULTIPART)

    assert as_json.status_code == 413 and as_json.headers["content-type"] == PROBLEM, as_json.text
    assert as_document.status_code == 200, as_document.text


async def test_a_body_passed_on_unread_is_not_guarded_here_but_its_address_is():
    """An app that streams a route's body to another process (the gateway) leaves it to that process's guard, which
    reads it once the caller is known: it is not read, parsed or refused here."""
    seen: list[bytes] = []

    async def passes_on(scope, receive, send) -> None:  # noqa: ANN001 (ASGI)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guarded = http.InputGuardMiddleware(passes_on, passed_on=lambda scope: scope["path"].startswith("/api/"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://t") as client:
        twice = b'{"a": 1, "a": 2}'
        passed = await client.post("/api/cases", content=twice, headers={"content-type": "application/json"})
        kept = await client.post("/own", content=twice, headers={"content-type": "application/json"})
        nul_address = await client.post("/api/cases%00", content=twice, headers={"content-type": "application/json"})

    assert passed.status_code == 204 and seen == [twice]
    assert kept.status_code == 422 and nul_address.status_code == 400 and seen == [twice]
