"""The staff web console: server-rendered pages and plain HTML forms, served by the gateway.

A visit carries the access token in an HttpOnly, SameSite=Strict cookie; every POST carries a CSRF token (an HMAC of
that access token) in a hidden field. The console asks the services the same way the API does: over HTTP to the
backend, with the user's own bearer token, so each service re-checks the role itself. Pages never load anything from
outside the system, and every HTML answer sets a strict Content-Security-Policy of its own.

This module holds what every page stands on, and the pages of signing in, a second factor, a password and the
language; each role's pages are modules of their own (the package's docstring lists them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import jwt
import segno
from babel import Locale, UnknownLocaleError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter, Depends, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
)
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException

from gateway import api, domain, mfa, service, sessions
from gateway.console import i18n
from gateway.models import User
from gateway.replicas import ReplicaSilent, unless_silent
from gateway.routing import DOCUMENT_BODY_BYTES, route_for
from kit import context, idempotency, logs
from kit.auth import PARTNER_ROLES, Principal
from kit.custody import TOKEN_SECRET
from kit.errors import DomainError, Unavailable
from kit.need_to_know import MAX_REASON, MIN_REASON  # every service's rule, refused in the console first
from kit.problems import Problem
from kit.uploads import read_multipart

log = logs.get("gateway.console")

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "rehab_session"  # the access token (10 minutes)
REFRESH_COOKIE = "rehab_refresh"  # the session's refresh token: a working person stays signed in (SPEC §3)
LANGUAGE_COOKIE = "rehab_lang"
PRE_SESSION_COOKIE = "rehab_pre_session"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
CATEGORIES = ("medical", "psychological", "relocation", "legal", "housing", "employment", "financial")
URGENCIES = ("low", "medium", "high", "critical")
# A referral still open: sent and not yet declined, completed or cancelled (the partner's inbox, the referral form).
OPEN_REFERRALS = ("sent", "accepted", "in_progress")
PAYMENT_METHODS = ("bank_transfer", "card", "cash", "mobile_money", "crypto", "other")
CASE_STATUSES = ("open", "closed", "duplicate", "erased")
DOCUMENT_KINDS = ("identity", "medical", "legal", "release", "other")
# The moves a need may make from each status (intake checks them again: services/intake/domain.NEED_MOVES).
NEED_MOVES = {"open": ("in_progress", "met", "dropped"), "in_progress": ("met", "dropped")}

router = APIRouter(include_in_schema=False)
# A POST whose CSRF token is not this session's: said to the person as "reload the page" (error_pages.py).
STALE_FORM = "The form is out of date or was not sent from this console; reload the page."
# The language of the visit being answered (set by `visit`): what an `Answer` made in-process is said in.
VISIT_LANGUAGE: ContextVar[str] = ContextVar("console_visit_language", default=i18n.DEFAULT)
STATIC = {path.name: path for path in (HERE / "static").iterdir() if path.is_file()}  # fixed at start: no path tricks
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True)


# --- the visit: who is signed in, in which language --------------------------------------------------------------

@dataclass
class Visit:
    request: Request
    token: str
    principal: Principal
    language: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.request, self.token)

    def can(self, role: str) -> bool:
        return role in self.principal.roles

    @property
    def username(self) -> str:
        """The staff handle the services know this person by (a case's assignees are listed by it)."""
        return str(self.principal.claims.get("username") or self.principal.sub)

    def stated_reason(self, case_id: uuid.UUID | str) -> StatedReason | None:
        """The break-glass reason this visitor stated for that case, as its cookie holds it (lapsed or not)."""
        return opened_reason(self, str(case_id))

    def reason_for(self, case_id: uuid.UUID | str) -> str | None:
        """The reason to send with a request about that case (`Access-Reason`), while the stated one holds."""
        stated = self.stated_reason(case_id)
        return stated.text if stated is not None and not stated.lapsed else None


def csrf_token(request: Request, session_token: str) -> str:
    """Bound to the session (`sid`), not to one access token: a form rendered before the access token was renewed
    still posts after it. A token without a session (enrolment) binds it itself."""
    # Read, not verified: the cookie is ours (HttpOnly, SameSite=Strict) and may have just expired; what makes the
    # CSRF token unforgeable is the key, not the claims.
    sid = _session_of(session_token)
    bound = f"sid:{sid}" if sid else session_token
    return hmac.new(_csrf_key(request), bound.encode(), hashlib.sha256).hexdigest()


def _session_of(token: str) -> str | None:
    """The `sid` a session cookie's token names, read unverified (an expired one still names its session)."""
    try:
        return jwt.decode(token, options={"verify_signature": False}).get("sid")
    except jwt.PyJWTError:
        return None


def console_key(request: Request, purpose: str) -> bytes:
    """A key of the console's for one purpose (`csrf`, `break-glass`), derived from the token-signing key: every
    gateway replica agrees, and a key rotation ends every form and every seal."""
    state = request.app.state
    keys = getattr(state, "console_keys", None)
    if keys is None:
        keys = state.console_keys = {}
    if purpose not in keys:
        runtime = request.app.state.runtime
        # The token-signing key's PEM: a file, or (sealed custody) in the gateway's keys.sealed. Kept once derived,
        # also through a seal: these keys open no record, and an admin still sees the console say it is sealed.
        path = runtime.settings.private_key_path
        signing_key = path.read_bytes() if path.is_file() else runtime.custody.secret(TOKEN_SECRET)
        keys[purpose] = hashlib.sha256(f"rehab console {purpose}\0".encode() + signing_key).digest()
    return keys[purpose]


def _csrf_key(request: Request) -> bytes:
    return console_key(request, "csrf")


def language_of(request: Request, offered: tuple[str, ...] = i18n.LANGUAGES) -> str:
    """The language chosen with the switcher (its cookie); before any choice, the best of `offered` that the
    browser's `Accept-Language` asks for; else English."""
    remembered = request.cookies.get(LANGUAGE_COOKIE)
    if remembered in i18n.LANGUAGES:
        return remembered
    return i18n.negotiated(request.headers.get("accept-language"), offered)


def offered_to(principal: Principal | None) -> tuple[str, ...]:
    """The languages a visitor's pages are in: all five before anyone is known and for partner staff (Polish and
    Lithuanian are the partner console's and sign-in's); be/ru/en for staff."""
    return i18n.LANGUAGES if principal is None or principal.roles & PARTNER_ROLES else i18n.STAFF_LANGUAGES


async def visit(request: Request) -> Visit:
    """The signed-in visitor; anyone else is sent to the sign-in page. A POST without the right CSRF token is 403.

    An access token that expired while the person worked is renewed here with the session's refresh token, and the
    request goes on (a form posted just then is not lost); the new cookies go out with the answer
    (`RenewedSessionCookies`). A session that has ended (idle 30 minutes, 12 hours, signed out, revoked) sends the
    person to sign in again; one that still needs a second factor, to its enrolment.

    The session is known before a POST's body is read: a document's body may be 20 MB (routing.UPLOADS), and a
    stranger must not make the gateway hold that much for nothing. The CSRF token, a field of the form, is checked
    once the body is read."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(303, headers={"Location": "/"})
    form_token = token  # the token the form was rendered for (its CSRF token), even if renewed below
    try:
        principal = await request.app.state.gatekeeper.admit(f"Bearer {token}")
    except Problem as problem:
        if problem.status == 429:
            raise
        if problem.kind == "mfa-enrolment-required":
            raise HTTPException(303, headers={"Location": "/console/mfa"}) from None
        token, principal = await _renewed(request)
        if _session_of(form_token) != _session_of(token):
            # The session cookie was not this session's (another site of the domain may set one): a form is taken
            # only with the CSRF token of the session the refresh cookie renewed.
            form_token = token
    else:
        await _at_work(request, principal)
    request.state.console_signed_in = (token, principal)  # for an error page this request may end in (error_pages.py)
    if principal.roles & PARTNER_ROLES and not partner_may_open(request.url.path):
        raise HTTPException(404, "There is no such page.")  # partner staff: their console only (see below)
    if principal.roles == {"auditor"} and not auditor_may_open(request.url.path):
        raise HTTPException(403, "An auditor's pages are the audit trails.")
    if request.method == "POST":
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # Only on an upload route: kit.http's guard refused it anywhere else (415), no console page sends one.
            # A document (`upload_document`): read in memory as it streams, never spooled to a temporary file as
            # Starlette's own parser would (a file in clear on the gateway's disk). The route takes it from here.
            upload = await read_multipart(request, max_file_bytes=DOCUMENT_BODY_BYTES)
            request.state.console_upload = upload
            sent = upload.fields.get("csrf", "")
        else:
            form = await request.form()
            sent = str(form.get("csrf", ""))
        if not same_secret(sent, csrf_token(request, form_token)):
            if request.headers.get("sec-fetch-site") == "same-origin":
                # A page of this console opened before its visitor signed in again (in another tab): what its form
                # held is given back, to copy (error_pages); never for a form another site made the browser send.
                request.state.typed_back = await typed_back(request)
            raise HTTPException(403, STALE_FORM)
    language = language_of(request, offered_to(principal))
    VISIT_LANGUAGE.set(language)  # for answers made in-process (the admin API's), said in the visitor's words
    return Visit(request=request, token=token, principal=principal, language=language)


def _session_over(request: Request) -> HTTPException:
    """To the sign-in page, saying the session ended; and, when a form was being sent, that it was not saved (what
    was typed is not kept anywhere: it may be about a person, and the session that could hold it is over)."""
    return HTTPException(303, headers={"Location": "/?expired=1&unsaved=1" if request.method == "POST"
                                       else "/?expired=1"})


# The console's fields where people write at length (every <textarea>; a test keeps this in step with the pages),
# and a task's title (a line written by hand, lost with its page as easily), each with the words its form labels it
# by. A form sent after its session lapsed, or to a service that stopped answering, gives these back (TypedTooLate).
LONG_FIELDS = {"text": "typed_text", "note": "note", "notes": "notes", "health_summary": "health_summary",
               "safety_notes": "safety_notes", "other_names": "other_names", "purpose": "aid_purpose",
               "outcome": "partner_outcome", "reason": "typed_reason", "capacity_note": "padmin_capacity_note",
               "title": "task_title"}


class TypedTooLate(Exception):
    """A form sent after its session lapsed (idle, or its 12 hours), holding text written at length: answered with
    the sign-in page and that text, to copy before signing in again (error_pages.install). Nothing of it is kept on
    the server; the page is the answer to the browser that just sent the text, never stored (no-store)."""

    def __init__(self, typed: list[tuple[str, str]]) -> None:
        super().__init__("a form sent after its session lapsed")
        self.typed = typed


def _a_posted_form(request: Request) -> bool:
    """A form POSTed URL-encoded: the only kind whose fields are given back or sent again (an upload's file never
    is)."""
    return request.method == "POST" and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded")


async def typed_back(request: Request) -> list[tuple[str, str]]:
    """What a form posted to this page held at length (its `LONG_FIELDS`), to give back when it could not be saved
    and the page it came from can not be shown again (the service that keeps it is not answering)."""
    if not _a_posted_form(request):
        return []
    form = await request.form()
    return [(words, str(form[name])) for name, words in LONG_FIELDS.items() if str(form.get(name, "")).strip()]


async def resend_of(request: Request) -> dict[str, Any] | None:
    """A form that met a service which stopped answering, to send again as it was, under its own Idempotency-Key
    (its outcome is unknown: sent again, it is done once whether or not the first was): its action and fields,
    the CSRF token left out (the page gives its own). None for a form without a key: sent twice, it could act
    twice."""
    if not _a_posted_form(request):
        return None
    form = await request.form()
    if not str(form.get("idempotency_key", "")).strip():
        return None
    return {"action": request.url.path,
            "fields": [(name, str(value)) for name, value in form.multi_items() if name not in ("csrf", SENT_BEFORE)]}


# A hidden field of the "Send it again" form (typed_back.html): this sending follows one whose outcome is unknown.
SENT_BEFORE = "sent_before"


async def _follows_an_unknown_outcome(request: Request) -> bool:
    """A form sent again by "Send it again" (`SENT_BEFORE`): its first sending may have been done, so a failure of
    this one before it reached the service (still stalled, taken for silent, refusing connections) is not "nothing
    was changed" either. An outside review pressed it while the service was still paused: the page said "not saved,
    write it again", dropped the form, and the first note was saved when the service woke."""
    if not _a_posted_form(request):
        return False
    return (await request.form()).get(SENT_BEFORE) == "1"


async def _typed_too_late(request: Request, refresh: str) -> TypedTooLate | None:
    """The text a form sent too late held, when it may be given back: a POST of this console's own page (the
    browser says so: `Sec-Fetch-Site: same-origin`, so another site's form never gets its text shown on ours), a
    URL-encoded form (an upload's file is not given back), and a session that lapsed by time alone — not one
    revoked or signed out, which may be someone else at the keyboard of a lost device."""
    if not _a_posted_form(request) or request.headers.get("sec-fetch-site") != "same-origin":
        return None
    with request.app.state.runtime.uow.read() as session:
        if not sessions.lapsed(session=session, refresh_token=refresh, now=service.now_utc()):
            return None
    typed = await typed_back(request)
    return TypedTooLate(typed) if typed else None


async def _at_work(request: Request, principal: Principal) -> None:
    """A page opened with a still-valid access token: the session's idle clock starts again (sessions.AtWork)."""
    refresh = request.cookies.get(REFRESH_COOKIE)
    session_id = principal.claims.get("sid")
    runtime = request.app.state.runtime
    if refresh and session_id and runtime.at_work.due(refresh):
        await runtime.uow.run(lambda session: sessions.keep_alive(
            session=session, refresh_token=refresh, session_id=session_id, now=service.now_utc(),
            policy=runtime.session_policy))


async def _renewed(request: Request) -> tuple[str, Principal]:
    """The session's next access token, from its refresh token; to the sign-in page when the session is over."""
    refresh = request.cookies.get(REFRESH_COOKIE)
    if not refresh:
        raise _session_over(request)
    runtime = request.app.state.runtime
    try:
        access, next_refresh = await api.refresh_grant(runtime, refresh, requester=api.requester_of(request))
        principal = await request.app.state.gatekeeper.admit(f"Bearer {access}")
    except Problem:
        raise (await _typed_too_late(request, refresh) or _session_over(request)) from None
    request.state.console_renewed = (access, next_refresh)
    return access, principal


def secure_cookies(request: Request) -> bool:
    """Whether the console's cookies are `Secure`: always when the gateway is served over HTTPS
    (`REHAB_SERVED_OVER_HTTPS`), else when this request came by HTTPS."""
    return request.app.state.runtime.settings.served_over_https or request.url.scheme == "https"


def session_cookies(response: Response, request: Request, access: str, refresh: str | None) -> None:
    runtime = request.app.state.runtime
    secure = secure_cookies(request)
    # Kept as long as the session can last: an expired access token still names its session (the CSRF binding) and
    # is renewed on the next request.
    response.set_cookie(SESSION_COOKIE, access, max_age=runtime.settings.session_max_seconds if refresh
                        else runtime.issuer.ttl_seconds, path="/", httponly=True, samesite="strict", secure=secure)
    if refresh:
        response.set_cookie(REFRESH_COOKIE, refresh, max_age=runtime.settings.session_max_seconds, path="/",
                            httponly=True, samesite="strict", secure=secure)


class RenewedSessionCookies:
    """ASGI middleware: when `visit` renewed the access token during a request, its answer carries the new cookies,
    whatever page built it."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookies(message: Any) -> None:
            renewed = scope.get("state", {}).get("console_renewed")
            if message["type"] == "http.response.start" and renewed:
                carrier = Response()
                carrier.raw_headers.clear()
                secure = secure_cookies(Request(scope))
                access, refresh = renewed
                for name, value in ((SESSION_COOKIE, access), (REFRESH_COOKIE, refresh)):
                    carrier.set_cookie(name, value, max_age=_SESSION_COOKIE_SECONDS, path="/", httponly=True,
                                       samesite="strict", secure=secure)
                message = {**message, "headers": [*message.get("headers", []),
                                                  *[(k, v) for k, v in carrier.raw_headers if k == b"set-cookie"]]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)


# How long the browser keeps a renewed session's cookies: no longer than any session lasts (its 12 hours).
_SESSION_COOKIE_SECONDS = 43200


VisitDep = Annotated[Visit, Depends(visit)]


def render(request: Request, name: str, *, visit_: Visit | None = None, status: int = 200,
           **values: Any) -> HTMLResponse:
    # Staff pages speak be/ru/en; Polish and Lithuanian are the partner console's (and sign-in's, before anyone is
    # known). Staff who chose pl/lt on the sign-in page read their pages in English, and are offered the three.
    offered = i18n.LANGUAGES if visit_ is None or visit_.can("partner_staff") else i18n.STAFF_LANGUAGES
    language = visit_.language if visit_ else language_of(request, offered)
    language = language if language in offered else i18n.DEFAULT
    page = templates.get_template(name).render(
        t=i18n.translator(language), tn=i18n.counter(language), lang=language, visit=visit_,
        languages={code: i18n.LANGUAGE_NAMES[code] for code in offered},
        csrf=visit_.csrf if visit_ else "", here=_here(request),
        money=lambda amount, currency: i18n.format_money(amount, currency, language),
        when=lambda value: i18n.format_date(value, language), size=lambda size: i18n.format_size(size, language),
        waiting=lambda seconds: i18n.waiting_time(seconds, language), keys_sealed=keys_sealed(request), **values)
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


def keys_sealed(request: Request) -> bool:
    """Whether this gateway's keys are sealed (SPEC §8): every page tells an admin so."""
    custody = getattr(getattr(request.app.state, "runtime", None), "custody", None)
    return bool(custody is not None and custody.sealed)


# The pages a link or a redirect may lead back to: paths made of fixed words and case ids, never a query string.
# A URL stays in the browser's history and in every proxy's access log, so nothing a person typed may be in one.
_ID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
KNOWN_PAGES = re.compile(rf"/|/console/cases(/new|/{_ID}(/refer|/erase|/break-glass|/edit|/referrals/{_ID})?)?"
                         rf"|/console/(grants(/{_ID}(/donor-report)?)?|disbursements|estimates|mfa|password|caseload)"  # finance's (console/finance.py)
                         rf"|/console/admin/(users(/new|/{_ID})?|approvals|seal|status)"  # the admin's (admin.py)
                         # and partners (partners_admin.py), with an API client's revocation (`pc_` and 24 hex digits)
                         rf"|/console/admin/partners(/{_ID}(/webhook/remove|/clients/pc_[0-9a-f]{{24}}/revoke)?)?"
                         r"|/console/programme"  # the coordinator's (console/programme.py)
                         rf"|/console/partner(/referrals/{_ID})?"  # partner staff's pages (console/partner.py)
                         r"|/console/audit(/break-glass)?")  # the auditor's (console/audit_pages.py)

AUDIT_CONSOLE = "/console/audit"


def auditor_may_open(path: str) -> bool:
    """An auditor (and nothing else) reads the audit trails, and opens no page of work they may not do (SPEC §2)."""
    return (path == AUDIT_CONSOLE or path.startswith(AUDIT_CONSOLE + "/")
            or path in ("/console/sign-out", "/console/password"))


# --- partner staff (SPEC §2): the partner console (console/partner.py), and nothing else of this console ----------
#
# A person at a partner organisation signs in and sets up their second factor on the same pages as staff; `GET /`
# sends them to their console; every other page that needs a signed-in visitor answers them 404 (`visit`), so a
# page added here later is closed to them without anyone remembering to close it.

PARTNER_CONSOLE = "/console/partner"


def partner_may_open(path: str) -> bool:
    return (path == PARTNER_CONSOLE or path.startswith(PARTNER_CONSOLE + "/")
            or path in ("/console/sign-out", "/console/password"))


def known_page(value: str | None) -> str:
    """The page of the console at or above `value`, without its query string: `/console/cases/search` (a POST's
    answer) → `/console/cases`; anything not a page of this site (`//elsewhere`, an absolute address) → `/`."""
    path = (value or "/").split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return "/"
    while path and not KNOWN_PAGES.fullmatch(path):
        path = path.rsplit("/", 1)[0]
    return path or "/"


def _here(request: Request) -> str:
    """Where the language links come back to: this page's own path, or the page above a form's answer."""
    return known_page(request.url.path)


def csv_download(text: str, filename: str, disposition: str | None = None) -> Response:
    """A service's CSV handed to a person as a file to open: with a UTF-8 byte-order mark first, without which a
    spreadsheet (Excel above all) reads it in a legacy code page and shows Belarusian and Russian words as mojibake.
    The services' own CSV, read by programs, has none. `disposition`: the service's own (its file name made safe
    there), else an attachment named `filename`."""
    return Response("\ufeff" + text, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": disposition or f'attachment; filename="{filename}"', "Cache-Control": "no-store",
        "Content-Security-Policy": CSP})


