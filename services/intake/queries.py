"""Intake's storage idioms, in one place: the statements of the hot paths, built once with bound parameters (building
a statement costs more than running it), Core inserts where the ORM would build an object per row, and the one
fact about a database worth remembering for the life of the process. The use cases (`cases`, `search`) call these;
nothing here commits, decides a rule or knows of HTTP."""

from __future__ import annotations

import weakref
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, case, exists, false, func, insert, select, update
from sqlmodel import Session

from kit.db import dialect_insert
from services.intake import domain
from services.intake.models import (
    BreakGlassOpening,
    Case,
    CaseAssignee,
    CaseKey,
    CaseNameTerm,
    NameIndexPending,
    ReferenceCounter,
    StaffMember,
    Task,
    TimelineEntry,
)
from services.intake.protection import NAME_DOB_TERM, PAIR_TERM

CASES, CASE_KEYS = Case.__table__, CaseKey.__table__
NAME_TERMS, TIMELINE = CaseNameTerm.__table__, TimelineEntry.__table__
ASSIGNEES, STAFF, TASKS = CaseAssignee.__table__, StaffMember.__table__, Task.__table__

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
INSERT_ASSIGNEES = insert(ASSIGNEES)

# A caseworker's own cases, in the case list's order and with its cursor: one range of the index
# `(user_id, opened_at, case_id)` of `case_assignees`, newest first (`MY_CASES_ORDER`, a row's position
# `(opened_at, id)` as in the list).
ASSIGNED_CASES = select(*LIST_COLUMNS).select_from(ASSIGNEES.join(CASES, CASES.c.id == ASSIGNEES.c.case_id))
MY_CASES_ORDER = (ASSIGNEES.c.opened_at, ASSIGNEES.c.case_id)

# The assignees of some cases, in the order assigned: user id and handle (the staff directory's, else the one
# they had when assigned), and what the directory says of their account (`enabled` and `roles`, None for one it does
# not know): whether they can still work the case (`domain.works_cases`).
ASSIGNEES_OF = (
    select(ASSIGNEES.c.case_id, ASSIGNEES.c.user_id,
           func.coalesce(STAFF.c.username, ASSIGNEES.c.username).label("username"), STAFF.c.enabled, STAFF.c.roles)
    .select_from(ASSIGNEES.outerjoin(STAFF, STAFF.c.user_id == ASSIGNEES.c.user_id))
    .where(ASSIGNEES.c.case_id.in_(bindparam("case_ids", expanding=True)))
    .order_by(ASSIGNEES.c.case_id, ASSIGNEES.c.position)
)

# Staff by handle, the newest first where a handle passed from one account to another.
STAFF_BY_USERNAME = (
    select(STAFF).where(STAFF.c.username.in_(bindparam("usernames", expanding=True)))
    .order_by(STAFF.c.profile_at)
)

# The case row and its wrapped key in one select: two ORM `get`s cost several times the query.
CASE_WITH_KEY = (
    select(CASES, CASE_KEYS.c.kid, CASE_KEYS.c.wrapped)
    .outerjoin(CASE_KEYS, CASE_KEYS.c.case_id == CASES.c.id)
    .where(CASES.c.id == bindparam("case_id"))
)

# Cases (not erased, not marked duplicates) holding any of some terms of one kind, oldest first. No case has the
# empty id: a check before saving (nothing to exclude) uses the same statement.
def _cases_with_terms(*, without_birth: bool) -> Any:
    statement = (
        select(CASES.c.id, CASES.c.reference, CASES.c.status, CASES.c.opened_at)
        .where(
            CASES.c.id.in_(select(NAME_TERMS.c.case_id).where(
                NAME_TERMS.c.kind == bindparam("kind"), NAME_TERMS.c.term.in_(bindparam("terms", expanding=True)))),
            CASES.c.id != bindparam("excluding"), CASES.c.status.not_in([domain.ERASED, domain.DUPLICATE]),
        )
        .order_by(CASES.c.opened_at)
    )
    if without_birth:  # a case with a date of birth holds `name_dob` terms; one without holds none
        born = NAME_TERMS.alias("born")
        statement = statement.where(~exists().where(born.c.case_id == CASES.c.id, born.c.kind == NAME_DOB_TERM))
    return statement


CASES_WITH_TERMS = {without_birth: _cases_with_terms(without_birth=without_birth) for without_birth in (False, True)}


def _counter_upsert(dialect: str) -> Any:
    counters = ReferenceCounter.__table__
    return (
        dialect_insert(dialect)(counters).values(year=bindparam("year"), last_number=1)
        .on_conflict_do_update(index_elements=[counters.c.year], set_={"last_number": counters.c.last_number + 1})
        .returning(counters.c.last_number)
    )


