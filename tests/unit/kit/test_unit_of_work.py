"""UnitOfWork: units share one COMMIT, each is answered only once it is on disk, a failing unit is undone alone,
a unit never commits itself, and what comes after the commit (hooks, the write-ahead log scrub) comes before the
answer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from kit.db import UnitOfWork, make_engine, make_session_factory, scrub_after_commit, write_at_commit

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String, unique=True))


@pytest.fixture
def uow(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    metadata.create_all(engine)
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(conn))
    # No time limit on a transaction here (a slow machine would split it): `test_a_transaction_stops_taking_units…`
    # sets one.
    unit_of_work = UnitOfWork(engine, make_session_factory(engine), max_batch_seconds=3600)
    unit_of_work.commits = commits  # type: ignore[attr-defined]
    yield unit_of_work
    engine.dispose()


def committed_texts(uow: UnitOfWork) -> list[str]:
    with uow.read() as session:
        return sorted(session.execute(select(notes.c.text)).scalars())


def add(text: str):
    def work(session):
        session.execute(insert(notes).values(text=text))
        # What a caller is answered must already be readable by anyone else: it was committed first.
        return text
    return work


async def test_units_that_arrive_together_share_one_commit_and_each_gets_its_result(uow):
    results = await asyncio.gather(*(uow.run(add(f"n{i}")) for i in range(10)))
    assert results == [f"n{i}" for i in range(10)]
    assert committed_texts(uow) == sorted(f"n{i}" for i in range(10))
    assert len(uow.commits) == 1


async def test_a_transaction_stops_taking_units_once_they_held_the_loop_long_enough(uow):
    # Units of 60 ms against a limit of 100 ms: two per transaction, the rest left for the next, in arrival order.
    uow.max_batch_seconds = 0.1
    order: list[str] = []

    def slow(text: str):
        def work(session):
            order.append(text)
            session.execute(insert(notes).values(text=text))
            time.sleep(0.06)
            return text
        return work

    results = await asyncio.gather(*(uow.run(slow(f"s{i}")) for i in range(5)))
    assert results == [f"s{i}" for i in range(5)] and order == results
    assert committed_texts(uow) == results
    assert len(uow.commits) == 3  # s0 s1 | s2 s3 | s4: a unit always runs, however long the one before it took


async def test_a_result_is_given_only_once_its_transaction_is_committed(uow):
    async def add_and_look(text: str) -> list[str]:
        await uow.run(add(text))
        return committed_texts(uow)

    seen = await asyncio.gather(*(add_and_look(f"m{i}") for i in range(5)))
    for i, texts in enumerate(seen):
        assert f"m{i}" in texts


async def test_a_failing_unit_is_undone_alone_and_gets_its_own_error(uow):
    def fails(session):
        session.execute(insert(notes).values(text="half-done"))
        raise ValueError("refused")

    outcomes = await asyncio.gather(uow.run(add("a")), uow.run(fails), uow.run(add("a")), uow.run(add("b")),
                                    return_exceptions=True)
    assert outcomes[0] == "a" and outcomes[3] == "b"
    assert isinstance(outcomes[1], ValueError)
    assert type(outcomes[2]).__name__ == "IntegrityError"  # the same text twice: only the second is refused
    assert committed_texts(uow) == ["a", "b"]


async def test_a_unit_that_commits_is_refused_and_undone(uow):
    def commits(session):
        session.execute(insert(notes).values(text="mine"))
        session.commit()

    with pytest.raises(RuntimeError, match="never commits"):
        await uow.run(commits)
    assert await uow.run(add("next")) == "next"
    assert committed_texts(uow) == ["next"]


async def test_a_unit_may_roll_back_its_own_work_and_go_on(uow):
    await uow.run(add("taken"))

    def tries_then_settles(session):
        try:
            session.execute(insert(notes).values(text="taken"))
        except IntegrityError:
            session.rollback()  # its own savepoint only
        session.execute(insert(notes).values(text="instead"))
        return "settled"

    assert await uow.run(tries_then_settles) == "settled"
    assert committed_texts(uow) == ["instead", "taken"]


async def test_commit_hooks_run_after_the_shared_commit_and_before_the_caller_is_answered(uow):
    seen_at_hook: list[list[str]] = []

    def hook(session):
        if session.info.pop("marked", False):
            seen_at_hook.append(committed_texts(uow))

    uow.on_commit(hook)

    def marked(session):
        session.execute(insert(notes).values(text="x"))
        session.info["marked"] = True
        return True

    assert await uow.run(marked)
    assert seen_at_hook == [["x"]]


async def test_a_scrubbing_unit_is_answered_after_the_write_ahead_log_is_truncated(uow):
    wal = Path(uow.engine.url.database + "-wal")
    await uow.run(add("kept"))
    assert wal.stat().st_size > 0

    def destroys(session):
        session.execute(notes.delete().where(notes.c.text == "kept"))
        scrub_after_commit(session)

    await uow.run(destroys)
    assert wal.stat().st_size == 0 and committed_texts(uow) == []


async def test_a_unit_that_reads_sees_the_work_of_the_units_before_it(uow):
    counts = await asyncio.gather(
        uow.run(add("p")),
        uow.run(lambda session: session.execute(select(func.count()).select_from(notes)).scalar_one()),
    )
    assert counts[1] == 1


async def test_a_read_session_keeps_nothing(uow):
    with uow.read() as session:
        session.execute(insert(notes).values(text="never"))
    assert committed_texts(uow) == []


async def test_what_units_leave_for_the_commit_is_written_once_per_transaction_in_order_without_a_failed_unit(uow):
    written: list[tuple[list[str], bool]] = []

    def writer(conn, items: list[str]) -> None:  # as kit.audit chains its entries: once, with every unit's items
        written.append((items, conn.in_transaction()))
        conn.execute(insert(notes), [{"text": item} for item in items])

    def leaves(text: str, fail: bool = False):
        def work(session):
            assert write_at_commit(session, writer, text)
            if fail:
                raise ValueError("the unit failed after leaving its item")
            return text
        return work

    results = await asyncio.gather(uow.run(leaves("a")), uow.run(leaves("b", fail=True)), uow.run(leaves("c")),
                                   return_exceptions=True)
    assert results[0] == "a" and isinstance(results[1], ValueError) and results[2] == "c"
    assert written == [(["a", "c"], True)] and len(uow.commits) == 1
    assert committed_texts(uow) == ["a", "c"]  # written in the transaction, committed with it

    def takes_it_back(session):  # a unit that rolls its own work back takes back what it left, and goes on
        write_at_commit(session, writer, "e")
        session.rollback()
        write_at_commit(session, writer, "f")

    await uow.run(takes_it_back)
    assert written[-1] == (["f"], True)

    with uow.read() as session:  # not a unit's session: the caller writes at once itself
        assert write_at_commit(session, writer, "d") is False


async def test_transactions_after_one_another_keep_one_connection_and_a_failed_commit_gives_it_up(uow):
    # On SQLite a connection's page cache survives only while no other connection writes: the unit of work keeps
    # one for all its transactions, and takes a new one after a COMMIT fails, so a broken one never lingers.
    await uow.run(add("a"))
    await uow.run(add("b"))
    first, second = uow.commits  # the connections committed on
    assert first is second

    def refused_at_commit(conn, items):
        raise RuntimeError("the disk is full")

    def leaves_a_failing_write(session):
        session.execute(insert(notes).values(text="lost"))
        write_at_commit(session, refused_at_commit, "x")

    with pytest.raises(RuntimeError, match="disk is full"):
        await uow.run(leaves_a_failing_write)
    assert await uow.run(add("c")) == "c"
    assert committed_texts(uow) == ["a", "b", "c"]  # the failed transaction left nothing
    assert uow.commits[-1] is not first


def test_a_unit_larger_than_sqlites_statement_journal_writes_no_file_outside_the_database(tmp_path):
    # Each unit runs in a savepoint, whose changed pages SQLite keeps as they were in a statement journal; past
    # 64 KiB it spills the journal into a temporary file (in SQLITE_TMPDIR, else /var/tmp), created and unlinked at
    # once but written all the same, with copies of the database's pages. With temp_store=MEMORY it stays in memory:
    # the folder SQLite would have used is left untouched (creating and unlinking a file there changes its time).
    # In a process of its own: SQLite reads SQLITE_TMPDIR once, when a process first uses it.
    spill = tmp_path / "sqlite-tmp"
    spill.mkdir()
    script = f"""
import asyncio, time
from pathlib import Path
from sqlalchemy import func, insert, select, update
from kit.db import UnitOfWork, make_engine, make_session_factory
from tests.unit.kit.test_unit_of_work import metadata, notes

async def main():
    engine = make_engine("sqlite:///{tmp_path / 'big.db'}")
    metadata.create_all(engine)
    uow = UnitOfWork(engine, make_session_factory(engine))
    await uow.run(lambda session: session.execute(insert(notes), [
        {{"text": f"{{i:05d}}" + "x" * 500}} for i in range(2000)]))
    untouched = Path("{spill}").stat().st_mtime_ns
    time.sleep(0.05)  # past the file system clock's tick
    await uow.run(lambda session: session.execute(update(notes).values(text=func.upper(notes.c.text))))
    with uow.read() as session:
        assert session.execute(select(func.count()).where(notes.c.text.like("%XXX"))).scalar() == 2000
    await uow.close()
    print(Path("{spill}").stat().st_mtime_ns == untouched)

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SQLITE_TMPDIR": str(spill)},
                          cwd=Path(__file__).parents[3], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True", "SQLite wrote a temporary file"
