"""kit.logs: every line a process prints is one JSON object, and no line carries a value from an exception's message,
a foreign logger's arguments, a warning's text or an uncaught traceback (SPEC §7.1).

The logging runs in a subprocess, as in a real process: `configure` replaces the root handler and the exception
hooks, and the output checked is exactly what the process printed on stdout and stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
NEEDLE = "NEEDLE-Ланкевіч"

SCRIPT = textwrap.dedent('''
    import asyncio, gc, logging, sys, warnings
    from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert
    from sqlalchemy.exc import IntegrityError
    from kit import context, logs

    NEEDLE = sys.argv[1]
    logs.configure("intake", "INFO")
    log = logs.get("http")

    # A real IntegrityError: a second row with the same primary key; the row's values are in its message.
    metadata = MetaData()
    people = Table("people", metadata, Column("id", Integer, primary_key=True), Column("name", String))
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(people).values(id=1, name=NEEDLE))
    try:
        with engine.begin() as conn:
            conn.execute(insert(people).values(id=1, name=NEEDLE))
    except IntegrityError as exc:
        assert NEEDLE in str(exc)
        error = exc
        context.set_request_id("rid-1")
        logging.getLogger("sqlalchemy.pool").error("Exception during reset or similar", exc_info=True)
        logging.getLogger("sqlalchemy.engine.Engine").error("failed: %s", exc, exc_info=True)
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application\\n")
        logging.getLogger("aiohttp.client").error(exc)  # a record whose msg is the exception itself
        log.error("unhandled error", exc_info=exc)
        context.set_request_id(None)
    # uvicorn, when its port is taken: logger.error(OSError(...)); the errno's name says why, the text is dropped.
    logging.getLogger("uvicorn.error").error(OSError(98, f"error while attempting to bind on address {NEEDLE}"))

    # A foreign warning's arguments are never interpolated; a foreign text built at run time is kept below ERROR.
    logging.getLogger("httpx").warning("HTTP Request: GET %s", f"http://intake/api/intake/search?q={NEEDLE}")
    logging.getLogger("alembic").warning("plain text from a library")
    log.info("request", method="GET", route="/api/intake/cases", status=200, ms=1.5)

    # asyncio's default handler logs "Task exception was never retrieved" with the task's repr, which quotes the
    # exception (its message included), and the traceback.
    async def main():
        async def fails():
            raise error
        task = asyncio.get_running_loop().create_task(fails())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del task
        gc.collect()
    asyncio.run(main())

    warnings.warn(f"a warning quoting {NEEDLE}", stacklevel=1)
    raise error  # uncaught: Python would print the whole traceback and message to stderr
''')


@pytest.fixture(scope="module")
def logged() -> tuple[subprocess.CompletedProcess, list[dict]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, NEEDLE], cwd=ROOT, capture_output=True, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"})
    out, err = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    assert NEEDLE.encode() not in done.stdout + done.stderr, out + err
    assert "Ланкевіч" not in out + err and "Traceback" not in out + err
    assert err == "", err  # nothing bypasses the JSON handler
    return done, [json.loads(line) for line in out.splitlines()]  # every line is one JSON object


def test_nothing_a_process_logs_carries_an_exception_message_or_a_foreign_argument(logged):
    done, records = logged
    assert done.returncode == 1  # the uncaught exception still ends the process as it would
    by_logger: dict[str, list[dict]] = {}
    for record in records:
        assert record["service"] == "intake" and record["level"] and record["timestamp"] and record["event"]
        by_logger.setdefault(record["logger"], []).append(record)

    # Each exception is kept as its type and places, whoever logged it.
    for name in ("sqlalchemy.pool", "sqlalchemy.engine.Engine", "uvicorn.error", "http", "asyncio", "uncaught"):
        errors = [r for r in by_logger[name] if r.get("error_type") and "errno" not in r]
        assert errors, (name, by_logger.get(name))
        assert all(r["error_type"] == "IntegrityError" and r["error_at"] for r in errors), errors

    pool, = by_logger["sqlalchemy.pool"]
    assert pool["event"] == "message withheld" and pool["request_id"] == "rid-1"
    engine_line, = by_logger["sqlalchemy.engine.Engine"]
    assert engine_line["event"] == "failed: %s"  # a format string, written in the code: kept without its argument
    assert by_logger["uvicorn.error"][0]["event"] == "message withheld"
    bind, = [r for r in by_logger["uvicorn.error"] if "errno" in r]
    assert bind["event"] == "message withheld" and (bind["error_type"], bind["errno"]) == ("OSError", "EADDRINUSE")
    asyncio_line, = by_logger["asyncio"]
    assert asyncio_line["event"] == "message withheld" and asyncio_line["level"] == "error"
    aiohttp_line, = by_logger["aiohttp.client"]
    assert aiohttp_line["event"] == "message withheld" and aiohttp_line["level"] == "error"
    httpx_line, = by_logger["httpx"]
    assert httpx_line["event"] == "HTTP Request: GET %s" and httpx_line["level"] == "warning"
    assert by_logger["alembic"][0]["event"] == "plain text from a library"
    warning, = by_logger["py.warnings"]
    assert warning["category"] == "UserWarning" and warning["event"] == "python warning"
    assert by_logger["uncaught"][0]["level"] == "critical"


def test_our_lines_and_foreign_lines_have_one_format(logged):
    _done, records = logged
    ours = next(r for r in records if r["logger"] == "http" and r["event"] == "request")
    foreign = next(r for r in records if r["logger"] == "alembic")
    assert set(ours) - {"method", "route", "status", "ms"} == set(foreign) == {
        "event", "logger", "service", "level", "timestamp"}