# The id of a part of a page (`notes`, `tasks`): a redirect may name one, never anything typed.
PAGE_SECTION = re.compile(r"[a-z][a-z-]*")


def back_to(path: str, section: str | None = None) -> RedirectResponse:
    """A redirect to a known page only, so that no redirect ever carries a typed value; with `section`, to that part
    of it (the form that was sent), so that the browser does not come back at the top of a long page."""
    target = known_page(path)
    if section:
        if not PAGE_SECTION.fullmatch(section):
            raise ValueError(f"not a section of a page: {section!r}")
        target += f"#{section}"
    return RedirectResponse(target, status_code=303,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


def safe_next(value: str | None) -> str:
    """Only a known page of this site: never `//elsewhere`, an absolute address, or a query string."""
    return known_page(value)


# --- asking the services, as the user ----------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    body: Any
    text: str = ""
    headers: httpx.Headers | None = None
    # The visitor's language, in which `problem` is said (an answer made outside `call` takes the visit's).
    language: str = dataclass_field(default_factory=lambda: VISIT_LANGUAGE.get())

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def kind(self) -> str:
        """The kind of problem (the last word of its `type`: `case-closed`), or "" for an answer that is none."""
        kind = self.body.get("type", "") if isinstance(self.body, dict) and not self.ok else ""
        return str(kind).rsplit("/", 1)[-1]

    @property
    def problem(self) -> str | None:
        """What went wrong, as a sentence in the visitor's language: by the problem's kind where the console knows
        it, else by its status. Never the service's own `detail`: that is English, and may name code paths."""
        return None if self.ok else problem_in_words(self.language, self)

    @property
    def need_to_know(self) -> bool:
        """The case is not assigned to the caller, and no (or no longer a) reason was stated (SPEC §4)."""
        return (self.status == 403 and isinstance(self.body, dict)
                and str(self.body.get("type", "")).endswith("/need-to-know"))


# --- what a refusal says, in the visitor's words ---------------------------------------------------------------
#
# The services explain a refusal in English (problem+json `detail`), for developers; a page says it as a sentence in
# the person's language, chosen by the problem's kind (the last word of its `type`) or else by its status. The
# `detail` never reaches a page: it is English, and a 422's names code paths (`packet.language: Value error, …`).

# Kinds any page may meet, each an i18n key. A page that knows more (a field, the grant's numbers) says it first.
PROBLEM_WORDS = {
    "validation-error": "fields_wrong", "invalid-form": "fields_wrong",
    "case-closed": "problem_case_closed", "case-erased": "problem_case_erased",
    "case-duplicate": "problem_case_duplicate", "case-unknown": "problem_case_unknown",
    "grant-unknown": "problem_grant_unknown", "case-not-found": "problem_no_case",
    "kept-case-not-found": "problem_no_case", "kept-case-erased": "problem_kept_case_gone",
    "kept-case-duplicate": "problem_kept_case_duplicate", "case-is-kept": "problem_case_is_kept",
    "case-not-closed": "problem_case_not_closed", "duplicate-of-itself": "problem_duplicate_of_itself",
    "need-not-found": "problem_gone", "task-not-found": "problem_gone", "document-not-found": "problem_gone",
    "referral-not-found": "problem_gone", "partner-unknown": "problem_partner_unknown", "not-found": "problem_gone",
    "need-transition": "problem_need_moved", "not-an-enabled-caseworker": "problem_not_a_caseworker",
    "not-an-assignee": "problem_not_an_assignee", "empty-search": "problem_empty_search",
    "partner-inactive": "problem_partner_inactive", "category-mismatch": "problem_partner_category",
    "consent-missing": "problem_consent_missing", "consent-expired": "problem_consent_expired",
    "consent-category": "problem_consent_category", "consent-contact": "problem_consent_contact",
    "consent-health": "problem_consent_health", "packet-withdrawn": "problem_packet_withdrawn",
    "referral-closed": "problem_referral_closed", "referral-transition": "problem_referral_moved",
    "unsupported-document-type": "problem_document_type", "content-too-large": "problem_document_large",
    "document-damaged": "problem_document_damaged", "document-encrypted": "problem_document_encrypted",
    "document-cannot-be-cleaned": "problem_document_uncleanable",
    "document-too-complex": "problem_document_complex", "document-cleaning-interrupted": "problem_document_again",
    "document-kind-invalid": "problem_document_kind", "document-missing": "document_choose",
    "multipart-invalid": "document_choose", "multipart-expected": "document_choose",
    "file-name-too-long": "problem_file_name_long",
    "access-reason-length": "problem_reason_length", "access-reason-words": "problem_reason_words",
    "stale-etag": "problem_changed", "concurrent-change": "problem_changed", "if-match-required": "problem_changed",
    "invalid-transition": "problem_changed", "idempotency-key-in-flight": "problem_in_flight",
    "idempotency-key-reused": "problem_key_reused", "idempotency-key-missing": "problem_stale_form",
    "idempotency-key-invalid": "problem_stale_form", "invalid-cursor": "problem_stale_form",
    "invalid-money": "error_money", "currency-mismatch": "problem_currency",
    "forbidden": "problem_forbidden", "need-to-know": "problem_forbidden",
    "self-assignment": "problem_self_assignment", "estimate-of-another-case": "problem_estimate_other_case",
    "sealed": "problem_sealed", "keys-unavailable": "problem_sealed", "rate-limited": "problem_too_many",
    "database-unavailable": "problem_unavailable", "service-unavailable": "problem_unavailable",
    "service-timeout": "problem_timeout", "bad-gateway": "problem_unavailable",
    "undecryptable": "problem_unreadable",
}
# Any other refusal, by its status alone: still a sentence in the visitor's language, never the service's English.
STATUS_WORDS = {400: "problem_stale_form", 401: "problem_signed_out", 403: "problem_forbidden", 404: "problem_gone",
                409: "problem_conflict", 412: "problem_changed", 413: "problem_document_large",
                415: "problem_document_type", 422: "fields_wrong", 429: "problem_too_many",
                502: "problem_unavailable", 503: "problem_unavailable", 504: "problem_timeout"}


def problem_in_words(language: str, answer: Answer) -> str:
    """Why a service refused, as a sentence in `language` (see PROBLEM_WORDS)."""
    key = PROBLEM_WORDS.get(answer.kind) or STATUS_WORDS.get(answer.status) or "problem_other"
    return i18n.translator(language)(key)


def form_problem(v: Visit, answer: Answer, errors: dict[str, str], said: str | None = None) -> str | None:
    """A refused form's problem line: "Some fields need correcting" when the API's model refused fields (each said
    beside its own); else why it refused — `said`, or the refusal in words (a rule about one field is said both
    there and here)."""
    if errors and answer.kind in ("validation-error", "invalid-form"):
        return i18n.translator(v.language)("fields_wrong")
    return said if said is not None else answer.problem


async def call(v: Visit, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
               idempotency_key: str | None = None, reason: str | None = None, if_match: str | None = None,
               files: dict[str, Any] | None = None, data: dict[str, str] | None = None) -> Answer:
    """One request to the service behind `path`, with the visitor's token; problems become an `Answer` to show.

    `reason`: the break-glass reason stated for the case this request is about, sent as `Access-Reason`.
    `if_match`: the ETag of the version the change was made on (a case's edit form).
    `files` and `data`: a multipart body (a document), instead of `json`."""
    route = route_for(path)
    assert route is not None, path
    state = v.request.app.state
    if not v.principal.roles & route.roles:
        return Answer(403, {"detail": "Your role does not allow this action."}, language=v.language)
    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {v.token}",
                                       "X-Request-ID": context.request_id() or context.new_request_id()}
    if idempotency_key:
        # The form's own key, unless someone changed it into what no header carries or the API refuses (a tampered
        # page): a new one. A header value keeps no space at either end; the API reads the key stripped.
        key = idempotency_key.strip()
        fits = 0 < len(key) <= idempotency.MAX_KEY_LENGTH and key.isascii() and key.isprintable()
        headers["Idempotency-Key"] = key if fits else str(uuid.uuid4())
    if if_match is not None:
        headers["If-Match"] = if_match
    if reason:
        # As UTF-8 bytes: a reason written in Belarusian or Russian is not Latin-1 (intake reads it back as UTF-8).
        headers["Access-Reason"] = reason.encode("utf-8")
    sent_before = method != "GET" and await _follows_an_unknown_outcome(v.request)
    if state.backend_urls.replicas(route.backend).all_silent():
        # Hung (stopped, stuck): a request would only wait out the timeout, page after page (gateway.replicas).
        log.warning("console call skipped: service silent", backend=route.backend)
        if sent_before:
            return _maybe_done(v, route.backend)
        return Answer(503, {"detail": f"The {route.backend} service is not answering right now; try again shortly."},
                      language=v.language)
    settings = state.runtime.settings
    replicas = state.backend_urls.replicas(route.backend)
    base = state.backend_urls[route.backend]

    async def send() -> httpx.Response:
        return await state.runtime.calls.request(
            method, base + path, json=json, files=files, data=data,
            params={key: value for key, value in (params or {}).items() if value not in (None, "")},
            headers=headers,  # a service that is down fails at connect, fast: the page says so instead of hanging
            timeout=httpx.Timeout(settings.backend_timeout_seconds, connect=settings.backend_connect_timeout_seconds))

    try:
        # A form sent twice at once (a double click) under one key: the second is "still in flight" (409) while the
        # first runs; it asks again until the first's answer is there to replay (a multipart body is not sent twice).
        response = await unless_silent(replicas, base,
                                       _after_in_flight(send) if idempotency_key and files is None else send())
    except ReplicaSilent:  # hung while the page waited (gateway.replicas): the request may be done when it wakes
        log.warning("console call given up: service silent", backend=route.backend)
        if method != "GET":
            return _maybe_done(v, route.backend)
        return Answer(503, {"detail": f"The {route.backend} service is not answering right now; try again shortly."},
                      language=v.language)
    except httpx.InvalidURL:  # a value typed into a query far longer than any field takes (a tampered form)
        return Answer(400, {"detail": "Something typed is far too long to be looked up."}, language=v.language)
    except httpx.HTTPError as error:
        log.warning("console call failed", backend=route.backend, error_type=type(error).__name__)
        if method != "GET" and (sent_before or not isinstance(error, NEVER_SENT)):
            return _maybe_done(v, route.backend)  # sent (now or before), and no answer: never "nothing changed"
        return Answer(503, {"detail": f"The {route.backend} service is not available right now; try again shortly."},
                      language=v.language)
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, body, response.text, response.headers, language=v.language)


