"""The gateway's use cases: staff users, partner clients and sign-ins. Each is a function of a session that changes
rows and writes its audit entry in the caller's transaction and never commits: the route runs it as a unit of
`runtime.uow`, `rehab users …` in a transaction of its own. Passwords and secrets arrive here already hashed
(hashing is slow and happens off the event loop). What the services must know of an account (it took effect, its
roles, disabled, enabled) is published in the same unit (`gateway.events`)."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from gateway import activation, approvals, domain, events, sessions
from gateway.models import ApiClient, SignInThrottle, User
from kit.audit import AuditTrail
from kit.auth import PARTNER_ROLE
from kit.db import get_or_raise
from kit.errors import Conflict, Invalid, NotFound, Refused, Sealed
from kit.pagination import keyset_page

UNKNOWN_ACTOR = "unknown"


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- staff users -------------------------------------------------------------------------------------------------

def add_user(*, session: Session, audit: AuditTrail, username: str, roles: list[str], password_hash: str,
             actor: str, partner_id: str | None = None, pending_approval: bool = False,
             must_choose_password: bool = True) -> User:
    """Create a staff user (or a partner's staff member), as it is: the rules are `create_user`'s."""
    user = User(id=str(uuid.uuid4()), username=username, roles=domain.normalise_roles(roles), partner_id=partner_id,
                password_hash=password_hash, pending_approval=pending_approval,
                must_choose_password=must_choose_password, created_at=now_utc())
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("A user with this user name already exists.", code="username-taken") from None
    audit.record(session, actor=actor, action="user.create", target_id=user.id)
    if not pending_approval:  # a pending account is announced when another admin approves it
        events.user_changed(session, events.USER_CREATED, user)
    return user


def create_user(*, session: Session, audit: AuditTrail, username: str, roles: list[str], partner_id: str | None,
                password_hash: str, actor: str) -> User:
    """An admin creates an account: roles that may be held together; with another admin to check, it waits for
    that admin's approval (no sign-in until then)."""
    _check_roles(roles, partner_id)
    pending = domain.needs_approval(enabled_admins=count_checking_admins(session=session))
    user = add_user(session=session, audit=audit, username=username, roles=roles, password_hash=password_hash,
                    actor=actor, partner_id=partner_id, pending_approval=pending)
    if pending:
        approvals.request(session=session, audit=audit, action="user.create", target_id=user.id, actor=actor,
                          roles=user.roles)  # shown to the admin asked to approve the account
    return user


def change_roles(*, session: Session, audit: AuditTrail, user_id: str, roles: list[str], actor: str) -> User:
    """An admin changes another account's roles: never their own; at once with a lone admin, else on approval."""
    user = get_user(session=session, user_id=user_id)
    if user.id == actor:
        raise Refused("No one changes their own roles: another admin must.", code="own-roles")
    _check_roles(roles, user.partner_id)
    if "admin" in user.roles and "admin" not in roles:
        _keep_an_admin(session, user)
    if domain.needs_approval(enabled_admins=count_checking_admins(session=session)):
        approvals.request(session=session, audit=audit, action="user.roles", target_id=user.id, actor=actor,
                          roles=domain.normalise_roles(roles))
        return user
    return approvals.apply_roles(session=session, audit=audit, user=user, roles=roles, actor=actor)


def reset_factor(*, session: Session, audit: AuditTrail, user_id: str, actor: str) -> bool:
    """An admin resets a user's lost second factor (never their own): at once with a lone admin, else on approval.
    Done, the user's sessions end and they enrol again at the next sign-in. True when it waits for approval."""
    user = get_user(session=session, user_id=user_id)
    if user.id == actor:
        raise Refused("No one resets their own second factor: another admin must.", code="own-factor")
    if domain.needs_approval(enabled_admins=count_checking_admins(session=session)):
        approvals.request(session=session, audit=audit, action="user.reset_mfa", target_id=user.id, actor=actor)
        return True
    approvals.apply_factor_reset(session=session, audit=audit, user=user, actor=actor)
    return False


def count_enabled_admins(*, session: Session) -> int:
    users = session.exec(select(User).where(User.disabled == False, User.pending_approval == False))  # noqa: E712
    return sum(1 for user in users if "admin" in user.roles)


def count_checking_admins(*, session: Session) -> int:
    """The admins who check each other's grants: the enabled ones, and each admin disabled by another admin until
    a third admin (or the operator) confirms it. Otherwise disabling the only other admin would leave one admin
    free to grant anything alone (SPEC §7.8), while disabling still has to act at once against a stolen account."""
    return count_enabled_admins(session=session) + len(approvals.admins_disabled_unconfirmed(session=session))


def _check_roles(roles: list[str], partner_id: str | None) -> None:
    if refusal := domain.roles_refusal(roles, partner_id=partner_id):
        raise Invalid(refusal, code="roles-not-combinable")


def _keep_an_admin(session: Session, user: User) -> None:
    enabled = session.exec(select(User).where(User.disabled == False))  # noqa: E712
    enabled_admins = {u.id for u in enabled if "admin" in u.roles and not u.pending_approval}
    if domain.removes_last_admin(enabled_admin_ids=enabled_admins, user_id=user.id):
        raise Conflict("This is the last enabled admin; enable or create another admin first.", code="last-admin")


def get_user(*, session: Session, user_id: str) -> User:
    return get_or_raise(session, User, user_id, NotFound("There is no such user.", code="user-not-found"))


def find_user(*, session: Session, username: str) -> User | None:
    return session.exec(select(User).where(User.username == username.strip().lower())).first()


def set_user_disabled(*, session: Session, audit: AuditTrail, user_id: str, disabled: bool, actor: str,
                      by_operator: bool = False) -> User:
    """Disable a user at once (every session ends, their tokens stop working at the gateway), or enable them again:
    at once with a lone admin, on another admin's approval otherwise.

    An admin disabled by another admin, where two or more were enabled, is still counted among those who check
    grants until a third admin confirms it (an approval request, `user.disable`) or the operator does, from the
    machine (`rehab users disable`, `by_operator`)."""
    user = get_user(session=session, user_id=user_id)
    if by_operator and disabled:
        approvals.confirm_disabling(session=session, audit=audit, user=user, actor=actor)
    if disabled and not user.disabled and "admin" in user.roles:
        _keep_an_admin(session, user)
    if user.disabled == disabled:
        return user
    if not disabled and domain.needs_approval(enabled_admins=count_checking_admins(session=session)):
        approvals.request(session=session, audit=audit, action="user.enable", target_id=user.id, actor=actor)
        return user
    if (disabled and not by_operator and "admin" in user.roles and not user.pending_approval
            and domain.needs_approval(enabled_admins=count_checking_admins(session=session))):
        approvals.request(session=session, audit=audit, action="user.disable", target_id=user.id, actor=actor)
    if not disabled:
        approvals.close_disabling(session=session, user=user, actor=actor)
    user.disabled = disabled
    session.add(user)
    audit.record(session, actor=actor, action="user.disable" if disabled else "user.enable", target_id=user.id)
    if not user.pending_approval:
        events.user_changed(session, events.USER_DISABLED if disabled else events.USER_ENABLED, user)
    if disabled:
        sessions.revoke_all(session=session, audit=audit, user_id=user.id, actor=actor, now=now_utc(),
                            why="user-disabled")
    return user


def unlock_user(*, session: Session, audit: AuditTrail, user_id: str, actor: str, keys: domain.ThrottleKeys) -> User:
    """Clear a user's failed sign-ins and locks, from every address."""
    user = get_user(session=session, user_id=user_id)
    session.execute(delete(SignInThrottle).where(SignInThrottle.everywhere == keys.everywhere(user.username)))
    audit.record(session, actor=actor, action="user.unlock", target_id=user.id)
    return user


def set_password(*, session: Session, audit: AuditTrail, user_id: str, password_hash: str, actor: str) -> User:
    """Give a user a new password (an operator's reset): one someone else knows, so the person chooses their own at
    their next sign-in. Every session of theirs ends: a reset is what an operator does for a stolen password, and a
    session opened with it (or renewed from one) must not outlive it."""
    user = get_user(session=session, user_id=user_id)
    user.password_hash = password_hash
    user.must_choose_password = True
    user.activation_hash = None  # the operator on the server vouches for the person: no second admin's code
    session.add(user)
    audit.record(session, actor=actor, action="user.password", target_id=user.id)
    sessions.revoke_all(session=session, audit=audit, user_id=user.id, actor=actor, now=now_utc(),
                        why="password-reset")
    return user


def choose_password(*, session: Session, audit: AuditTrail, user_id: str, password_hash: str) -> User:
    """A person's own new password. Every session of theirs ends (a session opened with the old one, by whoever
    knew it, goes with it): they sign in again with the new one."""
    user = get_user(session=session, user_id=user_id)
    user.password_hash = password_hash
    user.must_choose_password = False
    user.activation_hash = None  # used once
    session.add(user)
    audit.record(session, actor=user.id, action="user.password", target_id=user.id)
    sessions.revoke_all(session=session, audit=audit, user_id=user.id, actor=user.id, now=now_utc(),
                        why="password-chosen")
    return user


def list_users(*, session: Session, limit: int, cursor: str | None) -> tuple[list[User], str | None]:
    """Users by user name, a page at a time."""
    return keyset_page(session, select(User), order=[User.username], limit=limit, cursor=cursor)


def count_users(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)).one()


