"""A console page that fails answers as a page, in the visitor's language: a person who follows an old link, sends a
form from a page left open for a day, or opens a page their role does not have meets a sentence and a way back,
not a JSON problem in English. The API's paths keep kit's problem+json (SPEC §6); so does anything a script asks for
(`Accept` without text/html). A failure is still logged by kit's handler, with the request id and no values."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway.console.router import STALE_FORM, render

WORDS = {400: "problem_stale_form", 401: "problem_signed_out", 403: "problem_forbidden", 404: "problem_gone",
         405: "problem_gone", 409: "problem_conflict", 429: "problem_too_many", 502: "problem_unavailable",
         503: "problem_unavailable", 504: "problem_unavailable"}


def for_a_person(request: Request) -> bool:
    path = request.url.path
    return ((path == "/" or path.startswith("/console/")) and not path.startswith("/console/static/")
            and "text/html" in request.headers.get("accept", ""))


def error_page(request: Request, status: int, key: str, headers: dict[str, str] | None = None) -> Response:
    response = render(request, "error.html", status=status, said_key=key)
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    """Put the console's pages in front of kit's problem handlers (installed before this) for console paths."""
    api_http = app.exception_handlers[HTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]
    api_unexpected = app.exception_handlers[Exception]

    async def http_error(request: Request, exc: HTTPException) -> Any:
        if exc.status_code < 400 or not for_a_person(request):
            return await api_http(request, exc)  # the sign-in redirects (303) too
        key = "problem_stale_form" if exc.detail == STALE_FORM else WORDS.get(exc.status_code, "problem_other")
        return error_page(request, exc.status_code, key, getattr(exc, "headers", None))

    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        # A console path with an id that is no id (an address typed or cut short): there is no such page.
        return error_page(request, 404, "problem_gone") if for_a_person(request) else await api_invalid(request, exc)

    async def unexpected(request: Request, exc: Exception) -> Any:
        answer = await api_unexpected(request, exc)  # logged there, with the request id
        return error_page(request, 500, "problem_other") if for_a_person(request) else answer

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