# What fails before a request reaches the service: nothing can have been done.
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _maybe_done(v: Visit, backend: str) -> Answer:
    """A change sent to a service that stopped answering before it said anything: it may be done (a hung process
    carries it out when it wakes), so it is said as "may or may not have been done" (504), never as refused."""
    return Answer(504, {"type": "/problems/service-timeout",
                        "detail": f"The {backend} service stopped answering; it may or may not have been done."},
                  language=v.language)


# A request whose Idempotency-Key is still in flight is asked again this often, for at most this long in all.
IN_FLIGHT_PAUSE_SECONDS = 0.2
IN_FLIGHT_WAIT_SECONDS = 10.0


async def _after_in_flight(send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    """`send()`'s answer, sent again while it is 409 "still in flight" with a short Retry-After (≤ 1 s): the key's
    first request is still running, usually for well under a second, and its answer is then replayed to this one
    (SPEC §4). A longer Retry-After (a claim a crash may have left) or still in flight after
    `IN_FLIGHT_WAIT_SECONDS`: that 409 is the answer, said to the person as "still being processed"."""
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    response = await send()
    while _briefly_in_flight(response) and time.monotonic() + IN_FLIGHT_PAUSE_SECONDS < deadline:
        await asyncio.sleep(IN_FLIGHT_PAUSE_SECONDS)
        response = await send()
    return response


def _briefly_in_flight(response: httpx.Response) -> bool:
    if response.status_code != 409:
        return False
    try:
        kind = response.json().get("type", "")
        wait = float(response.headers.get("Retry-After", ""))
    except (ValueError, AttributeError):
        return False
    return str(kind).endswith("/idempotency-key-in-flight") and wait <= 1


def items(answer: Answer) -> list[dict[str, Any]]:
    return answer.body.get("items", []) if answer.ok and isinstance(answer.body, dict) else []


async def every_page(v: Visit, path: str, *, pages: int, page_size: int, reason: str | None = None,
                     params: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], bool, Answer]:
    """A list read page after page by its cursor, at most `pages` pages (a runaway list stays bounded): its items,
    whether more exist than were read, and the last answer (its problem, when the service refused or is away)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(pages):
        answer = await call(v, "GET", path, params={**(params or {}), "limit": page_size, "cursor": cursor},
                            reason=reason)
        found += items(answer)
        cursor = answer.body.get("next_cursor") if answer.ok else None
        if not cursor:
            break
    return found, bool(cursor), answer


class NotTheCases(Exception):
    """A part (a referral, a document) named under a case it is not of."""


async def reason_for_part(v: Visit, case_id: uuid.UUID | str, part_id: uuid.UUID | str, listing: str,
                          params: dict[str, Any] | None = None) -> str | None:
    """The break-glass reason stated for a case, to send with a request about one of its parts (a referral, a
    document) whose API path names the part and not the case: only when the part is among the case's own
    (`listing`, read with the reason, which opens the case it was stated for); raises NotTheCases when it is not. A
    reason is stated for one case: sent with a part of another, it would open that other case, and be kept there as
    the reason for it. Without a reason the service's own check stands (the visitor's own cases need none)."""
    reason = v.reason_for(case_id)
    if reason is None:
        return None
    found, _more, _last = await every_page(v, listing, pages=10, page_size=200, reason=reason, params=params)
    if not any(item.get("id") == str(part_id) for item in found):
        raise NotTheCases()
    return reason


@router.get("/favicon.ico")
async def no_icon() -> Response:
    """The console has no icon: the browser's own request for one is answered with nothing rather than a 404 on
    every page."""
    return Response(status_code=204, headers={"Cache-Control": "max-age=86400"})


@router.get("/console")
async def console_root() -> Response:
    """`/console` typed into the address bar: the console's home (`/`), which signs in or opens the role's page,
    rather than an API's problem in a browser."""
    return back_to("/")