# --- partner API clients -----------------------------------------------------------------------------------------

def new_client_credentials() -> tuple[str, str]:
    """A client id (not secret: it appears in logs and the audit trail) and a setup secret."""
    return f"pc_{secrets.token_hex(12)}", new_client_secret()


def new_client_secret() -> str:
    """256 random bits."""
    return secrets.token_urlsafe(32)


def add_client(*, session: Session, audit: AuditTrail, client_id: str, partner_id: str, name: str,
               secret_hash: str, actor: str, pending_approval: bool = False) -> ApiClient:
    """Register a partner's API client, as it is: the rules are `create_client`'s. Its setup secret is stored only as
    a hash; the client gets no token until that secret is exchanged for its own (`activate_client`)."""
    client = ApiClient(client_id=client_id, partner_id=partner_id, name=name, secret_hash=secret_hash,
                       pending_approval=pending_approval, created_at=now_utc())
    session.add(client)
    audit.record(session, actor=actor, action="client.create", target_id=client_id)
    return client


def create_client(*, session: Session, audit: AuditTrail, client_id: str, partner_id: str, name: str,
                  secret_hash: str, actor: str) -> ApiClient:
    """An admin issues a partner's API client: with another admin to check, it waits for that admin's approval,
    which shows them its activation code (gateway.approvals)."""
    pending = domain.needs_approval(enabled_admins=count_checking_admins(session=session))
    client = add_client(session=session, audit=audit, client_id=client_id, partner_id=partner_id, name=name,
                        secret_hash=secret_hash, actor=actor, pending_approval=pending)
    if pending:
        approvals.request(session=session, audit=audit, action="client.create", target_id=client_id, actor=actor)
    return client


