"""The gateway's use cases: staff users, partner clients and sign-ins. Each is a function of a session that changes
rows and writes its audit entry in the caller's transaction and never commits: the route runs it as a unit of
`runtime.uow`, `rehab users …` in a transaction of its own. Passwords and secrets arrive here already hashed
(hashing is slow and happens off the event loop)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from gateway import domain
from gateway.models import ApiClient, User
from kit.audit import AuditTrail
from kit.auth import PARTNER_ROLE
from kit.db import get_or_raise
from kit.errors import Conflict, NotFound
from kit.pagination import keyset_page

UNKNOWN_ACTOR = "unknown"


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- staff users -------------------------------------------------------------------------------------------------

def add_user(*, session: Session, audit: AuditTrail, username: str, roles: list[str], password_hash: str,
             actor: str) -> User:
    """Create a staff user."""
    user = User(id=str(uuid.uuid4()), username=username, roles=domain.normalise_roles(roles),
                password_hash=password_hash, created_at=now_utc())
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("A user with this user name already exists.", code="username-taken") from None
    audit.record(session, actor=actor, action="user.create", target_id=user.id)
    return user


def get_user(*, session: Session, user_id: str) -> User:
    return get_or_raise(session, User, user_id, NotFound("There is no such user.", code="user-not-found"))


def find_user(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip().lower())).first()


def set_user_disabled(*, session: Session, audit: AuditTrail, user_id: str, disabled: bool, actor: str) -> User:
    """Disable a user (their tokens stop working at the gateway) or enable them again."""
    user = get_user(session=session, user_id=user_id)
    if disabled and not user.disabled and "admin" in user.roles:
        enabled = session.exec(select(User).where(User.disabled == False))  # noqa: E712
        enabled_admins = {u.id for u in enabled if "admin" in u.roles}
        if domain.removes_last_admin(enabled_admin_ids=enabled_admins, user_id=user.id):
            raise Conflict("This is the last enabled admin; enable or create another admin first.", code="last-admin")
    if user.disabled != disabled:
        user.disabled = disabled
        session.add(user)
        audit.record(session, actor=actor, action="user.disable" if disabled else "user.enable", target_id=user.id)
    return user


def unlock_user(*, session: Session, audit: AuditTrail, user_id: str, actor: str) -> User:
    """Clear a user's failed sign-ins and lock."""
    user = get_user(session=session, user_id=user_id)
    user.failed_attempts = 0
    user.locked_until = None
    session.add(user)
    audit.record(session, actor=actor, action="user.unlock", target_id=user.id)
    return user


def set_password(*, session: Session, audit: AuditTrail, user_id: str, password_hash: str, actor: str) -> User:
    """Give a user a new password (and a fresh start on failed sign-ins)."""
    user = get_user(session=session, user_id=user_id)
    user.password_hash = password_hash
    user.failed_attempts = 0
    user.locked_until = None
    session.add(user)
    audit.record(session, actor=actor, action="user.password", target_id=user.id)
    return user


