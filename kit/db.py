"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production), chosen by URL alone."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from kit import logs

T = TypeVar("T")
_log = logs.get("db")


def is_sqlite(engine_or_url: Engine | Connection | str) -> bool:
    if isinstance(engine_or_url, str):
        return engine_or_url.startswith("sqlite")
    return engine_or_url.dialect.name == "sqlite"  # an engine, or the connection of a shared transaction


def dialect_insert(dialect: str) -> Callable[..., Any]:
    """The `insert` of the dialect named, for INSERT … ON CONFLICT (both backings have it, spelled alike)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


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
            # A read-only connection (GroupCommit.read) reads a WAL snapshot and never waits for the writer.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

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


class GroupCommit:
    """Units of work run one after another on the event loop inside one shared transaction, each in a savepoint of
    its own, and committed together: one COMMIT, so one fsync, for every unit that came in meanwhile.

    Why: on SQLite with synchronous=FULL each COMMIT waits for the disk (0.7 ms at best, several ms under load on
    this machine's shared disk), and a COMMIT issued on the event loop stops every other request for that long.
    Here the COMMIT runs in a worker thread while the loop goes on parsing requests and handling events; the
    units that arrive during it wait and go into the next transaction together. Each caller gets its result
    (or its exception) only after the COMMIT holding its work succeeded, so nothing is answered, published or
    acknowledged before it is on disk. A unit that raises is rolled back to its savepoint alone; if the COMMIT
    itself fails, every unit of that transaction gets the error.

    A unit is a plain function of a Session, as service functions are: `session.commit()` inside it releases its
    savepoint (the real commit comes later), `session.rollback()` undoes only its own work. It runs in its
    caller's context (request id, trace), so audit entries and events name the right request.
    """

    def __init__(self, engine: Engine, factory: sessionmaker[Session], *, max_units: int = 64) -> None:
        self.engine = engine
        self.factory = factory
        self.max_units = max_units
        self._hooks: list[Callable[[Session], None]] = []
        self._queue: deque[tuple[Callable[[Session], Any], asyncio.Future, contextvars.Context]] = deque()
        self._drainer: asyncio.Task | None = None

    def on_commit(self, hook: Callable[[Session], None]) -> None:
        """Call `hook(session)` once a session's work is committed for good: at once for a session of the factory,
        after the shared transaction's COMMIT for a unit here (its savepoint's release commits nothing yet)."""

        @event.listens_for(self.factory, "after_commit")
        def _after_own_commit(session: Session) -> None:
            if not session.info.get("group_commit"):
                hook(session)

        self._hooks.append(hook)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in the next shared transaction; its result once that transaction is committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((work, future, contextvars.copy_context()))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only, outside the shared transaction: it sees committed rows alone and, on SQLite,
        starts with a plain BEGIN (a WAL snapshot) so it never waits for the write lock."""
        with self.engine.connect() as conn:
            session = self.factory(bind=conn.execution_options(read_only=True))
            try:
                yield session
            finally:
                session.close()

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.max_units, len(self._queue)))]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[Callable[[Session], Any], asyncio.Future, contextvars.Context]]) -> None:
        done: list[tuple[asyncio.Future, Any]] = []
        sessions: list[Session] = []
        conn: Connection | None = None
        try:
            conn = self.engine.connect()  # may fail (the database restarting): then every unit of the batch fails
            outer = conn.begin()
            for work, future, ctx in batch:
                session = self.factory(bind=conn, join_transaction_mode="create_savepoint")
                session.info["group_commit"] = True
                try:
                    result = ctx.run(_unit, session, work)
                except Exception as exc:  # its own savepoint is rolled back; the others go on
                    if not future.done():
                        future.set_exception(exc)
                    continue
                finally:
                    session.close()
                done.append((future, result))
                sessions.append(session)
            await asyncio.to_thread(outer.commit)  # the fsync, off the event loop
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else RuntimeError("the shared transaction was cancelled")
            for _work, future, _ctx in batch:  # nobody is left waiting: not-yet-run units fail too
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            if conn is not None:
                conn.close()
        for session in sessions:
            for hook in self._hooks:
                try:
                    hook(session)
                except Exception as exc:  # the work is committed: a failing hook must not fail its caller
                    _log.warning("commit hook failed", error_type=type(exc).__name__)
        for future, result in done:
            if not future.done():
                future.set_result(result)


def _unit(session: Session, work: Callable[[Session], T]) -> T:
    try:
        result = work(session)
        if session.in_transaction():
            session.commit()  # releases the savepoint of whatever the unit left uncommitted
        return result
    except BaseException:
        session.rollback()
        raise