def client_for_activation(*, session: Session, client_id: str, lock: bool = False) -> ApiClient | None:
    """The client, if it may be activated now: approved, not revoked, its setup secret not yet exchanged."""
    client = session.get(ApiClient, client_id, with_for_update=lock) if client_id else None
    if client is None or client.revoked_at is not None or client.pending_approval or client.activated_at is not None:
        return None
    return client


def activation_code_fits(client: ApiClient, code: str | None) -> bool:
    """Whether `code` is the client's activation code, where it has one (a lone admin's client has none)."""
    return client.activation_hash is None or activation.matches(client.activation_hash, code)


def activate_client(*, session: Session, audit: AuditTrail, client_id: str, setup_hash: str,
                    activation_code: str | None, secret_hash: str) -> bool:
    """Put the client's own secret in place of the setup secret whose hash was checked (`setup_hash`): the setup
    secret works no more. False, audited as a failed sign-in, when the code is not the client's or another
    activation (or a revocation) came first: the setup secret works once."""
    client = client_for_activation(session=session, client_id=client_id, lock=True)
    if client is None or client.secret_hash != setup_hash or not activation_code_fits(client, activation_code):
        record_client_sign_in(session=session, audit=audit, client_id=client_id, succeeded=False)
        return False
    client.secret_hash = secret_hash
    client.activated_at = now_utc()
    client.activation_hash = None  # used once
    session.add(client)
    audit.record(session, actor=client_id, action="client.activated", target_id=client_id)
    return True


