"""A caller that declares a body and stops sending it is answered 408 and its connection closed, instead of holding
it for ever; a slow body that keeps coming is read whole. Over real HTTP (uvicorn on 127.0.0.1), since what is
tested is what the server does with bytes that do not come."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request

from kit import http, logs, problems
from ops.supervisor import free_port

pytestmark = pytest.mark.integration

IDLE = 0.5  # seconds without a byte before the answer is 408 (30 by default)


def echoing_app() -> FastAPI:
    logs.configure("test")
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test", max_body_bytes=10_000, body_idle_seconds=IDLE)
    router = APIRouter()

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.include_router(router)
    return app


@asynccontextmanager
async def over_http(app: FastAPI, protocol: type | str = "auto") -> AsyncIterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="off", http=protocol))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        await serving


async def send_in_parts(port: int, declared: int, parts: list[bytes], pause: float) -> tuple[bytes, bool]:
    """POST /echo declaring `declared` bytes, sending `parts` with `pause` seconds between them; the answer as it
    came, and whether the server closed the connection after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(declared).encode() + b"\r\n\r\n")
    for part in parts:
        writer.write(part)
        await writer.drain()
        await asyncio.sleep(pause)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    body = await reader.readexactly(length)
    closed = await asyncio.wait_for(reader.read(1), 5) == b""
    writer.close()
    return head + body, closed


async def test_a_body_that_stops_short_of_its_content_length_is_answered_408_and_the_connection_closed():
    async with over_http(echoing_app()) as port:
        answer, closed = await send_in_parts(port, 100, [b'{"name": "'], pause=0)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408") and b"application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["type"].endswith("/request-body-timeout") and "Content-Length" in problem["detail"]
    assert closed


async def test_a_slow_body_that_keeps_coming_is_read_whole():
    body = json.dumps({"note": "x" * 40}).encode()
    parts = [body[i:i + 10] for i in range(0, len(body), 10)]  # each part well inside the idle time
    async with over_http(echoing_app()) as port:
        answer, _ = await send_in_parts(port, len(body), parts, pause=IDLE / 3)
    assert answer.startswith(b"HTTP/1.1 200") and json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"bytes": len(body)}


class QuickHeaders(http.HeadersInTime):
    headers_seconds = IDLE


async def test_a_connection_that_sends_nothing_or_half_a_header_is_closed_and_a_slow_honest_one_is_served():
    """Slowloris: connections held open with nothing, or a header a byte at a time, took every file descriptor of
    the gateway and left every other caller an empty reply. Each is closed once its headers are late; a request
    whose headers came in time is answered, however long its own work takes."""
    async with over_http(echoing_app(), protocol=QuickHeaders) as port:  # as kit.service.serve runs, quicker
        silent = await asyncio.open_connection("127.0.0.1", port)
        trickling = await asyncio.open_connection("127.0.0.1", port)
        trickling[1].write(b"POST /echo HTTP/1.1\r\nHost: test\r\n")
        cut_off = False
        for _ in range(40):  # a header line now and then, never the blank line that ends them
            await asyncio.sleep(IDLE / 4)
            try:
                trickling[1].write(b"X-Wait: a\r\n")
                await trickling[1].drain()
            except ConnectionError:  # reset or broken pipe: the server closed it
                cut_off = True
                break
        assert cut_off  # within ten times its deadline, though it never stopped sending
        for reader, _ in (silent, trickling):
            try:
                answered = await asyncio.wait_for(reader.read(), 5)
            except ConnectionError:
                answered = b""
            assert answered == b""  # closed by the server, nothing answered
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
        honest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert honest.startswith(b"HTTP/1.1 200") and honest.endswith(b'{"bytes":2}')


async def test_what_the_parser_refuses_is_answered_in_problem_json_an_address_too_long_414():
    """Below every app: a request target past kit.http.MAX_TARGET_BYTES is 414, bytes that are not HTTP 400, both
    problem+json like every other error, and the connection closed (uvicorn answered both in plain text)."""

    async def raw(request: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 5)  # all of it: the server closes the connection
        writer.close()
        return answer

    async with over_http(echoing_app(), protocol=http.HeadersInTime) as port:
        long = await raw(b"GET /echo?q=" + b"x" * (http.MAX_TARGET_BYTES + 1) + b" HTTP/1.1\r\nHost: test\r\n\r\n")
        broken = await raw(b"GET /echo HTTP/1.1\r\nHost: test\r\nBad\x01Header: 1\r\n\r\n")
        fits = await raw(b"GET /echo?q=" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    for answer, status, kind in ((long, b"414", "uri-too-long"), (broken, b"400", "malformed-request")):
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 " + status) and b"application/problem+json" in head
        assert json.loads(body)["type"].endswith("/" + kind)
    assert fits.startswith(b"HTTP/1.1 405")  # read whole and routed (the route takes POST only)
