"""kit.revocation: which tokens an ended session leaves refused, kept in the service's table so that another replica
and a restarted process refuse them too, and forgotten once no such token can still be unexpired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, func, select
from sqlmodel import Session

from kit.auth import Principal
from kit.bus import Subscription
from kit.events import Envelope
from kit.revocation import SESSIONS_REVOKED, RevokedAccess
from kit.tables import KitTables

metadata = MetaData()
tables = KitTables(metadata)
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def now() -> None:
    """Each test's moment, read when it starts: a moment read at collection may be more than the hour's retention
    old by the time the suite reaches these tests, and revocations at it would be purged as stale."""
    global NOW  # noqa: PLW0603
    NOW = datetime.now(UTC)


@pytest.fixture
def engine(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    metadata.create_all(engine)
    return engine


def replica() -> RevokedAccess:
    return RevokedAccess(tables, retention=timedelta(hours=1))


def token(sub: str = "user-1", *, sid: str | None = "session-1", iat: datetime | None = None) -> Principal:
    iat = iat or NOW
    claims = {"sub": sub, "iat": int(iat.timestamp())} | ({"sid": sid} if sid else {})
    return Principal(sub=sub, roles=frozenset({"caseworker"}), claims=claims)


def revoked(engine, access: RevokedAccess, *, session_ids: list[str], all: bool = False,  # noqa: A002
            at: datetime | None = None, user_id: str = "user-1") -> None:
    at = at or NOW
    envelope = Envelope.new(source="/rehab/gateway", type=SESSIONS_REVOKED, subject=user_id, data={
        "user_id": user_id, "session_ids": session_ids, "all": all, "occurred_at": at.isoformat()})
    with Session(engine) as session:
        access.on_sessions_revoked(session, envelope)
        session.commit()


def test_an_ended_session_is_refused_and_the_users_other_sessions_are_not(engine):
    access = replica()
    revoked(engine, access, session_ids=["session-1"])
    assert access.refuses(token(sid="session-1"))
    assert not access.refuses(token(sid="session-2"))
    assert not access.refuses(token("user-2", sid="session-3"))


def test_signed_out_everywhere_refuses_the_users_tokens_without_a_session_issued_until_then(engine):
    access = replica()
    revoked(engine, access, session_ids=[], all=True)
    assert access.refuses(token(sid=None, iat=NOW - timedelta(minutes=5)))
    assert access.refuses(token(sid=None, iat=NOW))
    assert not access.refuses(token(sid=None, iat=NOW + timedelta(seconds=2))), "a token issued later is a new one"
    assert not access.refuses(token(sid="a-later-session")), "a session started later is a new sign-in"


def test_another_replica_and_a_restarted_one_learn_it_from_the_table(engine):
    receiver, other = replica(), replica()
    other.refresh(engine)
    revoked(engine, receiver, session_ids=["session-1", "session-2"], all=True)
    assert not other.refuses(token(sid="session-1"))
    other.refresh(engine)
    assert other.refuses(token(sid="session-1")) and other.refuses(token(sid="session-2"))
    assert other.refuses(token(sid=None, iat=NOW - timedelta(seconds=1)))

    restarted = replica()
    restarted.refresh(engine)
    assert restarted.refuses(token(sid="session-2"))


def test_a_redelivered_or_older_revocation_keeps_the_newest_moment(engine):
    access = replica()
    revoked(engine, access, session_ids=[], all=True, at=NOW)
    revoked(engine, access, session_ids=[], all=True, at=NOW - timedelta(minutes=10))  # late, older
    revoked(engine, access, session_ids=[], all=True, at=NOW)  # the same again
    fresh = replica()
    fresh.refresh(engine)
    assert fresh.users["user-1"] == access.users["user-1"] == NOW
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.revoked_access)).scalar_one() == 1


def test_rows_are_purged_and_forgotten_once_no_refused_token_can_still_be_valid(engine):
    access = replica()
    revoked(engine, access, session_ids=["old"], at=NOW - timedelta(hours=2))
    revoked(engine, access, session_ids=["recent"], at=NOW)
    with Session(engine) as session:
        access.purge(session)
        session.commit()
    access.refresh(engine)
    assert not access.refuses(token(sid="old")) and access.refuses(token(sid="recent"))
    with engine.connect() as conn:
        assert conn.execute(select(tables.revoked_access.c.subject)).scalars().all() == ["recent"]


def test_the_revocations_ride_on_the_services_own_durable_of_the_gateway_stream_beside_its_handlers():
    calls: list[str] = []
    staff = Subscription(producer="gateway", durable="intake-gateway",
                         handlers={"rehab.gateway.user.disabled": lambda _s, _e: calls.append("staff"),
                                   SESSIONS_REVOKED: lambda _s, _e: calls.append("own")})
    (merged,) = replica().subscribe([staff], service="intake")
    assert merged.durable == "intake-gateway" and set(merged.handlers) == {"rehab.gateway.user.disabled",
                                                                          SESSIONS_REVOKED}

    added = replica().subscribe([Subscription(producer="intake", durable="funds-intake", handlers={})],
                                service="funds")
    assert [(s.producer, s.durable) for s in added] == [("intake", "funds-intake"), ("gateway", "funds-gateway")]
    assert list(added[1].handlers) == [SESSIONS_REVOKED]