@router.get("/console/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC.get(name)
    if path is None:
        raise HTTPException(404, "There is no such file.")
    return FileResponse(path, media_type=STATIC_TYPES.get(path.suffix, "application/octet-stream"),
                        headers={"Cache-Control": "public, max-age=3600"})


# --- sign-in, sign-out, language ---------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            principal = await request.app.state.gatekeeper.admit(f"Bearer {token}", enrolling=True)
        except Problem:
            principal = None
            if request.cookies.get(REFRESH_COOKIE):
                try:
                    token, principal = await _renewed(request)
                except HTTPException:
                    principal = None
        if principal is not None and principal.enrolling:
            return back_to("/console/mfa")
        if principal is not None:
            if principal.roles & PARTNER_ROLES:  # partner staff: the partner console (console/partner.py)
                return back_to(PARTNER_CONSOLE)
            if "caseworker" in principal.roles:
                return back_to("/console/cases")
            if "supervisor" in principal.roles:
                return back_to("/console/caseload")
            if "finance" in principal.roles:
                return back_to("/console/grants")
            if "admin" in principal.roles:  # admin holds no other role: the accounts are their work
                return back_to("/console/admin/users")
            if "auditor" in principal.roles:  # the audit trails (console/audit_pages.py)
                return back_to(AUDIT_CONSOLE)
            if "coordinator" in principal.roles:  # the programme report (console/programme.py)
                return back_to("/console/programme")
            v = Visit(request=request, token=token, principal=principal,
                      language=language_of(request, offered_to(principal)))
            return render(request, "home.html", visit_=v)
    return sign_in_page(request, expired=bool(request.query_params.get("expired")),
                        unsaved=bool(request.query_params.get("unsaved")))


def retry_after(problem: Problem) -> int:
    """The seconds a throttled sign-in's answer says to wait (at least one)."""
    wait = (problem.headers or {}).get("Retry-After", "1")
    return int(wait) if wait.isdigit() else 1


def sign_in_page(request: Request, *, status: int = 200, **values: Any) -> HTMLResponse:
    """The sign-in form carries a fresh pre-session token, also set as a cookie: a form posted from another site
    cannot know it, so nobody can be signed in to someone else's account behind their back (login CSRF)."""
    pre_session = secrets.token_urlsafe(24)
    response = render(request, "sign_in.html", status=status, pre_session=pre_session, **values)
    response.set_cookie(PRE_SESSION_COOKIE, pre_session, max_age=3600, path="/console/sign-in", httponly=True,
                        samesite="strict", secure=secure_cookies(request))
    return response


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    expected = request.cookies.get(PRE_SESSION_COOKIE, "")
    if not expected or not same_secret(str(form.get("pre_session", "")), expected):
        return sign_in_page(request, status=403, stale=True, username=username)
    runtime = request.app.state.runtime
    try:
        address = api.client_address(request)
        api.refuse_while_busy(runtime)
        await runtime.signin_limit.spend(address)
        if not username or not password:
            raise api.oauth_error(400, "invalid_request", "")
        otp = str(form.get("otp", "")).strip() or None
        token, refresh = await api.password_grant(runtime, username, password, address, otp=otp)  # in-process
    except Problem as problem:
        if problem.status == 429:  # nothing was checked: saying "not right" would send them to other passwords
            return sign_in_page(request, status=429, username=username, paused=retry_after(problem))
        if problem.status == 503:  # too many sign-ins waiting (passwords.Busy): nothing checked, nothing counted
            response = sign_in_page(request, status=503, username=username, busy=True)
            response.headers["Retry-After"] = str(retry_after(problem))
            return response
        return sign_in_page(request, status=401, failed=True, username=username)
    except Unavailable:  # sealed (SPEC §8), or the gateway's keys away: said as a page, not a JSON problem
        return render(request, "error.html", status=503, said_key="problem_sealed")
    response = back_to("/" if refresh else "/console/mfa")  # no session yet: the second factor to set up first
    response.delete_cookie(PRE_SESSION_COOKIE, path="/console/sign-in", httponly=True, samesite="strict",
                           secure=secure_cookies(request))
    session_cookies(response, request, token, refresh)
    return response


async def any_visit(request: Request) -> Visit:
    """Anyone signed in, also someone still setting up their second factor (whose token has no session yet): who
    signs out, or changes their password."""
    try:
        return await visit(request)
    except HTTPException as sent_away:
        if sent_away.headers and sent_away.headers.get("Location") == "/console/mfa":
            return await enrolling_visit(request)
        raise


AnyVisitDep = Annotated[Visit, Depends(any_visit)]


@router.post("/console/sign-out")
async def sign_out(v: AnyVisitDep) -> Response:
    """Ends the session, not only the cookie: a copy of the token taken from this browser stops working too."""
    runtime = v.request.app.state.runtime
    session_id = v.principal.claims.get("sid")
    if session_id:
        await runtime.uow.run(lambda session: sessions.revoke_one(
            session=session, audit=runtime.audit, user_id=v.principal.sub, session_id=session_id,
            now=service.now_utc()))
        runtime.standing.forget(v.principal.sub)
    return signed_out(v.request)


def signed_out(request: Request) -> Response:
    response = back_to("/")
    for cookie in (SESSION_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(cookie, path="/", httponly=True, samesite="strict",
                               secure=secure_cookies(request))
    request.state.console_renewed = None  # nothing renewed during this request goes back out
    return response


# --- the second factor: enrolment with a QR code drawn here -------------------------------------------------------

async def enrolling_visit(request: Request) -> Visit:
    """Someone signed in with a password who must set up a second factor (or anyone signed in)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(303, headers={"Location": "/"})
    try:
        principal = await request.app.state.gatekeeper.admit(f"Bearer {token}", enrolling=True)
    except Problem:
        raise HTTPException(303, headers={"Location": "/?expired=1"}) from None
    if request.method == "POST":
        form = await request.form()
        if not same_secret(str(form.get("csrf", "")), csrf_token(request, token)):
            raise HTTPException(403, STALE_FORM)
    return Visit(request=request, token=token, principal=principal,
                 language=language_of(request, offered_to(principal)))


EnrollingVisitDep = Annotated[Visit, Depends(enrolling_visit)]


@router.get("/console/mfa")
async def mfa_page(v: EnrollingVisitDep) -> Response:
    """A new secret, as a QR code (SVG drawn on the server: no script, nothing fetched) and as text."""
    runtime = v.request.app.state.runtime
    if not v.principal.enrolling:
        return back_to("/")
    with runtime.uow.read() as session:
        if service.get_user(session=session, user_id=v.principal.sub).must_choose_password:
            return password_page(v)  # before a factor: whoever set the password could enrol their own

    def enrol(session: Any) -> mfa.Enrolment:
        api.still_signed_in(session, v.principal)
        user = service.get_user(session=session, user_id=v.principal.sub)
        return mfa.enrol(session=session, keys=runtime.factor_keys, user_id=user.id, username=user.username)

    try:
        enrolment = await runtime.uow.run(enrol)
    except DomainError:  # set up already (another tab): signing in with a code is what is left
        return signed_out(v.request)
    except Problem:  # its session ended (the password was changed meanwhile): sign in again
        raise HTTPException(303, headers={"Location": "/?expired=1"}) from None
    return _enrolment_page(v, enrolment)


def _enrolment_page(v: Visit, enrolment: mfa.Enrolment, *, status: int = 200, wrong_code: bool = False) -> Response:
    qr = segno.make(enrolment.otpauth_uri, error="m").svg_inline(scale=5, title="QR")
    return render(v.request, "mfa_enrol.html", visit_=v, status=status, qr=Markup(qr), secret=enrolment.secret,
                  wrong_code=wrong_code)


@router.post("/console/mfa")
async def mfa_confirm(v: EnrollingVisitDep) -> Response:
    runtime = v.request.app.state.runtime
    form = await v.request.form()
    code = str(form.get("code", "")).strip()

    def confirm(session: Any) -> list[str]:
        api.still_signed_in(session, v.principal)
        codes = mfa.confirm(session=session, keys=runtime.factor_keys, user_id=v.principal.sub, code=code)
        runtime.audit.record(session, actor=v.principal.sub, action="mfa.enrolled", target_id=v.principal.sub)
        sessions.end_enrolment(session=session, user_id=v.principal.sub, session_id=v.principal.claims.get("sid"),
                               now=service.now_utc())
        return codes

    try:
        codes = await runtime.uow.run(confirm)
    except Problem:  # its session ended (the password was changed meanwhile): sign in again
        raise HTTPException(303, headers={"Location": "/?expired=1"}) from None
    except DomainError:
        # The same secret again, beside the problem: the app saved it already, so only the code is to type again.
        with runtime.uow.read() as session:
            user = service.get_user(session=session, user_id=v.principal.sub)
            begun = mfa.unconfirmed(session=session, keys=runtime.factor_keys, user_id=user.id,
                                    username=user.username)
        if begun is None:
            return render(v.request, "mfa_enrol.html", visit_=v, status=422, wrong_code=True, qr=None, secret=None)
        return _enrolment_page(v, begun, status=422, wrong_code=True)
    # Shown once; the enrolment token's session is spent: the person signs in again, now with a code.
    page = render(v.request, "mfa_codes.html", codes=codes)
    for cookie in (SESSION_COOKIE, REFRESH_COOKIE):
        page.delete_cookie(cookie, path="/", httponly=True, samesite="strict", secure=secure_cookies(v.request))
    return page


# --- a password of one's own -----------------------------------------------------------------------------------

PASSWORD_PAGE = "/console/password"


def password_page(v: Visit, *, status: int = 200, errors: dict[str, str] | None = None) -> Response:
    """The form to choose a new password. When the password was set by someone else (an admin, an operator), who
    knows it, the person chooses their own before anything else opens; for an account another admin approved, with
    the activation code that admin was shown (gateway.activation)."""
    with v.request.app.state.runtime.uow.read() as session:
        user = service.get_user(session=session, user_id=v.principal.sub)
        first, needs_code = user.must_choose_password, user.activation_hash is not None
    return render(v.request, "mfa_password.html", visit_=v, status=status, first=first, needs_code=needs_code,
                  errors=errors or {}, min_length=domain.MIN_PASSWORD_LENGTH)


@router.get(PASSWORD_PAGE)
async def password_form(v: AnyVisitDep) -> Response:
    return password_page(v)


@router.post(PASSWORD_PAGE)
async def password_chosen(v: AnyVisitDep) -> Response:
    """Put the person's new password in place (api.choose_password: the current one checked as a sign-in checks
    it; every session ends). Someone still to set up a factor goes on to it, signed in again with the new password;
    anyone else signs in again with it and their code."""
    request, runtime = v.request, v.request.app.state.runtime
    form = await request.form()
    current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
    t = i18n.translator(v.language)
    with runtime.uow.read() as session:
        has_factor = mfa.enrolled(session=session, user_id=v.principal.sub)
    if new != str(form.get("new_password_again", "")):
        return password_page(v, status=422, errors={"new_password_again": t("password_mismatch")})
    address = api.client_address(request)
    try:
        username = await api.choose_password(runtime, v.principal.sub, current, new, address=address,
                                             activation_code=str(form.get("activation_code", "")) or None)
    except Problem as problem:
        if problem.status == 429:
            return password_page(v, status=429, errors={"current_password": t("sign_in_paused").format(
                wait=i18n.waiting_time(retry_after(problem), v.language))})
        if problem.kind == "current-password-wrong":
            return password_page(v, status=403, errors={"current_password": t("password_current_wrong")})
        if problem.kind == "activation-code-wrong":
            return password_page(v, status=403, errors={"activation_code": t("password_activation_wrong")})
        words = WEAK_PASSWORD_WORDS.get(problem.detail, "password_same")
        return password_page(v, status=422, errors={"new_password": t(words)})
    runtime.standing.forget(v.principal.sub)
    signed_in = None
    if v.principal.enrolling and not has_factor:  # on to the factor's setup, with an enrolment token of the new one
        with contextlib.suppress(Problem):
            signed_in = await api.password_grant(runtime, username, new, address)
    if signed_in is None:  # a code is asked at sign-in: with the new password, then
        page = sign_in_page(request, changed=True, username=username)
        for cookie in (SESSION_COOKIE, REFRESH_COOKIE):
            page.delete_cookie(cookie, path="/", httponly=True, samesite="strict", secure=secure_cookies(request))
        return page
    token, refresh = signed_in
    response = back_to("/console/mfa")
    session_cookies(response, request, token, refresh)
    return response


# What domain.password_weakness says, in the console's words: of one's own new password here, of a new account's
# first password on the admin's page (admin.REFUSALS).
WEAK_PASSWORD_WORDS = {
    f"The password must be at least {domain.MIN_PASSWORD_LENGTH} characters long.": "admin_refused_password_short",
    f"The password must be at most {domain.MAX_PASSWORD_LENGTH} characters long.": "admin_refused_password_long",
    "The password must not be the user name.": "admin_refused_password_username",
    "This password is on a list of passwords leaked in breaches, which attackers try first; choose another.":
        "admin_refused_password_breached",
    "The password must not be one character or a short group repeated, or a run such as 123456 or abcdef.":
        "admin_refused_password_repetitive",
}


@router.get("/console/language/{language}")
async def choose_language(language: str, request: Request, next: str | None = None) -> Response:
    """Remembered for a year; a plain link, so it works before signing in and without JavaScript."""
    response = back_to(safe_next(next))
    response.set_cookie(LANGUAGE_COOKIE, i18n.chosen(language), max_age=365 * 86400, path="/", httponly=True,
                        samesite="strict", secure=secure_cookies(request))
    return response


# --- what the pages of every role share: staff names, refusals, a form's errors by field ----------------------

def staff_names(v: Visit, user_ids: set[str]) -> dict[str, str]:
    """The user names of staff the services name by user id (who recorded a consent, who asked for aid), from the
    gateway's own accounts."""
    with v.request.app.state.runtime.uow.read() as session:
        found = {user_id: session.get(User, user_id) for user_id in user_ids}
    return {user_id: user.username for user_id, user in found.items() if user is not None}

def supervises_only(v: Visit) -> bool:
    """A supervisor who is no caseworker: no case of theirs to open, and no break-glass to offer (SPEC §2). Their
    case pages say so before anything is asked of the services."""
    return v.can("supervisor") and not v.can("caseworker")

def refusal(v: Visit, answer: Answer) -> str | None:
    """Why a service refused, in the visitor's language (PROBLEM_WORDS: the services explain in English)."""
    return None if answer.ok else problem_in_words(v.language, answer)

# What a 422's issue says, in the visitor's words: by pydantic's kind of error where that says it all, else by the field
# (its own pattern or rule), else by the kind again in broader words; the service's English and its field paths never
# reach the page.
ERROR_WORDS = {"missing": "error_required", "string_too_short": "error_required", "string_too_long": "error_too_long",
               "too_long": "error_too_long", "date_parsing": "error_date", "date_from_datetime_parsing": "error_date",
               "date_from_datetime_inexact": "error_date", "date_type": "error_date", "datetime_parsing": "error_date",
               "release_before_birth": "error_release_before_birth", "one_line": "error_one_line"}
FIELD_ERROR_WORDS = {"phone": "error_phone", "email": "error_email", "country": "error_country",
                     "countries": "error_country", "contact_email": "error_email",
                     "date_of_birth": "error_birth_date", "release_date": "error_release_date",
                     "amount": "error_amount", "language": "error_language", "languages": "error_language",
                     "packet_language": "error_language", "currency": "error_currency", "url": "error_url",
                     "expires_on": "error_expires", "consent-expires": "error_expires", "due_on": "error_due",
                     "task-due": "error_due", "username": "error_username", "usernames": "error_username"}
BROAD_ERROR_WORDS = {"too_short": "error_choose_some", "literal_error": "error_choice", "enum": "error_choice",
                     "uuid_parsing": "error_choice", "uuid_type": "error_choice", "url_parsing": "error_url",
                     "url_scheme": "error_url", "decimal_parsing": "error_money", "decimal_type": "error_money",
                     "int_parsing": "error_number", "int_type": "error_number", "float_parsing": "error_number",
                     "greater_than": "error_number", "greater_than_equal": "error_number",
                     "less_than_equal": "error_too_long"}


def same_secret(sent: str, expected: str) -> bool:
    """A token from a form against the one expected, in constant time; any text a tampered form sends is simply not
    it (`hmac.compare_digest` refuses non-ASCII text with an error)."""
    return hmac.compare_digest(sent.encode(), expected.encode())


def key_for_retry(answer: Answer, sent: Any) -> str:
    """The Idempotency-Key a form comes back under after it failed: the same one when the outcome is unknown (a 5xx —
    a timeout, a broken answer: the service may have done it, and the same key then answers what it did instead of
    doing it twice), a new one after a refusal (a 4xx: the old key holds that answer)."""
    sent = str(sent or "")
    return sent if sent and answer.status >= 500 else str(uuid.uuid4())


def field_errors(v: Visit, answer: Answer, fields: tuple[str, ...] | dict[str, str],
                 aliases: dict[str, str] | None = None, *, words: dict[str, str] | None = None,
                 kinds: dict[str, str] | None = None) -> dict[str, str]:
    """A refusal's issues by the form field each is about, each a sentence in the visitor's language.

    `fields`: the form's fields, by the name the API gives them; or a map from the API's path of a field
    (`packet.language`, `text`) to the form's id of it (`packet_language`, `note-text`). A 422's issue is about a
    field by its full path, or as the case's forms name them (`contact.phone` → `phone`, `payee.name` →
    `payee_name`), or by its first part; `aliases` answer a field the form does not show next to the one it comes
    from. `words`: a field's own sentence for a value it refuses (before FIELD_ERROR_WORDS). `kinds`: a refusal
    about one field by its kind (`username-taken` → `username`), said there. An issue about no field of the form
    is left to the page's problem line."""
    t = i18n.translator(v.language)
    named = fields if isinstance(fields, dict) else {name: name for name in fields}
    errors: dict[str, str] = {}
    if kinds and answer.kind in kinds and not answer.ok:
        errors[kinds[answer.kind]] = answer.problem or t("error_invalid")
    issues = answer.body.get("errors") if answer.status == 422 and isinstance(answer.body, dict) else None
    for issue in issues if isinstance(issues, list) else []:
        if not isinstance(issue, dict):
            continue
        where = [str(part) for part in issue.get("loc", [])][1:]  # after "body" (or "query")
        if not where:
            continue
        candidates = [".".join(where), ".".join(part for part in where if not part.isdigit())]
        if where[0] == "contact" and len(where) > 1:
            candidates.append(where[1])
        elif where[0] == "payee" and len(where) > 1:
            candidates.append(f"payee_{where[1]}")
        candidates.append(where[0])
        name = next((c for c in ((aliases or {}).get(c, c) for c in candidates) if c in named), None)
        if name is None:
            continue
        shown = named[name]
        kind = str(issue.get("type"))
        key = (ERROR_WORDS.get(kind) or (words or {}).get(shown) or (words or {}).get(name)
               or FIELD_ERROR_WORDS.get(shown) or FIELD_ERROR_WORDS.get(name) or BROAD_ERROR_WORDS.get(kind)
               or "error_invalid")
        errors.setdefault(shown, t(key))
    return errors


# --- break-glass: the reason a caseworker stated for a case not assigned to them (its pages: cases.py) ----------
#
# Need-to-know (SPEC §4): a caseworker reads a case not assigned to them only after stating why; the services record
# each opening (audit trail, and the case's timeline its assignees read). The console asks for the reason on a page
# of its own, by POST only: a reason is free text that may say something of the person, so it is never in a URL, a
# redirect or a log line.
#
# Once stated, the reason covers the caseworker's next steps on that case for BREAK_GLASS_MINUTES: a caseworker
# who opened a case to help the person in front of them goes on to add a need, record consent or refer, and being
# asked again at each click would teach them to type anything at all. The console keeps the reason in a cookie of
# that case's own path (HttpOnly, SameSite=Strict), sealed — encrypted and authenticated — with a key derived from
# the token-signing key (like `_csrf_key`) and bound to this session, this person and this case: the browser stores
# it on disk, so it must say nothing to whoever reads the profile, and a copy works nowhere else. Every request then
# sends it as `Access-Reason`, and every one is recorded; the case page says for how long it still holds. After that
# the caseworker is asked again (and told why).

BREAK_GLASS_COOKIE = "rehab_break_glass"
BREAK_GLASS_MINUTES = 15
# The cookie outlives the reason by an hour, so that the page can say "your reason lapsed" instead of asking as if
# for the first time; a lapsed one is never sent, and the page that says so deletes it.
BREAK_GLASS_COOKIE_SECONDS = BREAK_GLASS_MINUTES * 60 + 3600
NONCE_BYTES = 12


@dataclass(frozen=True)
class StatedReason:
    text: str
    until: float  # a Unix time

    @property
    def lapsed(self) -> bool:
        return reason_clock() >= self.until

    @property
    def minutes_left(self) -> int:
        """The minutes the reason still covers, for a page to say so (one at least: a lapsed one is not shown)."""
        return max(1, round((self.until - reason_clock()) / 60))


def reason_clock() -> float:
    """The time a stated reason is measured by (a function of its own, so that a test can move it on)."""
    return time.time()


def spoken(typed: str) -> str:
    """A reason as one line of text: no control characters, whitespace runs (line breaks too) as one space — it
    travels in an HTTP header, where a line break cannot go."""
    printable = "".join(ch if ch.isprintable() else " " for ch in typed)
    return " ".join(printable.split())


def _reason_binding(v: Visit, case_id: str) -> bytes:
    """What a sealed reason is good for: this person, this session (a new sign-in asks again), this case."""
    session = v.principal.claims.get("sid") or ""
    return f"{v.principal.sub}\0{session}\0{case_id.lower()}".encode()


def seal_reason(v: Visit, case_id: str, reason: str) -> str:
    payload = json.dumps({"reason": reason, "until": int(reason_clock()) + BREAK_GLASS_MINUTES * 60}).encode()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(console_key(v.request, "break-glass")).encrypt(nonce, payload, _reason_binding(v, case_id))
    return urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def opened_reason(v: Visit, case_id: str) -> StatedReason | None:
    """The reason in this request's break-glass cookie, if it was sealed for this person, session and case."""
    cookie = v.request.cookies.get(BREAK_GLASS_COOKIE)
    if not cookie:
        return None
    try:
        raw = urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        payload = AESGCM(console_key(v.request, "break-glass")).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                                               _reason_binding(v, case_id))
        stated = json.loads(payload)
        return StatedReason(text=str(stated["reason"]), until=float(stated["until"]))
    except (ValueError, TypeError, KeyError, InvalidTag):  # not ours, another case's, another session's
        return None


