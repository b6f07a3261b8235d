"""The gateway's own routes: tokens (OAuth2), the caller, identity administration, and the public documents.

Like a service's, every write runs its use case through `runtime.uow` (kit.db.UnitOfWork: the gateway's own
database and audit trail); the lists read through a `ReadSession`."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session
from starlette.types import Scope

from gateway import activation, approvals, domain, mfa, passwords, service, sessions
from gateway.access import (
    NO_LONGER_VALID,
    EnrollingPrincipal,
    Gatekeeper,
    GatewayPrincipal,
    gateway_role,
)
from gateway.models import (
    ApiClient,
    ApiClientCreate,
    ApiClientIssued,
    ApiClientPublic,
    ApprovalPublic,
    RolesChange,
    User,
    UserCreate,
    UserCreated,
    UserPublic,
)
from gateway.openapi import docs_page
from gateway.runtime import GatewayRuntime, RuntimeDep
from kit import control, errors, logs
from kit.auth import ENROLMENT_SCOPE, PARTNER_ROLE, Principal
from kit.idempotency import HEADER as IDEMPOTENCY_KEY
from kit.openapi import HONOURS_KEY
from kit.openapi import REF as PROBLEM_REF
from kit.pagination import Page, page_size
from kit.problems import MEDIA_TYPE as PROBLEM_MEDIA_TYPE
from kit.problems import Problem, StrictModel
from kit.service import ReadSession

log = logs.get("gateway.admin")

# --- tokens and the caller ---------------------------------------------------------------------------------------

auth_router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str | None = Field(default=None, description="`mfa_enrol`: the token opens only /auth/me and /auth/mfa/… "
                                                       "until the user has set up a second factor.")
    refresh_token: str | None = Field(
        default=None, description="Staff only: use it once with grant_type=refresh_token for the next access token "
                                  "(and the next refresh token); a second use ends the session.")


class Me(BaseModel):
    sub: str
    username: str
    roles: list[str]
    partner_id: str | None
    mfa: bool = Field(description="Whether the caller has a second factor in force.")
    scope: str | None = Field(default=None, description="`mfa_enrol` while the token opens only enrolment.")
    must_choose_password: bool = Field(
        False, description="The password was set by someone else (an admin, an operator's reset, or every account "
                           "once, on the upgrade that brought this rule): the person chooses their own, POST "
                           "/auth/password, before a token opens anything else.")


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


OAUTH_ERROR_MEDIA_TYPE = "application/json"
# What the token endpoint's errors are in the OpenAPI document: RFC 6749 §5.2's fields beside the problem's.
_OAUTH_ERROR = {OAUTH_ERROR_MEDIA_TYPE: {"schema": {"allOf": [{"$ref": PROBLEM_REF}, {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}}]}}}
# A form field holding a NUL character is refused before any endpoint (kit.http's input guard): `invalid_request`
# too, in a problem document.
_OAUTH_OR_GUARD_ERROR = {**_OAUTH_ERROR, PROBLEM_MEDIA_TYPE: _OAUTH_ERROR[OAUTH_ERROR_MEDIA_TYPE]}
_TOKEN_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "RFC 6749 §5.2: `invalid_grant` (wrong user name, password or one-time code, or a refresh "
                         "token that is unknown, expired, revoked or used before: the same answer whatever was "
                         "wrong), `invalid_request`, `unsupported_grant_type`; `invalid_grant` too for a partner "
                         "API client's right setup secret, before the client is activated (POST "
                         "/auth/clients/activate); `invalid_request` for a NUL character in a field, as a problem "
                         "document.", "content": _OAUTH_OR_GUARD_ERROR},
    401: {"description": "The client credentials are not valid (`invalid_client`).", "content": _OAUTH_ERROR},
    # an OAuth2 error for a throttled user name; a problem document from the gateway's limit per address
    429: {"description": "Too many sign-ins from this address, or too many failures for this user name (here or "
                         "everywhere): wait for Retry-After seconds.",
          "content": {**_OAUTH_ERROR, PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}},
    503: {"description": "`temporarily_unavailable` (`sign-in-busy`): more sign-ins are waiting to be checked than "
                         "the gateway clears in a moment; nothing was checked or counted: try again after "
                         "Retry-After seconds.", "content": _OAUTH_ERROR},
}


def oauth_error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Problem:
    """RFC 6749 §5.2: `error` and `error_description`, as `application/json`, for OAuth2 clients; the problem
    document's fields beside them for everyone else."""
    return Problem(status, detail, kind=error.replace("_", "-"), extra={"error": error, "error_description": detail},
                   headers={**_NO_STORE, **(headers or {})}, media_type=OAUTH_ERROR_MEDIA_TYPE)


def _bad_credentials() -> Problem:
    # One answer for every failure (unknown user, wrong password, wrong or missing one-time code, disabled): it
    # tells an attacker nothing.
    return oauth_error(400, "invalid_grant", "The user name, password or one-time code is not right.")


def _bad_client(used_basic: bool) -> Problem:
    return oauth_error(401, "invalid_client", "The client credentials are not valid.",
                       {"WWW-Authenticate": 'Basic realm="rehab"'} if used_basic else None)


def _must_wait(seconds: int, *, oauth: bool = True) -> Problem:
    # The same for a user name that does not exist: the wait belongs to the name typed, not to an account. The
    # token endpoint's words are RFC 6749's (SPEC §6); any other route that checks a password answers a problem.
    headers = {**_NO_STORE, "Retry-After": str(seconds)}
    detail = "Too many failed sign-ins for this user name: wait before trying again."
    if not oauth:
        return Problem(429, detail, kind="sign-in-throttled", headers=headers)
    return Problem(429, detail, kind="sign-in-throttled", extra={
        "error": "invalid_grant", "error_description": "Too many failed sign-ins; wait."}, headers=headers,
                   media_type=OAUTH_ERROR_MEDIA_TYPE)


def refuse_while_busy(runtime: GatewayRuntime) -> None:
    """The 503 `admitted` would answer, asked before the address's sign-ins are spent: a refusal that checked
    nothing costs the people behind that address (an office, a shelter's network) none of their tries."""
    if runtime.hasher.full():
        raise _busy()


def _busy() -> Problem:
    # RFC 6749 §4.1.2.1's word for a server that cannot take a request now. Refused before anything was checked or
    # counted (passwords.Hasher.admitted): it is nobody's failed sign-in.
    return Problem(503, "The sign-in service is busy: try again in a moment.", kind="sign-in-busy",
                   extra={"error": "temporarily_unavailable", "error_description": "Busy; try again in a moment."},
                   headers={**_NO_STORE, "Retry-After": str(passwords.Busy.retry_after)},
                   media_type=OAUTH_ERROR_MEDIA_TYPE)


