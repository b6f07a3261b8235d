"""JSON logs on stdout with the request id. Log ids and outcomes, never values a person typed."""

from __future__ import annotations

import logging
import sys
import traceback

import structlog

from kit import context


def _add_request_id(_logger: object, _name: str, event: dict) -> dict:
    rid = context.request_id()
    if rid and "request_id" not in event:
        event["request_id"] = rid
    return event


def _safe_exception(_logger: object, _name: str, event: dict) -> dict:
    """Keep an exception's type and where it was raised, never its message or locals: those can hold values."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        _type, exc, tb = exc_info
        if exc is not None:
            event["error_type"] = type(exc).__name__
            event["error_at"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)][-5:]
    return event


def configure(service: str, level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper(), force=True)
    # uvicorn's access log would print query strings (a name searched for is personal data): we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # httpx and aiohttp log whole URLs at INFO, query strings included (a searched name is personal data).
    for noisy in ("httpx", "httpcore", "aiohttp.access", "aiohttp.client", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _safe_exception,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)


def get(name: str = "rehab") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
