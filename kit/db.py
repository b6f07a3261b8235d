"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production), chosen by URL alone, and the
unit of work every write of a running process goes through (`UnitOfWork`, `runtime.uow`).

Who commits: only the kit. A use case is a function of a session that never commits; `UnitOfWork.run` commits it.
`transaction()` is for processes with no event loop (the command-line maintenance scripts) and tests."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from kit import logs
from kit.errors import NotFound

T = TypeVar("T")
M = TypeVar("M")
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
    Temporary data in memory: SQLite keeps the pages a savepoint changes (every unit of work runs in one) in a
    statement journal, and past 64 KiB it spills that journal into a file in /var/tmp, outside the state folder, with
    copies of the database's pages in it. Creating a case did that every time (a file created, unlinked at once, and
    over 100 KiB written to it); now the journal stays in memory.
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
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # A read-only connection (UnitOfWork.read) reads a WAL snapshot and never waits for the writer.
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
    """A transaction of its own, committed on the calling thread: commit on success, roll back on any exception.

    For processes that run no event loop (`rehab keys rotate`, `ledger check`, `rehab audit verify`) and for tests
    that stand in for one. A running service never uses it: its writes go through its `UnitOfWork`.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Set on a unit's session (`scrub_after_commit`): once its work is committed, the write-ahead log is truncated.
SCRUB_WAL = "kit.scrub_write_ahead_log"


def scrub_after_commit(session: Session) -> None:
    """Ask that, once this unit's work is committed, the old page images of what it destroyed (a data key, a sealed
    answer) leave the disk too: `UnitOfWork` checkpoints and truncates SQLite's write-ahead log after the COMMIT and
    before it answers the unit's caller. Nothing to do on PostgreSQL (see `checkpoint_wal`)."""
    session.info[SCRUB_WAL] = True


def checkpoint_wal(engine: Engine) -> None:
    """SQLite: copy the write-ahead log into the database and truncate it, so old page images (a destroyed key's,
    say) leave the disk. PostgreSQL keeps dead row versions until VACUUM; there the KEK outside the database is the wall."""
    if not is_sqlite(engine):
        return
    raw = engine.raw_connection()
    try:
        _truncate_wal(raw.driver_connection)
    finally:
        raw.close()


def _truncate_wal(sqlite_connection: Any) -> None:
    sqlite_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def get_or_raise(session: Session, model: type[M], key: Any, missing: NotFound, *, lock: bool = False) -> M:
    """The one "not found" convention: `session.get(model, key)` where absence is normal (None), this where it is
    the caller's mistake (the domain's NotFound, answered 404). `lock`: SELECT … FOR UPDATE on PostgreSQL, for a
    row about to change whose current state decides how (on SQLite the unit of work's transaction serialises)."""
    found = session.get(model, key, with_for_update=lock)
    if found is None:
        raise missing
    return found


