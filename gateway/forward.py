"""The hot path: check the caller, then forward the request to its service over one pooled aiohttp session.

Plain ASGI in front of FastAPI's router, so a forwarded request skips FastAPI's per-route machinery. aiohttp, not
httpx: every request to a service crosses this client, and aiohttp parses HTTP in C (llhttp) where httpx parses it in
pure Python (h11) under more layers of its own. In the measurement that chose it (made before bench/ existed, not
kept there), httpx forwarded at about a fifth of aiohttp's throughput.
A service that is down answers 503 at once, one that is slow 504 after the timeout, one that hangs 504 once its probes
go unanswered (gateway.replicas) and 503 at once from then on: never a hang, never a trace.
"""

from __future__ import annotations

import asyncio

import aiohttp
from multidict import CIMultiDict
from starlette.types import ASGIApp, Receive, Scope, Send
from yarl import URL

from gateway.access import Gatekeeper
from gateway.replicas import Replicas, ReplicaSilent, unless_silent
from gateway.routing import Route, has_dot_segment, is_internal, route_for
from kit import context, logs
from kit.problems import Problem, problem_response

log = logs.get("gateway.forward")

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection", b"te",
    b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
})
# Set by the gateway itself, whatever the caller sent. Cookies stay at the gateway: services use bearer tokens only.
_REPLACED = frozenset({
    b"host", b"content-length", b"expect", b"x-request-id", b"traceparent", b"forwarded", b"x-forwarded-for",
    b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-real-ip", b"cookie",
})
_DROPPED_FROM_RESPONSE = HOP_BY_HOP | {b"content-length", b"server", b"date"}
# An answer longer than this (a document's bytes) is passed on piece by piece as it arrives, not held whole.
STREAM_ABOVE_BYTES = 1024 * 1024
STREAM_PIECE_BYTES = 256 * 1024
# Reads that may go to a second replica when the first broke the connection mid-answer (RFC 9110 §9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def forwarding_session(*, connect_timeout: float, total_timeout: float, connections: int) -> aiohttp.ClientSession:
    """One pooled session for every forwarded request: keep-alive connections to the services, no cookies kept,
    bodies passed through as they are (no decompression), no proxy from the environment. `connections` bounds each
    service (each replica) apart, never all of them together: requests waiting on a frozen service must not take the
    connections the others' routes need (a service that is down fails only its own routes)."""
    connector = aiohttp.TCPConnector(
        limit=0, limit_per_host=connections, ttl_dns_cache=300,
        # Shorter than uvicorn's 5 s keep-alive, so the gateway does not reuse a connection the service just closed.
        keepalive_timeout=3,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # The connect timeout bounds the TCP handshake only: waiting for a pooled connection under load is not
        # "the service is down", so it counts against the total alone.
        timeout=aiohttp.ClientTimeout(total=total_timeout, sock_connect=connect_timeout),
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, trust_env=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
    )


