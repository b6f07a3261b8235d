"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production), chosen by URL alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine with the settings this system relies on.

    SQLite: WAL so readers never wait for the writer; synchronous=FULL because cases and money are written here
    (NORMAL may lose the last commits on power loss); foreign keys on; and every transaction starts with
    BEGIN IMMEDIATE, so two writers queue for the lock instead of failing half-way with "database is locked".
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if is_sqlite(url):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Deleted rows are overwritten, so a destroyed data key does not linger in free pages.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def transaction(factory: Callable[[], Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def checkpoint_wal(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database and truncate it, so old page images (a destroyed key's,
    say) leave the disk. PostgreSQL keeps dead row versions until VACUUM; there the KEK outside the database is the wall."""
    if not is_sqlite(engine):
        return
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
    finally:
        raw.close()


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def lock_for_chain(session: Session, key: int) -> None:
    """Serialise writers of one append-only chain (audit, references) across processes on PostgreSQL.

    On SQLite every write transaction already holds the database's single write lock (BEGIN IMMEDIATE).
    """
    if not is_sqlite(session.get_bind()):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
