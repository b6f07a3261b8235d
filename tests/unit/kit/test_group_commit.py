"""GroupCommit: units of work share one COMMIT, each is answered only once it is on disk, a failing unit is undone
alone, and commit hooks run after the real COMMIT, not at a unit's savepoint."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, func, insert, select

from kit.db import GroupCommit, make_engine, make_session_factory

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("text", String, unique=True))


@pytest.fixture
def group(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    metadata.create_all(engine)
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(conn))
    units = GroupCommit(engine, make_session_factory(engine))
    units.commits = commits  # type: ignore[attr-defined]
    yield units
    engine.dispose()


def committed_texts(units: GroupCommit) -> list[str]:
    with units.read() as session:
        return sorted(session.execute(select(notes.c.text)).scalars())


def add(text: str):
    def work(session):
        session.execute(insert(notes).values(text=text))
        # What a caller is answered must already be readable by anyone else: it was committed first.
        return text
    return work


async def test_units_that_arrive_together_share_one_commit_and_each_gets_its_result(group):
    results = await asyncio.gather(*(group.run(add(f"n{i}")) for i in range(10)))
    assert results == [f"n{i}" for i in range(10)]
    assert committed_texts(group) == sorted(f"n{i}" for i in range(10))
    assert len(group.commits) == 1


async def test_a_result_is_given_only_once_its_transaction_is_committed(group):
    async def add_and_look(text: str) -> list[str]:
        await group.run(add(text))
        return committed_texts(group)

    seen = await asyncio.gather(*(add_and_look(f"m{i}") for i in range(5)))
    for i, texts in enumerate(seen):
        assert f"m{i}" in texts


async def test_a_failing_unit_is_undone_alone_and_gets_its_own_error(group):
    def fails(session):
        session.execute(insert(notes).values(text="half-done"))
        raise ValueError("refused")

    outcomes = await asyncio.gather(group.run(add("a")), group.run(fails), group.run(add("a")), group.run(add("b")),
                                    return_exceptions=True)
    assert outcomes[0] == "a" and outcomes[3] == "b"
    assert isinstance(outcomes[1], ValueError)
    assert type(outcomes[2]).__name__ == "IntegrityError"  # the same text twice: only the second is refused
    assert committed_texts(group) == ["a", "b"]


async def test_commit_hooks_run_after_the_shared_commit_and_in_the_callers_context(group):
    seen_at_hook: list[list[str]] = []

    def hook(session):
        if session.info.pop("marked", False):
            seen_at_hook.append(committed_texts(group))

    group.on_commit(hook)

    def marked(session):
        session.execute(insert(notes).values(text="x"))
        session.commit()  # inside a unit: releases its savepoint, commits nothing yet
        session.info["marked"] = True
        return True

    assert await group.run(marked)
    assert seen_at_hook == [["x"]]


async def test_a_unit_that_reads_sees_the_work_of_the_units_before_it(group):
    counts = await asyncio.gather(
        group.run(add("p")),
        group.run(lambda session: session.execute(select(func.count()).select_from(notes)).scalar_one()),
    )
    assert counts[1] == 1