def _missing(request: Request, field: str) -> Problem:
    """RFC 6749 §5.2's `invalid_request` for a form field not sent; saying so when the body was sent as JSON (or
    another type), since the field may well be there, just not where OAuth 2 looks."""
    sent_as = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return _missing_from(field, in_a_form=sent_as in ("", "application/x-www-form-urlencoded"))


def _missing_from(field: str, *, in_a_form: bool) -> Problem:
    if not in_a_form:
        return oauth_error(400, "invalid_request", f"`{field}` is required, with the other fields, in a form body "
                           "(Content-Type: application/x-www-form-urlencoded, as RFC 6749 asks), not JSON or another "
                           "type.")
    return oauth_error(400, "invalid_request", f"`{field}` is required.")


_NOT_ACTIVATION_FORM = ("Activation needs `client_id` and `client_secret` (the setup secret) in a form body, and "
                        "`activation_code` where another admin approved the client.")


# The endpoints that take a form, as OAuth 2 asks: sent JSON, which they never read, they answer at once as for
# their first field not sent.
_FORM_ONLY = {
    "/auth/token": lambda: _missing_from("grant_type", in_a_form=False),
    "/auth/revoke": lambda: _missing_from("token", in_a_form=False),
    "/auth/clients/activate": lambda: Problem(400, _NOT_ACTIVATION_FORM, kind="invalid-request", headers=_NO_STORE),
}


def unread_json_refused(scope: Scope, gatekeeper: Gatekeeper | None) -> Problem | None:
    """What kit.http's guard answers, before it reads a JSON body sent to one of the gateway's own routes (a
    service's is passed on unread), where the route would refuse it anyway: at a form-only endpoint, which never
    reads JSON, or from a caller without a token signed here. Checked for flaws, a stranger's megabyte of JSON would
    cost the event loop ~30 ms before its 401. None: the body is read, checked, and the route goes on."""
    path = scope["path"]
    if path in _FORM_ONLY:
        return _FORM_ONLY[path]()
    if gatekeeper is None or not path.startswith(("/api/", "/auth/")):
        return None  # starting, or a console page's (it takes forms only, from a session)
    authorization = next((value for name, value in scope["headers"] if name.lower() == b"authorization"), b"")
    return gatekeeper.stranger(authorization.decode("latin-1"))


def client_address(request: Request) -> str:
    """Where a request comes from, as the sign-in throttles and budgets count it (domain.counted_address)."""
    return domain.counted_address(request.client.host if request.client else "unknown")


@auth_router.post(
    "/auth/token", response_model=TokenResponse, responses=_TOKEN_ANSWERS,
    summary="Get an access token (OAuth2: password grant for staff, client_credentials for partners)",
)
async def issue_token(
    request: Request,
    runtime: RuntimeDep,
    grant_type: Annotated[str | None, Form()] = None,
    username: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form()] = None,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
    otp: Annotated[str | None, Form(description="A current TOTP code or an unused recovery code, once the user "
                                                "has a second factor.")] = None,
    scope: Annotated[str | None, Form()] = None,  # accepted and ignored: access follows roles, not scopes
) -> JSONResponse:
    address = client_address(request)
    if grant_type in ("password", "client_credentials"):
        refuse_while_busy(runtime)
    await (runtime.refresh_limit if grant_type == "refresh_token" else runtime.signin_limit).spend(address)
    try:
        refresh = None
        if grant_type == "password":
            if not username or not password:
                raise oauth_error(400, "invalid_request", "The password grant needs `username` and `password`.")
            token, refresh = await password_grant(runtime, username, password, address, otp=otp)
        elif grant_type == "refresh_token":
            if not refresh_token:
                raise oauth_error(400, "invalid_request", "The refresh_token grant needs `refresh_token`.")
            token, refresh = await refresh_grant(runtime, refresh_token, requester=None)  # no grace: SPEC §3
        elif grant_type == "client_credentials":
            basic = _basic_credentials(request)
            if basic and client_secret:  # RFC 6749 §2.3: one way of authenticating per request, never two
                raise oauth_error(400, "invalid_request", "Send the client's credentials once: in the Authorization "
                                                          "header (HTTP Basic) or in the form, not both.")
            if basic:
                client_id, client_secret = basic
            if not client_id or not client_secret:
                raise oauth_error(400, "invalid_request",
                                  "The client_credentials grant needs `client_id` and `client_secret`.")
            token = await _client_grant(runtime, client_id, client_secret, used_basic=basic is not None)
        elif not grant_type:
            raise _missing(request, "grant_type")
        else:
            raise oauth_error(400, "unsupported_grant_type",
                              "Only the password, refresh_token and client_credentials grants are supported.")
    except errors.Unavailable as down:  # keys sealed, a key service away: in the words OAuth2 clients read too
        raise Problem(503, down.detail, kind=down.code, extra={"error": "temporarily_unavailable",
                                                               "error_description": down.detail},
                      headers={**_NO_STORE, "Retry-After": str(down.retry_after)},
                      media_type=OAUTH_ERROR_MEDIA_TYPE) from None
    body: dict[str, Any] = {"access_token": token, "token_type": "bearer", "expires_in": runtime.issuer.ttl_seconds}
    if refresh:
        body["refresh_token"] = refresh
    elif grant_type == "password":  # no session yet: the token opens only enrolment
        body["scope"] = ENROLMENT_SCOPE
    return JSONResponse(body, headers=_NO_STORE)


async def _sign_in_ticket(runtime: GatewayRuntime, username: str, address: str, *,
                          oauth: bool = True) -> service.SignInTicket:
    """A password check begun (service.reserve_sign_in: counted as failed until settled); 429 while the user name
    waits, from this address or everywhere (`oauth`: in the token endpoint's words)."""
    ticket = await runtime.uow.run(lambda session: service.reserve_sign_in(
        session=session, audit=runtime.audit, username=username, address=address, policy=runtime.signin_policy,
        keys=runtime.throttle_keys))
    if ticket.wait_seconds:
        raise _must_wait(ticket.wait_seconds, oauth=oauth)
    return ticket