# The year's counter incremented and read in one statement, on either backing (INSERT … ON CONFLICT).
COUNTER_UPSERT = {dialect: _counter_upsert(dialect) for dialect in ("sqlite", "postgresql")}


def _staff_upsert(dialect: str) -> Any:
    statement = dialect_insert(dialect)(STAFF)
    new, old = statement.excluded, STAFF.c
    newer_profile, newer_enabled = new.profile_at > old.profile_at, new.enabled_at > old.enabled_at

    def newer(condition: Any, column: str) -> Any:
        return case((condition, new[column]), else_=old[column])

    return statement.on_conflict_do_update(index_elements=[old.user_id], set_={
        **{column: newer(newer_profile, column) for column in ("username", "roles", "partner_id", "profile_at")},
        **{column: newer(newer_enabled, column) for column in ("enabled", "enabled_at")},
    })


# A staff account as one event says it is, in one statement whatever arrived before: its handle and roles only
# if newer than those kept (`profile_at`), its being enabled only if newer than that (`enabled_at`).
STAFF_UPSERT = {dialect: _staff_upsert(dialect) for dialect in ("sqlite", "postgresql")}


def case_with_key(session: Session, case_id: str) -> Row[Any] | None:
    """The case's row with its wrapped key (`kid`, `wrapped`, None once erased); None when there is no such case."""
    return session.execute(CASE_WITH_KEY, {"case_id": case_id}).first()


def next_reference_number(session: Session, year: int) -> int:
    """The year's next number, from a counter row incremented in the caller's transaction: on PostgreSQL concurrent
    openings queue on the row lock, on SQLite on the write lock."""
    upsert = COUNTER_UPSERT[session.get_bind().dialect.name]
    return session.execute(upsert, {"year": year}).scalar_one()


def reference_numbers(session: Session) -> dict[int, int]:
    """The last reference number given out in each year."""
    return dict(session.execute(select(ReferenceCounter.year, ReferenceCounter.last_number)).all())  # type: ignore[arg-type]


def keep_reference_numbers_above(session: Session, numbers: dict[int, int]) -> int:
    """Each year's counter raised to at least `numbers[year]`; how many were raised."""
    raised = 0
    for year, number in numbers.items():
        counter = session.get(ReferenceCounter, year, with_for_update=True)
        if counter is None:
            session.add(ReferenceCounter(year=year, last_number=number))
        elif counter.last_number < number:
            counter.last_number = number
            session.add(counter)
        else:
            continue
        raised += 1
    return raised


def cases_with_terms(session: Session, kind: str, terms: list[str], *, excluding: str = "",
                     without_birth: bool = False) -> list[Row[Any]]:
    """The cases (id, reference, status, opened_at; not erased, not marked duplicates, not `excluding`) holding any
    of these terms of `kind`; with `without_birth`, only those without a date of birth."""
    if not terms:
        return []
    return list(session.execute(CASES_WITH_TERMS[without_birth],
                                {"kind": kind, "terms": terms, "excluding": excluding}).all())


def assignees_of(session: Session, case_ids: Iterable[str]) -> dict[str, list[Row[Any]]]:
    """Each case's assignees (`user_id`, `username`), in the order assigned; a case without any is absent."""
    ids = sorted(set(case_ids))
    found: dict[str, list[Row[Any]]] = {}
    if ids:
        for row in session.execute(ASSIGNEES_OF, {"case_ids": ids}):
            found.setdefault(row.case_id, []).append(row)
    return found


def my_cases(user_id: str) -> Any:
    """The cases assigned to `user_id`, to page through in `MY_CASES_ORDER`."""
    return ASSIGNED_CASES.where(ASSIGNEES.c.user_id == user_id)


def staff_states(session: Session) -> list[Row[Any]]:
    """Every account of the staff directory with what says whether it can work a case (`user_id`, `enabled`,
    `roles`): a few dozen rows for an NGO's staff."""
    return list(session.execute(select(STAFF.c.user_id, STAFF.c.enabled, STAFF.c.roles)).all())


def unattended(inactive: Collection[str]) -> Any:
    """A case's condition (of `CASES`) that it is held, and only by people who can no longer work it (`inactive`,
    user ids); never an erased case (nothing is left to work). Driven by the cases those people hold (one range of
    `ix_case_assignees_user_opened` each), not by a walk of the whole caseload looking for them. At 200,000 cases
    (SQLite): 0.2 ms for a page when leavers held five cases, where the walk took 250 ms; 55 ms when they held a
    tenth of the caseload. Its own aliases of the assignees, so that a list already joined to them (a caseworker's
    own) is not confused with them."""
    if not inactive:
        return false()
    ids = sorted(inactive)
    held, holder = ASSIGNEES.alias("held"), ASSIGNEES.alias("holder")
    return and_(CASES.c.status != domain.ERASED,
                CASES.c.id.in_(select(held.c.case_id).where(held.c.user_id.in_(ids))),
                ~exists().where(holder.c.case_id == CASES.c.id, holder.c.user_id.not_in(ids)))