def break_glass_path(case_id: uuid.UUID | str) -> str:
    return f"/console/cases/{str(case_id).lower()}"


def need_to_know_page(v: Visit, case_id: uuid.UUID | str, *, unsaved: bool = False, typed: str = "",
                      kept: list[tuple[str, str]] | None = None, problem: str | None = None,
                      status: int = 403) -> Response:
    """The page that asks a caseworker why they open a case not assigned to them (break-glass); nothing of the
    person is on it. A supervisor (not a caseworker) is told that the caseload is theirs, not the people in it.

    `unsaved`: the visitor had just sent something (a need, consent…) that was refused for want of a reason, and
    `kept` what it held at length (`typed_back`: a note written while the reason's window ran out), given back to
    copy, as a form sent after the session lapsed is (an outside review's find: it was lost);
    `typed`: the reason they typed, back in the box after a refusal — only ever what they typed themselves."""
    if not v.can("caseworker"):
        return render(v.request, "break_glass.html", visit_=v, status=403, case_id=str(case_id), supervisor_only=True)
    stated = v.stated_reason(case_id)
    response = render(v.request, "break_glass.html", visit_=v, status=status, case_id=str(case_id), typed=typed,
                      unsaved=unsaved, kept=kept or [], lapsed=stated is not None, problem=problem,
                      minutes=BREAK_GLASS_MINUTES, min_reason=MIN_REASON, max_reason=MAX_REASON)
    if stated is not None:  # lapsed (or refused): it is of no more use
        response.delete_cookie(BREAK_GLASS_COOKIE, path=break_glass_path(case_id), httponly=True,
                               samesite="strict", secure=secure_cookies(v.request))
    return response