async def password_grant(runtime: GatewayRuntime, username: str, password: str, address: str, *,
                         otp: str | None = None) -> tuple[str, str | None]:
    """The password grant, for the API and the console alike: an access token and the refresh token of the new
    session; or, for a user who must have a second factor and has none yet, or who has one but must still choose
    their own password, a token that opens only enrolment and the password's change (and no session); or the
    problem to answer. A wrong or missing one-time code is a failed sign-in like a wrong
    password, with the same answer. While the name is locked everywhere only the password with a second factor
    passes, and every other try gets the lock's answer, after the same checks."""
    arrived = time.time()  # the one-time code is the one current then, however long the hasher's line
    try:
        async with runtime.hasher.admitted():
            ticket = await _sign_in_ticket(runtime, username, address)
            # No such user (or not one who may sign in): a check as slow as a real one, its time tells nothing.
            password_right = await runtime.hasher.matches_async(ticket.password_hash, password)
            new_hash = None
            if password_right and runtime.hasher.needs_rehash(ticket.password_hash):
                new_hash = await runtime.hasher.hash_async(password)
    except passwords.Busy:
        raise _busy() from None
    if ticket.password_hash is None:  # settled in a unit of work of its own, as a wrong password is below
        await runtime.uow.run(lambda session: service.settle_refused(session=session, audit=runtime.audit,
                                                                     ticket=ticket))
        raise _must_wait(ticket.locked_everywhere) if ticket.locked_everywhere else _bad_credentials()
    user_id = ticket.user_id
    assert user_id is not None

    def issued(session_id: str, refresh: str | None) -> tuple[str, str | None]:
        # `username`: the staff handle, by which the services name assignees and authors.
        claims = {"sid": session_id, "username": ticket.username}
        if refresh is None:
            claims["scope"] = ENROLMENT_SCOPE
        return runtime.issuer.issue(sub=user_id, roles=ticket.roles, partner_id=ticket.partner_id, extra=claims), refresh

    def settle(session: Session) -> tuple[str, str | None] | None:
        has_factor = mfa.enrolled(session=session, user_id=user_id)
        # Too many wrong codes came with this password: no code is checked until the wait is over.
        asks_code = password_right and has_factor and not ticket.codes_locked
        factor = mfa.check(session=session, keys=runtime.factor_keys, user_id=user_id, code=otp, at=arrived) \
            if asks_code else None
        # Locked everywhere, the second factor is what tells the owner from whoever locked the name.
        succeeded = password_right and (factor is not None or not (has_factor or ticket.locked_everywhere))
        service.settle_sign_in(session=session, audit=runtime.audit, ticket=ticket, succeeded=succeeded,
                               policy=runtime.signin_policy, new_hash=new_hash,
                               wrong_code=asks_code and factor is None)
        if not succeeded:
            return None
        if factor == mfa.RECOVERY_CODE:  # a lost phone, or a taken code: the auditor sees which
            runtime.audit.record(session, actor=user_id, action="mfa.recovery_code_used", target_id=user_id)
        # The token is signed before the sign-in commits: sealed keys (503) leave no session begun, no sign-in
        # counted and no one-time code spent, so the person's retry after `rehab unseal` is a sign-in like any.
        # Without a factor, or with one but a password someone else set (an operator's reset): enrolment and the
        # password's change only, in a session of its own (no refresh token), which a password change ends.
        if (not has_factor and runtime.settings.mfa_roles & set(ticket.roles)) or (
                has_factor and service.get_user(session=session, user_id=user_id).must_choose_password):
            return issued(sessions.start_enrolment(session=session, user_id=user_id, now=service.now_utc(),
                                                   lasts=timedelta(seconds=runtime.issuer.ttl_seconds)), None)
        return issued(*sessions.start(session=session, user_id=user_id, now=service.now_utc(),
                                      policy=runtime.session_policy))

    signed_in = await runtime.uow.run(settle)
    if signed_in is None:
        # The codes' lock is told only to whoever typed the right password: they know it already.
        wait = max(ticket.locked_everywhere, ticket.codes_locked if password_right else 0)
        raise _must_wait(wait) if wait else _bad_credentials()
    return signed_in


def requester_of(request: Request) -> str:
    """Who renews a session, as far as a request tells: its address and its user agent (sessions.RenewalsAtOnce)."""
    return f"{client_address(request)} {request.headers.get('user-agent', '')}"


async def refresh_grant(runtime: GatewayRuntime, refresh_token: str, *, requester: str | None) -> tuple[str, str]:
    """The refresh_token grant: the next access token and refresh token of the same session. Unknown, expired,
    revoked and reused tokens get one answer; a reused one has ended its session meanwhile. `requester`: the
    console's tabs renewing at once (sessions.RenewalsAtOnce); None for an API client, whose second use of a token
    is reuse however soon."""
    refused = oauth_error(400, "invalid_grant", "The refresh token is not valid: sign in again.")

    def renew_and_issue(session: Session) -> tuple[sessions.Renewal, str | None]:
        renewal = sessions.renew(session=session, audit=runtime.audit, refresh_token=refresh_token,
                                 now=service.now_utc(), policy=runtime.session_policy)
        if renewal.refused or renewal.refresh_token is None or renewal.user_id is None or not renewal.session_id:
            return renewal, None  # committed all the same: a reused token's session ends, audited
        # Issued before the renewal commits: sealed keys (503) leave the old refresh token as it was, so the client's
        # retry after `rehab unseal` is a renewal, not a theft alarm that ends the session.
        return renewal, runtime.issuer.issue(sub=renewal.user_id, roles=list(renewal.roles),
                                             partner_id=renewal.partner_id,
                                             extra={"sid": renewal.session_id, "username": renewal.username})

    async def renew() -> tuple[str, str, str]:
        renewal, access = await runtime.uow.run(renew_and_issue)
        if access is None or renewal.refresh_token is None:
            raise refused
        return access, renewal.refresh_token, renewal.session_id

    # Two tabs renewing at once with the same token get one renewal, not a theft alarm (sessions.RenewalsAtOnce) —
    # unless the session ended in between (signed out in the other tab): then the token is as dead as its session.
    (access, refresh, session_id), replayed = await runtime.renewals.once(refresh_token, renew, requester=requester)
    if replayed:
        with runtime.uow.read() as session:
            if not sessions.is_live(session=session, session_id=session_id, now=service.now_utc()):
                raise refused
    return access, refresh


@auth_router.post("/auth/revoke", summary="Revoke a refresh token and end its session (RFC 7009)", responses={
    400: {"description": "`invalid_request`: no `token` in a form body (RFC 7009 §2.2.1, RFC 6749 §5.2); a NUL "
                         "character in a field, as a problem document.", "content": _OAUTH_OR_GUARD_ERROR}})
