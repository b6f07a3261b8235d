"""Every error as application/problem+json (RFC 9457): type, title, status, detail; never a stack trace."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit import logs

PROBLEM_TYPE_BASE = "https://rehab.support/problems/"
MEDIA_TYPE = "application/problem+json"

log = logs.get("problems")


class StrictModel(BaseModel):
    """Request bodies bind only to models that refuse unknown fields (422)."""

    model_config = ConfigDict(extra="forbid")


class ProblemDoc(BaseModel):
    """The shape of every error answer."""

    type: str
    title: str
    status: int
    detail: str


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self, status: int, detail: str, *, kind: str | None = None, title: str | None = None,
        headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra or {}


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-").replace("'", "")


def problem_response(
    status: int, detail: str, *, kind: str | None = None, title: str | None = None,
    headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": PROBLEM_TYPE_BASE + (kind or _slug(phrase)),
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Say what is wrong and where, without echoing the submitted values (they may be personal data)."""
    described = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        described.append({"loc": loc, "msg": err.get("msg", "invalid"), "type": err.get("type", "invalid")})
    first = described[0] if described else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body",)) or "request"
    detail = f"{where}: {first['msg']}"
    if len(described) > 1:
        detail += f" (and {len(described) - 1} more)"
    return detail, described


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, kind=exc.kind, title=exc.title, headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, errors = _describe_validation(list(exc.errors()))
        return problem_response(422, detail, kind="validation-error", title="Invalid request", extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # The database is restarting, unreachable or busy: a fast "try again shortly", not a 500 (the error's
        # message may quote values, so only its type is logged).
        log.warning("database unavailable", error_type=type(exc).__name__)
        return problem_response(503, "The database is not available right now; try again shortly.",
                                kind="database-unavailable", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(500, "An internal error occurred; it has been logged with the request id.")


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemDoc, "content": {MEDIA_TYPE: {}}, "description": HTTPStatus(code).phrase}
    for code in (400, 401, 403, 404, 409, 413, 422, 429)
}
