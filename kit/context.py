"""Per-request context that follows a request through logs, calls and the events it causes."""

from __future__ import annotations

import os
import re
import secrets
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_traceparent: ContextVar[str | None] = ContextVar("traceparent", default=None)


def request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]


def traceparent() -> str | None:
    return _traceparent.get()


def set_traceparent(value: str | None) -> object:
    return _traceparent.set(value)


def reset_traceparent(token: object) -> None:
    _traceparent.reset(token)  # type: ignore[arg-type]


def new_request_id() -> str:
    return secrets.token_hex(16)


# A trace id as W3C Trace Context writes it: 32 lowercase hex digits, not all zero. Anything else a caller sends is
# replaced, never kept: the traceparent rides on every event and outbox row, so 32 free characters would be a place to
# write a name that stays on the stream for good (a reviewer wrote one there).
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def new_traceparent(parent: str | None = None) -> str:
    """A W3C traceparent: keep the caller's trace id when it is a valid one, with a new span id."""
    trace_id = os.urandom(16).hex()
    if parent:
        parts = parent.split("-")
        if len(parts) == 4 and _TRACE_ID.fullmatch(parts[1]) and parts[1] != "0" * 32:
            trace_id = parts[1]
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"