async def revoke_token(
    request: Request, runtime: RuntimeDep, token: Annotated[str | None, Form()] = None,
    token_type_hint: Annotated[str | None, Form()] = None,  # RFC 7009 §2.1: only refresh tokens are revocable here
) -> JSONResponse:
    if not token:  # RFC 7009 §2.2.1: the token endpoint's own errors, not a validation problem
        raise _missing(request, "token")
    # RFC 7009 §2.2: 200 whether or not the token was known, so the answer tells nothing about it.
    await runtime.uow.run(lambda session: sessions.revoke_by_refresh_token(
        session=session, audit=runtime.audit, refresh_token=token, now=service.now_utc()))
    return JSONResponse({}, headers=_NO_STORE)


@auth_router.post("/auth/sessions/revoke-all", status_code=204, responses={
    403: {"description": "A partner's API client has no sessions."}},
                  summary="Sign out everywhere: every session of the caller ends, its access tokens with it")
async def revoke_my_sessions(runtime: RuntimeDep, principal: GatewayPrincipal) -> Response:
    if PARTNER_ROLE in principal.roles:
        raise Problem(403, "A partner API client has no sessions; an admin revokes the client.", kind="forbidden")
    await runtime.uow.run(lambda session: sessions.revoke_all(
        session=session, audit=runtime.audit, user_id=principal.sub, actor=principal.sub, now=service.now_utc(),
        why="signed-out-everywhere"))
    runtime.standing.forget(principal.sub)
    return Response(status_code=204)


async def _client_grant(runtime: GatewayRuntime, client_id: str, client_secret: str, *, used_basic: bool) -> str:
    """The client_credentials grant. A client's setup secret, right, gets no token but the word that the client
    awaits approval, or must be activated first (POST /auth/clients/activate); a wrong secret gets the usual answer,
    whatever the client's state, after the same hash check."""
    try:
        async with runtime.hasher.admitted():
            with runtime.uow.read() as session:
                client = service.client_for_sign_in(session=session, client_id=client_id)
            succeeded = await runtime.hasher.matches_async(client.secret_hash if client else None, client_secret)
    except passwords.Busy:
        raise _busy() from None
    activated = client is not None and client.activated_at is not None and not client.pending_approval
    await runtime.uow.run(lambda session: service.record_client_sign_in(
        session=session, audit=runtime.audit, client_id=client.client_id if client else None, succeeded=succeeded,
        activated=activated))
    if not succeeded or client is None:
        raise _bad_client(used_basic)
    if client.pending_approval:  # the right setup secret: said so, not "not valid" (a partner would think it wrong)
        raise oauth_error(400, "invalid_grant", "This client awaits another admin's approval. Once approved, that "
                                                "admin gives you its activation code: exchange the setup secret and "
                                                "the code for a secret of its own at POST /auth/clients/activate.")
    if not activated:
        raise oauth_error(400, "invalid_grant", "This client must be activated first: exchange its setup secret "
                                                "(with the activation code, where another admin approved the client) "
                                                "for a secret of its own at POST /auth/clients/activate.")
    return runtime.issuer.issue(sub=client.client_id, roles=[PARTNER_ROLE], partner_id=client.partner_id)


class ClientActivated(BaseModel):
    client_id: str
    client_secret: str = Field(description="The client's own secret, made by the server and shown only in this "
                                           "answer: the client_credentials grant takes it from now on. The setup "
                                           "secret no longer works.")


_ACTIVATION_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`client-activation-refused`: the client id, setup secret or activation code is not right, "
                         "or the client cannot be activated (awaiting approval, revoked, or activated already): one "
                         "answer whatever was wrong. `invalid-request`: `client_id` or `client_secret` is missing.",
          "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}},
    429: {"description": "Too many sign-ins from this address (an activation counts as one): wait for Retry-After "
                         "seconds.", "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}},
}


@auth_router.post(
    "/auth/clients/activate", response_model=ClientActivated, responses=_ACTIVATION_ANSWERS,
    response_description="The client's own secret, in this answer alone (`Cache-Control: no-store`).",
    summary="Activate a partner's API client: its setup secret (and activation code) for a secret of its own",
)
async def activate_client(
    request: Request,
    runtime: RuntimeDep,
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form(description="The setup secret shown when the client was issued.")] = None,
    activation_code: Annotated[str | None, Form(description=(
        "Where another admin approved the client: the code that admin was shown on approving it (gateway.activation)."
        " A client a lone admin issued has none."))] = None,
) -> JSONResponse:
    """Form-encoded, as the token endpoint is (its errors are problem documents, as every route's but the token
    endpoint's). The admin who issued the client knows its setup secret and, where another admin approved it, that
    admin knows its activation code; the secret the server makes here is known to neither. Works once: the setup
    secret goes with it. Each try spends the token endpoint's sign-ins of this address."""
    refuse_while_busy(runtime)
    await runtime.signin_limit.spend(client_address(request))
    if not client_id or not client_secret:
        raise Problem(400, _NOT_ACTIVATION_FORM, kind="invalid-request", headers=_NO_STORE)
    secret = await _activate_client(runtime, client_id, client_secret, activation_code)
    return JSONResponse({"client_id": client_id, "client_secret": secret}, headers=_NO_STORE)


async def _activate_client(runtime: GatewayRuntime, client_id: str, setup_secret: str,
                           activation_code: str | None) -> str:
    """The client's own secret, once its setup secret and code are checked; a wrong one is a failed client sign-in
    (audited), and every refusal gets one answer after the same hash check."""
    refused = Problem(400, "The client id, setup secret or activation code is not right, or this client cannot be "
                           "activated (awaiting approval, revoked, or activated already).",
                      kind="client-activation-refused", headers=_NO_STORE)
    async with runtime.hasher.admitted():  # busy: 503 `sign-in-busy`, nothing checked or counted
        with runtime.uow.read() as session:
            client = service.client_for_activation(session=session, client_id=client_id)
        right = await runtime.hasher.matches_async(client.secret_hash if client else None, setup_secret)
    if client is None or not right or not service.activation_code_fits(client, activation_code):
        await runtime.uow.run(lambda session: service.record_client_sign_in(
            session=session, audit=runtime.audit, client_id=client.client_id if client else None, succeeded=False))
        raise refused
    secret = service.new_client_secret()
    secret_hash = await runtime.hasher.hash_async(secret)
    if not await runtime.uow.run(lambda session: service.activate_client(
            session=session, audit=runtime.audit, client_id=client.client_id, setup_hash=client.secret_hash,
            activation_code=activation_code, secret_hash=secret_hash)):
        raise refused
    return secret


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: client id and secret in an HTTP Basic header, each form-urlencoded."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise oauth_error(400, "invalid_request", "The Basic credentials are malformed.") from None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


