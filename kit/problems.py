"""Every error as application/problem+json (RFC 9457): type, title, status, detail; never a stack trace."""

from __future__ import annotations

import functools
import json
import re
import types
from datetime import date, datetime
from http import HTTPStatus
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic.json_schema import SkipJsonSchema
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit import errors, logs
from kit.db import DATABASE_UNAVAILABLE

PROBLEM_TYPE_BASE = "https://rehab.support/problems/"
MEDIA_TYPE = "application/problem+json"

log = logs.get("problems")


class StrictModel(BaseModel):
    """Request bodies bind only to models that refuse unknown fields (422), and take JSON's types as JSON writes
    them where a lax reading would change what was meant: a date is text written YYYY-MM-DD, nothing else (pydantic
    reads `19900101` and "19900101" as seconds since 1970, making 1970-08-19 of them, and takes a date and time at
    midnight, in any time zone, for a date), and true or false is a JSON boolean (not "yes", "0" or 1)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _as_json_writes_it(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.field_name is None:
            return value
        kinds = _kinds(cls.model_fields[info.field_name].annotation)
        if bool in kinds and not isinstance(value, bool) and not kinds - {bool}:
            raise PydanticCustomError("bool_type", "must be true or false")
        if kinds == {date} and not _written_as_a_date(value):
            raise PydanticCustomError("date_type", DATE_WORDS)
        if kinds & {date, datetime} and isinstance(value, (bool, int, float)):
            raise PydanticCustomError("date_type", "must be a date written as text, as YYYY-MM-DD")
        return value


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DATE_WORDS = "must be a date written YYYY-MM-DD"


def _written_as_a_date(value: Any) -> bool:
    """Text of the form YYYY-MM-DD (whether it is a day of the calendar, pydantic judges next), or a `date` as a
    Python caller passes one; not a date and time, which is more than a date, and says a day only in its zone."""
    if isinstance(value, str):
        return _DATE.fullmatch(value) is not None
    return isinstance(value, date) and not isinstance(value, datetime)


@functools.cache
def _kinds(annotation: Any) -> frozenset[Any]:
    """The plain types a field's annotation allows (`date | None` → {date}; Annotated and unions unwrapped)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return frozenset().union(*(_kinds(arg) for arg in get_args(annotation) if arg is not type(None)))
    return frozenset({annotation})


class ValidationIssue(BaseModel):
    """One thing wrong with a request, as a 422 answer lists it: where and what, never the value sent."""

    loc: list[str] = Field(description="Where: `body`, `query`, `path` or `header`, then the field's path in it.")
    msg: str = Field(description="What is wrong, in words.")
    type: str = Field(description="What is wrong, as a stable code (pydantic's error type).")