def revoke_client(*, session: Session, audit: AuditTrail, client_id: str, actor: str) -> ApiClient:
    """Revoke a client: no new tokens, and its current tokens stop working at the gateway and, announced as the end
    of every session of its id (a client's tokens carry no session), at every service too (kit.revocation)."""
    client = get_or_raise(session, ApiClient, client_id, NotFound("There is no such API client.", code="client-not-found"))
    if client.revoked_at is None:
        client.revoked_at = now_utc()
        session.add(client)
        audit.record(session, actor=actor, action="client.revoke", target_id=client_id)
        events.sessions_revoked(session, user_id=client_id, session_ids=[], all=True, at=client.revoked_at)
    return client


def list_clients(*, session: Session, limit: int, cursor: str | None) -> tuple[list[ApiClient], str | None]:
    """Clients by id, a page at a time."""
    return keyset_page(session, select(ApiClient), order=[ApiClient.client_id], limit=limit, cursor=cursor)


# --- sign-in -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInTicket:
    """One password sign-in in progress. `wait_seconds` > 0: refused before any check (the user name waits here).
    `password_hash` None: refused whatever the password (no such user, or disabled). `locked_everywhere` > 0: the
    name is locked everywhere for that long; only the right password with a second factor passes, and any other
    answer is that wait."""

    user_id: str | None
    password_hash: str | None
    roles: list[str]
    here: str
    everywhere: str
    wait_seconds: int = 0
    partner_id: str | None = None
    username: str | None = None  # the staff handle, for the access token's `username` claim
    locked_everywhere: int = 0
    codes: str = ""  # the row of wrong one-time codes sent with the right password (ThrottleKeys.codes)
    codes_locked: int = 0  # > 0: the code is not checked for that long, the right one included
    refused: str = ""  # with no `password_hash`: the audit entry `settle_refused` writes once the decoy check ran


def reserve_sign_in(*, session: Session, audit: AuditTrail, username: str, address: str,
                    policy: domain.SignInPolicy, keys: domain.ThrottleKeys) -> SignInTicket:
    """Start a password sign-in. A user name that must wait from this address is refused at once, whether or not
    such a user exists. Otherwise the attempt is counted as failed *before* the password is checked, so that
    parallel guesses meet the wait the first of them sets; `settle_sign_in` takes it back on a success.

    A name locked everywhere is checked all the same (`locked_everywhere`): anyone who knows a user name can lock it
    so, and the owner, with their password and second factor, must still get in. Those tries count from their own
    address as any (guessing the code meets the waits there), but not everywhere: the lock is already on."""
    now = now_utc()
    here, everywhere = keys.here(username, address), keys.everywhere(username)
    user = find_user(session=session, username=username)
    actor = user.id if user else UNKNOWN_ACTOR
    rows = {key: _throttle_row(session, key, everywhere, now, policy) for key in (here, everywhere)}
    locked = domain.seconds_left(rows[everywhere].wait_until, now)
    if wait := domain.seconds_left(rows[here].wait_until, now):
        audit.record(session, actor=actor, action="signin.throttled", target_id=user.id if user else None)
        return SignInTicket(user_id=None, password_hash=None, roles=[], here=here, everywhere=everywhere,
                            wait_seconds=max(wait, locked))
    if any(row not in session for row in rows.values()):  # a name or address new here: old rows make room
        _forget_old_throttles(session, now, policy, keep=list(rows))
    rows[here].failures += 1
    rows[here].wait_until = now + policy.wait_after(rows[here].failures)
    if not locked:
        rows[everywhere].failures += 1
        if lock := policy.wait_everywhere_after(rows[everywhere].failures):
            rows[everywhere].wait_until = now + lock
            if rows[everywhere].failures == policy.lock_everywhere_after:
                audit.record(session, actor=actor, action="user.locked_everywhere",
                             target_id=user.id if user else None)
    session.add_all(rows.values())
    codes = session.get(SignInThrottle, keys.codes(username))  # read for every name: the work tells nothing
    if user is None or user.disabled or user.pending_approval:
        refused = "signin.throttled" if locked else "signin.failed" if user is None else "signin.refused"
        return SignInTicket(user_id=user.id if user else None, password_hash=None, roles=[], here=here,
                            everywhere=everywhere, locked_everywhere=locked, refused=refused)
    return SignInTicket(user_id=user.id, password_hash=user.password_hash, roles=list(user.roles), here=here,
                        everywhere=everywhere, partner_id=user.partner_id, username=user.username,
                        locked_everywhere=locked, codes=keys.codes(username),
                        codes_locked=domain.seconds_left(codes.wait_until, now) if codes else 0)


