"""JSON logs on stdout with the request id. Log ids and outcomes, never values a person typed.

Every line a process prints is one JSON object with the same keys, whoever logged it:

- our own structlog loggers (`logs.get(...)`) render through the processors below and write one line at a time;
- every standard-library logger (uvicorn, SQLAlchemy, asyncio, alembic, httpx, aiohttp, nats, …) reaches the one
  handler on the root logger, whose `ProcessorFormatter` runs the same processors; a foreign record's arguments are
  never interpolated (only its format string is kept), and a foreign record that carries an exception or is an
  error keeps only its logger, level and the exception's type and places: such messages often quote the exception
  (asyncio's "Task exception was never retrieved" does, and a database error's text holds the row's values);
- Python warnings and uncaught exceptions, which would otherwise print plain text to stderr, are logged the same way.

An exception is kept as its type and where it was raised, never its message or locals: those can hold values.
"""

from __future__ import annotations

import errno
import json
import logging
import sys
import threading
import traceback
import warnings
from types import TracebackType
from typing import Any

import structlog
from structlog.stdlib import ProcessorFormatter

from kit import context

WITHHELD = "message withheld"  # the event of a foreign record whose text may quote an exception or a value

_service = "rehab"
_handler: logging.Handler | None = None


def _add_service(_logger: object, _name: str, event: dict) -> dict:
    event.setdefault("service", _service)
    return event


def _add_request_id(_logger: object, _name: str, event: dict) -> dict:
    rid = context.request_id()
    if rid and "request_id" not in event:
        event["request_id"] = rid
    return event


def _safe_exception(_logger: object, _name: str, event: dict) -> dict:
    """Keep an exception's type and where it was raised, never its message or locals: those can hold values."""
    exc_info = event.pop("exc_info", None)
    event.pop("stack_info", None)
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


def _foreign_record(_logger: object, _name: str, event: dict) -> dict:
    """A standard-library record: its logger's name, its format string without the arguments, and nothing of it at
    all when it carries an exception or is an error, unless its text is a format string that had arguments (then
    the text was written in the code, and the values were in the arguments, which are dropped)."""
    record: logging.LogRecord = event["_record"]
    had_args = bool(event.pop("positional_args", None))
    event["logger"] = record.name
    template = record.msg if isinstance(record.msg, str) else None  # logger.error(exc) would print str(exc)
    if template is None or ((record.exc_info or record.levelno >= logging.ERROR) and not had_args):
        event["event"] = WITHHELD
        if isinstance(record.msg, BaseException):  # uvicorn's "address in use" is logger.error(OSError(…))
            event["error_type"] = type(record.msg).__name__
            if isinstance(record.msg, OSError) and record.msg.errno in errno.errorcode:
                event["errno"] = errno.errorcode[record.msg.errno]  # EADDRINUSE: a code, never a value
    else:
        event["event"] = template
    return event


def _add_logger_name(logger: object, _name: str, event: dict) -> dict:
    name = getattr(logger, "name", None)
    if name and "logger" not in event:
        event["logger"] = name
    return event


_SHARED = [
    structlog.contextvars.merge_contextvars,
    _add_service,
    _add_request_id,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _Handler(logging.StreamHandler):
    """Writes to whatever `sys.stdout` is at the time of writing (a test's capture, say), not the one at start."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        """logging's own would print the record's message and arguments to stderr."""
        try:
            self.stream.write(json.dumps({"event": "a log record could not be written", "logger": record.name,
                                          "service": _service, "level": "error"}) + "\n")
        except Exception:  # noqa: BLE001, S110  # nowhere left to say it
            pass


class _LineWriter:
    """The end of our structlog loggers: one `write` per line, under the root handler's lock, so a line of ours
    and a standard-library line written from another thread never interleave. Cheaper than a `logging.LogRecord`
    per line (the request line is logged on every request)."""

    def __init__(self, handler: logging.StreamHandler, name: str) -> None:
        self._handler = handler
        self.name = name

    def msg(self, message: str) -> None:
        handler = self._handler
        with handler.lock:  # type: ignore[union-attr]  # created by logging.Handler.__init__
            handler.stream.write(message + "\n")
            handler.stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = failure = msg


class _LineWriterFactory:
    def __init__(self, handler: logging.StreamHandler) -> None:
        self._handler = handler

    def __call__(self, name: str = "rehab", *_args: Any) -> _LineWriter:
        return _LineWriter(self._handler, name)


def configure(service: str, level: str = "INFO") -> None:
    global _service, _handler
    _service = service
    numeric_level = logging.getLevelNamesMapping()[level.upper()]

    formatter = ProcessorFormatter(
        foreign_pre_chain=[_foreign_record, *_SHARED],
        processors=[ProcessorFormatter.remove_processors_meta, _safe_exception, structlog.processors.JSONRenderer()],
        use_get_message=False,  # the format string only: `msg % args` is never built
        pass_foreign_args=True,  # only to tell a format string (written in the code) from a text built at run time
    )
    handler = _Handler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        if old is _handler:
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _handler = handler

    # uvicorn's access log would print query strings (a name searched for is personal data): we log requests ourselves.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    # httpx and aiohttp log whole URLs at INFO, query strings included (a searched name is personal data).
    for noisy in ("httpx", "httpcore", "aiohttp.access", "aiohttp.client", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    structlog.configure(
        processors=[*_SHARED, _add_logger_name, _safe_exception, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=_LineWriterFactory(handler),
        cache_logger_on_first_use=False,
    )
    _route_warnings_and_uncaught_exceptions()


def _route_warnings_and_uncaught_exceptions() -> None:
    """A warning's text and an uncaught exception's traceback would go to stderr as plain text, message included."""
    warnings.showwarning = _log_warning
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_args: Any,
                 **_kwargs: Any) -> None:
    get("py.warnings").warning("python warning", category=category.__name__,
                               at=f"{filename.rsplit('/', 1)[-1]}:{lineno}")


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    get("uncaught").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    get("uncaught").critical("uncaught exception in a thread", thread=args.thread.name if args.thread else None,
                             exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def get(name: str = "rehab") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
