"""The gateway's own routes: tokens (OAuth2), the caller, identity administration, and the public documents.

Like a service's, every write runs its use case through `runtime.uow` (kit.db.UnitOfWork: the gateway's own
database and audit trail); the lists read through a `ReadSession`."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from gateway import domain, service
from gateway.access import GatewayPrincipal, gateway_role
from gateway.models import (
    ApiClient,
    ApiClientCreate,
    ApiClientIssued,
    ApiClientPublic,
    User,
    UserCreate,
    UserCreated,
    UserPublic,
)
from gateway.openapi import docs_page
from gateway.runtime import GatewayRuntime, RuntimeDep
from kit.auth import PARTNER_ROLE, Principal
from kit.pagination import Page
from kit.problems import Problem
from kit.service import ReadSession

# --- tokens and the caller ---------------------------------------------------------------------------------------

auth_router = APIRouter(tags=["auth"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


class Me(BaseModel):
    sub: str
    roles: list[str]
    partner_id: str | None


_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> Problem:
    """A problem document that also carries RFC 6749's `error` code, so OAuth2 clients understand it."""
    return Problem(status, detail, kind=error.replace("_", "-"), extra={"error": error},
                   headers={**_NO_STORE, **(headers or {})})


def _bad_credentials(error: str = "invalid_grant", headers: dict[str, str] | None = None) -> Problem:
    # One answer for every failure (unknown user, wrong password, locked, disabled): it tells an attacker nothing.
    return oauth_error(401, error, "The credentials are not valid.", headers)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@auth_router.post(
    "/auth/token", response_model=TokenResponse,
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
    scope: Annotated[str | None, Form()] = None,  # accepted and ignored: access follows roles, not scopes
) -> JSONResponse:
    await runtime.signin_limit.spend(client_address(request))
    if grant_type == "password":
        if not username or not password:
            raise oauth_error(400, "invalid_request", "The password grant needs `username` and `password`.")
        token = await _password_grant(runtime, username, password)
    elif grant_type == "client_credentials":
        basic = _basic_credentials(request)
        if basic:
            client_id, client_secret = basic
        if not client_id or not client_secret:
            raise oauth_error(400, "invalid_request", "The client_credentials grant needs `client_id` and `client_secret`.")
        token = await _client_grant(runtime, client_id, client_secret, used_basic=basic is not None)
    elif not grant_type:
        raise oauth_error(400, "invalid_request", "`grant_type` is required.")
    else:
        raise oauth_error(400, "unsupported_grant_type", "Only the password and client_credentials grants are supported.")
    body = {"access_token": token, "token_type": "bearer", "expires_in": runtime.issuer.ttl_seconds}
    return JSONResponse(body, headers=_NO_STORE)


async def _password_grant(runtime: GatewayRuntime, username: str, password: str) -> str:
    ticket = await runtime.uow.run(lambda session: service.reserve_sign_in(
        session=session, audit=runtime.audit, username=username, policy=runtime.lockout))
    if ticket.password_hash is None:
        await runtime.hasher.matches_async(None, password)  # as slow as a real check: the answer time tells nothing
        raise _bad_credentials()
    succeeded = await runtime.hasher.matches_async(ticket.password_hash, password)
    new_hash = None
    if succeeded and runtime.hasher.needs_rehash(ticket.password_hash):
        new_hash = await runtime.hasher.hash_async(password)
    await runtime.uow.run(lambda session: service.settle_sign_in(
        session=session, audit=runtime.audit, ticket=ticket, succeeded=succeeded, policy=runtime.lockout,
        new_hash=new_hash))
    if not succeeded:
        raise _bad_credentials()
    return runtime.issuer.issue(sub=ticket.user_id, roles=ticket.roles)


async def _client_grant(runtime: GatewayRuntime, client_id: str, client_secret: str, *, used_basic: bool) -> str:
    with runtime.uow.read() as session:
        client = service.client_for_sign_in(session=session, client_id=client_id)
    succeeded = await runtime.hasher.matches_async(client.secret_hash if client else None, client_secret)
    await runtime.uow.run(lambda session: service.record_client_sign_in(
        session=session, audit=runtime.audit, client_id=client.client_id if client else None, succeeded=succeeded))
    if not succeeded or client is None:
        raise _bad_credentials("invalid_client", {"WWW-Authenticate": 'Basic realm="rehab"'} if used_basic else None)
    return runtime.issuer.issue(sub=client.client_id, roles=[PARTNER_ROLE], partner_id=client.partner_id)


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
async def me(principal: GatewayPrincipal) -> dict[str, Any]:
    return {"sub": principal.sub, "roles": sorted(principal.roles), "partner_id": principal.partner_id}


# --- identity administration (admin) -----------------------------------------------------------------------------

admin_router = APIRouter(prefix="/api/admin", tags=["admin"])


