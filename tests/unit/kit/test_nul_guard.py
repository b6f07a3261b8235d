"""kit.http's NUL guard: a NUL character in the path, the query string or any string of a JSON body is refused at
the door (400, 422 problems) before PostgreSQL's driver could fail on it (a 500); what only looks like one (an
escaped backslash before `u0000`) passes, and a body that is not JSON is never read."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from kit import http, problems
from kit.http import InputGuardMiddleware, nul_in_json

PROBLEM = "application/problem+json"


# ---- what counts as a NUL in a JSON body --------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "where"), [
    (rb'"\u0000"', []),
    (rb'{"name": "Clinic\u0000API"}', ["name"]),
    (rb'{"usernames": ["x", "y\u0000"]}', ["usernames", "1"]),
    (rb'{"a": {"b": [1, {"c": "\u0000"}]}}', ["a", "b", "1", "c"]),
    (rb'{"a": {"x\u0000": "fine"}}', ["a"]),  # a key: the object holding it, the key not echoed
    (rb'{"a": "\\\u0000"}', ["a"]),  # an escaped backslash, then a NUL
    ('{"a": "\\u0000"}'.encode("utf-16"), ["a"]),  # JSON in UTF-16, which json.loads reads as FastAPI does
    (rb'{"first": "\u0000", "second": "\u0000"}', ["first"]),  # the first, in the order of the body
])
def test_a_nul_in_any_string_is_found_where_it_is(body: bytes, where: list[str]):
    assert nul_in_json(body) == where


@pytest.mark.parametrize("body", [
    rb'"\\u0000"',  # an escaped backslash followed by u0000: six characters of text, no NUL
    rb'{"a": "\\u0000", "b": ["\\\\u0000"]}',
    rb'{"name": "Clinic API"}',
    rb'{"a": "\u0001\u00a0"}',
    '{"a": "ok"}'.encode("utf-16"),  # NUL bytes in the encoding, none in the text
    '{"a": "ok"}'.encode("utf-32"),
    rb'{"a": "\u0000"',  # not JSON: the route's own parsing refuses it
    b'\x00\x00\x00',
    b"[" * 100_000 + rb'"\u0000"',  # nested deeper than the decoder goes: not JSON to it either
    b"",
])
def test_what_holds_no_nul_character_passes(body: bytes):
    assert nul_in_json(body) is None


def test_in_a_large_body_a_nul_is_found_without_walking_every_value_and_an_escaped_backslash_is_still_text():
    """Beyond `NUL_LOCATED_UP_TO` the body is refused as a whole: naming the member is not worth walking a
    stranger's megabyte on the event loop."""
    many = b"[" + b",".join([b'{"a": "x", "b": [1, 2, 3]}'] * 40_000) + b"]"
    assert len(many) > http.NUL_LOCATED_UP_TO
    assert nul_in_json(many[:-1] + rb', "\u0000"]') == []
    assert nul_in_json(many[:-1] + rb', "\\u0000", "\\\\u0000"]') is None  # backslashes written, then text
    assert nul_in_json(many[:-1] + rb', "\\\u0000"]') == []  # a written backslash, then a NUL
    assert nul_in_json(many[:-1] + rb', {"\u0000": 1}]') == []  # in a key too
    assert nul_in_json((r'{"a": "%s\u0000"}' % ("x" * 70_000)).encode("utf-16")) == []


def test_json_nested_as_deep_as_the_decoder_goes_is_walked():
    deep = b"[" * 900 + rb'"\u0000"' + b"]" * 900
    assert nul_in_json(deep) == ["0"] * 900


# ---- the guard in front of an app, as kit.http.install puts it --------------------------------------------------

class Named(BaseModel):
    name: str
    tags: list[str] = []