def ping(engine: Engine) -> bool:
    try:
        # Read-only: on SQLite a plain BEGIN, so a readiness probe never queues for (or holds) the write lock.
        with engine.connect().execution_options(read_only=True) as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def lock_for_chain(session: Session | Connection, key: int) -> None:
    """Serialise writers of one append-only chain (audit, references) across processes on PostgreSQL, until the
    transaction ends.

    On SQLite every write transaction already holds the database's single write lock (BEGIN IMMEDIATE).
    """
    if not is_sqlite(session.get_bind() if isinstance(session, Session) else session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


# What units left to be written just before their transaction's COMMIT: {writer: [item, ...]} on a unit's session.
_AT_COMMIT = "kit.at_commit"
AtCommitWriter = Callable[[Connection, list[Any]], None]


def write_at_commit(session: Session, writer: AtCommitWriter, item: Any) -> bool:
    """Leave `item` for `writer(connection, items)`, called once per shared transaction with the items of every unit
    that succeeded, in their order, just before the COMMIT and in the COMMIT's worker thread. False when `session`
    is not a unit's (a maintenance command's own session): the caller writes at once.

    For writes that take a lock every process waits for (an append-only chain): taken at the last moment and held
    only for those statements and the COMMIT, never for the units' whole batch, and never waited for on the event
    loop. A unit that fails leaves nothing: its session, with its items, is dropped with its savepoint."""
    if session.info.get(_IN_UNIT) is not True:
        return False
    session.connection()  # the unit's savepoint begun, so that its rollback, even before any statement, takes it back
    session.info.setdefault(_AT_COMMIT, {}).setdefault(writer, []).append(item)
    return True


class UnitOfWork:
    """The one way a running process writes: `await uow.run(fn)` runs `fn(session)` and commits it; `uow.read()` is a
    session for reading only. Use cases are plain functions of a session and never commit: only this class does.

    Units of work run one after another on the event loop inside one shared transaction, each in a savepoint of
    its own, and are committed together: one COMMIT, so one fsync, for every unit that came in meanwhile (a group
    commit); a transaction stops taking units once they have held the loop `max_batch_seconds`. (Running the units
    in a worker thread on PostgreSQL, where each statement waits for the server, was measured slower: they are
    processor work too, and the two threads took turns at the GIL.) Every write goes through here: HTTP routes with
    or without an Idempotency-Key, the bus's inbox transactions, relay marks and dead letters, background jobs.

    Why: on SQLite with synchronous=FULL each COMMIT waits for the disk (0.7 ms at best, several ms under load on
    this machine's shared disk), and a COMMIT issued on the event loop stops every other request for that long.
    Here the COMMIT runs in a worker thread while the loop goes on parsing requests and handling events; the
    units that arrive during it wait and go into the next transaction together. Each caller gets its result
    (or its exception) only after the COMMIT holding its work succeeded, so nothing is answered, published or
    acknowledged before it is on disk. A unit that raises is rolled back to its savepoint alone; if the COMMIT
    itself fails, every unit of that transaction gets the error.

    A unit must not commit (a commit inside one raises): the savepoint is released by the unit of work
    once the function returns. `session.rollback()` undoes only the unit's own work. A unit runs in its caller's
    context (request id, trace), so audit entries and events name the right request. What must happen after the
    COMMIT is asked for on the session and done here: `on_commit` hooks (the relay woken by `record_event`'s
    `outbox_dirty`), and `scrub_after_commit` (the write-ahead log truncated after an erasure), both before the
    caller is answered.
    """

    def __init__(self, engine: Engine, factory: sessionmaker[Session], *, max_units: int = 64,
                 max_batch_seconds: float = 0.02) -> None:
        self.engine = engine
        self.factory = factory
        # Units run on the event loop one after another: a transaction stops taking more once its units have held
        # the loop this long, and the rest wait for the next one. Without it 64 units of ~8 ms held the loop for
        # half a second, during which no request was read, no event fetched and no connection accepted: under
        # load the first callers waited several seconds (bench: approve at 64 clients, p99 5.4 s).
        self.max_batch_seconds = max_batch_seconds
        # Reads that may wait on something slow besides the database (a key unwrapped by OpenBao, kit.custody) run
        # in a worker thread, so that one read's round trip does not stop every other request (`reading`).
        self.reads_off_loop = False
        self.max_units = max_units
        self._hooks: list[Callable[[Session], None]] = []
        self._queue: deque[tuple[Callable[[Session], Any], asyncio.Future, contextvars.Context]] = deque()
        self._drainer: asyncio.Task | None = None
        self._kept: Connection | None = None  # on SQLite, the connection of every shared transaction (`_connection`)
        event.listen(factory, "before_commit", _refuse_a_commit_inside_a_unit)
        event.listen(factory, "after_soft_rollback", _forget_what_was_left_for_the_commit)

    def on_commit(self, hook: Callable[[Session], None]) -> None:
        """Call `hook(session)` for each unit's session once the shared transaction holding it is committed, before
        the unit's caller is answered. A hook runs on the event loop: it must be quick (a flag, a wake-up)."""
        self._hooks.append(hook)

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in the next shared transaction; its result once that transaction is committed."""
        future = asyncio.get_running_loop().create_future()
        self._queue.append((work, future, contextvars.copy_context()))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="unit-of-work")
        return await future

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only, outside the shared transaction: it sees committed rows alone and, on SQLite,
        starts with a plain BEGIN (a WAL snapshot) so it never waits for the write lock. It is never committed:
        whatever is written in it is rolled back when it closes."""
        with self.read_connection() as conn:
            session = self.factory(bind=conn)
            try:
                yield session
            finally:
                session.close()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """`read()` without the session, for a hot path of Core statements (the outbox relay's read after every
        commit): the ORM's session and execute path cost more than such a statement itself."""
        with self.engine.connect() as conn:
            yield conn.execution_options(read_only=True)

    async def reading(self, work: Callable[[Session], T]) -> T:
        """`work(session)` on a read-only session (`read()`): on the event loop, or in a worker thread when
        `reads_off_loop`."""
        def run() -> T:
            with self.read() as session:
                return work(session)

        if self.reads_off_loop:
            return await asyncio.to_thread(run)  # it carries the context (request id, trace) along
        return run()

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def _connection(self) -> Connection:
        """The connection for the next shared transaction.

        SQLite: the same one every time. A connection's page cache stays valid only while no other connection
        writes, and here every write of the process goes through this one: a pooled connection that last served a
        read would have a cold cache and read each page again from the file (34–45 page reads per case created,
        8 on the kept connection). Any doubt about it (a failed transaction, a closed or broken connection) and it
        is closed and a new one taken. PostgreSQL: a connection from the pool, pinged first, so that a restarted
        server costs the next transaction nothing.
        """
        if not is_sqlite(self.engine):
            return self.engine.connect()
        if self._kept is None or self._kept.closed or self._kept.invalidated:
            self._kept = self.engine.connect()
        return self._kept

    def _done_with(self, conn: Connection, *, committed: bool) -> None:
        if committed and conn is self._kept:
            return  # kept for the next transaction
        if conn is self._kept:
            self._kept = None
        conn.close()

    async def _drain(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.max_units, len(self._queue)))]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[tuple[Callable[[Session], Any], asyncio.Future, contextvars.Context]]) -> None:
        done: list[tuple[asyncio.Future, Any]] = []
        sessions: list[Session] = []
        conn: Connection | None = None
        committed = False
        try:
            conn = self._connection()  # may fail (the database restarting): then every unit of the batch fails
            outer = conn.begin()
            started = time.perf_counter()
            for index, (work, future, ctx) in enumerate(batch):
                if index and time.perf_counter() - started > self.max_batch_seconds:
                    self._queue.extendleft(reversed(batch[index:]))  # first into the next transaction, in order
                    batch = batch[:index]
                    break
                session = self.factory(bind=conn, join_transaction_mode="create_savepoint")
                session.info[_IN_UNIT] = True
                try:
                    result = ctx.run(_unit, session, work)
                except Exception as exc:  # its own savepoint is rolled back; the others go on
                    if not future.done():
                        future.set_exception(exc)
                    if _connection_lost(conn, exc):
                        raise  # the shared transaction died with it: every unit of the batch fails with this error
                    continue
                finally:
                    session.close()
                done.append((future, result))
                sessions.append(session)
            scrub = any(session.info.pop(SCRUB_WAL, False) for session in sessions)
            at_commit: dict[AtCommitWriter, list[Any]] = {}
            for session in sessions:
                for writer, items in session.info.pop(_AT_COMMIT, {}).items():
                    at_commit.setdefault(writer, []).extend(items)
            await asyncio.to_thread(self._commit, conn, outer, scrub, at_commit)  # the fsync, off the event loop
            committed = True
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
                self._done_with(conn, committed=committed)
        for session in sessions:
            for hook in self._hooks:
                try:
                    hook(session)
                except Exception as exc:  # the work is committed: a failing hook must not fail its caller
                    _log.warning("commit hook failed", error_type=type(exc).__name__)
        for future, result in done:
            if not future.done():
                future.set_result(result)

    def _commit(self, conn: Connection, outer: Any, scrub: bool,
                at_commit: dict[AtCommitWriter, list[Any]]) -> None:
        """In a worker thread: what the units left to write at the COMMIT (`write_at_commit`), the COMMIT, then, when
        a unit asked for it, truncate SQLite's write-ahead log at once on the same connection (`checkpoint_wal`'s
        work). Off the event loop, because the checkpoint waits for readers and those need the loop to finish; right
        after the COMMIT, so that what the units destroyed has left the disk before their callers are answered or
        their messages acked."""
        for writer, items in at_commit.items():
            writer(conn, items)
        outer.commit()
        if not scrub or not is_sqlite(self.engine):
            return
        try:
            _truncate_wal(conn.connection.driver_connection)
        except Exception as exc:  # committed all the same; the next checkpoint takes the old pages out
            _log.warning("write-ahead log not truncated", error_type=type(exc).__name__)


