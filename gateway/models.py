"""The gateway's tables: staff users and partner API clients. Its own registry keeps them apart from the services'."""

from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, StringConstraints
from pydantic import Field as Constraint
from sqlalchemy import JSON, Column
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from kit.problems import StrictModel
from kit.tables import KitTables


class GatewayTable(SQLModel, registry=registry()):
    pass


kit_tables = KitTables(GatewayTable.metadata)
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

Username = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                            pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$")]
PartnerId = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True,
                                             pattern=r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")]
StaffRole = Annotated[str, StringConstraints(pattern=r"^(admin|caseworker|finance|auditor)$")]


# --- staff users -------------------------------------------------------------------------------------------------

class UserBase(SQLModel):
    username: str = Field(unique=True, max_length=64)
    roles: list[str] = Field(sa_column=Column(JSON, nullable=False))


class UserCreate(StrictModel):
    """What an admin sends to create a staff user; the password is checked against the policy, then hashed."""

    username: Username
    password: str
    roles: Annotated[list[StaffRole], Constraint(min_length=1, max_length=4)]


class User(GatewayTable, UserBase, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    password_hash: str = Field(max_length=200)
    disabled: bool = False
    failed_attempts: int = 0
    # Until then every sign-in is refused, the right password included: a short wait after a failure, a long lock
    # after too many in a row.
    locked_until: datetime | None = None
    created_at: datetime


class UserCreated(BaseModel):
    id: str
    username: str
    roles: list[str]


class UserPublic(UserCreated):
    disabled: bool
    locked: bool
    created_at: datetime


# --- partner API clients -----------------------------------------------------------------------------------------

class ApiClientBase(SQLModel):
    partner_id: str = Field(max_length=36, index=True)
    name: str = Field(max_length=200)


class ApiClientCreate(StrictModel):
    """What an admin sends to register a partner's API client."""

    partner_id: PartnerId  # the partner's id in the referrals service's directory
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ApiClient(GatewayTable, ApiClientBase, table=True):
    __tablename__ = "api_clients"

    client_id: str = Field(primary_key=True, max_length=64)
    secret_hash: str = Field(max_length=200)
    revoked_at: datetime | None = None
    created_at: datetime


class ApiClientIssued(BaseModel):
    """The only answer that ever holds the secret."""

    client_id: str
    client_secret: str
    partner_id: str
    name: str


class ApiClientPublic(BaseModel):
    client_id: str
    partner_id: str
    name: str
    revoked: bool
    created_at: datetime