def guarded_app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test", max_body_bytes=1_000_000)  # the processes' own limit (kit.settings)

    @app.get("/items/{item_id}")
    async def read_item(item_id: str, q: str | None = None) -> dict[str, Any]:
        return {"item_id": item_id, "q": q}

    @app.post("/items")
    async def create_item(body: Named) -> Named:
        return body

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded_app()), base_url="http://t") as opened:
        yield opened


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM and answer.headers["x-request-id"]
    problem = answer.json()
    assert problem["status"] == status and "NUL character is not allowed" in problem["detail"]
    return problem


async def test_a_nul_in_the_path_is_400(client: httpx.AsyncClient):
    problem = assert_problem(await client.get("/items/%00"), 400)
    assert problem["type"].endswith("/nul-character") and "path" in problem["detail"]
    assert (await client.get("/items/a%2500")).json()["item_id"] == "a%00"  # an escaped percent sign is no NUL


@pytest.mark.parametrize("query", ["q=%00", "q=abc%00def", "%00=x"])
async def test_a_nul_in_the_query_string_is_400(client: httpx.AsyncClient, query: str):
    problem = assert_problem(await client.get(f"/items/1?{query}"), 400)
    assert "query string" in problem["detail"]


async def test_a_nul_under_a_member_no_schema_has_is_422_without_its_name(client: httpx.AsyncClient):
    answer = await client.post("/items", content='{"name": "x", "Аляксандр Тэставы, +375291234567": "\\u0000"}'.encode(),
                               headers={"content-type": "application/json"})
    problem = assert_problem(answer, 422)
    assert problem["errors"][0]["loc"] == ["body", "<member>"]
    assert "Аляксандр" not in answer.text and "375291234567" not in answer.text


async def test_a_nul_in_a_json_string_is_422_naming_the_field_not_the_value(client: httpx.AsyncClient):
    answer = await client.post("/items", content=rb'{"name": "Secret\u0000name", "tags": []}',
                               headers={"content-type": "application/json; charset=utf-8"})
    problem = assert_problem(answer, 422)
    assert problem["type"].endswith("/validation-error") and problem["title"] == "Invalid request"
    assert problem["errors"] == [{"loc": ["body", "name"], "msg": "A NUL character is not allowed in a string.",
                                  "type": "string_nul_character"}]
    assert "Secret" not in answer.text
    patch = await client.post("/items", content=rb'{"name": "x", "tags": ["\u0000"]}',
                              headers={"content-type": "application/merge-patch+json"})
    assert assert_problem(patch, 422)["errors"][0]["loc"] == ["body", "tags", "0"]