@auth_router.get("/auth/me", response_model=Me, summary="Who the access token belongs to")
async def me(principal: EnrollingPrincipal, session: ReadSession) -> dict[str, Any]:
    user = session.get(User, principal.sub)
    return {"sub": principal.sub, "username": user.username if user else principal.sub,
            "roles": sorted(principal.roles), "partner_id": principal.partner_id,
            "mfa": bool(user) and mfa.enrolled(session=session, user_id=principal.sub),
            "scope": principal.claims.get("scope"), "must_choose_password": bool(user and user.must_choose_password)}


class TotpEnrolment(BaseModel):
    secret: str = Field(description="The TOTP secret (base32), for an app that cannot read the QR code.")
    otpauth_uri: str = Field(description="The otpauth:// URI to show as a QR code (RFC 6238: SHA-1, 6 digits, 30 s).")


class TotpConfirmation(StrictModel):
    code: str = Field(min_length=6, max_length=6, description="The code the app shows now.")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="10 single-use codes for when the phone is lost: shown only now.")


async def _a_person(principal: EnrollingPrincipal) -> Principal:
    """Any person signed in (an enrolment token too); not a partner's API client, which has no second factor."""
    if PARTNER_ROLE in principal.roles:
        raise Problem(403, "An API client signs in with its secret; a second factor is for people.", kind="forbidden")
    return principal


Person = Annotated[Principal, Depends(_a_person)]


@auth_router.post("/auth/mfa/totp/enrol", response_model=TotpEnrolment, responses={
    409: {"description": "A second factor is in force already (an admin resets a lost one)."}},
                  summary="Start setting up a TOTP second factor (replaces an unconfirmed one)")
async def totp_enrol(runtime: RuntimeDep, principal: Person) -> JSONResponse:
    def enrol(session: Session) -> mfa.Enrolment:
        still_signed_in(session, principal)
        user = service.get_user(session=session, user_id=principal.sub)
        return mfa.enrol(session=session, keys=runtime.factor_keys, user_id=user.id, username=user.username)

    enrolment = await runtime.uow.run(enrol)
    return JSONResponse({"secret": enrolment.secret, "otpauth_uri": enrolment.otpauth_uri}, headers=_NO_STORE)


@auth_router.post("/auth/mfa/totp/confirm", response_model=RecoveryCodes, responses={
    409: {"description": "There is no enrolment to confirm, or it is confirmed already."},
    422: {"description": "The code is not right."}},
                  summary="Confirm the second factor with a first code: from now on sign-in needs `otp`")
async def totp_confirm(body: TotpConfirmation, runtime: RuntimeDep, principal: Person) -> JSONResponse:
    def confirm(session: Session) -> list[str]:
        still_signed_in(session, principal)
        codes = mfa.confirm(session=session, keys=runtime.factor_keys, user_id=principal.sub, code=body.code)
        runtime.audit.record(session, actor=principal.sub, action="mfa.enrolled", target_id=principal.sub)
        sessions.end_enrolment(session=session, user_id=principal.sub, session_id=principal.claims.get("sid"),
                               now=service.now_utc())
        return codes

    codes = await runtime.uow.run(confirm)
    return JSONResponse({"recovery_codes": codes}, headers=_NO_STORE)


def still_signed_in(session: Session, principal: Principal) -> None:
    """Setting up a factor only in a session still open, checked where it is written: a token of a session a
    password change or a revocation ended is refused here even before this replica's standing has heard of it."""
    if not sessions.is_open(session=session, user_id=principal.sub, session_id=principal.claims.get("sid"),
                            now=service.now_utc()):
        raise NO_LONGER_VALID


class PasswordChange(StrictModel):
    current_password: Annotated[str, StringConstraints(max_length=1024)]
    # Far above the policy's own maximum: gateway.domain.password_weakness words every refusal a person could meet.
    new_password: Annotated[str, StringConstraints(max_length=1024)]
    activation_code: Annotated[str | None, StringConstraints(max_length=64)] = Field(default=None, description=(
        "For an account another admin approved: the code that admin was shown on approving it (gateway.activation)."))


@auth_router.post("/auth/password", status_code=204, responses={
    403: {"description": "`current-password-wrong`: the current password is not right, or `activation-code-wrong`: "
                         "the activation code is missing or not right (each counted as a failed sign-in)."},
    422: {"description": "`weak-password`: the new password is not acceptable (said why), or is the current one."},
    429: {"description": "Too many failed sign-ins for this user name: wait (`Retry-After`)."}},
                  summary="Choose a new password of your own; every session of yours ends")
async def change_password(body: PasswordChange, runtime: RuntimeDep, principal: Person, request: Request) -> Response:
    """A person replaces their password, with the one they have (an enrolment token's holder too: someone given a
    password by an admin chooses their own before setting up a second factor). A wrong current password counts as a
    failed sign-in of the account, so a stolen token cannot try passwords faster than the sign-in form."""
    await choose_password(runtime, principal.sub, body.current_password, body.new_password,
                          address=client_address(request), activation_code=body.activation_code)
    runtime.standing.forget(principal.sub)
    return Response(status_code=204)


async def choose_password(runtime: GatewayRuntime, user_id: str, current: str, new: str, *, address: str,
                          activation_code: str | None = None) -> str:
    """Check the current password as a sign-in does (and, for an account another admin approved, its activation
    code), then put the new one in its place: every session ends. The user name, for a sign-in with the new
    password; a problem for a refusal."""
    with runtime.uow.read() as session:
        user = service.get_user(session=session, user_id=user_id)
        username, kept_code = user.username, user.activation_hash
    if weakness := domain.password_weakness(new, username=username):
        raise Problem(422, weakness, kind="weak-password")
    ticket = await _sign_in_ticket(runtime, username, address, oauth=False)
    right = await runtime.hasher.matches_async(ticket.password_hash, current)
    activated = kept_code is None or activation.matches(kept_code, activation_code)
    # Locked everywhere (a campaign against the name), the current password is not tried here either: this form
    # asks no second factor, and a session taken with a token could guess from address after address.
    await runtime.uow.run(lambda session: service.settle_sign_in(
        session=session, audit=runtime.audit, ticket=ticket, succeeded=right and activated and not
        ticket.locked_everywhere, policy=runtime.signin_policy))
    if ticket.locked_everywhere:
        raise _must_wait(ticket.locked_everywhere, oauth=False)
    if not right:
        raise Problem(403, "The current password is not right.", kind="current-password-wrong")
    if not activated:
        raise Problem(403, "This account was approved by a second admin, who was shown its activation code: type it "
                           "with the password you were given.", kind="activation-code-wrong")
    if new == current:
        raise Problem(422, "The new password must differ from the current one.", kind="weak-password")
    password_hash = await runtime.hasher.hash_async(new)
    await runtime.uow.run(lambda session: service.choose_password(
        session=session, audit=runtime.audit, user_id=user_id, password_hash=password_hash))
    if username == service.FIRST_ADMIN and runtime.settings.admin_password_path.exists():
        # The generated first password, in clear on the server's disk, opens nothing now: it goes, and `rehab up`
        # stops pointing at it.
        runtime.settings.admin_password_path.unlink(missing_ok=True)
        log.info("the first admin chose a password: the generated one's file was deleted")
    return username


