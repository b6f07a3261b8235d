"""What every HTTP process has in front of its routes: request ids, access logs without values, metrics,
security headers and a body size limit; plus /healthz and /readyz. /metrics is not here: it has a listener of its
own (kit.metrics), so the main one — the gateway's is public — never serves it."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit import context, logs, metrics, tracing

log = logs.get("http")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,100}$")

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class BodyLimit:
    """A larger body limit for one route (an upload), by method and a pattern of its path: every other route keeps
    the process's own `max_body_bytes`."""

    method: str
    path: re.Pattern[str]
    max_bytes: int

    def covers(self, scope: Scope) -> bool:
        return scope.get("method") == self.method and self.path.fullmatch(scope.get("path", "")) is not None


def _problem_bytes(status: int, title: str, detail: str, kind: str) -> bytes:
    return json.dumps({"type": f"https://rehab.support/problems/{kind}", "title": title, "status": status, "detail": detail}).encode()


class RequestContextMiddleware:
    """Pure ASGI (no per-request task hop): sets the request id and trace context, limits the body, adds
    security headers, and logs one line per request with the route template, never the query string."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int, csp: bool = True,
                 body_limits: Sequence[BodyLimit] = ()) -> None:
        self.app = app
        self.service = service
        self.max_body = max_body_bytes
        self.csp = csp
        self.body_limits = tuple(body_limits)

    def _limit_for(self, scope: Scope) -> int:
        return next((limit.max_bytes for limit in self.body_limits if limit.covers(scope)), self.max_body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SAFE_REQUEST_ID.match(incoming) else context.new_request_id()
        parent = headers.get(b"traceparent", b"").decode("latin-1") or None
        rid_token = context.set_request_id(rid)
        # With tracing on, the server span's own context (it continues the caller's trace); else a new span id.
        tp_token = context.set_traceparent(tracing.current_traceparent() or context.new_traceparent(parent))
        started = time.perf_counter()
        status_holder = {"status": 500, "started": False}
        extra_headers = [(b"x-request-id", rid.encode())] + SECURITY_HEADERS
        if self.csp:
            extra_headers.append(_API_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                existing = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in extra_headers if k not in existing
                ]
            await send(message)

        max_body = self._limit_for(scope) if self.body_limits else self.max_body
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                await self._reject_too_large(send_with_headers, max_body)
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > max_body:
                        raise _BodyTooLarge()
                return message

            try:
                await self.app(scope, limited_receive, send_with_headers)
            except _BodyTooLarge:
                if not status_holder["started"]:
                    await self._reject_too_large(send_with_headers, max_body)
            except Exception as exc:
                # The last wall: nothing escapes to the server, which would log a full traceback (messages and
                # values included). Logged by type and place only; answered as a problem if nothing was sent yet.
                log.error("unhandled error", exc_info=exc)
                if not status_holder["started"]:
                    await self._answer_failure(send_with_headers, exc)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            status = status_holder["status"]
            metrics.HTTP_REQUESTS.labels(self.service, method, template, str(status)).inc()
            metrics.HTTP_LATENCY.labels(self.service, method, template).observe(elapsed)
            log.info("request", method=method, route=template, status=status, ms=round(elapsed * 1000, 2))
            context.reset_request_id(rid_token)
            context.reset_traceparent(tp_token)

    async def _answer_failure(self, send: Send, exc: Exception) -> None:
        headers = [(b"content-type", b"application/problem+json")]
        if isinstance(exc, (OperationalError, InterfaceError)):  # the database restarts or is out of reach
            status = 503
            body = _problem_bytes(503, "Service Unavailable",
                                  "The database is not available right now; try again shortly.", "database-unavailable")
            headers.append((b"retry-after", b"1"))
        else:
            status = 500
            body = _problem_bytes(500, "Internal Server Error",
                                  "An internal error occurred; it has been logged with the request id.",
                                  "internal-server-error")
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _reject_too_large(self, send: Send, max_body: int) -> None:
        body = _problem_bytes(413, "Content Too Large", f"The request body exceeds {max_body} bytes.", "content-too-large")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def health_router(readiness: ReadinessCheck) -> APIRouter:
    """`/healthz`: the process answers. `/readyz`: it can do its work (database, migrations; NATS reported)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        report = await readiness()
        return JSONResponse(report, status_code=200 if report.get("status") == "ready" else 503)

    return router


def install(app: FastAPI, *, service: str, max_body_bytes: int, csp: bool = True,
            body_limits: Sequence[BodyLimit] = ()) -> None:
    app.add_middleware(RequestContextMiddleware, service=service, max_body_bytes=max_body_bytes, csp=csp,
                       body_limits=body_limits)