async def test_an_escaped_backslash_before_u0000_is_text_and_passes(client: httpx.AsyncClient):
    answer = await client.post("/items", content=rb'{"name": "\\u0000"}', headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["name"] == "\\u0000"


async def test_a_nul_in_a_url_encoded_form_is_400_and_an_escaped_percent_sign_passes(client: httpx.AsyncClient):
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body in (b"username=adm%00in&password=x", b"a=\x00"):
        answer = await client.post("/raw", content=body, headers=form)
        problem = assert_problem(answer, 400)
        assert "form field" in problem["detail"]
        # An OAuth2 client at a token endpoint reads RFC 6749's `error`, and must not cache the answer.
        assert problem["error"] == "invalid_request" and answer.headers["cache-control"] == "no-store"
    kept = await client.post("/raw", content=b"username=a%2500b", headers=form)
    assert kept.status_code == 200 and kept.json() == {"bytes": 16}  # replayed to the app as it came


async def test_a_body_that_is_not_json_is_not_read(client: httpx.AsyncClient):
    for content_type in ("application/octet-stream", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        answer = await client.post("/raw", content=b'\x00 \\u0000 "\\u0000"', headers=headers)
        assert answer.status_code == 200 and answer.json() == {"bytes": 17}


async def test_a_json_body_over_the_limit_is_still_413(client: httpx.AsyncClient):
    answer = await client.post("/items", content=b'{"name": "' + b"x" * 1_000_000 + b'"}',
                               headers={"content-type": "application/json"})
    assert answer.status_code == 413


# ---- at the ASGI level: the bytes the server gives, and the body as it streams ----------------------------------

class Recorder:
    """An app that reads the whole body and records each message it got, then answers 204."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            self.messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call(app: Any, *, chunks: list[bytes], content_type: bytes | None, query: bytes = b"",
               path: str = "/items") -> tuple[int, list[Message]]:
    """One request through `app`: its body in `chunks`, then a disconnect; the status answered."""
    incoming: list[Message] = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                               for i, chunk in enumerate(chunks)] + [{"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [(b"content-type", content_type)] if content_type else []
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": headers}
    await app(scope, receive, send)
    return sent[0]["status"], sent


async def test_a_nul_byte_the_server_passes_in_the_query_string_is_400():
    recorder = Recorder()
    status, sent = await call(InputGuardMiddleware(recorder), chunks=[b""], content_type=None, query=b"q=a\x00b")
    assert status == 400 and recorder.messages == []
    assert json.loads(sent[1]["body"])["detail"] == "A NUL character is not allowed in the query string."


async def test_an_upload_streams_through_piece_by_piece_unread():
    recorder = Recorder()
    pieces = [b"--x\r\n\x00\x00", b"\\u0000 binary", b"--x--\r\n"]
    upload = http.BodyLimit("POST", re.compile("/items"), 1000)
    status, _ = await call(InputGuardMiddleware(recorder, body_limits=[upload]), chunks=pieces,
                           content_type=b"multipart/form-data; boundary=x")
    assert status == 204
    assert [(m["body"], m["more_body"]) for m in recorder.messages] == [(p, i < 2) for i, p in enumerate(pieces)]


async def test_a_json_body_is_replayed_to_the_app_as_it_came_then_the_disconnect():
    recorder = Recorder()
    pieces = [b'{"name": ', b'"\\\\u0000"}']

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await recorder(scope, receive, send)
        recorder.messages.append(await receive())  # what comes after the body: the server's own

    status, _ = await call(InputGuardMiddleware(app), chunks=pieces, content_type=b"application/json")
    assert status == 204
    assert [m.get("body") for m in recorder.messages] == [*pieces, None]
    assert recorder.messages[-1]["type"] == "http.disconnect"


async def test_a_json_body_holding_a_nul_never_reaches_the_app():
    recorder = Recorder()
    status, _ = await call(InputGuardMiddleware(recorder), chunks=[b'{"name": "a', b'\\u0000"}'],
                           content_type=b"application/json")
    assert status == 422 and recorder.messages == []


# ---- a member named twice -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "twice"), [
    (b'{"amount": "1.00", "currency": "EUR", "amount": "99999999.00"}', True),
    (b'{"payee": {"name": "A", "name": "B"}}', True),  # at any depth
    (b'{"amount": "1.00", ' + b" " * 300_000 + b'"amount": "9000.00"}', True),  # however large the body
    (b'[{"a": 1}, {"a": 2}]', False),  # the same name in two objects is no ambiguity
    (b'{"amount": "1.00", "currency": "EUR"}', False),
    (b'{"amount": "1.00", "amount": ', False),  # not JSON: the route's own parsing refuses it
    (b"[" * 100_000, False),
])
def test_a_member_named_twice_is_found_at_any_depth(body: bytes, twice: bool):
    assert (http.json_flaw(body) == http.NAMED_TWICE) is twice


async def test_a_body_naming_a_member_twice_is_422_before_the_route_reads_either(client: httpx.AsyncClient):
    answer = await client.post("/items", content=b'{"name": "Clinic A", "tags": [], "name": "Clinic B"}',
                               headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["errors"] == [{"loc": ["body"], "msg": "An object names the same member twice.",
                                        "type": "json_duplicate_member"}]
    assert "Clinic" not in answer.text
    once = await client.post("/items", content=b'{"name": "Clinic A", "tags": ["a", "a"]}',
                             headers={"content-type": "application/json"})
    assert once.status_code == 200


async def test_a_member_named_twice_is_422_however_large_the_body(client: httpx.AsyncClient):
    """Padded past what was once the size checked (256 KiB), within the body limit: still refused."""
    padded = b'{"name": "Clinic A", ' + b" " * 300_000 + b'"name": "Clinic B"}'
    answer = await client.post("/items", content=padded, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["errors"] == [{"loc": ["body"], "msg": "An object names the same member twice.",
                                        "type": "json_duplicate_member"}]
    once = await client.post("/items", content=b'{"name": "Clinic A", ' + b" " * 300_000 + b'"tags": []}',
                             headers={"content-type": "application/json"})
    assert once.status_code == 200 and once.json() == {"name": "Clinic A", "tags": []}


# ---- JSON a route could not read: said so, not "There was an error parsing the body" -------------------------------

@pytest.mark.parametrize("body", [
    '{"name": "Aliaksandr Testavy"}'.encode("latin-1") + b"\xe9",
    '{"name": "Алеся"}'.encode("cp1251"),
    b'{"name": "\xc3"}',  # a character cut short
])
async def test_a_json_body_that_is_not_utf8_is_400_saying_so(client: httpx.AsyncClient, body: bytes):
    answer = await client.post("/items", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/body-not-utf8") and "not UTF-8" in problem["detail"]


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("body", [nested(100_000), b"[" * 100_000, nested(http.MAX_JSON_DEPTH + 1),
                                  b'{"a": ' * 65 + b"1" + b"}" * 65])
async def test_json_nested_too_deep_is_400_saying_so(client: httpx.AsyncClient, body: bytes):
    answer = await client.post("/raw", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/json-too-deep")
    assert problem["detail"] == f"The JSON is nested deeper than {http.MAX_JSON_DEPTH} levels."


async def test_json_nested_as_deep_as_allowed_or_written_otherwise_is_read_as_before(client: httpx.AsyncClient):
    deep = await client.post("/raw", content=nested(http.MAX_JSON_DEPTH), headers={"content-type": "application/json"})
    assert deep.status_code == 200 and deep.json() == {"bytes": 2 * http.MAX_JSON_DEPTH}
    wide = b"[" + b",".join([b'{"a": [1, {"b": 2}]}'] * 1000) + b"]"  # many brackets, shallow
    assert (await client.post("/raw", content=wide, headers={"content-type": "application/json"})).status_code == 200
    for encoding in ("utf-16", "utf-16-le", "utf-32"):  # RFC 8259 §8.1: UTF-8 (FastAPI would read these: an outside
        other = await client.post("/items", content='{"name": "Алеся"}'.encode(encoding),  # review found them taken)
                                  headers={"content-type": "application/json"})
        assert other.status_code == 400 and other.json()["type"].endswith("/body-not-utf8"), encoding
    with_bom = await client.post("/items", content='{"name": "Алеся"}'.encode("utf-8-sig"),
                                 headers={"content-type": "application/json"})
    assert with_bom.status_code == 200 and with_bom.json()["name"] == "Алеся"
    broken = await client.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["errors"][0]["type"] == "json_invalid"  # the route's, as before
    # said as where its parser stopped, not as a member named "9" (an outside review's find: "14: JSON decode error")
    assert broken.json()["errors"][0] == {"loc": ["body"], "type": "json_invalid",
                                          "msg": "The body is not valid JSON (its parser stopped at character 9)"}


async def test_a_number_longer_than_python_reads_is_400_saying_so(client: httpx.AsyncClient):
    """An outside review's find: 4,301 digits were "There was an error parsing the body", on every JSON route."""
    answer = await client.post("/raw", content=b'{"amount": ' + b"9" * 4301 + b"}",
                               headers={"content-type": "application/json"})
    assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM, answer.text
    assert answer.json()["type"].endswith("/json-number-too-long") and "4300 digits" in answer.json()["detail"]
    fits = await client.post("/raw", content=b'{"amount": ' + b"9" * 4300 + b"}",
                             headers={"content-type": "application/json"})
    assert fits.status_code == 200
