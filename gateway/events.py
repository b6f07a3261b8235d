"""What the gateway publishes (SPEC §5, stream GATEWAY): who the staff are, so that every service can name an
assignee, check that one is an enabled caseworker, and refuse the tokens of sessions that ended.

A staff handle, the roles and the partner binding only: never a password, a hash, a second factor, an address or
anything else of the account. An account is announced when it takes effect (created active, or its pending creation
approved); a pending account is nobody's business yet. Each event is written to the gateway's outbox in the unit of
work that makes the change (`publish`), and the relay sends it once that commits, whenever NATS is there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from gateway.models import User, kit_tables
from kit.events import Publisher

SOURCE = "/rehab/gateway"

USER_CREATED = "rehab.gateway.user.created"
USER_ROLES_CHANGED = "rehab.gateway.user.roles_changed"
USER_DISABLED = "rehab.gateway.user.disabled"
USER_ENABLED = "rehab.gateway.user.enabled"
USER_SESSIONS_REVOKED = "rehab.gateway.user.sessions_revoked"


class UserChanged(BaseModel):
    """A staff account took effect, had its roles changed, was disabled or enabled again: who it is now."""

    user_id: str
    username: str = Field(description="The staff handle (sign-in name), as assignees are named.")
    roles: list[str]
    partner_id: str | None = Field(description="The partner organisation of a `partner_staff` account, else null.")
    occurred_at: datetime


class SessionsRevoked(BaseModel):
    """Sessions of a staff account ended: their access tokens (claim `sid`) must be refused; with `all`, every access
    token of the user issued before `occurred_at`. A partner's API client revoked is announced so too (`user_id` its
    client id, `all`, no sessions): its tokens carry no `sid`."""

    user_id: str
    session_ids: list[str]
    all: bool
    occurred_at: datetime


USER_SUBJECTS = (USER_CREATED, USER_ROLES_CHANGED, USER_DISABLED, USER_ENABLED)
PUBLISHED: dict[str, type[BaseModel]] = {
    **{subject: UserChanged for subject in USER_SUBJECTS},
    USER_SESSIONS_REVOKED: SessionsRevoked,
}

# The one way the gateway publishes, into its outbox in the caller's transaction.
publish = Publisher(SOURCE, PUBLISHED, kit_tables)


def user_changed(session: Session, subject: str, user: User) -> None:
    """Announce `user` as it is now on `subject` (one of USER_SUBJECTS)."""
    publish(session, subject, UserChanged(user_id=user.id, username=user.username, roles=list(user.roles),
                                          partner_id=user.partner_id, occurred_at=datetime.now(UTC)),
            about=user.id)


def sessions_revoked(session: Session, *, user_id: str, session_ids: list[str], all: bool,  # noqa: A002
                     at: datetime | None = None) -> None:
    publish(session, USER_SESSIONS_REVOKED,
            SessionsRevoked(user_id=user_id, session_ids=sorted(session_ids), all=all,
                            occurred_at=at or datetime.now(UTC)),
            about=user_id)
