"""kit.uploads: a multipart body is read as sent or refused — never a guess between two parts of one name, and
never a body cut short before its closing boundary taken for a whole one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from kit import problems
from kit.uploads import read_multipart

TYPE = {"content-type": "multipart/form-data; boundary=b"}


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)

    @app.post("/documents")
    async def upload(request: Request) -> dict:
        form = await read_multipart(request, max_file_bytes=1000)
        return {"fields": form.fields, "files": {name: bytes(f.data).decode() for name, f in form.files.items()}}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as opened:
        yield opened


async def test_a_whole_body_is_read(client: httpx.AsyncClient):
    body = part("kind", b"letter") + part("file", b"hello", "a.txt") + b"--b--\r\n"
    answer = await client.post("/documents", content=body, headers=TYPE)
    assert answer.status_code == 200 and answer.json() == {"fields": {"kind": "letter"}, "files": {"file": "hello"}}


@pytest.mark.parametrize("body", [
    part("file", b"first", "a.txt") + part("file", b"second", "b.txt") + b"--b--\r\n",  # which file is meant?
    part("kind", b"letter") + part("kind", b"other") + part("file", b"x", "a.txt") + b"--b--\r\n",
    part("kind", b"letter") + part("file", b"hello", "a.txt"),  # cut short: no closing boundary
])
async def test_a_part_sent_twice_or_a_body_cut_short_is_400(client: httpx.AsyncClient, body: bytes):
    answer = await client.post("/documents", content=body, headers=TYPE)
    assert answer.status_code == 400 and answer.json()["type"].endswith("/multipart-invalid")


@pytest.mark.parametrize("length", [71, 257, 5000])
async def test_a_boundary_longer_than_rfc_2046_allows_is_400_not_500(client: httpx.AsyncClient, length: int):
    boundary = "b" * length
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nletter\r\n--{boundary}--\r\n"
    answer = await client.post("/documents", content=body.encode(), headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 400 and answer.json()["type"].endswith("/multipart-invalid"), answer.text
    assert "70" in answer.json()["detail"]


@pytest.mark.parametrize("body", [
    part("kind", b"let\x00ter") + part("file", b"hello", "a.txt") + b"--b--\r\n",  # a field
    part("ki\x00nd", b"letter") + part("file", b"hello", "a.txt") + b"--b--\r\n",  # a part's name
    part("file", b"hello", "a\x00.txt") + b"--b--\r\n",  # a file's name
])
async def test_a_nul_in_the_text_of_a_form_is_400_as_the_guard_answers_one(client: httpx.AsyncClient, body: bytes):
    answer = await client.post("/documents", content=body, headers=TYPE)
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json", answer.text
    problem = answer.json()
    assert problem["type"].endswith("/nul-character") and "NUL character is not allowed" in problem["detail"]


async def test_a_file_s_content_is_bytes_and_may_hold_a_nul(client: httpx.AsyncClient):
    body = part("kind", b"letter") + part("file", b"\x00\x01binary\x00", "a.bin") + b"--b--\r\n"
    answer = await client.post("/documents", content=body, headers=TYPE)
    assert answer.status_code == 200 and answer.json()["files"] == {"file": "\x00\x01binary\x00"}


async def test_a_file_name_past_the_parts_header_limit_is_said_to_be_too_long_and_a_long_one_within_it_is_read(
        client: httpx.AsyncClient):
    """An outside review's find: a 5,000-character file name was "The multipart body is malformed"."""
    too_long = await client.post("/documents", content=part("file", b"x", "a" * 5000 + ".pdf") + b"--b--\r\n",
                                 headers=TYPE)
    assert too_long.status_code == 400 and too_long.json()["type"].endswith("/file-name-too-long"), too_long.text
    assert "shorter name" in too_long.json()["detail"]
    long = await client.post("/documents", content=part("file", b"x", "a" * 3000 + ".pdf") + b"--b--\r\n",
                             headers=TYPE)
    assert long.status_code == 200 and long.json()["files"] == {"file": "x"}
