"""What the gateway writes to its outbox, and when (gateway.events), on a SQLite file: no NATS, no HTTP. The real
stream is proved by tests/integration/gateway/test_gateway_events.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import Session

from gateway import approvals, events, service, sessions
from gateway.models import GatewayTable, kit_tables
from kit import db
from kit.audit import AuditTrail

AUDIT = AuditTrail(kit_tables, b"k" * 32)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    GatewayTable.metadata.create_all(engine)
    with db.transaction(db.make_session_factory(engine)) as opened:
        yield opened
    engine.dispose()


def outbox(session: Session) -> list[tuple[str, str, dict]]:
    rows = session.execute(select(kit_tables.outbox.c.subject, kit_tables.outbox.c.envelope)
                           .order_by(kit_tables.outbox.c.seq)).all()
    return [(row.subject, json.loads(row.envelope)["subject"], json.loads(row.envelope)["data"]) for row in rows]


def test_an_account_is_announced_when_it_takes_effect_with_its_handle_and_roles_only(session: Session):
    user = service.add_user(session=session, audit=AUDIT, username="anna.k", roles=["supervisor", "caseworker"],
                            password_hash="$argon2id$v=19$not-a-real-hash", actor="system")
    ((subject, about, data),) = outbox(session)
    assert subject == events.USER_CREATED and about == user.id
    assert set(data) == {"user_id", "username", "roles", "partner_id", "occurred_at"}
    assert data["username"] == "anna.k" and data["roles"] == ["caseworker", "supervisor"] and data["partner_id"] is None
    assert "argon2" not in json.dumps(data)


def test_a_pending_account_is_announced_only_on_approval_and_a_rejected_one_never(session: Session):
    pending = service.add_user(session=session, audit=AUDIT, username="boris.m", roles=["finance"],
                               password_hash="x", actor="a1", pending_approval=True)
    asked = approvals.request(session=session, audit=AUDIT, action="user.create", target_id=pending.id, actor="a1")
    rejected = service.add_user(session=session, audit=AUDIT, username="clara.n", roles=["finance"],
                                password_hash="x", actor="a1", pending_approval=True)
    refused = approvals.request(session=session, audit=AUDIT, action="user.create", target_id=rejected.id, actor="a1")
    session.flush()
    assert outbox(session) == []
    approvals.decide(session=session, audit=AUDIT, approval_id=refused.id, actor="a2", approve=False)
    approvals.decide(session=session, audit=AUDIT, approval_id=asked.id, actor="a2", approve=True)
    assert [(s, about) for s, about, _ in outbox(session)] == [(events.USER_CREATED, pending.id)]


def test_roles_are_announced_when_they_change_and_not_when_they_stay(session: Session):
    user = service.add_user(session=session, audit=AUDIT, username="dana.p", roles=["caseworker"], password_hash="x",
                            actor="system")
    approvals.apply_roles(session=session, audit=AUDIT, user=user, roles=["caseworker"], actor="a1")
    approvals.apply_roles(session=session, audit=AUDIT, user=user, roles=["caseworker", "supervisor"], actor="a1")
    assert [(s, d["roles"]) for s, _, d in outbox(session)] == [
        (events.USER_CREATED, ["caseworker"]), (events.USER_ROLES_CHANGED, ["caseworker", "supervisor"])]


def test_sessions_revoked_name_the_sessions_and_say_whether_all_went(session: Session):
    now = datetime.now(UTC)
    policy = sessions.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    sid, refresh = sessions.start(session=session, user_id="u1", now=now, policy=policy)
    session.flush()
    sessions.revoke_by_refresh_token(session=session, audit=AUDIT, refresh_token=refresh, now=now)
    other, _ = sessions.start(session=session, user_id="u1", now=now, policy=policy)
    session.flush()
    assert sessions.revoke_all(session=session, audit=AUDIT, user_id="u1", actor="u1", now=now, why="test") == 1
    sessions.revoke_all(session=session, audit=AUDIT, user_id="u1", actor="u1", now=now, why="test")
    assert [(s, d["session_ids"], d["all"]) for s, _, d in outbox(session)] == [
        (events.USER_SESSIONS_REVOKED, [sid], False), (events.USER_SESSIONS_REVOKED, [other], True),
        (events.USER_SESSIONS_REVOKED, [], True)]


def test_a_subject_carries_only_its_own_payload(session: Session):
    class Stranger(BaseModel):
        user_id: str

    with pytest.raises(TypeError):
        events.publish(session, events.USER_CREATED, Stranger(user_id="u1"), about="u1")
    with pytest.raises(TypeError):
        events.publish(session, "rehab.gateway.user.password_changed", Stranger(user_id="u1"), about="u1")
