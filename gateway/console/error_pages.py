"""A console page that fails answers as a page, in the visitor's language: a person who follows an old link, sends a
form from a page left open for a day, or opens a page their role does not have meets a sentence and a way back,
not a JSON problem in English. The API's paths keep kit's problem+json (SPEC §6); so does anything a script asks for
(`Accept` without text/html). A failure is still logged by kit's handler, with the request id and no values.

A signed-in person's error page carries the navigation their other pages carry (base.html: their role's links, the
sign-out button), so that a wrong turn is one click from anywhere else; a stranger's carries none. Who is signed in
is what `visit` admitted for this request, else the session cookie's access token checked as `visit` checks it
(signature, session, account enabled) but never renewed here: a renewal rotates the refresh token, and an answer
made by the outermost handler (a 500) could not carry the new cookies. Any failure of that look (an expired token,
sealed keys, a database away, a 429) is an error page without navigation, never a failed error page."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from gateway.console.router import (
    PROBLEM_WORDS,
    SESSION_COOKIE,
    STALE_FORM,
    TypedTooLate,
    Visit,
    language_of,
    offered_to,
    render,
    sign_in_page,
)
from kit import logs
from kit.problems import Problem

log = logs.get("gateway.console")

WORDS = {400: "problem_stale_form", 401: "problem_signed_out", 403: "problem_forbidden", 404: "problem_gone",
         405: "problem_gone", 409: "problem_conflict", 429: "problem_too_many", 502: "problem_unavailable",
         503: "problem_unavailable", 504: "problem_unavailable"}


def for_a_person(request: Request) -> bool:
    path = request.url.path
    return ((path == "/" or path.startswith("/console/")) and not path.startswith("/console/static/")
            and "text/html" in request.headers.get("accept", ""))


async def signed_in(request: Request, status: int) -> Visit | None:
    """The person signed in on this browser, for the page's navigation; None for anyone else, or when it cannot be
    known without more than a look (see the module's note)."""
    if status == 429:  # their request budget is spent: looking them up would only be refused again
        return None
    try:
        admitted = getattr(request.state, "console_signed_in", None)
        if admitted is not None:
            token, principal = admitted
        else:
            token = request.cookies.get(SESSION_COOKIE)
            if not token:
                return None
            principal = await request.app.state.gatekeeper.admit(f"Bearer {token}")
        if principal.enrolling:  # until the second factor is set up, nothing else opens
            return None
        return Visit(request=request, token=token, principal=principal,
                     language=language_of(request, offered_to(principal)))
    except Exception as error:  # noqa: BLE001 (whatever failed, the error page is still answered)
        log.info("console error page without navigation", error_type=type(error).__name__)
        return None


async def error_page(request: Request, status: int, key: str, headers: dict[str, str] | None = None) -> Response:
    v = await signed_in(request, status)
    # A stale form's text, given back to copy (router.visit sets it for a form of this console's own page).
    typed = {"typed": getattr(request.state, "typed_back", []), "typed_explained": "typed_kept_stale"}
    try:
        response = render(request, "error.html", visit_=v, status=status, said_key=key, **typed)
    except Exception as error:  # the frame of a signed-in page failed: the page without it
        if v is None:
            raise
        log.warning("console error page without navigation", error_type=type(error).__name__)
        response = render(request, "error.html", status=status, said_key=key, **typed)
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response


async def refused_address(request: Request) -> Response | None:
    """An address holding a NUL character (kit.http refuses it before any route): for a person's browser on a
    console path, the page of an address that names nothing; for anything else, kit's problem."""
    return await error_page(request, 404, "problem_gone") if for_a_person(request) else None


async def failure_page(request: Request, status: int) -> Response | None:
    """A request that failed (500), or whose database was out of reach (503), answered by kit.http's last wall: for
    a person's browser on a console path, the page in words; for anything else, kit's problem."""
    if not for_a_person(request):
        return None
    return await error_page(request, status, "problem_other" if status == 500 else "problem_unavailable")


def install(app: FastAPI) -> None:
    """Put the console's pages in front of kit's problem handlers (installed before this) for console paths. A
    request that fails is answered by kit.http's last wall, before any handler here: `failure_page` is its hook."""
    api_http = app.exception_handlers[HTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]
    api_problem = app.exception_handlers[Problem]

    async def http_error(request: Request, exc: HTTPException) -> Any:
        if exc.status_code < 400 or not for_a_person(request):
            return await api_http(request, exc)  # the sign-in redirects (303) too
        key = "problem_stale_form" if exc.detail == STALE_FORM else WORDS.get(exc.status_code, "problem_other")
        return await error_page(request, exc.status_code, key, getattr(exc, "headers", None))

    async def invalid(request: Request, exc: RequestValidationError) -> Any:
        # A console path with an id that is no id (an address typed or cut short): there is no such page.
        if for_a_person(request):
            return await error_page(request, 404, "problem_gone")
        return await api_invalid(request, exc)

    async def problem(request: Request, exc: Problem) -> Any:
        # Raised by the console itself before any page answers: an upload's body read as it streams (kit.uploads).
        if not for_a_person(request):
            return await api_problem(request, exc)
        key = PROBLEM_WORDS.get(exc.kind) or WORDS.get(exc.status, "problem_other")
        return await error_page(request, exc.status, key, exc.headers)  # a 429's Retry-After kept

    async def typed_too_late(request: Request, exc: TypedTooLate) -> Any:
        return sign_in_page(request, expired=True, unsaved=True, typed=exc.typed)

    app.add_exception_handler(TypedTooLate, typed_too_late)
    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