# --- identity administration (admin) -----------------------------------------------------------------------------

admin_router = APIRouter(prefix="/api/admin", tags=["admin"])


Admin = Annotated[Principal, Depends(gateway_role("admin"))]
AdminOrAuditor = Annotated[Principal, Depends(gateway_role("admin", "auditor"))]
Limit = page_size(500)


def user_public(user: User, *, locked: bool = False) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, roles=user.roles, partner_id=user.partner_id,
                      pending_approval=user.pending_approval, disabled=user.disabled, locked=locked,
                      created_at=user.created_at)


def client_public(client: ApiClient) -> ApiClientPublic:
    return ApiClientPublic(client_id=client.client_id, partner_id=client.partner_id, name=client.name,
                           revoked=client.revoked_at is not None, pending_approval=client.pending_approval,
                           activated=client.activated_at is not None, created_at=client.created_at)


def _status(pending: bool) -> Literal["active", "pending_approval"]:
    return "pending_approval" if pending else "active"


async def ensure_partner(runtime: GatewayRuntime, partner_id: str | None, request: Request | None) -> None:
    """A partner's staff member or API client is bound to a partner of the directory (referrals), asked with the
    admin's own token: an id the directory says it does not hold would give working credentials bound to nobody's
    referrals (422). While the directory cannot be asked, the id is taken as given (said in the log): accounts are
    still made with referrals away, as before. (The console offers the directory's partners to choose from.)"""
    authorization = request.headers.get("authorization") if request is not None else None
    if partner_id is None or authorization is None:
        return
    settings = runtime.settings
    try:
        answer = await runtime.calls.get(
            f"{runtime.backends['referrals']}/api/referrals/partners/{partner_id}",
            headers={"Authorization": authorization},
            timeout=httpx.Timeout(settings.backend_timeout_seconds, connect=settings.backend_connect_timeout_seconds))
    except httpx.HTTPError as error:
        log.warning("partner directory not asked", error_type=type(error).__name__)
        return
    if answer.status_code == 404:
        raise Problem(422, "There is no partner with this id in the partner directory.", kind="partner-unknown")
    if answer.status_code != 200:
        log.warning("partner directory not asked", status=answer.status_code)


_PARTNER_CHECKED = {422: {"description": "`partner-unknown`: the partner directory has no partner with this id."}}


@admin_router.post("/users", status_code=201, response_model=UserCreated, openapi_extra=HONOURS_KEY, responses={
    409: {"description": "A user with this user name already exists."}, **_PARTNER_CHECKED},
                   summary="Create a staff user (pending another admin's approval where there is one)")
async def create_user(body: UserCreate, runtime: RuntimeDep, principal: Admin,
                      request: Request = None) -> UserCreated:  # type: ignore[assignment]  # None: the console's
    weakness = domain.password_weakness(body.password, username=body.username)
    if weakness:
        raise Problem(422, weakness, kind="weak-password")
    await ensure_partner(runtime, body.partner_id, request)
    password_hash = await runtime.hasher.hash_async(body.password)  # before any transaction: it takes a while

    def create(session: Session) -> UserCreated:
        user = service.create_user(session=session, audit=runtime.audit, username=body.username, roles=body.roles,
                                   partner_id=body.partner_id, password_hash=password_hash, actor=principal.sub)
        return UserCreated(id=user.id, username=user.username, roles=user.roles, partner_id=user.partner_id,
                           status=_status(user.pending_approval))

    return await _once_per_key(runtime, request, principal, create)


async def _once_per_key(runtime: GatewayRuntime, request: Request | None, principal: Principal,
                        create: Callable[[Session], BaseModel]) -> Any:
    """A 201 made once per Idempotency-Key when the caller sends one (SPEC §4: honoured on any POST): a retry whose
    answer was lost gets that answer again (kept sealed for the retention), and makes no second account or client.
    The console calls in-process (`request` None): its forms are refused twice in words of their own."""
    if request is None or IDEMPOTENCY_KEY not in request.headers:
        return await runtime.uow.run(create)
    return await runtime.idempotency.honour(request, principal=principal.sub, uow=runtime.uow, status=201,
                                            action=create, headers=lambda _answer: dict(_NO_STORE))


class RolesAnswer(BaseModel):
    id: str
    roles: list[str] = Field(description="The roles in force now (unchanged while the change awaits approval).")
    status: Literal["active", "pending_approval"]
    requested_roles: list[str] = Field(description="The roles asked for: in force now (`active`), or once another "
                                                   "admin approves them (`pending_approval`).")


@admin_router.post("/users/{user_id}/roles", response_model=RolesAnswer, responses={
    403: {"description": "Nobody changes their own roles."},
    409: {"description": "This is the last enabled admin."}},
                   summary="Change another user's roles (pending another admin's approval where there is one)")
async def change_roles(user_id: str, body: RolesChange, runtime: RuntimeDep, principal: Admin) -> RolesAnswer:
    def change(session: Session) -> RolesAnswer:
        user = service.change_roles(session=session, audit=runtime.audit, user_id=user_id, roles=body.roles,
                                    actor=principal.sub)
        pending = sorted(user.roles) != sorted(set(body.roles))
        return RolesAnswer(id=user.id, roles=list(user.roles), status=_status(pending),
                           requested_roles=domain.normalise_roles(body.roles))

    answer = await runtime.uow.run(change)
    runtime.standing.forget(user_id)
    return answer


@admin_router.get("/users", response_model=Page[UserPublic], summary="List staff users")
async def list_users(session: ReadSession, runtime: RuntimeDep, principal: AdminOrAuditor, limit: Limit = 100,
                     cursor: str | None = None) -> dict[str, Any]:
    """Admins, and auditors too: every trail names people by user id, and an auditor reading it through the API
    must learn who that is (an outside review's find); no case data is here, and nothing changes."""
    users, next_cursor = service.list_users(session=session, limit=limit, cursor=cursor)
    locked = service.locked_everywhere(session=session, users=users, keys=runtime.throttle_keys)
    return {"items": [user_public(user, locked=user.id in locked) for user in users], "next_cursor": next_cursor}


