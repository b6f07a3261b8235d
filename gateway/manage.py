"""Operators' commands for staff users and partner API clients, working on the gateway's database directly.

`rehab users …` and `rehab clients …` run this module: `python -m gateway.manage users add NAME --role R` (its help
says `rehab users add`, the way an operator reaches it).
A running gateway notices a disabled user or a revoked client within about a second.
"""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, NoReturn

import typer
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from gateway import domain, service, sessions
from gateway.config import GatewaySettings
from gateway.models import MIGRATIONS_DIR, ApiClientCreate, PartnerId, Role, User, Username, kit_tables
from gateway.passwords import Hasher
from kit import db, migrations
from kit.audit import AuditTrail
from kit.errors import DomainError
from kit.problems import Problem
from kit.text import printable
from kit import custody

app = typer.Typer(name="manage", help="Staff users and partner API clients of the gateway.", no_args_is_help=True,
                  add_completion=False)
users_app = typer.Typer(help="Staff users: add, list, disable, enable, unlock, reset a password.", no_args_is_help=True)
clients_app = typer.Typer(help="Partner API clients: add, list, revoke.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")


RolesOption = Annotated[list[str], typer.Option("--role", "--roles", "-r", help=(
    "admin, caseworker, supervisor, finance, auditor, coordinator or partner_staff (with --partner-id); repeat for "
    "more"))]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin")]


@dataclass
class Desk:
    settings: GatewaySettings
    engine: Engine
    session_factory: sessionmaker[Session]
    audit: AuditTrail
    actor: str

    def hasher(self) -> Hasher:
        return Hasher.from_settings(self.settings)

    def throttle_keys(self) -> domain.ThrottleKeys:
        return domain.ThrottleKeys.derived_from(custody.opened(self.settings).secret_source("audit"))


@contextmanager
def desk() -> Iterator[Desk]:
    """The gateway's database, brought up to date, and its audit trail; the operator is the actor."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = GatewaySettings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    engine = db.make_engine(settings.db_url)
    try:
        migrations.upgrade(engine, MIGRATIONS_DIR)
        yield Desk(settings=settings, engine=engine, session_factory=db.make_session_factory(engine),
                   audit=AuditTrail(kit_tables, custody.opened(settings).secret_source("audit")),
                   actor=f"operator:{getpass.getuser()}")
    except (Problem, DomainError) as problem:
        fail(problem.detail)
    finally:
        engine.dispose()


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def read_new_password(username: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # else getpass warns that it would echo, and the prompt reads EOF: "Aborted."
        fail(f"there is no terminal to ask for {username}'s password on: pass --password-stdin and give it as "
             "stdin's first line")
    else:
        password = typer.prompt(f"Password for {username}", hide_input=True, confirmation_prompt=True)
    if weakness := domain.password_weakness(password, username=username):
        fail(weakness)
    return password


def user_named(session: Session, username: str) -> User:
    user = service.find_user(session=session, username=username)
    if user is None:
        fail(f"there is no user named {username!r}")
    return user


@users_app.command("add")
def users_add(
    username: str,
    roles: RolesOption,
    password_stdin: PasswordStdin = False,
    partner_id: Annotated[str | None, typer.Option(help="For partner_staff: their partner's id.")] = None,
) -> None:
    """Create a staff user (at once: the operator of the machine is not one of the admins who approve each other)."""
    try:
        username = TypeAdapter(Username).validate_python(username)
        roles = [TypeAdapter(Role).validate_python(role) for role in roles]
        partner_id = TypeAdapter(PartnerId | None).validate_python(partner_id)
    except ValidationError:
        fail("user names are 3-64 of a-z 0-9 . _ @ -; roles are admin, caseworker, supervisor, finance, auditor, "
             "coordinator, partner_staff; a partner id is a UUID")
    if refusal := domain.roles_refusal(roles, partner_id=partner_id):
        fail(refusal)
    password = read_new_password(username, password_stdin)
    with desk() as d, db.transaction(d.session_factory) as session:
        if service.find_user(session=session, username=username):
            fail(f"a user named {username!r} already exists")
        user = service.add_user(session=session, audit=d.audit, username=username, roles=roles,
                                password_hash=d.hasher().hash(password), actor=d.actor, partner_id=partner_id)
        typer.echo(f"created {user.username} ({', '.join(user.roles)}): {user.id}")


@users_app.command("list")
def users_list() -> None:
    """List staff users."""
    with desk() as d, db.transaction(d.session_factory) as session:
        cursor = None
        while True:
            users, cursor = service.list_users(session=session, limit=200, cursor=cursor)
            locked = service.locked_everywhere(session=session, users=users, keys=d.throttle_keys())
            for user in users:
                state = ("pending-approval" if user.pending_approval else "disabled" if user.disabled
                         else "locked" if user.id in locked else "active")
                typer.echo(f"{user.username}\t{','.join(user.roles)}\t{state}\t{user.id}")
            if cursor is None:
                break


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: no sign-in, and their tokens stop working at the gateway."""
    with desk() as d, db.transaction(d.session_factory) as session:
        user = service.set_user_disabled(session=session, audit=d.audit, user_id=user_named(session, username).id,
                                         disabled=True, actor=d.actor, by_operator=True)
        typer.echo(f"disabled {user.username}")