def list_users(*, session: Session, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
    """Users by user name, a page at a time."""
    return keyset_page(session, select(User), order=[User.username], limit=limit, cursor=cursor)


def count_users(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


# --- partner API clients -----------------------------------------------------------------------------------------

def new_client_credentials() -> tuple[str, str]:
    """A client id (not secret: it appears in logs and the audit trail) and a 256-bit secret."""
    return f"pc_{secrets.token_hex(12)}", secrets.token_urlsafe(32)


def add_client(*, session: Session, audit: AuditTrail, client_id: str, partner_id: str, name: str,
               secret_hash: str, actor: str) -> ApiClient:
    """Register a partner's API client; its secret is stored only as a hash."""
    client = ApiClient(client_id=client_id, partner_id=partner_id, name=name, secret_hash=secret_hash,
                       created_at=now_utc())
    session.add(client)
    audit.record(session, actor=actor, action="client.create", target_id=client_id)
    return client


def revoke_client(*, session: Session, audit: AuditTrail, client_id: str, actor: str) -> ApiClient:
    """Revoke a client: no new tokens, and its current tokens stop working at the gateway."""
    client = get_or_raise(session, ApiClient, client_id, NotFound("There is no such API client.", code="client-not-found"))
    if client.revoked_at is None:
        client.revoked_at = now_utc()
        session.add(client)
        audit.record(session, actor=actor, action="client.revoke", target_id=client_id)
    return client


def list_clients(*, session: Session, limit: int, cursor: str | None) -> tuple[list[ApiClient], str | None]:
    """Clients by id, a page at a time."""
    return keyset_page(session, select(ApiClient), order=[ApiClient.client_id], limit=limit, cursor=cursor)


# --- sign-in -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInTicket:
    """One password sign-in in progress. `password_hash` is None when the attempt is refused whatever the password."""

    user_id: str | None
    password_hash: str | None
    roles: list[str]


def reserve_sign_in(*, session: Session, audit: AuditTrail, username: str, policy: domain.LockoutPolicy) -> SignInTicket:
    """Start a password sign-in: refuse a locked or disabled account; otherwise count the attempt as failed *before*
    the password is checked, so that parallel guesses meet the lock the first of them sets."""
    now = now_utc()
    user = find_user(session=session, username=username)
    if user is None:
        audit.record(session, actor=UNKNOWN_ACTOR, action="signin.failed")
        return SignInTicket(user_id=None, password_hash=None, roles=[])
    if user.disabled or domain.is_locked(user.locked_until, now):
        audit.record(session, actor=user.id, action="signin.refused", target_id=user.id)
        return SignInTicket(user_id=user.id, password_hash=None, roles=[])
    failures = session.execute(
        update(User).where(User.id == user.id).values(failed_attempts=User.failed_attempts + 1)
        .returning(User.failed_attempts)
    ).scalar_one()
    session.execute(update(User).where(User.id == user.id).values(locked_until=now + policy.wait_after(failures)))
    return SignInTicket(user_id=user.id, password_hash=user.password_hash, roles=list(user.roles))


def settle_sign_in(*, session: Session, audit: AuditTrail, ticket: SignInTicket, succeeded: bool,
                   policy: domain.LockoutPolicy, new_hash: str | None = None) -> None:
    """Finish a password sign-in that was allowed to check its password: a success clears the count."""
    assert ticket.user_id is not None and ticket.password_hash is not None
    if succeeded:
        values: dict = {"failed_attempts": 0, "locked_until": None}
        if new_hash:
            values["password_hash"] = new_hash
        session.execute(update(User).where(User.id == ticket.user_id).values(**values))
        audit.record(session, actor=ticket.user_id, action="signin.ok", target_id=ticket.user_id)
    else:
        failures = session.exec(select(User.failed_attempts).where(User.id == ticket.user_id)).one()
        audit.record(session, actor=ticket.user_id, action="signin.failed", target_id=ticket.user_id)
        if policy.locks(failures) and failures == policy.lock_after:
            audit.record(session, actor=ticket.user_id, action="user.locked", target_id=ticket.user_id)


def client_for_sign_in(*, session: Session, client_id: str) -> ApiClient | None:
    """The client, if it exists and is not revoked."""
    client = session.get(ApiClient, client_id) if client_id else None
    return client if client is not None and client.revoked_at is None else None


def record_client_sign_in(*, session: Session, audit: AuditTrail, client_id: str | None, succeeded: bool) -> None:
    """Audit a client-credentials sign-in."""
    audit.record(session, actor=client_id or UNKNOWN_ACTOR, action="signin.ok" if succeeded else "signin.failed",
                 target_id=client_id)


# --- standing of a token's subject -------------------------------------------------------------------------------

def current_roles(*, session: Session, sub: str, partner_id: str | None) -> frozenset[str] | None:
    """The roles `sub` holds right now, or None when it is disabled, revoked or gone."""
    if partner_id is not None:
        client = session.get(ApiClient, sub)
        if client is None or client.revoked_at is not None or client.partner_id != partner_id:
            return None
        return frozenset({PARTNER_ROLE})
    user = session.get(User, sub)
    if user is None or user.disabled:
        return None
    return frozenset(user.roles)


# --- the first admin ---------------------------------------------------------------------------------------------

def bootstrap_admin(*, session: Session, audit: AuditTrail, password_hash: str) -> User | None:
    """Create `admin` when there is no user at all; None when someone else (another replica) was first."""
    if count_users(session=session):
        return None
    try:
        return add_user(session=session, audit=audit, username="admin", roles=["admin"], password_hash=password_hash,
                        actor="system")
    except Conflict:
        return None
