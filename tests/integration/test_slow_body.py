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
async def over_http(app: FastAPI) -> AsyncIterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                                           lifespan="off"))
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
