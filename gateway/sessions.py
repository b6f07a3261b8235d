"""Sessions that end: a password sign-in starts one, refresh tokens rotate inside it, and revoking it (sign-out,
sign out everywhere, a refresh token used twice, the user disabled) stops its access tokens at the gateway within
the standing check's second.

Use cases of the gateway's database like those in `service`: functions of a session that never commit. A refusal
that must be remembered (a reused refresh token revokes its session) is returned, not raised, so that the unit of
work commits the revocation. Every revocation is announced (`rehab.gateway.user.sessions_revoked`) in the same
unit, so the services can refuse those sessions' tokens too."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import update
from sqlmodel import Session, select

from gateway import events
from gateway.models import RefreshToken, User, UserSession
from kit.audit import AuditTrail


@dataclass(frozen=True)
class SessionPolicy:
    """A refresh token unused for `idle` ends its session; no session outlives `absolute`."""

    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Renewal:
    """The outcome of a refresh: a new refresh token in the same session, or why not (`refused`)."""

    refused: str | None = None
    user_id: str | None = None
    roles: tuple[str, ...] = ()
    session_id: str | None = None
    refresh_token: str | None = None
    partner_id: str | None = None
    username: str | None = None


T = TypeVar("T")


@dataclass
class RenewalsAtOnce(Generic[T]):
    """Two tabs of one console, whose access token expired while both were open, renew with the same refresh token
    at the same moment (the console's own renewal; an API client's refresh grant has no grace: SPEC §3 as written). Taken literally that is a refresh token used twice, the theft signal, and the person would be
    signed out in the middle of a form. Instead, a renewal with a token this gateway renewed less than `grace`
    seconds ago, asked by the same requester (the same address and browser: the same person's tabs), gets the answer
    of that renewal (the same next tokens), in flight or done, as long as the session still lives (the caller
    checks: `replayed`). The same token from another requester, even within the grace, is reuse: a copy replayed by
    whoever stole it gets nothing, and ends the session. Later, or at another gateway replica, a second use is reuse
    as ever."""

    grace: float = 10.0
    _recent: dict[str, tuple[float, str, asyncio.Future]] = field(default_factory=dict)

    async def once(self, refresh_token: str, renew: Callable[[], Awaitable[T]], *,
                   requester: str | None) -> tuple[T, bool]:
        """`renew()`'s answer, and whether it is a replay of an earlier renewal's. `requester`: who asks (the
        address and the user agent, say), compared only with this token's first renewal; None: no grace, a second
        use is reuse however soon (and the token is not remembered for a console's tab either)."""
        if requester is None:
            return await renew(), False
        now = time.monotonic()
        self._recent = {key: held for key, held in self._recent.items() if held[0] > now}
        key = _digest(refresh_token)
        if key in self._recent:
            _, first_requester, first = self._recent[key]
            outcome, value = await asyncio.shield(first)
            if first_requester != _digest(requester):
                # Another requester: once that renewal is done, renewing again finds the token used, which ends
                # the session and is audited as reuse.
                return await renew(), False
            if outcome == "refused":
                raise value
            return value, True
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        self._recent[key] = (now + self.grace, _digest(requester), answer)
        try:
            value = await renew()
        except Exception as exc:
            answer.set_result(("refused", exc))
            raise
        answer.set_result(("renewed", value))
        return value, False


@dataclass
class AtWork:
    """The console's visitors at work. SPEC §3 ends a console session after 30 minutes idle, and the idle clock is
    the refresh token's expiry, set when it is issued; but a page opened with a still-valid access token renews
    nothing, so someone who worked through an access token's 10 minutes and then read for 25 was signed out after 25
    idle. Each console page a person opens therefore starts their refresh token's idle clock again (`keep_alive`):
    at most once a `every` seconds per token, so a busy person costs one write a minute, not one a page."""

    every: float = 60.0
    _last: dict[str, float] = field(default_factory=dict)

    def due(self, refresh_token: str) -> bool:
        """Is it time to start this token's idle clock again? (Remembered here as due from now.)"""
        now = time.monotonic()
        if len(self._last) > 10_000:  # tokens long left (signed out, renewed): forgotten
            self._last = {key: at for key, at in self._last.items() if at + self.every > now}
        key = _digest(refresh_token)
        if self._last.get(key, now - self.every) + self.every > now:
            return False
        self._last[key] = now
        return True


def keep_alive(*, session: Session, refresh_token: str, session_id: str, now: datetime,
               policy: SessionPolicy) -> None:
    """The console's person is working: their refresh token, if still good and of the session their access token
    names, expires `idle` from now (never after its session's end). A token used, expired or of an ended session is
    left as it is: activity never revives one."""
    token = session.get(RefreshToken, _digest(refresh_token), with_for_update=True)
    owner = None if token is None or token.session_id != session_id else session.get(UserSession, token.session_id)
    if (token is None or owner is None or token.used_at is not None or token.expires_at <= now
            or owner.revoked_at is not None or owner.ends_at <= now):
        return
    token.expires_at = max(token.expires_at, min(now + policy.idle, owner.ends_at))
    session.add(token)


def is_live(*, session: Session, session_id: str, now: datetime) -> bool:
    """Has this session neither been revoked nor reached its end?"""
    owner = session.get(UserSession, session_id)
    return owner is not None and owner.revoked_at is None and owner.ends_at > now


def lapsed(*, session: Session, refresh_token: str, now: datetime) -> bool:
    """Did this refresh token's session end by time alone (30 minutes idle, or its 12 hours), not because it was
    signed out, revoked, its token reused or its account disabled? Read only, for the console to say what a form sent
    too late held (router.visit); the API answers every refusal alike."""
    token = session.get(RefreshToken, _digest(refresh_token))
    owner = None if token is None else session.get(UserSession, token.session_id)
    if token is None or owner is None or owner.revoked_at is not None or token.used_at is not None:
        return False
    user = session.get(User, owner.user_id)
    return (user is not None and not user.disabled and not user.pending_approval
            and (token.expires_at <= now or owner.ends_at <= now))


def start(*, session: Session, user_id: str, now: datetime, policy: SessionPolicy) -> tuple[str, str]:
    """A new session for a signed-in user: its id (the access tokens' `sid`) and its first refresh token."""
    started = UserSession(id=str(uuid.uuid4()), user_id=user_id, started_at=now, ends_at=now + policy.absolute)
    session.add(started)
    return started.id, _next_refresh_token(session, started, now, policy)


def start_enrolment(*, session: Session, user_id: str, now: datetime, lasts: timedelta) -> str:
    """A session for an enrolment token alone (no refresh token), ending when the token expires. The token names it
    (`sid`) like any other, so whatever ends a user's sessions ends it too: their password changed (the admin who
    typed the first one must not go on to enrol a phone of their own with a token got before), sign out, sign out
    everywhere, an admin's revocation."""
    started = UserSession(id=str(uuid.uuid4()), user_id=user_id, started_at=now, ends_at=now + lasts)
    session.add(started)
    return started.id


def is_open(*, session: Session, user_id: str, session_id: str | None, now: datetime) -> bool:
    """Whether `session_id` is a session of `user_id`'s still going: read in the transaction that acts on it, so
    that an action a revocation must stop is stopped even before every gateway replica's cache of it has caught up
    (`access.Standing`)."""
    owner = session.get(UserSession, session_id) if session_id else None
    return (owner is not None and owner.user_id == user_id and owner.revoked_at is None
            and owner.ends_at > now)


def end_enrolment(*, session: Session, user_id: str, session_id: str | None, now: datetime) -> None:
    """The factor is set up: the enrolment token's session is spent (the person signs in again, with a code)."""
    owner = session.get(UserSession, session_id) if session_id else None
    if owner is not None and owner.user_id == user_id and owner.revoked_at is None:
        _revoke(session, owner, now, why="enrolled")


def renew(*, session: Session, audit: AuditTrail, refresh_token: str, now: datetime, policy: SessionPolicy) -> Renewal:
    """Use a refresh token once: the next one, or a refusal. A token used a second time revokes its whole session
    (someone else holds a copy: the theft signal, audited)."""
    token = session.get(RefreshToken, _digest(refresh_token), with_for_update=True)
    if token is None:
        return Renewal(refused="unknown")
    owner = session.get(UserSession, token.session_id)
    if owner is None or owner.revoked_at is not None:
        return Renewal(refused="revoked")
    if token.used_at is not None:
        _revoke(session, owner, now, why="refresh-reused")
        audit.record(session, actor=owner.user_id, action="session.refresh_reused", target_id=owner.id)
        return Renewal(refused="reused")
    if token.expires_at <= now or owner.ends_at <= now:
        return Renewal(refused="expired")
    user = session.get(User, owner.user_id)
    if user is None or user.disabled or user.pending_approval:
        return Renewal(refused="disabled")
    token.used_at = now
    session.add(token)
    return Renewal(user_id=user.id, roles=tuple(user.roles), session_id=owner.id, partner_id=user.partner_id,
                   username=user.username, refresh_token=_next_refresh_token(session, owner, now, policy))


def revoke_by_refresh_token(*, session: Session, audit: AuditTrail, refresh_token: str, now: datetime) -> None:
    """RFC 7009: end the session the token belongs to; an unknown or already revoked token changes nothing."""
    token = session.get(RefreshToken, _digest(refresh_token))
    owner = session.get(UserSession, token.session_id) if token else None
    if owner is not None and owner.revoked_at is None:
        _revoke(session, owner, now, why="signed-out")
        audit.record(session, actor=owner.user_id, action="session.revoke", target_id=owner.id)


def revoke_one(*, session: Session, audit: AuditTrail, user_id: str, session_id: str, now: datetime) -> None:
    """Sign out: end the caller's own session (the one its access token names)."""
    owner = session.get(UserSession, session_id)
    if owner is not None and owner.user_id == user_id and owner.revoked_at is None:
        _revoke(session, owner, now, why="signed-out")
        audit.record(session, actor=user_id, action="session.revoke", target_id=owner.id)


def revoke_all(*, session: Session, audit: AuditTrail, user_id: str, actor: str, now: datetime, why: str) -> int:
    """End every session of a user (sign out everywhere; an admin's doing; the user disabled): how many ended.
    Announced even when none was open: every access token of the user issued before `now` is void (`all`)."""
    ended = list(session.execute(
        update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))  # type: ignore[union-attr]
        .values(revoked_at=now, revoked_why=why).returning(UserSession.id)
    ).scalars())
    audit.record(session, actor=actor, action="session.revoke_all", target_id=user_id)
    events.sessions_revoked(session, user_id=user_id, session_ids=ended, all=True, at=now)
    return len(ended)


