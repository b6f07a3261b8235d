"""kit.projection: a copy of another service's state that only moves forward, whatever order its events arrive in."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Column, MetaData, String, Table, case, select
from sqlmodel import Session, create_engine

from kit.projection import ForwardOnly, later_state

ORDER = ("open", "closed", "erased")
metadata = MetaData()
cases = Table("cases", metadata, Column("case_id", String, primary_key=True), Column("status", String),
              Column("reference", String), Column("seen", String))
kept = ForwardOnly(cases, key="case_id", state_column="status", order=ORDER, overwrite=["seen"], also={
    # A reference, once known, is kept; an event without one does not blank it.
    "reference": lambda old, new: case((new.reference.is_not(None), new.reference), else_=old.reference)})


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    metadata.create_all(engine)
    with Session(engine) as session:
        yield session


@pytest.mark.parametrize("arrival", list(itertools.permutations(ORDER)))
def test_the_latest_state_wins_in_any_order_of_arrival(session, arrival):
    for n, status in enumerate(arrival):
        kept.upsert(session, {"case_id": "c1", "status": status, "reference": "R-1" if status == "open" else None,
                              "seen": str(n)})
    row = session.execute(select(cases)).one()
    assert (row.status, row.reference, row.seen) == ("erased", "R-1", "2")


def test_later_state_agrees_with_the_statement():
    assert later_state(ORDER, None, "closed") == "closed"
    assert later_state(ORDER, "erased", "open") == "erased"
    assert later_state(ORDER, "open", "closed") == "closed"
    assert later_state(ORDER, "open", "reopened") == "open"  # an unknown state never overtakes a known one
