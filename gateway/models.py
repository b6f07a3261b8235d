"""The gateway's tables: staff users and partner API clients. Its own registry keeps them apart from the services'."""

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints
from pydantic import Field as Constraint
from sqlalchemy import JSON, Column
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.problems import StrictModel, pattern_in_words
from kit.tables import KitTables
from kit.text import OneLine, Said


class GatewayTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(GatewayTable.metadata, revocations=False)  # it keeps the sessions themselves
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Each pattern with what a 422 says it takes, never the pattern itself (kit.problems); as `gateway manage` says it.
Username = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=pattern_in_words(
    r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$", "must be 3-64 of a-z 0-9 . _ @ -, starting with a letter or digit"))]
PartnerId = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=pattern_in_words(
    r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$", "must be a UUID"))]
# Staff roles, and `partner_staff` (a person at a partner organisation); SPEC §2. Which combine: domain.roles_refusal.
Role = Annotated[str, StringConstraints(
    pattern=r"^(admin|caseworker|supervisor|finance|auditor|coordinator|partner_staff)$")]


# --- staff users -------------------------------------------------------------------------------------------------

class UserBase(SQLModel):
    username: str = Field(unique=True, max_length=64)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))


class UserCreate(StrictModel):
    """What an admin sends to create a staff user (or a partner's staff member, with `partner_id`); the password is
    checked against the policy, then hashed."""

    username: Username
    # Any length limit makes pydantic check the text (a lone surrogate, which JSON's `\ud800` carries, cannot be
    # hashed); far above the policy's own maximum, so that gateway.domain.password_weakness words every refusal a
    # person could meet, a too short or too long password included.
    password: Annotated[str, StringConstraints(max_length=1024)]
    roles: Annotated[list[Role], Constraint(min_length=1, max_length=6)]
    partner_id: PartnerId | None = None


class RolesChange(StrictModel):
    roles: Annotated[list[Role], Constraint(min_length=1, max_length=6)]


class User(GatewayTable, UserBase, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    password_hash: str = Field(max_length=200)
    partner_id: str | None = Field(default=None, max_length=36)  # partner_staff only
    disabled: bool = False
    # Created while two or more admins were enabled: no sign-in until another admin approves (SPEC §2).
    pending_approval: bool = False
    # The password was set by someone else (the admin who created the account, an operator's reset), who knows it:
    # a second factor is set up only once the person has chosen their own, and a person with a factor signs in to
    # nothing else until they do. Else an admin who set it could, after a factor reset another admin approves as a
    # lost phone, enrol a factor of their own and open the account.
    must_choose_password: bool = True
    # An account made while another admin had to approve it: the SHA-256 of the activation code that admin was shown
    # on approving it, which the person types with the given password to choose their own (gateway.activation). The
    # admin who typed the password does not know the code, the one who approved does not know the password: neither
    # alone can set the account up before its person does.
    activation_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime


class UserCreated(BaseModel):
    id: str
    username: str
    roles: list[str]
    partner_id: str | None = None
    status: Literal["active", "pending_approval"] = Constraint(
        description="`pending_approval`: it takes effect when another admin approves it (two or more admins).")


class UserPublic(BaseModel):
    id: str
    username: str
    roles: list[str]
    partner_id: str | None = None
    pending_approval: bool = Constraint(default=False, description=(
        "The account itself waits for another admin to approve its creation (no sign-in until then). A change "
        "asked of an existing account that waits for approval is said by the answer's `status`, not here."))
    disabled: bool
    locked: bool
    created_at: datetime


class SignInThrottle(GatewayTable, table=True):
    """Failed password sign-ins of one user name, from one address (`key` = ThrottleKeys.here) or from all of them
    (`key` = `everywhere` = ThrottleKeys.everywhere), or its wrong one-time codes sent with the right password
    (`key` = ThrottleKeys.codes); until `wait_until` every try is refused, the right password included, except that
    a lock everywhere lets the owner's password with their second factor pass (strangers who know a name can lock it
    so). Named by keyed hashes: no user name or address is stored."""

    __tablename__ = "signin_throttle"

    key: str = Field(primary_key=True, max_length=64)
    everywhere: str = Field(max_length=64, index=True)
    failures: int = 0
    wait_until: datetime | None = None
    counting_since: datetime


class UserSession(GatewayTable, table=True):
    """One signed-in session of a staff user: every access token it issues names it (`sid`), and its refresh
    tokens follow one another in it. Revoked (sign-out, sign out everywhere, a refresh token used twice, the user
    disabled), its access tokens stop working too. It ends `ends_at` whatever happens (the absolute timeout)."""

    __tablename__ = "sessions"

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(max_length=36, index=True)
    started_at: datetime
    ends_at: datetime
    revoked_at: datetime | None = Field(default=None, index=True)
    revoked_why: str | None = Field(default=None, max_length=40)


class RefreshToken(GatewayTable, table=True):
    """A refresh token, stored as its SHA-256 only (the token is 256 random bits: no hash could be reversed). Each
    works once: using it gives the next one; using it again is a theft signal and revokes its session."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: str = Field(max_length=36, index=True)
    issued_at: datetime
    expires_at: datetime  # the idle timeout: unused this long, the session is over
    used_at: datetime | None = None


# --- partner API clients -----------------------------------------------------------------------------------------

class ApiClientBase(SQLModel):
    partner_id: str = Field(max_length=36, index=True)
    name: str = Field(max_length=200)


class ApiClientCreate(StrictModel):
    """What an admin sends to register a partner's API client."""

    partner_id: PartnerId  # the partner's id in the referrals service's directory
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), Said, OneLine]


