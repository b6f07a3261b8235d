"""kit.http: a caller that hangs up before its whole body arrived is no failure of the service: logged as
"client closed" (499), never as an unhandled error, never counted among the 500s that alerts watch."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.types import Message

from kit import http, metrics, problems


def app_reading_its_body() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    http.install(app, service="test-client-closed", max_body_bytes=1000)

    @app.post("/forms")
    async def form(request: Request) -> dict[str, Any]:
        return {"length": len(await request.body())}

    return app


def counted(status: str) -> float:
    return metrics.HTTP_REQUESTS.labels("test-client-closed", "POST", "/forms", status)._value.get()


async def test_a_caller_hanging_up_mid_body_is_a_499_not_a_500(capsys):
    messages = [{"type": "http.request", "body": b"0123456789", "more_body": True}, {"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/forms", "raw_path": b"/forms", "query_string": b"", "root_path": "",
             "headers": [(b"content-length", b"100"), (b"content-type", b"text/plain")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    before = counted("500"), counted("499")
    await app_reading_its_body()(scope, receive, send)
    logged = capsys.readouterr()

    assert sent == []  # nobody to answer
    assert (counted("500"), counted("499")) == (before[0], before[1] + 1)
    assert "unhandled error" not in logged.out + logged.err and "client closed the connection" in logged.out + logged.err