def settle_sign_in(*, session: Session, audit: AuditTrail, ticket: SignInTicket, succeeded: bool,
                   policy: domain.SignInPolicy, new_hash: str | None = None, wrong_code: bool = False) -> None:
    """Finish a password sign-in that checked its password. A success clears this address's count and the wrong
    codes', and takes back the failure counted everywhere in advance (none is, while the name is locked
    everywhere); a failure stays counted, and is audited as refused by the lock while there is one. `wrong_code`:
    the right password came with a wrong or missing one-time code, counted for the name from every address."""
    assert ticket.user_id is not None and ticket.password_hash is not None
    if wrong_code:
        _count_wrong_code(session, audit, ticket, policy)
    if succeeded:
        cleared = [ticket.here, ticket.codes]
        session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(cleared)))  # type: ignore[attr-defined]
        if not ticket.locked_everywhere:
            session.execute(update(SignInThrottle)
                            .where(SignInThrottle.key == ticket.everywhere, SignInThrottle.failures > 0)
                            .values(failures=SignInThrottle.failures - 1))
        if new_hash:
            session.execute(update(User).where(User.id == ticket.user_id).values(password_hash=new_hash))
        audit.record(session, actor=ticket.user_id, action="signin.ok", target_id=ticket.user_id)
        return
    failed = "signin.throttled" if ticket.locked_everywhere else "signin.failed"
    audit.record(session, actor=ticket.user_id, action=failed, target_id=ticket.user_id)
    here = session.get(SignInThrottle, ticket.here)
    if here is not None and here.failures == policy.lock_after:
        audit.record(session, actor=ticket.user_id, action="user.locked", target_id=ticket.user_id)


def settle_refused(*, session: Session, audit: AuditTrail, ticket: SignInTicket) -> None:
    """Finish a sign-in refused whatever the password (no such user, disabled, awaiting approval), after a check as
    slow as a real one: its audit entry, written in a unit of work of its own after the check, as a wrong password's
    is (`settle_sign_in`), so that neither the time nor the work tells whether the name exists."""
    assert ticket.password_hash is None and ticket.refused
    audit.record(session, actor=ticket.user_id or UNKNOWN_ACTOR, action=ticket.refused, target_id=ticket.user_id)
    session.get(SignInThrottle, ticket.here)  # as settle_sign_in reads it


def _count_wrong_code(session: Session, audit: AuditTrail, ticket: SignInTicket, policy: domain.SignInPolicy) -> None:
    """One more wrong one-time code after the right password (SignInPolicy.lock_codes_after); the lock it reaches
    is audited once, for the admins: someone who has this person's password is guessing their code."""
    now = now_utc()
    row = session.get(SignInThrottle, ticket.codes, with_for_update=True)
    if row is None:
        row = SignInThrottle(key=ticket.codes, everywhere=ticket.everywhere, failures=0, counting_since=now)
    row.failures, row.counting_since = policy.decayed(row.failures, row.counting_since, now)
    row.failures += 1
    if lock := policy.wait_after_wrong_codes(row.failures):
        row.wait_until = now + lock
        if row.failures == policy.lock_codes_after:
            audit.record(session, actor=ticket.user_id, action="user.codes_locked", target_id=ticket.user_id)
    session.add(row)


def _throttle_row(session: Session, key: str, everywhere: str, now: datetime,
                  policy: domain.SignInPolicy) -> SignInThrottle:
    row = session.get(SignInThrottle, key, with_for_update=True)
    if row is None:
        row = SignInThrottle(key=key, everywhere=everywhere, failures=0, counting_since=now)
    elif key == everywhere:
        row.failures, row.counting_since = policy.decayed(row.failures, row.counting_since, now)
    elif row.counting_since <= now - timedelta(seconds=policy.forget_after_seconds) and not domain.seconds_left(
            row.wait_until, now):
        row.failures, row.wait_until, row.counting_since = 0, None, now  # an old count is forgotten
    return row


