"""Sessions that ended, refused by every service itself (SPEC §3): not only at the gateway, and not only when the
access token expires.

The gateway announces every ended session on `rehab.gateway.user.sessions_revoked` (sign-out, sign out everywhere,
an admin's doing, a disabled account, a reused refresh token). Each service consumes it on its durable of the
GATEWAY stream, writes what to refuse into its own `revoked_access` table in the inbox unit (so a restart forgets
nothing), and keeps it in memory for the check on every request (`kit.auth.current_principal`). A replica that did
not receive the event itself (replicas share one durable) picks the rows up from the table within a second.

What is refused:
  - an access token whose `sid` names an ended session;
  - with `all` (every session of the user ended), also a token of that user without a `sid` issued at or before the
    moment of revocation (tokens with a `sid` are judged by their session: one started later is a new sign-in).
Rows are kept for as long as a refused token could still be unexpired (`retention`), then purged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from kit import logs
from kit.auth import Principal
from kit.bus import Handler, Subscription
from kit.events import Envelope
from kit.tables import KitTables

log = logs.get("revocation")

SESSIONS_REVOKED = "rehab.gateway.user.sessions_revoked"
GATEWAY = "gateway"
SESSION, USER = "session", "user"  # the two kinds of row: one ended session, or every sid-less token of a user
# Rows are read again for this long after they were recorded: one recorded earlier may commit after a later one.
_COMMIT_MARGIN = timedelta(seconds=10)


class SessionsRevoked(BaseModel):
    """Our copy of what we read from the gateway's sessions_revoked."""

    model_config = ConfigDict(extra="ignore")

    user_id: str
    session_ids: list[str]
    all: bool
    occurred_at: datetime

    @field_validator("occurred_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class RevokedAccess:
    """What this process refuses, in memory; the `revoked_access` table is its durable copy."""

    tables: KitTables
    retention: timedelta
    sessions: dict[str, datetime] = field(default_factory=dict)  # sid → until when it must be refused
    users: dict[str, datetime] = field(default_factory=dict)  # user id → tokens without sid issued up to then
    _seen_up_to: datetime | None = None  # the newest `recorded_at` read so far

    def refuses(self, principal: Principal) -> bool:
        sid = principal.claims.get("sid")
        if sid is not None:
            return sid in self.sessions
        revoked_at = self.users.get(principal.sub)
        return revoked_at is not None and principal.claims.get("iat", 0) <= revoked_at.timestamp()

    # ---- learning from the gateway's events ----------------------------------------------------------------------

    def on_sessions_revoked(self, session: Session, envelope: Envelope) -> None:
        """The handler (inside the consumer's inbox unit, never committing)."""
        event = SessionsRevoked.model_validate(envelope.data)
        rows = [{"kind": SESSION, "subject": sid, "revoked_at": event.occurred_at} for sid in event.session_ids]
        if event.all:
            rows.append({"kind": USER, "subject": event.user_id, "revoked_at": event.occurred_at})
        now = datetime.now(UTC)
        for row in rows:
            session.execute(self._upsert(session, {**row, "recorded_at": now}))
            self._remember(row["kind"], row["subject"], row["revoked_at"])

    def _upsert(self, session: Session, row: dict):
        table = self.tables.revoked_access
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).values(**row)
        # The later revocation wins: a user's sid-less tokens are judged against the newest one.
        return statement.on_conflict_do_update(
            index_elements=[table.c.kind, table.c.subject],
            set_={"revoked_at": statement.excluded.revoked_at, "recorded_at": statement.excluded.recorded_at},
            where=table.c.revoked_at < statement.excluded.revoked_at,
        )

    def _remember(self, kind: str, subject: str, revoked_at: datetime) -> None:
        if kind == SESSION:
            self.sessions[subject] = revoked_at
        elif revoked_at > self.users.get(subject, revoked_at - timedelta(seconds=1)):
            self.users[subject] = revoked_at

    def subscribe(self, subscriptions: list[Subscription], *, service: str) -> list[Subscription]:
        """`subscriptions` with the revocations handled on the service's durable of the GATEWAY stream (the one it
        has, or a new `<service>-gateway`); a handler the service has for the same subject still runs."""
        for sub in subscriptions:
            if sub.producer == GATEWAY:
                sub.handlers[SESSIONS_REVOKED] = _both(self.on_sessions_revoked, sub.handlers.get(SESSIONS_REVOKED))
                return subscriptions
        return [*subscriptions, Subscription(producer=GATEWAY, durable=f"{service}-gateway",
                                             handlers={SESSIONS_REVOKED: self.on_sessions_revoked})]

    # ---- the durable copy: loaded at start, followed for the other replicas, purged when no longer needed --------

    def refresh(self, engine: Engine) -> None:
        """Read the rows recorded since the last look (by this replica or another), and forget the expired."""
        table = self.tables.revoked_access
        query = select(table.c.kind, table.c.subject, table.c.revoked_at, table.c.recorded_at)
        if self._seen_up_to is not None:
            query = query.where(table.c.recorded_at >= self._seen_up_to - _COMMIT_MARGIN)
        # Read-only (kit.db): on SQLite a plain BEGIN, never BEGIN IMMEDIATE, so this read on the event loop does
        # not wait for the unit of work's COMMIT to give up the write lock.
        with engine.connect().execution_options(read_only=True) as conn:
            rows = conn.execute(query).all()
        for kind, subject, revoked_at, recorded_at in rows:
            self._remember(kind, subject, _utc(revoked_at))
            recorded_at = _utc(recorded_at)
            self._seen_up_to = recorded_at if self._seen_up_to is None else max(self._seen_up_to, recorded_at)
        oldest = datetime.now(UTC) - self.retention
        self.sessions = {sid: at for sid, at in self.sessions.items() if at >= oldest}
        self.users = {user: at for user, at in self.users.items() if at >= oldest}

    def purge(self, session: Session) -> None:
        table = self.tables.revoked_access
        session.execute(delete(table).where(table.c.revoked_at < datetime.now(UTC) - self.retention))


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _both(first: Handler, second: Handler | None) -> Handler:
    if second is None:
        return first

    def handler(session: Session, envelope: Envelope) -> None:
        first(session, envelope)
        second(session, envelope)

    return handler


async def follow(revoked: RevokedAccess, engine: Engine, uow_run: Callable, *, every: float = 1.0,
                 purge_every: float = 3600.0) -> None:
    """A service's background job: take up the other replicas' rows every `every` seconds; purge now and then."""
    since_purge = purge_every
    while True:
        try:
            await asyncio.to_thread(revoked.refresh, engine)
            if since_purge >= purge_every:
                await uow_run(revoked.purge)
                since_purge = 0.0
        except Exception as exc:  # the database away for a moment: what is in memory still holds
            log.warning("revocations not refreshed, retrying", error_type=type(exc).__name__)
        await asyncio.sleep(every)
        since_purge += every