class DisableAnswer(UserPublic):
    confirmation_pending: bool = Field(description=(
        "An admin disabled while another admin checks grants: disabled now, but still counted among the admins who "
        "approve until another admin confirms it (`/api/admin/approvals`, action `user.disable`) or the operator "
        "does (`rehab users disable`); rejecting it enables the account again."))


@admin_router.post("/users/{user_id}/disable", response_model=DisableAnswer, summary="Disable a staff user at once",
                   responses={409: {"description": "This is the last enabled admin."}})
async def disable_user(user_id: str, runtime: RuntimeDep, principal: Admin) -> DisableAnswer:
    def disable(session: Session) -> DisableAnswer:
        user = service.set_user_disabled(session=session, audit=runtime.audit, user_id=user_id, disabled=True,
                                         actor=principal.sub)
        return DisableAnswer(**user_public(user).model_dump(),
                             confirmation_pending=approvals.awaits_confirmation(session=session, user_id=user.id))

    answer = await runtime.uow.run(disable)
    runtime.standing.forget(answer.id)
    return answer


@admin_router.post("/users/{user_id}/revoke-sessions", status_code=204,
                   summary="End every session of a staff user at once (a lost phone, a coerced colleague)")
async def revoke_user_sessions(user_id: str, runtime: RuntimeDep, principal: Admin) -> Response:
    def revoke(session: Session) -> None:
        user = service.get_user(session=session, user_id=user_id)
        sessions.revoke_all(session=session, audit=runtime.audit, user_id=user.id, actor=principal.sub,
                            now=service.now_utc(), why="revoked-by-admin")

    await runtime.uow.run(revoke)
    runtime.standing.forget(user_id)
    return Response(status_code=204)


class ResetAnswer(BaseModel):
    id: str
    status: Literal["active", "pending_approval"] = Field(
        description="`active`: the factor is gone and the user enrols again at the next sign-in.")


@admin_router.post("/users/{user_id}/reset-mfa", response_model=ResetAnswer, responses={
    403: {"description": "Nobody resets their own second factor."}},
                   summary="Reset a lost second factor (pending another admin's approval where there is one)")
async def reset_mfa(user_id: str, runtime: RuntimeDep, principal: Admin) -> ResetAnswer:
    def reset(session: Session) -> ResetAnswer:
        pending = service.reset_factor(session=session, audit=runtime.audit, user_id=user_id, actor=principal.sub)
        return ResetAnswer(id=user_id, status=_status(pending))

    answer = await runtime.uow.run(reset)
    runtime.standing.forget(user_id)
    return answer


class EnableAnswer(UserPublic):
    status: Literal["active", "pending_approval"] = Field(
        description="`active`: enabled now. `pending_approval`: still disabled until another admin approves the "
                    "enabling (separation of duties, where two or more admins are enabled).")


@admin_router.post("/users/{user_id}/enable", response_model=EnableAnswer, summary="Enable a staff user again")
async def enable_user(user_id: str, runtime: RuntimeDep, principal: Admin) -> EnableAnswer:
    user = await runtime.uow.run(lambda session: service.set_user_disabled(
        session=session, audit=runtime.audit, user_id=user_id, disabled=False, actor=principal.sub))
    runtime.standing.forget(user.id)
    return EnableAnswer(**user_public(user).model_dump(), status=_status(user.disabled))


@admin_router.post("/clients", status_code=201, response_model=ApiClientIssued, responses=_PARTNER_CHECKED,
                   openapi_extra=HONOURS_KEY,
                   summary="Register a partner's API client (its setup secret is shown only in this answer; the "
                           "partner activates the client with it, POST /auth/clients/activate)")
async def create_client(body: ApiClientCreate, runtime: RuntimeDep, principal: Admin,
                        request: Request = None) -> JSONResponse:  # type: ignore[assignment]  # None: the console's
    await ensure_partner(runtime, body.partner_id, request)
    client_id, secret = service.new_client_credentials()
    secret_hash = await runtime.hasher.hash_async(secret)

    def create(session: Session) -> ApiClientIssued:
        client = service.create_client(session=session, audit=runtime.audit, client_id=client_id,
                                       partner_id=body.partner_id, name=body.name, secret_hash=secret_hash,
                                       actor=principal.sub)
        return ApiClientIssued(client_id=client.client_id, client_secret=secret, partner_id=client.partner_id,
                               name=client.name, status=_status(client.pending_approval))

    issued = await _once_per_key(runtime, request, principal, create)
    if isinstance(issued, Response):  # a replay, or the first answer under a key: kept no-store as well
        return issued
    return JSONResponse(issued.model_dump(), status_code=201, headers=_NO_STORE)  # the secret: never cached


@admin_router.get("/clients", response_model=Page[ApiClientPublic], summary="List partner API clients")
async def list_clients(session: ReadSession, principal: Admin, limit: Limit = 100,
                       cursor: str | None = None) -> dict[str, Any]:
    clients, next_cursor = service.list_clients(session=session, limit=limit, cursor=cursor)
    return {"items": [client_public(client) for client in clients], "next_cursor": next_cursor}


@admin_router.post("/clients/{client_id}/revoke", response_model=ApiClientPublic,
                   summary="Revoke a partner API client at once")
async def revoke_client(client_id: str, runtime: RuntimeDep, principal: Admin) -> ApiClientPublic:
    client = await runtime.uow.run(lambda session: service.revoke_client(
        session=session, audit=runtime.audit, client_id=client_id, actor=principal.sub))
    runtime.standing.forget(client.client_id)
    return client_public(client)


# --- approvals (separation of duties) ---------------------------------------------------------------------------

@admin_router.get("/approvals", response_model=Page[ApprovalPublic],
                  summary="What admins asked for and what was decided, newest first")
async def list_approvals(session: ReadSession, principal: Admin, status: Literal["pending", "approved", "rejected"] |
                         None = None, limit: Limit = 100, cursor: str | None = None) -> dict[str, Any]:
    items, next_cursor = approvals.list_page(session=session, status=status, limit=limit, cursor=cursor)
    return {"items": approvals.shown(session=session, asked=items), "next_cursor": next_cursor}


@admin_router.post("/approvals/{approval_id}/approve", response_model=ApprovalPublic, responses={
    403: {"description": "Nobody approves their own request."},
    409: {"description": "The request was decided already."}},
                   summary="Approve another admin's request: it takes effect now")