# Old rows deleted at most with each new one: more than a sign-in adds (two), and never a long delete in a sign-in.
FORGOTTEN_AT_ONCE = 10


def _forget_old_throttles(session: Session, now: datetime, policy: domain.SignInPolicy, *, keep: list[str]) -> None:
    """Delete rows whose failures are all older than `forget_after_seconds` and whose wait is over: they count no
    more, and a row is made for every name typed from every address (unknown names too), which nothing else would
    ever delete. Rows another sign-in holds are left for the next time."""
    old = (select(SignInThrottle.key)
           .where(SignInThrottle.counting_since <= now - timedelta(seconds=policy.forget_after_seconds),
                  or_(SignInThrottle.wait_until.is_(None), SignInThrottle.wait_until <= now),  # type: ignore[union-attr]
                  SignInThrottle.key.not_in(keep))  # type: ignore[attr-defined]
           .limit(FORGOTTEN_AT_ONCE).with_for_update(skip_locked=True))
    session.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(old)))  # type: ignore[attr-defined]


def locked_everywhere(*, session: Session, users: list[User], keys: domain.ThrottleKeys) -> set[str]:
    """Which of `users` are locked out from every address right now (the admin's list shows them). None while the
    keys are sealed (the throttle's rows are named by a keyed hash): nobody signs in then anyway, and the admin's
    pages stay readable."""
    try:
        by_key = {keys.everywhere(user.username): user.id for user in users}
    except Sealed:
        return set()
    now = now_utc()
    rows = session.exec(select(SignInThrottle).where(SignInThrottle.key.in_(by_key))).all()  # type: ignore[attr-defined]
    return {by_key[row.key] for row in rows if domain.seconds_left(row.wait_until, now)}


def client_for_sign_in(*, session: Session, client_id: str) -> ApiClient | None:
    """The client, if it exists and is not revoked (approved and activated or not: `_client_grant` tells a client
    whose setup secret is right that it awaits approval, or must be activated first)."""
    client = session.get(ApiClient, client_id) if client_id else None
    return client if client is not None and client.revoked_at is None else None


def record_client_sign_in(*, session: Session, audit: AuditTrail, client_id: str | None, succeeded: bool,
                          activated: bool = True) -> None:
    """Audit a client-credentials sign-in: a right secret of a client not yet activated is refused."""
    action = ("signin.ok" if activated else "signin.refused") if succeeded else "signin.failed"
    audit.record(session, actor=client_id or UNKNOWN_ACTOR, action=action, target_id=client_id)


# --- standing of a token's subject -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Standing:
    """What may a token's subject still do: the roles it holds now, and its sessions revoked lately (their access
    tokens are refused although unexpired)."""

    roles: frozenset[str]
    revoked_sessions: frozenset[str] = frozenset()


def current_standing(*, session: Session, sub: str, partner_id: str | None, since: datetime) -> Standing | None:
    """`sub`'s standing right now, or None when it is disabled, revoked, awaiting approval or gone."""
    if partner_id is not None and (client := session.get(ApiClient, sub)) is not None:
        if (client.revoked_at is not None or client.pending_approval or client.activated_at is None
                or client.partner_id != partner_id):
            return None
        return Standing(roles=frozenset({PARTNER_ROLE}))
    user = session.get(User, sub)
    if user is None or user.disabled or user.pending_approval or user.partner_id != partner_id:
        return None
    return Standing(roles=frozenset(user.roles),
                    revoked_sessions=sessions.revoked_recently(session=session, user_id=sub, since=since))


# --- the first admin ---------------------------------------------------------------------------------------------

FIRST_ADMIN = "admin"  # the user name of the account made at the first start (SPEC §3)


def bootstrap_admin(*, session: Session, audit: AuditTrail, password_hash: str,
                    generated: bool) -> User | None:
    """Create `admin` when there is no user at all; None when someone else (another replica) was first. The
    operator's own password (REHAB_ADMIN_PASSWORD) is theirs to keep; a `generated` one lies in clear in a file on the
    server's disk, so the first sign-in asks the admin to choose their own before anything else (which deletes it)."""
    if count_users(session=session):
        return None
    try:
        return add_user(session=session, audit=audit, username=FIRST_ADMIN, roles=["admin"],
                        password_hash=password_hash, actor="system", must_choose_password=generated)
    except Conflict:
        return None