Admin = Annotated[Principal, Depends(gateway_role("admin"))]
Limit = Annotated[int, Query(ge=1, le=500)]


def user_public(user: User) -> UserPublic:
    return UserPublic(id=user.id, username=user.username, roles=user.roles, disabled=user.disabled,
                      locked=domain.is_locked(user.locked_until, service.now_utc()), created_at=user.created_at)


def client_public(client: ApiClient) -> ApiClientPublic:
    return ApiClientPublic(client_id=client.client_id, partner_id=client.partner_id, name=client.name,
                           revoked=client.revoked_at is not None, created_at=client.created_at)


@admin_router.post("/users", status_code=201, response_model=UserCreated, summary="Create a staff user")
async def create_user(body: UserCreate, runtime: RuntimeDep, principal: Admin) -> UserCreated:
    weakness = domain.password_weakness(body.password, username=body.username)
    if weakness:
        raise Problem(422, weakness, kind="weak-password")
    password_hash = await runtime.hasher.hash_async(body.password)  # before any transaction: it takes a while
    user = await runtime.uow.run(lambda session: service.add_user(
        session=session, audit=runtime.audit, username=body.username, roles=body.roles, password_hash=password_hash,
        actor=principal.sub))
    return UserCreated(id=user.id, username=user.username, roles=user.roles)


@admin_router.get("/users", response_model=Page[UserPublic], summary="List staff users")
async def list_users(session: ReadSession, principal: Admin, limit: Limit = 100,
                     cursor: str | None = None) -> dict[str, Any]:
    users, next_cursor = service.list_users(session=session, limit=limit, cursor=cursor)
    return {"items": [user_public(user) for user in users], "next_cursor": next_cursor}


@admin_router.post("/users/{user_id}/disable", response_model=UserPublic, summary="Disable a staff user at once")
async def disable_user(user_id: str, runtime: RuntimeDep, principal: Admin) -> UserPublic:
    user = await runtime.uow.run(lambda session: service.set_user_disabled(
        session=session, audit=runtime.audit, user_id=user_id, disabled=True, actor=principal.sub))
    runtime.standing.forget(user.id)
    return user_public(user)


@admin_router.post("/users/{user_id}/enable", response_model=UserPublic, summary="Enable a staff user again")
async def enable_user(user_id: str, runtime: RuntimeDep, principal: Admin) -> UserPublic:
    user = await runtime.uow.run(lambda session: service.set_user_disabled(
        session=session, audit=runtime.audit, user_id=user_id, disabled=False, actor=principal.sub))
    runtime.standing.forget(user.id)
    return user_public(user)


@admin_router.post("/clients", status_code=201, response_model=ApiClientIssued,
                   summary="Register a partner's API client (the secret is shown only in this answer)")
async def create_client(body: ApiClientCreate, runtime: RuntimeDep, principal: Admin) -> JSONResponse:
    client_id, secret = service.new_client_credentials()
    secret_hash = await runtime.hasher.hash_async(secret)
    client = await runtime.uow.run(lambda session: service.add_client(
        session=session, audit=runtime.audit, client_id=client_id, partner_id=body.partner_id, name=body.name,
        secret_hash=secret_hash, actor=principal.sub))
    issued = ApiClientIssued(client_id=client.client_id, client_secret=secret, partner_id=client.partner_id,
                             name=client.name)
    return JSONResponse(issued.model_dump(), status_code=201, headers=_NO_STORE)


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


# --- the system's state (admin, auditor) -------------------------------------------------------------------------


async def _admin_or_auditor(principal: GatewayPrincipal) -> Principal:
    if not principal.roles & {"admin", "auditor"}:
        raise Problem(403, "Your role does not allow this action.", kind="forbidden")
    return principal


class GatewayState(BaseModel):
    status: Literal["ready", "not ready"]
    database: str
    migrations: str


class ServiceState(BaseModel):
    status: Literal["ready", "not ready", "unreachable"]
    database: str | None = None
    migrations: str | None = None
    nats: str | None = None
    detail: str | None = None


class SystemStatus(BaseModel):
    gateway: GatewayState
    services: dict[str, ServiceState]
    key_custody: str


@admin_router.get("/status", response_model=SystemStatus, response_model_exclude_none=True,
                  summary="The gateway, every service behind it, and the key custody in force")
async def system_status(runtime: RuntimeDep, principal: Annotated[Principal, Depends(_admin_or_auditor)]) -> Any:
    # The gateway's /readyz says only whether the gateway can serve; a service that is down shows here.
    return await runtime.status()


# --- public documents --------------------------------------------------------------------------------------------

public_router = APIRouter()


@public_router.get("/.well-known/jwks.json", tags=["auth"], summary="The public key that signs access tokens (JWKS)")
async def jwks(runtime: RuntimeDep) -> JSONResponse:
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
