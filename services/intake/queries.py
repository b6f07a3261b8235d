"""Intake's storage idioms, in one place: the statements of the hot paths, built once with bound parameters (building
a statement costs more than running it), Core inserts where the ORM would build an object per row, and the one
fact about a database worth remembering for the life of the process. The use cases (`cases`, `search`) call these;
nothing here commits, decides a rule or knows of HTTP."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select
from sqlmodel import Session

from kit.db import dialect_insert
from services.intake import domain
from services.intake.models import Case, CaseKey, CaseNameTerm, NameIndexPending, ReferenceCounter, TimelineEntry
from services.intake.protection import NAME_DOB_TERM, PAIR_TERM

CASES, CASE_KEYS = Case.__table__, CaseKey.__table__
NAME_TERMS, TIMELINE = CaseNameTerm.__table__, TimelineEntry.__table__

# What a list of cases shows (no personal data), and its order: newest first, the id breaking ties. A list and a
# search share the order, so their cursors hold the same position (kit.pagination).
LIST_COLUMNS = (CASES.c.id, CASES.c.reference, CASES.c.status, CASES.c.country, CASES.c.opened_at)
LIST_ORDER = (CASES.c.opened_at, CASES.c.id)

# Core inserts, one statement per table (several rows in one executemany): the ORM's unit of work would build an
# object per row and flush them in several rounds, which cost more than the whole rest of opening a case.
INSERT_CASE = insert(CASES)
INSERT_CASE_KEY = insert(CASE_KEYS)
INSERT_NAME_TERMS = insert(NAME_TERMS)
INSERT_TIMELINE_ENTRY = insert(TIMELINE)

# The case row and its wrapped key in one select: two ORM `get`s cost several times the query.
CASE_WITH_KEY = (
    select(CASES, CASE_KEYS.c.kid, CASE_KEYS.c.wrapped)
    .outerjoin(CASE_KEYS, CASE_KEYS.c.case_id == CASES.c.id)
    .where(CASES.c.id == bindparam("case_id"))
)

# Cases (not erased) holding any of some name-and-birth terms, oldest first. No case has the empty id: a check before
# saving (nothing to exclude) uses the same statement.
CASES_WITH_TERMS = (
    select(CASES.c.id, CASES.c.reference)
    .where(
        CASES.c.id.in_(select(NAME_TERMS.c.case_id).where(
            NAME_TERMS.c.kind == NAME_DOB_TERM, NAME_TERMS.c.term.in_(bindparam("terms", expanding=True)))),
        CASES.c.id != bindparam("excluding"), CASES.c.status != domain.ERASED,
    )
    .order_by(CASES.c.opened_at)
)


def _counter_upsert(dialect: str) -> Any:
    counters = ReferenceCounter.__table__
    return (
        dialect_insert(dialect)(counters).values(year=bindparam("year"), last_number=1)
        .on_conflict_do_update(index_elements=[counters.c.year], set_={"last_number": counters.c.last_number + 1})
        .returning(counters.c.last_number)
    )


# The year's counter incremented and read in one statement, on either backing (INSERT … ON CONFLICT).
COUNTER_UPSERT = {dialect: _counter_upsert(dialect) for dialect in ("sqlite", "postgresql")}


def case_with_key(session: Session, case_id: str) -> Row[Any] | None:
    """The case's row with its wrapped key (`kid`, `wrapped`, None once erased); None when there is no such case."""
    return session.execute(CASE_WITH_KEY, {"case_id": case_id}).first()


def next_reference_number(session: Session, year: int) -> int:
    """The year's next number, from a counter row incremented in the caller's transaction: on PostgreSQL concurrent
    openings queue on the row lock, on SQLite on the write lock."""
    upsert = COUNTER_UPSERT[session.get_bind().dialect.name]
    return session.execute(upsert, {"year": year}).scalar_one()


def cases_with_terms(session: Session, terms: list[str], *, excluding: str = "") -> list[Row[Any]]:
    """The cases (id, reference; not erased, not `excluding`) holding any of these name-and-birth terms."""
    if not terms:
        return []
    return list(session.execute(CASES_WITH_TERMS, {"terms": terms, "excluding": excluding}).all())


def add_name_terms(session: Session, case_id: str, opened_at: datetime, terms: Iterable[tuple[str, str]]) -> None:
    """A case's blind-index terms, `(kind, term)`, with the case's `opened_at` (the search index's order)."""
    rows = [{"case_id": case_id, "kind": kind, "term": term, "opened_at": opened_at} for kind, term in terms]
    if rows:
        session.execute(INSERT_NAME_TERMS, rows)


def add_timeline_entry(session: Session, case_id: str, at: datetime, kind: str, details: dict[str, Any], *,
                       source: str = "intake") -> None:
    session.execute(INSERT_TIMELINE_ENTRY, {"case_id": case_id, "at": at, "kind": kind, "source": source,
                                            "details": details})


# Engines whose database had no pending part of the name index: a part never becomes pending again once built (only
# a migration, run before the service starts, adds one), so a search asks the database once per process at most.
_complete_name_index: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def pairs_indexed(session: Session) -> bool:
    """Whether every case has its pair terms (none is waiting for `rehab names reindex`)."""
    engine = session.get_bind().engine  # the engine also when the session is bound to a shared transaction
    if _complete_name_index.get(engine):
        return True
    pending = session.execute(select(NameIndexPending.part).where(NameIndexPending.part == PAIR_TERM)).first()
    if pending is None:
        _complete_name_index[engine] = True
    return pending is None
