"""What every HTTP process has in front of its routes: request ids, access logs without values, metrics,
security headers, a body size limit, a body that keeps coming, no NUL character, JSON a parser reads one way only,
and multipart only where a document is uploaded; plus /healthz and /readyz. /metrics is not here: it has a
listener of its own (kit.metrics), so the main one — the gateway's is public — never serves it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kit import context, logs, metrics, problems, tracing
from kit.db import DATABASE_UNAVAILABLE, refused_a_nul

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


class _BodyStalled(Exception):
    pass


# How long a request's body may go without a byte arriving before it is answered 408 and its connection closed. A
# caller who declares more than it sends would otherwise hold the connection (and whatever the route holds while it
# reads) for ever; a slow upload that keeps sending is never cut off.
BODY_IDLE_SECONDS = 30.0


# How long a connection may take to send a request's line and headers, from when it opened or its request began:
# uvicorn waits for them for ever, so a client that opens connections and sends nothing, or half a header (slowloris),
# held each one until the process ran out of file descriptors and every other caller got an empty reply.
HEADERS_SECONDS = 10.0


# The longest request target (path and query) taken. No address of ours comes near it; the URL parser beneath
# uvicorn fails past 64 KiB anyway, and that failure was answered in plain text (an outside review's find).
MAX_TARGET_BYTES = 32 * 1024


class HeadersInTime(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers have not all come within
    `HEADERS_SECONDS` of its opening or of its request's first byte. Once the headers are in, the body has its own
    idle limit (`BODY_IDLE_SECONDS`, 408), and between requests uvicorn's keep-alive timeout closes an idle one.
    What the parser refuses before any app sees it is answered as problem+json too, as everything else is: a target
    past `MAX_TARGET_BYTES` 414, bytes that are not HTTP 400."""

    headers_seconds = HEADERS_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._target_too_long = False
        self._headers_due = self.loop.call_later(self.headers_seconds, self._headers_too_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._headers_due is None:  # a request after another on a kept-alive connection
            self._headers_due = self.loop.call_later(self.headers_seconds, self._headers_too_late)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self._target_too_long = True
            raise ValueError("request target too long")  # the parser stops; uvicorn answers by send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._target_too_long:
            status, reason, title = 414, b"URI Too Long", "URI Too Long"
            detail, kind = (f"The address is longer than the {MAX_TARGET_BYTES} bytes taken; a search is sent in "
                            f"the body of a POST."), "uri-too-long"
        else:
            status, reason, title = 400, b"Bad Request", "Bad Request"
            detail, kind = "This is not an HTTP request that can be read.", "malformed-request"
        body = _problem_bytes(status, title, detail, kind)
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()

    def on_headers_complete(self) -> None:
        self._headers_waited()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_waited()
        super().connection_lost(exc)

    def _headers_waited(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _headers_too_late(self) -> None:
        self._headers_due = None
        if not self.transport.is_closing():
            self.transport.close()


@dataclass(frozen=True)
class BodyLimit:
    """A larger body limit for one route (an upload), by method and a pattern of its path, for a multipart body
    only: every other route, and a body of any other type on this one (JSON is read whole, and parsed, before any
    route), keeps the process's own `max_body_bytes`."""

    method: str
    path: re.Pattern[str]
    max_bytes: int
    what: str = "A file"  # what the route takes, as its 413 names it ("A document")

    def covers(self, scope: Scope) -> bool:
        return scope.get("method") == self.method and self.path.fullmatch(scope.get("path", "")) is not None

    @property
    def too_large(self) -> str:
        """What a 413 says to the person sending the file: its limit in MiB, not the byte count with the multipart
        allowance in it (21037056 means nothing to them)."""
        return f"{self.what} may be at most {_in_words(self.max_bytes)} (with its form around it)."


def _in_words(size: int) -> str:
    """A size in whole MiB (or KiB), rounded down: what is left over is the form's allowance."""
    return f"{size // 2**20} MiB" if size >= 2**20 else f"{size // 2**10} KiB" if size >= 2**10 else f"{size} bytes"


def _problem_bytes(status: int, title: str, detail: str, kind: str) -> bytes:
    """A problem written where no Response can be sent (the protocol's own answers, a body cut short), by the same
    writer as every other problem: the same members, the same compact JSON."""
    return bytes(problems.problem_response(status, detail, kind=kind, title=title).body)


CLIENT_CLOSED = 499  # logged and counted for a request whose caller went away before any answer


# What an app answers in place of the problem for a request that failed (the gateway: its console's page for a
# person's browser), given the status the problem would have (500, or 503 for a database out of reach); None leaves
# the problem. Starlette runs an app's own `Exception` handler outside every middleware, so for a route's failure
# it is never asked: this is.
FailurePage = Callable[[Request, int], Awaitable[Response | None]]


class RequestContextMiddleware:
    """Pure ASGI (no per-request task hop): sets the request id and trace context, limits the body, adds
    security headers, and logs one line per request with the route template, never the query string."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int, csp: bool = True,
                 body_limits: Sequence[BodyLimit] = (), own_request_ids: bool = False,
                 body_idle_seconds: float = BODY_IDLE_SECONDS, failure_page: FailurePage | None = None) -> None:
        self.app = app
        self.failure_page = failure_page
        self.body_idle_seconds = body_idle_seconds
        self.own_request_ids = own_request_ids
        self.service = service
        self.max_body = max_body_bytes
        self.csp = csp
        self.body_limits = tuple(body_limits)

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        """The request's body limit, and what a 413 says of it."""
        if self.body_limits and _media_type(scope) == MULTIPART:
            for limit in self.body_limits:
                if limit.covers(scope):
                    return limit.max_bytes, limit.too_large
        return self.max_body, f"The request body exceeds {self.max_body} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        incoming = "" if self.own_request_ids else headers.get(b"x-request-id", b"").decode("latin-1")
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

        max_body, too_large = self._limit_for(scope)
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                await self._reject_too_large(send_with_headers, too_large)
                return
            received = 0
            client_gone = body_complete = False

            async def limited_receive() -> Message:
                nonlocal received, client_gone, body_complete
                if body_complete:  # what comes now is the caller hanging up, whenever it does
                    message = await receive()
                else:
                    try:
                        async with asyncio.timeout(self.body_idle_seconds):
                            message = await receive()
                    except TimeoutError:
                        raise _BodyStalled() from None
                if message["type"] == "http.disconnect":
                    client_gone = True
                elif message["type"] == "http.request":
                    body_complete = not message.get("more_body", False)
                    received += len(message.get("body", b""))
                    if received > max_body:
                        raise _BodyTooLarge()
                return message

            try:
                await self.app(scope, limited_receive, send_with_headers)
            except _BodyTooLarge:
                if not status_holder["started"]:
                    await self._reject_too_large(send_with_headers, too_large)
            except _BodyStalled:
                if not status_holder["started"]:
                    await self._reject_stalled(send_with_headers)
            except Exception as exc:
                if client_gone and not status_holder["started"]:
                    # The caller hung up before sending its whole body: not a failure of ours (no 500 to alert on).
                    log.info("client closed the connection", error_type=type(exc).__name__)
                elif refused_a_nul(exc):
                    # A NUL the door did not see (in a value it does not read), refused by PostgreSQL: the
                    # caller's to mend, not a failure to alert on. Its message quotes the value: the type only.
                    log.warning("NUL character refused by the database", error_type=type(exc).__name__)
                    if not status_holder["started"]:
                        await self._refuse_nul(send_with_headers)
                else:
                    # The last wall: nothing escapes to the server, which would log a full traceback (messages and
                    # values included). Logged by type and place only; answered as a problem if nothing was sent.
                    log.error("unhandled error", exc_info=exc)
                    if not status_holder["started"]:
                        await self._answer_failure(scope, receive, send_with_headers, exc)
            if client_gone and not status_holder["started"]:
                status_holder["status"] = CLIENT_CLOSED  # nginx's word for it: counted apart from the 5xx
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

    async def _answer_failure(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        status = 503 if isinstance(exc, DATABASE_UNAVAILABLE) else 500  # 503: the database restarts or is out of reach
        if self.failure_page is not None and await _sent_failure_page(self.failure_page, scope, receive, send, status):
            return
        headers = [(b"content-type", b"application/problem+json")]
        if status == 503:
            body = _problem_bytes(503, "Service Unavailable",
                                  "The database is not available right now; try again shortly.", "database-unavailable")
            headers.append((b"retry-after", b"1"))
        else:
            body = _problem_bytes(500, "Internal Server Error",
                                  "An internal error occurred; it has been logged with the request id.",
                                  "internal-server-error")
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _refuse_nul(self, send: Send) -> None:
        body = _problem_bytes(400, "Bad Request", f"{NUL_REFUSED} in what was sent: the database cannot store one.",
                              "nul-character")
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _reject_stalled(self, send: Send) -> None:
        body = _problem_bytes(408, "Request Timeout", f"The request body stopped arriving: nothing came for "
                              f"{self.body_idle_seconds:g} seconds, short of what Content-Length declared.",
                              "request-body-timeout")
        await send({"type": "http.response.start", "status": 408,
                    "headers": [(b"content-type", b"application/problem+json"), (b"connection", b"close"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _reject_too_large(self, send: Send, detail: str) -> None:
        body = _problem_bytes(413, "Content Too Large", detail, "content-too-large")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _sent_failure_page(failure_page: FailurePage, scope: Scope, receive: Receive, send: Send,
                             status: int) -> bool:
    """Whether the app's own page for a failure was sent (or begun: then nothing else can be). A page that fails to
    be made is logged and the problem answered: a failure never gets a failed answer."""
    started = False

    async def noting_start(message: Message) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        page = await failure_page(Request(scope), status)
        if page is None:
            return False
        if status == 503:
            page.headers.setdefault("retry-after", "1")  # as the problem's: when to try again
        await page(scope, receive, noting_start)
    except Exception as exc:
        log.error("failure page failed", exc_info=exc)
        return started
    return True


# A NUL character is in no name, id or text a person means, and PostgreSQL's text cannot hold one: the driver
# refuses it only when the query runs (a 500), while SQLite stores it. So it is refused at the door, once, for every
# process: in the path, the query string or a URL-encoded form (400), or in any string of a JSON body (422); an
# upload's reader refuses one in its text fields (kit.uploads). One that comes some other way and reaches PostgreSQL
# is a 400 still (RequestContextMiddleware), never a 500.
NUL_REFUSED = "A NUL character is not allowed"
_ESCAPED_NUL = b"\\u0000"  # JSON's only escape for it (the `u` is lower case, the digits have no case)


# What an app answers in place of the problem for an address holding a NUL (the gateway: its console's page for a
# person's browser); None leaves the problem.
RefusedAddress = Callable[[Request], Awaitable[Response | None]]
# The routes whose bodies an app passes on to another process without reading them (the gateway's forwarding):
# that process's own guard reads them.
PassedOn = Callable[[Scope], bool]
# The app's refusal of a JSON body's sender whom its route would refuse anyway (the gateway: no valid access token
# on its own API), given from the request's head, before the body is read; None reads the body.
RefusedUnread = Callable[[Scope], problems.Problem | None]


# A UUID as a whole segment of a path, in any letter case (RFC 9562 §4: read in either, written in lower case).
_ID_SEGMENT = r"(?<=/)[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?=/|$)"
_ID_IN_PATH, _ID_IN_RAW_PATH = re.compile(_ID_SEGMENT), re.compile(_ID_SEGMENT.encode())


def _lower_case_ids(scope: Scope) -> None:
    """Ids in a path as every table holds them, in lower case: a partner's system that writes GUIDs in upper case
    (SQL Server, .NET) must find its own referral, as a body's ids are read in either case (an outside review's find).
    `raw_path` too, which the gateway forwards."""
    path = scope["path"]
    if path.islower() or not _ID_IN_PATH.search(path):
        return
    scope["path"] = _ID_IN_PATH.sub(lambda found: found.group(0).lower(), path)
    if scope.get("raw_path"):
        scope["raw_path"] = _ID_IN_RAW_PATH.sub(lambda found: found.group(0).lower(), scope["raw_path"])


class InputGuardMiddleware:
    """Pure ASGI: refuses a NUL character in the request's path or query string, in a URL-encoded form (the sign-in
    form, the console's), and in any string of a JSON body; a JSON object naming one member twice (`{"amount":
    "1.00", …, "amount": "99999.00"}`: Python's parser keeps the last, another reader the first — money must not
    depend on which), however large the body; JSON that is not UTF-8 or nests deeper than `MAX_JSON_DEPTH`, said
    so (FastAPI's own answer to both says only that the body could not be parsed); and a multipart body anywhere
    but an upload route (`body_limits`): a form sent so would reach its route unread by this guard.

    Only a JSON or URL-encoded body is read (whole, within the body limit, then replayed to the app): an upload
    (multipart) streams through untouched, its fields checked by its reader (kit.uploads). A JSON body is parsed
    once for what `json_flaw` finds, and once more, walked for a NUL, only when its bytes hold the escape or a NUL
    byte."""

    def __init__(self, app: ASGIApp, refused_address: RefusedAddress | None = None,
                 body_limits: Sequence[BodyLimit] = (), passed_on: PassedOn | None = None,
                 refused_unread: RefusedUnread | None = None) -> None:
        self.app = app
        self.refused_address = refused_address
        self.uploads = tuple(body_limits)
        self.passed_on = passed_on
        self.refused_unread = refused_unread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _lower_case_ids(scope)
        where = _nul_in_address(scope)
        if where is not None:
            page = await self.refused_address(Request(scope)) if self.refused_address is not None else None
            await (page or problems.problem_response(400, f"{NUL_REFUSED} in the {where}.",
                                                     kind="nul-character"))(scope, receive, send)
            return
        if _encoded_body(scope):
            await problems.problem_response(415, "A body sent with a Content-Encoding is not accepted here: send it "
                                                 "as it is.", kind="unsupported-media-type")(scope, receive, send)
            return
        if self.passed_on is not None and self.passed_on(scope):
            # Streamed, unread, to a process that guards it itself, once its caller is known: read here, a
            # stranger's megabyte of JSON would be parsed before anyone asked who sent it.
            await self.app(scope, receive, send)
            return
        media = _media_type(scope)
        if media == MULTIPART and not any(upload.covers(scope) for upload in self.uploads):
            await problems.problem_response(415, "Only a document is sent as multipart/form-data, to its upload "
                                                 "route; a form is sent URL-encoded (application/x-www-form-urlencoded).",
                                            kind="multipart-not-here")(scope, receive, send)
            return
        if media != FORM and not problems.is_json_media(media):
            await self.app(scope, receive, send)
            return
        if media != FORM and self.refused_unread is not None and (refusal := self.refused_unread(scope)) is not None:
            # Checked for flaws, a stranger's megabyte of JSON costs the event loop ~30 ms before its route says 401.
            await problems.problem_response(refusal.status, refusal.detail, kind=refusal.kind, title=refusal.title,
                                            headers=refusal.headers, extra=refusal.extra,
                                            media_type=refusal.media_type)(scope, receive, send)
            return
        received = await _whole_body(receive)
        body = b"".join(message.get("body", b"") for message in received if message["type"] == "http.request")
        if media == FORM:
            if b"%00" in body or b"\x00" in body:  # the sign-in form and the console's forms: small, never uploads
                # A URL-encoded form is also what an OAuth2 client sends to a token endpoint, and reads RFC 6749's
                # `error` from the answer (SPEC §3): the problem carries it, as the gateway's own OAuth errors do.
                detail = f"{NUL_REFUSED} in a form field."
                await problems.problem_response(
                    400, detail, kind="nul-character", headers={"Cache-Control": "no-store"},
                    extra={"error": "invalid_request", "error_description": detail})(scope, receive, send)
                return
        elif (location := nul_in_json(body)) is not None:
            await _refuse_nul_in_body(location, scope, receive, send)
            return
        elif (flaw := json_flaw(body)) == NAMED_TWICE:
            await _refuse_in_body("An object names the same member twice.", NAMED_TWICE, scope, receive, send)
            return
        elif flaw is not None:
            await problems.problem_response(400, UNREADABLE[flaw], kind=flaw)(scope, receive, send)
            return
        await self.app(scope, _replaying(received, receive), send)


# A NUL is located (its member named in the refusal) in a body up to this size; in a larger one it is refused as a
# whole: walking every value of a stranger's megabyte costs the event loop a fifth of a second.
NUL_LOCATED_UP_TO = 64 * 1024


def nul_in_json(body: bytes) -> list[str] | None:
    """Where a JSON body holds a NUL character in a string (a key or a value): the path to it, `[]` for the body
    itself (and for any body over `NUL_LOCATED_UP_TO`); None when it holds none, or is not JSON (the route's own
    parsing refuses that). `"\\\\u0000"` (an escaped backslash, then `u0000`) is six characters of text, not a
    NUL."""
    if _ESCAPED_NUL not in body and b"\x00" not in body:  # a NUL byte: in JSON text, or UTF-16 or -32 JSON
        return None
    text = body
    if b"\x00" in body:  # UTF-16 or -32 JSON: read as UTF-8 to look for the escape
        try:
            decoded = body.decode(json.detect_encoding(body))
        except (UnicodeDecodeError, LookupError):
            return None
        if "\x00" in decoded:
            return None  # a NUL byte in UTF-8 text: not JSON (a control character), refused as such by the route
        text = decoded.encode()
    if not _escapes_a_nul(text):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if len(body) > NUL_LOCATED_UP_TO:
        return []
    pending: list[tuple[list[str], Any]] = [([], document)]
    while pending:  # not recursive: JSON nested as deep as the decoder allows must not overflow this
        where, value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            return where
        if isinstance(value, dict):
            if any("\x00" in key for key in value):
                return where  # the object that holds such a key; the key itself is not echoed
            pending.extend(([*where, key], item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend(([*where, str(index)], item) for index, item in reversed(list(enumerate(value))))
    return None


def _escapes_a_nul(text: bytes) -> bool:
    """Whether UTF-8 JSON text writes a NUL: `\\u0000` whose backslash is not itself escaped (an even number of
    backslashes before it). Each run of backslashes is looked at once: linear in the text."""
    at = text.find(_ESCAPED_NUL)
    while at != -1:
        run_start = at
        while run_start > 0 and text[run_start - 1] == 0x5C:  # `\`
            run_start -= 1
        if (at - run_start) % 2 == 0:
            return True
        at = text.find(_ESCAPED_NUL, at + len(_ESCAPED_NUL))
    return False


def _encoded_body(scope: Scope) -> bool:
    """Whether the request says its body is compressed (or otherwise encoded): no route here reads one so."""
    encoding = next((value for name, value in scope["headers"] if name == b"content-encoding"), b"identity")
    return encoding.strip().lower() not in (b"", b"identity")


def _nul_in_address(scope: Scope) -> str | None:
    """`path` or `query string` if that part of the request holds a NUL (sent as `%00`, or as the byte)."""
    if "\x00" in scope.get("path", ""):  # the server has decoded `%00` in it
        return "path"
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "query string"
    return None


FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


def _media_type(scope: Scope) -> str | None:
    """The body's media type, lower case and without parameters; None without a content type."""
    content_type = next((value for name, value in scope["headers"] if name.lower() == b"content-type"), None)
    return None if content_type is None else content_type.decode("latin-1").split(";", 1)[0].strip().lower()


async def _whole_body(receive: Receive) -> list[Message]:
    """Every message of the body, up to its last (or to the client going away)."""
    received = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return received


def _replaying(received: list[Message], receive: Receive) -> Receive:
    """The body's messages again, as they came; then the server's own (a disconnect)."""
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _refuse_nul_in_body(location: list[str], scope: Scope, receive: Receive, send: Send) -> None:
    """A 422 like any invalid body's (kit.problems), naming where the NUL is, never what the string says."""
    await _refuse_in_body(f"{NUL_REFUSED} in a string.", "string_nul_character", scope, receive, send,
                          [step if _MEMBER_NAME.fullmatch(step) else "<member>" for step in location])


# A member's name as a schema writes one, or an index: echoed where a NUL is found. Any other key (a member no
# schema has, `{"Аляксандр Тэставы, +375291234567": …}`) may be a person's data, and is not written back.
_MEMBER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}|[0-9]{1,9}", re.ASCII)


async def _refuse_in_body(message: str, kind: str, scope: Scope, receive: Receive, send: Send,
                          location: Sequence[str] = ()) -> None:
    issue = {"loc": ["body", *location], "msg": message, "type": kind}
    answer = problems.problem_response(422, f"{'.'.join(location) or 'body'}: {message}", kind="validation-error",
                                       title="Invalid request", extra={"errors": [issue]})
    await answer(scope, receive, send)


class _NamedTwice(ValueError):
    pass


def _members_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _NamedTwice
    return members


# No body of this system nests deeper than 3 levels; past this many the guard says so, rather than the parser's own
# recursion limit (about 1000, less the stack in use) deciding, with an answer that says only "error parsing".
MAX_JSON_DEPTH = 64

# What keeps a JSON body from its route: the kind of the 400 that says so; a member named twice is an invalid body
# like any other, a 422 whose error is of this type.
NAMED_TWICE, NOT_UTF8, TOO_DEEP = "json_duplicate_member", "body-not-utf8", "json-too-deep"
NUMBER_TOO_LONG = "json-number-too-long"
UNREADABLE = {
    NOT_UTF8: "The body is not UTF-8: JSON is sent as UTF-8 text (RFC 8259).",
    TOO_DEEP: f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.",
    # Python reads no integer of more digits (sys.get_int_max_str_digits): no value here needs one.
    NUMBER_TOO_LONG: "A number in the JSON has more than 4300 digits.",
}


def json_flaw(body: bytes) -> str | None:
    """What keeps a JSON body from its route, found in one parse: an object naming one member twice
    (`NAMED_TWICE`), bytes that are not UTF-8 text (`NOT_UTF8`: RFC 8259 §8.1; UTF-16 and -32, which Python's
    parser and FastAPI's would detect and read, too), nesting deeper than `MAX_JSON_DEPTH` (`TOO_DEEP`). None for a
    body without these, and for one that is not JSON at all: the route's own parsing refuses that, saying where."""
    if json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
        return NOT_UTF8
    try:
        document = json.loads(body, object_pairs_hook=_members_once)
    except _NamedTwice:
        return NAMED_TWICE
    except UnicodeDecodeError:
        return NOT_UTF8
    except RecursionError:
        return TOO_DEEP
    except ValueError as error:
        return NUMBER_TOO_LONG if "integer string conversion" in str(error) else None
    # Nesting that deep needs that many brackets: an ordinary body is never walked.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper_than(MAX_JSON_DEPTH, document):
        return TOO_DEEP
    return None


def _deeper_than(levels: int, document: Any) -> bool:
    level = [document] if isinstance(document, (dict, list)) else []  # the containers at the first level
    for _ in range(levels):  # level by level, not recursive: each in one pass over the containers of the last
        level = [child for container in level for child in (container.values() if isinstance(container, dict)
                                                             else container) if isinstance(child, (dict, list))]
        if not level:
            return False
    return True


ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def health_router(readiness: ReadinessCheck) -> APIRouter:
    """`/healthz`: the process answers. `/readyz`: it can do its work (database, migrations; NATS reported)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {
        "description": "Not ready: the same report, its `status` not `ready` (a probe's answer, not a problem).",
        "content": {"application/json": {"schema": {"type": "object", "additionalProperties": {"type": "string"}}}},
    }})
    async def readyz() -> JSONResponse:
        report = await readiness()
        return JSONResponse(report, status_code=200 if report.get("status") == "ready" else 503)

    return router


def install(app: FastAPI, *, service: str, max_body_bytes: int, csp: bool = True,
            body_limits: Sequence[BodyLimit] = (), own_request_ids: bool = False,
            refused_address: RefusedAddress | None = None, failure_page: FailurePage | None = None,
            passed_on: PassedOn | None = None, refused_unread: RefusedUnread | None = None,
            body_idle_seconds: float = BODY_IDLE_SECONDS) -> None:
    """`body_limits`: the app's upload routes, the only ones that take a larger body, and the only ones that take
    multipart/form-data. `own_request_ids`: every request gets an id made here, whatever X-Request-ID it brings (the
    public edge: a caller's string would be written into logs, audit entries and events as it came, a name in it
    too); a service behind the gateway takes the gateway's. `refused_address`: the app's own answer to an address
    with a NUL. `failure_page`: the app's own answer to a request that failed (500, 503). `passed_on`: the routes
    whose bodies the app passes on unread to a process that guards them itself (their address is still checked).
    `refused_unread`: the app's refusal, from a request's head, of a JSON body's sender its route would refuse
    anyway; the body is then never read."""
    # Added first, so it runs inside the request context: its refusals get the request id, the security headers,
    # an access log line, and the body limit while it reads a JSON body.
    app.add_middleware(InputGuardMiddleware, refused_address=refused_address, body_limits=body_limits,
                       passed_on=passed_on, refused_unread=refused_unread)
    app.add_middleware(RequestContextMiddleware, service=service, max_body_bytes=max_body_bytes, csp=csp,
                       body_limits=body_limits, own_request_ids=own_request_ids, body_idle_seconds=body_idle_seconds,
                       failure_page=failure_page)