def reading_timeout(timeout: aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """A read's timeout: the service has the whole timeout to begin answering and to send each next piece, but no
    bound on the whole answer — a document going to a caller on a slow line takes as long as the line does (the
    gateway stops reading from the service while the caller is behind, which stops this clock too)."""
    return aiohttp.ClientTimeout(total=None, connect=timeout.total, sock_connect=timeout.sock_connect,
                                 sock_read=timeout.total)


def request_headers(scope: Scope) -> CIMultiDict[str]:
    """The caller's headers minus hop-by-hop ones, plus request id, trace context and X-Forwarded-*."""
    raw = scope["headers"]
    dropped = HOP_BY_HOP | _REPLACED
    for name, value in raw:
        if name == b"connection":  # it may name more hop-by-hop headers
            dropped = dropped | {token.strip().lower() for token in value.split(b",")}
    headers: CIMultiDict[str] = CIMultiDict(
        (name.decode("latin-1"), _header_text(value)) for name, value in raw if name.lower() not in dropped
    )
    host = next((value.decode("latin-1") for name, value in raw if name == b"host"), "")
    client = scope.get("client")
    headers["X-Request-ID"] = context.request_id() or context.new_request_id()
    headers["traceparent"] = context.traceparent() or context.new_traceparent()
    headers["X-Forwarded-For"] = client[0] if client else "unknown"
    headers["X-Forwarded-Proto"] = scope.get("scheme", "http")
    if host:
        headers["X-Forwarded-Host"] = host
    return headers


def _header_text(value: bytes) -> str:
    """A header value as aiohttp will write it out again: it encodes values as UTF-8, so they are read as UTF-8 here
    (an `Access-Reason` in Belarusian must reach the service byte for byte: read as Latin-1 it would arrive encoded
    twice, garbled, and twice as long). Bytes that are not UTF-8 are passed on as Latin-1, as before."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def response_headers(raw: tuple[tuple[bytes, bytes], ...], body_length: int, *, status: int = 200,
                     method: str = "GET") -> list[tuple[bytes, bytes]]:
    """The service's answer headers minus hop-by-hop ones; the length is the gateway's (it sends the body whole)."""
    named = {token.strip().lower() for name, value in raw if name.lower() == b"connection" for token in value.split(b",")}
    if method == "HEAD":  # no body here, but the length of the one a GET would get
        dropped = (_DROPPED_FROM_RESPONSE - {b"content-length"}) | named
        return [(name.lower(), value) for name, value in raw if name.lower() not in dropped]
    kept = [(name.lower(), value) for name, value in raw if name.lower() not in _DROPPED_FROM_RESPONSE | named]
    if status >= 200 and status not in (204, 304):  # RFC 9110 §8.6: those never carry Content-Length
        kept.append((b"content-length", str(body_length).encode()))
    return kept


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class ForwardingMiddleware:
    """Takes every request under a forwarded prefix before FastAPI's router (which would try each of its routes
    first); everything else goes on to the gateway's own routes. Sits inside kit.http's middleware, so forwarded
    requests get the same request id, body limit, security headers and access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_for(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the access log and metrics label requests by `route.path`
        try:
            await forward(route, scope, receive, send)
        except Problem as problem:
            response = problem_response(problem.status, problem.detail, kind=problem.kind, title=problem.title,
                                        headers=problem.headers)
            await response(scope, receive, send)
        except ConnectionAbortedError:
            return  # the caller went away while sending its body


async def forward(route: Route, scope: Scope, receive: Receive, send: Send) -> None:
    state = scope["app"].state
    path: str = scope["path"]
    if has_dot_segment(path) or is_internal(path):
        raise Problem(404, "There is no such path.", kind="not-found")
    gatekeeper: Gatekeeper = state.gatekeeper
    authorization = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"), None)
    principal = await gatekeeper.admit(authorization)
    if not principal.roles & route.roles:  # audited: who, and the method and route's template, never the path
        raise await gatekeeper.refuse_role(state.runtime, principal, scope["method"], route.path)

    body = await read_body(receive)
    raw_path: bytes = (scope.get("raw_path") or path.encode()).split(b"?", 1)[0]
    suffix = raw_path.decode("latin-1")
    if scope.get("query_string"):
        suffix += "?" + scope["query_string"].decode("latin-1")
    replicas: Replicas = state.backend_urls.replicas(route.backend)
    tried: tuple[str, ...] = ()
    # A second replica is tried once, and only when the first never saw the request (its connection failed) or the
    # request is a read: a write that may have reached a service is never sent twice here; the caller decides,
    # with its Idempotency-Key.
    while True:
        base = replicas.choose(besides=tried)
        assert base is not None  # never asked with every replica tried
        tried += (base,)
        again = len(tried) < min(2, len(replicas.urls))
        if replicas.is_silent(base):  # hung: nothing is sent to it, so any request may go to the next
            if again:
                continue
            raise Problem(503, f"The {route.backend} service is not answering right now; try again shortly.",
                          kind="service-unavailable", headers={"Retry-After": "5"})
        try:
            answer = await _unless_silent(replicas, base, route, scope, send, base + suffix, body)
        except ReplicaSilent:
            log.warning("service silent mid-request", backend=route.backend)
            if again and scope["method"] in SAFE_METHODS:
                continue
            if scope["method"] in SAFE_METHODS:  # a read changes nothing: no key to speak of
                raise Problem(504, f"The {route.backend} service stopped answering while this request waited; try "
                              f"again shortly.", kind="service-timeout") from None
            raise Problem(504, f"The {route.backend} service stopped answering while this request waited; it may "
                          f"or may not have been done (send it again with the same Idempotency-Key).",
                          kind="service-timeout") from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            replicas.eject(base, why=type(error).__name__)
            log.warning("service unreachable", backend=route.backend, error_type=type(error).__name__)
            if again:
                continue
            raise Problem(503, f"The {route.backend} service is not available right now; try again shortly.",
                          kind="service-unavailable", headers={"Retry-After": "1"}) from None
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as error:
            log.warning("service timed out", backend=route.backend, error_type=type(error).__name__)
            raise Problem(504, f"The {route.backend} service did not answer in time.", kind="service-timeout") from None
        except aiohttp.ClientError as error:
            # The connection broke after the request went out: the replica may have died with it.
            replicas.eject(base, why=type(error).__name__)
            log.warning("service answer broken", backend=route.backend, error_type=type(error).__name__)
            if again and scope["method"] in SAFE_METHODS:
                continue
            raise Problem(502, f"The {route.backend} service gave no usable answer.", kind="bad-gateway") from None
        if answer is None:
            return  # streamed already
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        return


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


async def _unless_silent(replicas: Replicas, base: str, route: Route, scope: Scope, send: Send, target: str,
                         body: bytes) -> Answer | None:
    """`_one_try`, given up (ReplicaSilent) should the replica be taken for silent before its answer begins. Once a
    long answer is being passed on, it runs to its end (or its read timeout): the caller has its first bytes."""
    streaming: list[bool] = []
    return await unless_silent(replicas, base, _one_try(route, scope, send, target, body, streaming),
                               keep_on=lambda: bool(streaming))


async def _one_try(route: Route, scope: Scope, send: Send, target: str, body: bytes,
                   streaming: list[bool]) -> Answer | None:
    """Send the request to one replica; its answer, or None once a long answer was streamed to the caller (marked
    in `streaming` before its first byte goes out)."""
    session: aiohttp.ClientSession = scope["app"].state.forwarding
    timeout = reading_timeout(session.timeout) if scope["method"] in SAFE_METHODS else session.timeout
    async with session.request(scope["method"], URL(target, encoded=True), headers=request_headers(scope),
                               data=body or None, allow_redirects=False, timeout=timeout) as upstream:
        length = upstream.content_length
        if length is not None and length > STREAM_ABOVE_BYTES and scope["method"] != "HEAD":
            streaming.append(True)
            await _stream(upstream, length, route, send)
            return None
        content = await upstream.read()
        status = upstream.status
        return status, response_headers(upstream.raw_headers, len(content), status=status,
                                        method=scope["method"]), content


async def _stream(upstream: aiohttp.ClientResponse, length: int, route: Route, send: Send) -> None:
    """A long answer (a document) passed on as it arrives, with the service's own length. Once its first bytes
    went out there is no other answer to give: a service that fails midway leaves a body shorter than announced,
    which every client sees as broken."""
    await send({"type": "http.response.start", "status": upstream.status,
                "headers": response_headers(upstream.raw_headers, length, status=upstream.status)})
    try:
        async for piece in upstream.content.iter_chunked(STREAM_PIECE_BYTES):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        log.warning("service answer cut short", backend=route.backend, error_type=type(error).__name__)
        return
    await send({"type": "http.response.body", "body": b""})