def _absent_when_unset(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # an optional member is left out of the answer, never sent as null


class ProblemDoc(BaseModel):
    """The shape of every error answer (RFC 9457), described in the OpenAPI documents as `Problem` (kit.openapi)."""

    model_config = ConfigDict(extra="allow")  # RFC 9457 extension members

    type: str = Field(description="A URI naming the kind of problem, e.g. `https://rehab.support/problems/case-closed`.")
    title: str = Field(description="A short summary of that kind of problem.")
    status: int = Field(description="The HTTP status code, the same as the answer's.")
    detail: str = Field(description="What went wrong with this request, for a person to read.")
    errors: SkipJsonSchema[None] | list[ValidationIssue] = Field(
        default=None, json_schema_extra=_absent_when_unset,
        description="Only in a 422 for an invalid request: every field that is wrong.")
    error: SkipJsonSchema[None] | str = Field(
        default=None, json_schema_extra=_absent_when_unset,
        description="Only from POST /auth/token: the RFC 6749 error code (`invalid_request`, `invalid_grant`, …).")


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self, status: int, detail: str, *, kind: str | None = None, title: str | None = None,
        headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None, media_type: str = MEDIA_TYPE,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or _slug(HTTPStatus(status).phrase)
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra or {}
        # An OAuth2 token endpoint's errors are `application/json` (RFC 6749 §5.2), its clients' parsers check.
        self.media_type = media_type


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-").replace("'", "")


def problem_response(
    status: int, detail: str, *, kind: str | None = None, title: str | None = None,
    headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None, media_type: str = MEDIA_TYPE,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body = {
        "type": PROBLEM_TYPE_BASE + (kind or _slug(phrase)),
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **(extra or {}),
    }
    return JSONResponse(body, status_code=status, media_type=media_type, headers=headers)


def is_json_media(media: str | None) -> bool:
    """Whether a body of this media type (lower case, without parameters) is one FastAPI parses as JSON:
    `application/json` or `application/<anything>+json`. Without a content type none is (strict content types, its
    default)."""
    if media is None:
        return False
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _unsupported_body(request: Request, errors: list[dict[str, Any]]) -> str | None:
    """Why a body was refused for how it was sent, not for what it says (415): JSON that a route was sent as
    something else (text/plain, a form), which the route could only call "not a valid dictionary". (A compressed
    body is refused at the door, kit.http.)"""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    sent = request.headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in request.headers
    # A body sent where none is taken (`no_fields_where_no_body_is_taken`) is refused for being there, not for how.
    not_an_object = any(tuple(error.get("loc", ())) == ("body",) and error.get("type") != "extra_forbidden"
                        for error in errors)
    if sent and not is_json_media(media) and not_an_object:
        return "This takes a JSON body: send it with Content-Type: application/json."
    return None


UNKNOWN_MEMBER = "<unknown member>"

# What a field's `pattern` takes, in words, by the pattern as written: filled by the module that declares it
# (`pattern_in_words`), as kit knows no domain's fields. A 422 never shows the regex itself, which few can read.
PATTERN_WORDS: dict[str, str] = {}
UNKNOWN_PATTERN = "is not in the form this field takes"
_ONE_OF = re.compile(r"\^\(([A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*)\)\$")  # ^(admin|caseworker|…)$: its words are the list


def pattern_in_words(pattern: str, words: str) -> str:
    """Registers what `pattern` takes, said as the rest of "<field>: …" ("must be 1-40 letters and digits"), and
    gives the pattern back for its `pattern=`."""
    PATTERN_WORDS[pattern] = words
    return pattern


def _pattern_words(pattern: str) -> str:
    if pattern in PATTERN_WORDS:
        return PATTERN_WORDS[pattern]
    one_of = _ONE_OF.fullmatch(pattern)
    return f"must be one of: {', '.join(one_of[1].split('|'))}" if one_of else UNKNOWN_PATTERN


def _body_needed(request: Request) -> str:
    """What a route that takes a JSON body says when none came: the members it needs, when its model says them."""
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "This request needs a JSON body"
    needed = [info.alias or name for name, info in model.model_fields.items() if info.is_required()]
    return "This request needs a JSON body: {" + ", ".join(f'"{name}": …' for name in needed) + "}"


def _in_words(err: dict[str, Any]) -> str:
    """Pydantic's message for one error, where it speaks of its own workings, in words a person can act on."""
    kind, msg, ctx = err.get("type"), str(err.get("msg", "invalid")), err.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return _pattern_words(str(ctx.get("pattern", "")))
    if kind in ("date_parsing", "date_from_datetime_parsing"):  # "…a valid date or datetime, month value is…"
        return f"{DATE_WORDS}; {ctx['error']}" if ctx.get("error") else DATE_WORDS
    if kind == "date_from_datetime_inexact" or (kind == "date_type" and msg == "Input should be a valid date"):
        return DATE_WORDS
    for prefix in ("Value error, ", "Assertion failed, "):  # a model's own ValueError or assert: its words alone
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def _describe_validation(
    errors: list[dict[str, Any]], request: Request | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Say what is wrong and where, without echoing the submitted values (they may be personal data), nor the name
    of a member no schema has: the sender chose it, and it may be anything, a person's name and number too."""
    described = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        msg = _in_words(err)
        if err.get("type") == "missing" and loc == ["body"]:  # pydantic's "request: Field required"
            msg = _body_needed(request) if request is not None else "This request needs a JSON body"
        elif err.get("type") == "extra_forbidden" and len(loc) > 1:  # its last step is the name sent
            loc[-1], msg = UNKNOWN_MEMBER, ("A query parameter this does not take" if loc[0] == "query"
                                            else "An unknown member (not in this schema)")
        elif err.get("type") == "json_invalid" and len(loc) == 2 and loc[0] == "body" and loc[1].isdigit():
            # FastAPI's place is the character where parsing failed, not a member: said as such
            loc, msg = ["body"], f"The body is not valid JSON (its parser stopped at character {loc[1]})"
        described.append({"loc": loc, "msg": msg, "type": err.get("type", "invalid")})
    first = described[0] if described else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body", UNKNOWN_MEMBER))
    detail = f"{where}: {first['msg']}" if where else first["msg"]  # about the whole body: a sentence of its own
    if len(described) > 1:  # said as problems, not to be read as more of the values a field takes
        more = len(described) - 1
        detail += f" (and {more} more problem{'s' if more > 1 else ''}, listed in errors)"
    return detail, described


# Each kind of domain refusal, and the one HTTP status that answers it.
DOMAIN_STATUS: dict[type[errors.DomainError], int] = {
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.Refused: 403,
    errors.Stale: 412,
    errors.BadCursor: 400,
    errors.Unreadable: 500,
    errors.Unavailable: 503,
}


def status_of(error: errors.DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 500


def as_problem(error: errors.DomainError) -> Problem:
    """The answer to a domain refusal."""
    return Problem(status_of(error), error.detail, kind=error.code, extra=error.extra)


async def no_fields_where_no_body_is_taken(request: Request) -> None:
    """SPEC §6, unknown JSON fields are 422, on a route that takes no body as well (a partner's accept, a case's
    close, an approval): a body with something in it sent there is refused, not ignored, whatever its Content-Type
    says. An empty body, `{}` and `null` are what a client sends for "nothing"; a multipart upload reads its own body
    and is left alone."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    route = request.scope.get("route")
    if getattr(route, "body_field", True) is not None:  # a route with a body model checks it itself
        return
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data" or _takes_an_upload(route):
        # An upload, read by its route as it streams: one sent as anything else is told so there, once the caller
        # is known to be one who may upload (kit.uploads, 415), never "takes no body" or "send JSON".
        return
    body = await request.body()
    if not body.strip():
        return
    try:  # whatever it says it is (text/plain, merge-patch+json, nothing): fields sent are fields sent
        sent = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        # (refused for being there, as below: not "send it as JSON", which would only be refused again)
        raise RequestValidationError([{"type": "extra_forbidden", "loc": ("body",),
                                       "msg": "This request takes no body; what was sent is not JSON either"}]) from None
    if sent in ({}, None):
        return
    # The members sent are not named back: whatever they are called, none is taken here.
    raise RequestValidationError([{"type": "extra_forbidden", "loc": ("body",), "msg": "This request takes no body"}])


def _takes_an_upload(route: Any) -> bool:
    """A route that reads its own multipart body, as its OpenAPI description says (`openapi_extra`'s requestBody)."""
    body = (getattr(route, "openapi_extra", None) or {}).get("requestBody", {})
    return "multipart/form-data" in body.get("content", {})


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, kind=exc.kind, title=exc.title, headers=exc.headers,
                                extra=exc.extra, media_type=exc.media_type)

    @app.exception_handler(errors.DomainError)
    async def _domain(_request: Request, exc: errors.DomainError) -> JSONResponse:
        problem = as_problem(exc)
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.Unavailable) else None
        return problem_response(problem.status, problem.detail, kind=problem.kind, extra=problem.extra,
                                headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        unsupported = _unsupported_body(request, list(exc.errors()))
        if unsupported is not None:
            return problem_response(415, unsupported, kind="unsupported-media-type")
        found = list(exc.errors())
        if found and all(tuple(issue.get("loc") or ("",))[0] == "path" for issue in found):
            # Every path parameter here is an id: one that no id could be names nothing, as an unknown one does,
            # and every service says so alike (404; a malformed id was 422 in one service and 404 in another).
            named = tuple(found[0]["loc"])[-1]
            return problem_response(404, f"Nothing is found at this address: its {named} is not an id this service "
                                         "gives out.", kind="not-found")
        detail, errors = _describe_validation(found, request)
        return problem_response(422, detail, kind="validation-error", title="Invalid request", extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # The database is restarting, unreachable or busy: a fast "try again shortly", not a 500 (the error's
        # message may quote values, so only its type is logged).
        log.warning("database unavailable", error_type=type(exc).__name__)
        return problem_response(503, "The database is not available right now; try again shortly.",
                                kind="database-unavailable", headers={"Retry-After": "1"})

    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem_response(500, "An internal error occurred; it has been logged with the request id.")