@users_app.command("sign-out-everyone")
def users_sign_out_everyone() -> None:
    """End every session of every user: each signs in again. `rehab restore` runs it: a backup holds sessions that
    were ended after it was made (a sign-out everywhere, an admin's revocation), alive again once restored."""
    with desk() as d, db.transaction(d.session_factory) as session:
        users = sessions.revoke_everyone(session=session, audit=d.audit, actor=d.actor, now=service.now_utc(),
                                         why="restored")
        typer.echo(f"every session ended: {users} users sign in again")


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Ask for a disabled user to be enabled again: with two admins or more, it waits for an admin's approval.

    With two admins or more it files a request (/api/admin/approvals, or the console's Approvals page) and the account
    stays disabled until an admin approves it; with fewer it takes effect at once (SPEC §2)."""
    with desk() as d, db.transaction(d.session_factory) as session:
        user = service.set_user_disabled(session=session, audit=d.audit, user_id=user_named(session, username).id,
                                         disabled=False, actor=d.actor)
        if user.disabled:  # two admins or more: an enabling waits for one of them (SPEC §2)
            typer.echo(f"enabling {user.username} waits for an admin's approval (/api/admin/approvals, or the "
                       "console's Approvals page); until then the account stays disabled")
        else:
            typer.echo(f"enabled {user.username}")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Lift a lock after too many failed sign-ins."""
    with desk() as d, db.transaction(d.session_factory) as session:
        user = service.unlock_user(session=session, audit=d.audit, user_id=user_named(session, username).id, actor=d.actor,
                                   keys=d.throttle_keys())
        typer.echo(f"unlocked {user.username}")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: PasswordStdin = False,
) -> None:
    """Give a user a new password (this also lifts a lock and ends their sessions); they choose their own at their next
    sign-in."""
    password = read_new_password(username.strip().lower(), password_stdin)
    with desk() as d, db.transaction(d.session_factory) as session:
        user = user_named(session, username)
        service.set_password(session=session, audit=d.audit, user_id=user.id, password_hash=d.hasher().hash(password),
                             actor=d.actor)
        service.unlock_user(session=session, audit=d.audit, user_id=user.id, actor=d.actor, keys=d.throttle_keys())
        typer.echo(f"new password set for {user.username}; their sessions are ended and any lock lifted")


@clients_app.command("add")
def clients_add(partner_id: str, name: str) -> None:
    """Register a partner's API client (at once, as `users add` makes an account; no activation code: the operator of
    the machine is not one of the admins who approve each other). Its setup secret is printed once and stored only as
    a hash; the partner's system exchanges it for a secret of its own (POST /auth/clients/activate) before any token,
    as a person replaces the password an operator gave them."""
    try:
        wanted = ApiClientCreate(partner_id=partner_id, name=name)
    except ValidationError:
        fail("the partner id must be the partner's UUID (from the partner directory), and the name 1-200 characters "
             "on one line, with something to read")
    client_id, secret = service.new_client_credentials()
    with desk() as d, db.transaction(d.session_factory) as session:
        service.add_client(session=session, audit=d.audit, client_id=client_id, partner_id=wanted.partner_id,
                           name=wanted.name, secret_hash=d.hasher().hash(secret), actor=d.actor)
    typer.echo(f"client_id: {client_id}\nclient_secret: {secret}\n(a setup secret, shown only now: the partner's "
               "system exchanges it once for its own at POST /auth/clients/activate, and gets no token before)")


@clients_app.command("revoke")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: no new tokens, and its current tokens stop working at the gateway."""
    with desk() as d, db.transaction(d.session_factory) as session:
        service.revoke_client(session=session, audit=d.audit, client_id=client_id, actor=d.actor)
        typer.echo(f"revoked {client_id}")


@clients_app.command("list")
def clients_list() -> None:
    """List partner API clients."""
    with desk() as d, db.transaction(d.session_factory) as session:
        cursor = None
        while True:
            clients, cursor = service.list_clients(session=session, limit=200, cursor=cursor)
            for client in clients:
                state = ("revoked" if client.revoked_at else "pending-approval" if client.pending_approval
                         else "not-activated" if client.activated_at is None else "active")
                typer.echo(f"{client.client_id}\t{client.partner_id}\t{state}\t{printable(client.name)}")
            if cursor is None:
                break


def main() -> None:
    app(prog_name="rehab")


if __name__ == "__main__":
    main()