def revoke_everyone(*, session: Session, audit: AuditTrail, actor: str, now: datetime, why: str) -> int:
    """End every session of every user (after a restore, which brings back sessions ended since its backup): how
    many users had one. Each user's access tokens issued before `now` are void too (`revoke_all`)."""
    holders = session.execute(select(UserSession.user_id).where(UserSession.revoked_at.is_(None))  # type: ignore[union-attr]
                              .distinct()).scalars().all()
    for user_id in holders:
        revoke_all(session=session, audit=audit, user_id=user_id, actor=actor, now=now, why=why)
    return len(holders)


def revoked_recently(*, session: Session, user_id: str, since: datetime) -> frozenset[str]:
    """The user's sessions revoked since `since` (the oldest an unexpired access token can be): those tokens are
    refused. A session revoked earlier has no live access token left to refuse."""
    rows = session.exec(select(UserSession.id).where(
        UserSession.user_id == user_id, UserSession.revoked_at >= since))  # type: ignore[operator]
    return frozenset(rows)


def _revoke(session: Session, owner: UserSession, now: datetime, *, why: str) -> None:
    owner.revoked_at, owner.revoked_why = now, why
    session.add(owner)
    events.sessions_revoked(session, user_id=owner.user_id, session_ids=[owner.id], all=False, at=now)


def _next_refresh_token(session: Session, owner: UserSession, now: datetime, policy: SessionPolicy) -> str:
    token = secrets.token_urlsafe(32)
    session.add(RefreshToken(token_hash=_digest(token), session_id=owner.id, issued_at=now,
                             expires_at=min(now + policy.idle, owner.ends_at)))
    return token


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