async def approve(approval_id: str, runtime: RuntimeDep, principal: Admin) -> ApprovalPublic:
    return await _decide(runtime, approval_id, principal, approve=True)


@admin_router.post("/approvals/{approval_id}/reject", response_model=ApprovalPublic, responses={
    403: {"description": "Nobody rejects their own request."},
    409: {"description": "The request was decided already."}},
                   summary="Reject another admin's request")
async def reject(approval_id: str, runtime: RuntimeDep, principal: Admin) -> ApprovalPublic:
    return await _decide(runtime, approval_id, principal, approve=False)


async def _decide(runtime: GatewayRuntime, approval_id: str, principal: Principal, *, approve: bool) -> ApprovalPublic:
    def decide(session: Session) -> ApprovalPublic:
        decision = approvals.decide(session=session, audit=runtime.audit, approval_id=approval_id,
                                    actor=principal.sub, approve=approve)
        return approvals.shown(session=session, asked=[decision.approval])[0].model_copy(
            update={"activation_code": decision.activation_code})

    decided = await runtime.uow.run(decide)
    runtime.standing.forget(decided.target_id)
    return decided


# --- the system's state (admin, auditor) -------------------------------------------------------------------------


class GatewayState(BaseModel):
    status: Literal["ready", "not ready"]
    database: str
    migrations: str
    keys: Literal["sealed", "unsealed"] | None = None


class ServiceState(BaseModel):
    status: Literal["ready", "not ready", "unreachable"]
    database: str | None = None
    migrations: str | None = None
    nats: str | None = None
    keys: Literal["sealed", "unsealed"] | None = Field(default=None, description="`sealed` after `rehab seal` or "
                                                      "POST /api/admin/seal, until `rehab unseal`.")
    detail: str | None = None


class SystemStatus(BaseModel):
    gateway: GatewayState
    services: dict[str, ServiceState]
    key_custody: str


@admin_router.get("/status", response_model=SystemStatus, response_model_exclude_none=True,
                  summary="The gateway, every service behind it, and the key custody in force")
async def system_status(runtime: RuntimeDep, principal: AdminOrAuditor) -> Any:
    # The gateway's /readyz says only whether the gateway can serve; a service that is down shows here.
    return await runtime.status()


# --- seal: every process forgets its keys at once (SPEC §8) ------------------------------------------------------
#
# For a raid or a coerced operator. The gateway seals itself, then sends the signed command on NATS to every
# process (kit.control) and answers who confirmed within 2 seconds. There is deliberately no HTTP unseal: a stolen
# admin session must be able to close the system, never to open it again; unsealing is `rehab unseal`, on the
# server, by whoever holds the operator's key.


class SealConfirmation(BaseModel):
    process: str
    instance: str = Field(description="Which replica: host and process id.")
    sealed: bool


class SealAnswer(BaseModel):
    processes: list[SealConfirmation] = Field(description="Every process that confirmed within 2 seconds, the "
                                                          "gateway that answered first.")
    broadcast: Literal["sent", "not-sent"] = Field(description="`not-sent`: NATS was out of reach (or the gateway "
                                                               "has no key to sign with): the processes sharing this "
                                                               "gateway's state folder seal themselves within a "
                                                               "second from the mark it left (kit.control), others "
                                                               "do not; run `rehab seal` on the server.")


async def seal_all(runtime: GatewayRuntime, principal: Principal) -> SealAnswer:
    """Seal this gateway, then every process; for the API and the console alike."""
    custody = runtime.custody
    assert custody is not None
    if not custody.sealed:
        try:  # before the audit key is gone; a seal is never held back by its audit entry
            await runtime.uow.run(lambda session: runtime.audit.record(
                session, actor=principal.sub, action="keys.sealed", target_id=None))
        except Exception as exc:
            log.warning("seal not audited", error_type=type(exc).__name__)
    custody.seal()
    log.warning("keys sealed by an admin: every key forgotten until `rehab unseal`", actor=principal.sub)
    try:  # a gateway restarted now starts sealed, and so does every process on this machine (kit.control)
        control.mark_sealed(runtime.settings.state_dir)
    except OSError as exc:
        log.error("seal mark not left", error_type=type(exc).__name__)
    own = control.instance_name()
    answers: list[dict[str, Any]] = []
    seed_file = runtime.settings.nats_seed_path
    nc = runtime.bus.nc
    broadcast: Literal["sent", "not-sent"] = "not-sent"
    if seed_file is not None and nc is not None and nc.is_connected:
        try:
            answers = await control.send_command(nc, seed_file.read_bytes(), control.SEAL)
            broadcast = "sent"
        except Exception as exc:
            log.error("seal command not sent on NATS", error_type=type(exc).__name__)
    if not any(answer["process"] == "gateway" and answer["instance"] == own for answer in answers):
        answers.insert(0, {"process": "gateway", "instance": own, "sealed": custody.sealed})
    else:
        answers.sort(key=lambda answer: (answer["process"] != "gateway" or answer["instance"] != own))
    return SealAnswer(processes=[SealConfirmation(**answer) for answer in answers], broadcast=broadcast)


@admin_router.post("/seal", status_code=202, response_model=SealAnswer,
                   summary="Seal every key now (a raid): every process forgets its keys within 2 seconds; only "
                           "`rehab unseal` on the server opens them again")
async def seal(runtime: RuntimeDep, principal: Admin) -> SealAnswer:
    return await seal_all(runtime, principal)


# --- public documents --------------------------------------------------------------------------------------------

public_router = APIRouter()


@public_router.get("/.well-known/jwks.json", tags=["auth"], summary="The public key that signs access tokens (JWKS)")
async def jwks(request: Request) -> JSONResponse:
    # The key is held in memory: no database behind this answer (a route taking the runtime would be said to have one).
    runtime: GatewayRuntime = request.app.state.runtime
    return JSONResponse({"keys": [runtime.jwk]}, headers={"Cache-Control": "public, max-age=300"})


@public_router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request, runtime: RuntimeDep) -> JSONResponse:
    return JSONResponse(await runtime.merged_openapi(request.app))


@public_router.get("/asyncapi.json", include_in_schema=False)
async def asyncapi_document(runtime: RuntimeDep) -> JSONResponse:
    """Every event subject and payload (AsyncAPI 3), generated by each service from its event models."""
    return JSONResponse(await runtime.merged_asyncapi())


@public_router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
async def docs(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    return HTMLResponse(docs_page(await runtime.merged_openapi(request.app)))