def open_tasks_by_assignee(session: Session, case_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """For each of these cases with open tasks, how many each assignee of a task holds (user id → count)."""
    ids = sorted(set(case_ids))
    return _open_tasks_by_assignee(session, TASKS.c.case_id.in_(ids)) if ids else {}


def open_tasks_on_cases_held_by(session: Session, user_id: str) -> dict[str, dict[str, int]]:
    """`open_tasks_by_assignee` of every case assigned to `user_id` (however many: one statement)."""
    return _open_tasks_by_assignee(
        session, TASKS.c.case_id.in_(select(ASSIGNEES.c.case_id).where(ASSIGNEES.c.user_id == user_id)))


def _open_tasks_by_assignee(session: Session, of_cases: Any) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    rows = session.execute(select(TASKS.c.case_id, TASKS.c.assignee_id, func.count())
                           .where(of_cases, TASKS.c.status == domain.OPEN_TASK)
                           .group_by(TASKS.c.case_id, TASKS.c.assignee_id))
    for case_id, assignee_id, count in rows:
        counts.setdefault(case_id, {})[assignee_id] = count
    return counts


def assignee_ids(session: Session, case_id: str) -> set[str]:
    """The user ids a case is assigned to."""
    return set(session.execute(select(ASSIGNEES.c.user_id).where(ASSIGNEES.c.case_id == case_id)).scalars())


def _duplicates_of(case_id: str) -> Select:
    """The ids of the cases marked duplicates of this one: read from the duplicates' range of the index
    `(status, opened_at, id)`, not the whole table (duplicates are few)."""
    return select(CASES.c.id).where(CASES.c.status == domain.DUPLICATE, CASES.c.duplicate_of == case_id)


def kept_for_duplicates(session: Session, case_id: str) -> bool:
    """Whether some case is marked a duplicate of this one."""
    return session.execute(_duplicates_of(case_id).limit(1)).first() is not None


def duplicates_of(session: Session, case_id: str) -> list[str]:
    """The ids of the cases marked duplicates of this one, in order: the order their rows are locked in."""
    return sorted(session.execute(_duplicates_of(case_id)).scalars())


def hand_on_open_tasks(session: Session, case_id: str, *, holders: list[str], to_id: str, to_name: str) -> int:
    """Give the case's open tasks held by someone not among `holders` (user ids) to `to_id` (handle `to_name`); how
    many moved."""
    moved = session.execute(update(TASKS).where(
        TASKS.c.case_id == case_id, TASKS.c.status == domain.OPEN_TASK, TASKS.c.assignee_id.not_in(holders),
    ).values(assignee_id=to_id, assignee=to_name))
    return int(moved.rowcount or 0)


def openings_since(session: Session, *, case_id: str, user_id: str, since: datetime) -> list[str | None]:
    """The ids of this user's break-glass openings of this case kept since then with a reason."""
    return list(session.execute(select(BreakGlassOpening.id).where(
        BreakGlassOpening.case_id == case_id, BreakGlassOpening.user_id == user_id, BreakGlassOpening.at >= since,
        BreakGlassOpening.reason_sealed.is_not(None))).scalars())


def opened_since(session: Session, *, case_id: str, user_id: str, since: datetime) -> bool:
    """Has this user opened this case by break-glass since then (anywhere, with its reason kept or not)?"""
    found = select(BreakGlassOpening.id).where(BreakGlassOpening.case_id == case_id,
                                               BreakGlassOpening.user_id == user_id,
                                               BreakGlassOpening.at >= since).limit(1)
    return session.execute(found).first() is not None


def staff_by_username(session: Session, usernames: Iterable[str]) -> dict[str, domain.StaffEntry]:
    """The staff directory's entries for these handles (the newest account holding each)."""
    rows = session.execute(STAFF_BY_USERNAME, {"usernames": sorted(set(usernames))}).all()
    return {row.username: domain.StaffEntry(user_id=row.user_id, username=row.username, roles=frozenset(row.roles),
                                            enabled=row.enabled) for row in rows}  # later rows win: newest


def upsert_staff(session: Session, values: dict[str, Any]) -> None:
    session.execute(STAFF_UPSERT[session.get_bind().dialect.name], values)


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


def case_references(session: Session, case_ids: set[str]) -> dict[str, str]:
    """Each case's reference, by id: how the audit trail's readers are shown the cases it names (an erased case
    keeps its reference; nothing of the person is in one)."""
    if not case_ids:
        return {}
    rows = session.execute(select(Case.id, Case.reference).where(Case.id.in_(sorted(case_ids))))  # type: ignore[attr-defined]
    return {case_id: reference for case_id, reference in rows}