# What a database that restarts, is out of reach or is busy raises: a request answers 503 (kit.problems, kit.http), an
# event is held and tried again (kit.bus), never a 500 or a dead letter.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def refused_a_nul(exc: BaseException) -> bool:
    """Whether PostgreSQL refused a NUL character in text or JSON (SQLite stores one): a value the caller sent that
    the door did not see, answered as a refusal of it (kit.http), not as a failure. The driver refuses one in text
    before the query is sent; the server one in a JSON value, with a message that quotes the value (never logged).
    Told by what they say, without importing the driver (SQLite alone needs none)."""
    if not isinstance(exc, DataError):
        return False
    said = str(exc.orig)
    return "cannot contain NUL (0x00)" in said or (
        getattr(exc.orig, "sqlstate", None) in ("22P05", "22021") and ("\\u0000" in said or "0x00" in said))


def _connection_lost(conn: Connection, exc: Exception) -> bool:
    """The database went away under a unit (a restart, a crash, a broken socket). The units after it would fail on
    the dead transaction with a misleading "rollback first" error (a 500); they get the real cause instead (a 503)."""
    return conn.invalidated or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


# On a unit's session while its function runs: a commit there is refused (the unit of work releases the savepoint).
_IN_UNIT = "kit.unit_of_work"


def _refuse_a_commit_inside_a_unit(session: Session) -> None:
    if session.info.get(_IN_UNIT) is True:
        raise RuntimeError("a use case never commits: the unit of work does, once the function returns")


def _forget_what_was_left_for_the_commit(session: Session, _previous: Any) -> None:
    """A unit that rolls its own work back (`session.rollback()`) and goes on takes back what it left for the COMMIT
    too (`write_at_commit`): an audit entry never outlives the change it describes."""
    session.info.pop(_AT_COMMIT, None)


def _unit(session: Session, work: Callable[[Session], T]) -> T:
    try:
        result = work(session)
        session.info[_IN_UNIT] = "released"
        if session.in_transaction():
            session.commit()  # releases the unit's savepoint; the shared transaction's COMMIT comes later
        return result
    except BaseException:
        session.rollback()
        raise