class ApiClient(GatewayTable, ApiClientBase, table=True):
    __tablename__ = "api_clients"

    client_id: str = Field(primary_key=True, max_length=64)
    secret_hash: str = Field(max_length=200)
    revoked_at: datetime | None = None
    pending_approval: bool = False  # no token until another admin approves (two or more admins)
    # The secret shown when the client was issued is a setup secret, which the admin who issued it knows: the client
    # gets no token until it is exchanged, once, for a secret the server makes and shows only to whoever exchanges
    # it (POST /auth/clients/activate). Else that admin, alone, could take tokens as the partner and read everything
    # referred to it. None until then.
    activated_at: datetime | None = None
    # Issued while another admin had to approve it: the SHA-256 of the activation code that admin was shown on
    # approving it, typed with the setup secret to activate the client (gateway.activation). Neither admin alone
    # holds both.
    activation_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime


class ApiClientIssued(BaseModel):
    """The only answer that ever holds the setup secret."""

    client_id: str
    client_secret: str = Constraint(description=(
        "The setup secret: it gets no token. The partner's system exchanges it once for a secret of its own at "
        "POST /auth/clients/activate, with the activation code the approving admin is shown where another admin "
        "approves the client."))
    partner_id: str
    name: str
    status: Literal["active", "pending_approval"] = "active"


class ApiClientPublic(BaseModel):
    client_id: str
    partner_id: str
    name: str
    revoked: bool
    pending_approval: bool = False
    activated: bool = Constraint(description=(
        "Whether its setup secret was exchanged for its own secret (POST /auth/clients/activate): no token before."))
    created_at: datetime


# --- the second factor ---------------------------------------------------------------------------------------------

class TotpFactor(GatewayTable, table=True):
    """A user's TOTP secret (RFC 6238), sealed: a copy of the database must not yield anyone's second factor.
    Unconfirmed until the user proves they hold it with a first code."""

    __tablename__ = "totp_factors"

    user_id: str = Field(primary_key=True, max_length=36)
    secret_sealed: str = Field(max_length=400)
    confirmed_at: datetime | None = None
    last_step: int = 0  # the latest 30-second step whose code was accepted: a code works once
    created_at: datetime


class RecoveryCode(GatewayTable, table=True):
    """One of a user's 10 single-use recovery codes, stored as a keyed hash only."""

    __tablename__ = "recovery_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(max_length=36, index=True)
    used_at: datetime | None = None


# --- approvals (separation of duties) ----------------------------------------------------------------------------

class Approval(GatewayTable, table=True):
    """A change one admin asked for that takes effect only when another admin approves it (SPEC §2, §3)."""

    __tablename__ = "approvals"

    id: str = Field(primary_key=True, max_length=36)
    action: str = Field(max_length=40)  # one of gateway.approvals.Action: user.create, user.disable, client.create…
    target_id: str = Field(max_length=64, index=True)
    # user.roles: the roles asked for; user.create: the new account's (so the approving admin sees what is granted)
    roles: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(default="pending", max_length=20, index=True)  # pending, approved, rejected
    requested_by: str = Field(max_length=64)
    requested_at: datetime
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None


class ApprovalPublic(BaseModel):
    id: str
    action: str
    target_id: str
    roles: list[str] | None
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    # Whom and what it is about, in words an admin judges by (ids alone invite approving without looking).
    target_name: str | None = Constraint(default=None, description=(
        "The account's user name (`user.*`), or the partner API client's name (`client.create`)."))
    target_roles: list[str] | None = Constraint(default=None, description=(
        "The account's roles in force now; beside `roles` (those asked for) in a `user.roles` request."))
    partner_id: str | None = Constraint(default=None, description="The partner the account or client is bound to.")
    requested_by_username: str | None = Constraint(default=None, description=(
        "The requesting admin's user name; None for the operator's requests (`requested_by` `operator:…`)."))
    decided_by_username: str | None = None
    activation_code: str | None = Constraint(default=None, description=(
        "An approved new account's or partner API client's activation code, in this answer only: the approving admin "
        "hands it to the person, who types it with the password the requesting admin gave them to choose their own, "
        "or to the partner, whose system types it with the client's setup secret (POST /auth/clients/activate)."))
