"""Which replica's outbox relay publishes (kit.bus): on PostgreSQL the one whose connection holds the service's
advisory lock; when that connection goes (its backend terminated, the replica dead), another replica takes over at
its next look, and the old one, finding its connection dead, asks again like any other. On SQLite a database has
one process, which always publishes. Two `Bus` objects with engines of their own stand for two replicas."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import MetaData, create_engine, text

from kit import db
from kit.bus import Bus, relay_lock_key
from kit.tables import KitTables
from tests.support.postgres import create_database, drop_database

pytestmark = pytest.mark.integration

ADMIN_URL = os.environ.get("REHAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TABLES = KitTables(MetaData())


def replica(url: str, service: str = "intake") -> Bus:
    engine = db.make_engine(url)
    return Bus(service=service, url="nats://127.0.0.1:1", uow=db.UnitOfWork(engine, db.make_session_factory(engine)),
               tables=TABLES)


def let_go(bus: Bus) -> None:
    if bus._leader_conn is not None:
        bus._leader_conn.close()  # type: ignore[attr-defined]
        bus._leader_conn = None
    bus.uow.engine.dispose()


def postgres_answers() -> bool:
    try:
        engine = create_engine(ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def database() -> Iterator[str]:
    if not postgres_answers():
        pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432 (or REHAB_TEST_POSTGRES_URL)")
    url = create_database(ADMIN_URL, f"rehab_t_relay_{uuid.uuid4().hex[:10]}")
    try:
        yield url
    finally:
        drop_database(ADMIN_URL, url)


def holder_backend(bus: Bus) -> int:
    return bus._leader_conn.execute(text("SELECT pg_backend_pid()")).scalar()  # type: ignore[attr-defined]


def terminate(url: str, backend: int) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar()
        # Terminating is a signal: wait until that backend is gone, and its session lock with it.
        for _ in range(200):
            alive = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": backend})
            if not alive.scalar():
                break
            conn.execute(text("SELECT pg_sleep(0.02)"))
    engine.dispose()


def test_one_replica_leads_and_another_takes_over_when_its_connection_goes(database: str) -> None:
    first, second = replica(database), replica(database)
    try:
        assert first._is_relay_leader()
        assert not second._is_relay_leader()
        assert first._is_relay_leader()  # it keeps leading while its connection lives

        terminate(database, holder_backend(first))

        assert second._is_relay_leader()
        assert not first._is_relay_leader()  # its connection is dead: it asks again, and the lock is taken
        assert first._leader_conn is None
    finally:
        let_go(first)
        let_go(second)


def test_a_stopped_replica_hands_over_when_it_lets_go(database: str) -> None:
    first, second = replica(database), replica(database)
    try:
        assert first._is_relay_leader()
        assert not second._is_relay_leader()
        let_go(first)  # what Bus.stop does with the lock's connection; a killed process's goes the same way
        # The server lets go of the lock when the closed connection's backend has ended: at once, or a moment later.
        deadline = time.monotonic() + 10
        while not second._is_relay_leader():
            assert time.monotonic() < deadline, "the second replica never took the lead"
            time.sleep(0.05)
    finally:
        let_go(first)
        let_go(second)


def test_each_service_has_a_lock_of_its_own(database: str) -> None:
    assert len({relay_lock_key(name) for name in ("intake", "referrals", "funds", "gateway", "reports")}) == 5
    intake, funds = replica(database, "intake"), replica(database, "funds")
    try:
        assert intake._is_relay_leader()
        assert funds._is_relay_leader()
    finally:
        let_go(intake)
        let_go(funds)


def test_on_sqlite_the_one_process_always_publishes(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    first, second = replica(url), replica(url)
    try:
        assert first._is_relay_leader() and second._is_relay_leader()
        assert first._leader_conn is None
    finally:
        let_go(first)
        let_go(second)