def quoted(value: str) -> str:
    return quote(value, safe="")


templates.filters["q"] = quoted

_COMMAND = re.compile(r"`([^`]+)`")


def with_commands(words: str) -> Markup:
    """A sentence that names a command or a setting between backticks (`rehab unseal`, `file`), as the catalogues
    write them: escaped, with each such name set as code rather than shown with its backticks."""
    escaped = str(Markup.escape(words))
    return Markup(_COMMAND.sub(lambda found: f"<code>{found.group(1)}</code>", escaped))


templates.filters["commands"] = with_commands


@pass_context
def country_name(context: Any, code: str | None) -> str:
    """A country's ISO code ("LT") as the page's language names it ("Літва", "Литва", "Lithuania"); a code Babel
    does not know, as stored; nothing for none."""
    if not code:
        return ""
    return Locale.parse(context.get("lang") or i18n.DEFAULT).territories.get(code.upper(), code)


templates.filters["country"] = country_name


@pass_context
def language_name(context: Any, code: str | None) -> str:
    """A language's tag ("be", or with its region or script: "be-by", "sr-latn") as the page's language names it
    ("беларуская", "белорусский (Беларусь)", "Serbian (Latin)"); a tag Babel does not know, as stored; nothing for
    none."""
    if not code:
        return ""
    page = Locale.parse(context.get("lang") or i18n.DEFAULT)
    try:
        return Locale.parse(code, sep="-").get_display_name(page) or code
    except (ValueError, UnknownLocaleError):
        return page.languages.get(code.lower(), code)


templates.filters["language"] = language_name

# Two-letter CLDR territories that are no country: groupings, pseudo-locales and "unknown"; and parts of a country
# that CLDR names apart but ISO 3166-1 does not list (the Canary Islands are Spain's: a case there must meet the
# partners listed under ES). Kosovo (XK) stays: not in ISO 3166-1, but the code everyone uses for it.
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"})
# Where the people in these cases live, or go, most often: first in the list, the rest by name.
OFTEN_COUNTRIES = ("LT", "PL", "LV", "GE", "DE", "BY", "UA")


@pass_context
def country_choices(context: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every country as (ISO code, name in the page's language): the ones chosen most often, then all by name. A
    person picks a name; nobody has to know that Lithuania is LT (and typing "Li" is not Liechtenstein)."""
    names = Locale.parse(context.get("lang") or i18n.DEFAULT).territories
    every = sorted(((code, name) for code, name in names.items()
                    if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES),
                   key=lambda choice: choice[1].casefold())
    return [(code, names[code]) for code in OFTEN_COUNTRIES], every


templates.globals["country_choices"] = country_choices
