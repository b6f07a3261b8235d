"""Finding a person without reading a name: searches by name and the duplicate check, planned over the blind index
(`protection.CaseVault`'s keyed terms), never over a plaintext. Use cases are functions of a session that never
commit; searching leaves audit entries (who looked, never the name), so it runs as a unit of work.

A search finds across every case (the same person may be someone else's case already), but a case not assigned to
the caller shows only that it exists, its state and who holds it (`CaseOutline`, need-to-know).

A search walks the index entries of one term newest first, the rarest the query has, and keeps the cases that also
hold every other word: a page costs about a page of index entries, not one per person sharing a name."""

from __future__ import annotations

import hashlib
import json

from collections.abc import Collection
from typing import Any

from sqlalchemy import exists, func, literal, or_, select
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.errors import Invalid
from kit.pagination import Page, Position, beyond, cursor_after, read_cursor
from services.intake import assignment, domain, queries
from services.intake.models import CaseCreate, CaseListItem, CaseOutline, CaseRef, DuplicateCheck
from services.intake.protection import MANY_WORDS, NAME_DOB_TERM, NAME_TERM, PAIR_TERM, TOKEN_TERM, CaseVault

# How far the index entries of a candidate driving term are counted to choose the rarest: enough to tell a rare
# term from a common one (a surname from a given name), without reading all of a common one.
COUNT_UP_TO = 5_000


def search_cases(
    *, session: Session, vault: CaseVault, audit: AuditTrail, caller: domain.Caller, query: str, status: str | None,
    limit: int, cursor: str | None,
) -> Page[CaseListItem | CaseOutline]:
    """Cases whose names hold every word of `query` (any script or spelling), newest first, without personal data
    (and of a case not the caller's, only its outline); the cursor is the list's (a position, never the name)."""
    words = vault.query_terms(query)
    if not words:
        raise Invalid("A search needs at least one word of a name.", code="empty-search")
    # The list a cursor belongs to: this search's keyed terms and status, as a short digest (never the name).
    terms = json.dumps([[sorted(alternatives) for alternatives in words], status]).encode()
    scope = "search:" + hashlib.sha256(terms).hexdigest()[:12]
    position = read_cursor(cursor, queries.LIST_ORDER, scope) if cursor else None
    rows = _plan(session, vault, query, words, status=status, limit=limit + 1, position=position)
    page = rows[:limit]
    held = queries.assignees_of(session, [row.id for row in page])
    items = [_found(row, held.get(row.id, []), caller) for row in page]
    _record_search(session, audit, caller, [item.id for item in items if isinstance(item, CaseOutline)])
    return Page[CaseListItem | CaseOutline](
        items=items,
        next_cursor=cursor_after((page[-1].opened_at, page[-1].id), scope) if len(rows) > limit else None,
    )


def others_shown(page: Page[CaseListItem | CaseOutline]) -> bool:
    """Whether a search showed a case the caller does not hold (what the caller's search budget counts)."""
    return any(isinstance(item, CaseOutline) for item in page.items)


def _record_search(session: Session, audit: AuditTrail, caller: domain.Caller, others: list[str]) -> None:
    """Who looked for a person by name, never the name: in the trail of each case the search showed that the
    caller does not hold (names tried one after another against the caseload show in the cases they found, as
    duplicate checks do), or without a target when it showed none."""
    for case_id in others:
        audit.record(session, actor=caller.user_id, action="case.search", target_id=case_id)
    if not others:
        audit.record(session, actor=caller.user_id, action="case.search", target_id=None)


def _found(row: Any, assignees: list[Any], caller: domain.Caller) -> CaseListItem | CaseOutline:
    usernames = [a.username for a in assignees]
    if caller.user_id in {a.user_id for a in assignees}:
        return CaseListItem(**row._mapping, assignees=usernames)
    return CaseOutline(id=row.id, reference=row.reference, status=row.status, assignees=usernames)


def find_duplicates(
    *, session: Session, vault: CaseVault, audit: AuditTrail, check: DuplicateCheck, caller: domain.Caller,
) -> list[CaseRef]:
    """The cases that `open_case` would name as possible duplicates, asked before saving; nothing is stored but the
    audit entries: who checked (never the name), and each case the check named, in that case's own trail, so that
    checks aimed at one case show there."""
    duplicates = possible_duplicates(session, vault.name_terms([check.full_name, *check.other_names],
                                                               check.date_of_birth))
    if not duplicates:
        audit.record(session, actor=caller.user_id, action="case.duplicate-check", target_id=None)
    record_named(session, audit, caller, duplicates)
    return duplicates


def another_holds(*, session: Session, vault: CaseVault, check: CaseCreate, caller: domain.Caller) -> bool:
    """Whether these names are those of a case the caller does not hold, whatever its date of birth. A duplicate
    check (asked alone, or answered with a new case) of such names is one the caller's budget counts: it could be a
    guess at that case's birth date. Names new to everyone, or only the caller's own cases', tell nothing."""
    terms = [term for kind, term in vault.name_terms([check.full_name, *check.other_names], None)
             if kind == NAME_TERM]
    found = [row.id for row in queries.cases_with_terms(session, NAME_TERM, terms)]
    held = queries.assignees_of(session, found)
    return any(caller.user_id not in {row.user_id for row in held.get(case_id, [])} for case_id in found)


def record_named(session: Session, audit: AuditTrail, caller: domain.Caller, duplicates: list[CaseRef]) -> None:
    """Each case a duplicate check named (asked alone, or answered with a new case), in that case's own trail: checks
    aimed at one case, date of birth after date of birth, show there."""
    for found in duplicates:
        audit.record(session, actor=caller.user_id, action="case.duplicate-check", target_id=found.id)


HIGH, NAME_ONLY = "high", "name_only"


def possible_duplicates(session: Session, terms: set[tuple[str, str]], *, excluding: str = "") -> list[CaseRef]:
    """Cases (not erased, not themselves marked duplicates) sharing a whole name with these terms
    (`CaseVault.name_terms`): the same person, written another way; oldest first, each with who holds it (whoever
    that is: the caseworker is told whom to ask, and nothing of the person) and how sure the match is: `high` when
    both dates of birth are known and equal, `name_only` when either is missing. Never one whose known date of
    birth differs from a known one: a case with a date of birth holds `name_dob` terms, and is then found by those
    only."""
    birth_terms = [term for kind, term in terms if kind == NAME_DOB_TERM]
    name_terms = [term for kind, term in terms if kind == NAME_TERM]
    high = queries.cases_with_terms(session, NAME_DOB_TERM, birth_terms, excluding=excluding)
    seen = {row.id for row in high}
    # With a date of birth, only cases without one meet by the name alone; without one, any case does.
    name_only = [row for row in queries.cases_with_terms(session, NAME_TERM, name_terms, excluding=excluding,
                                                         without_birth=bool(birth_terms))
                 if row.id not in seen]
    found = sorted([(row, HIGH) for row in high] + [(row, NAME_ONLY) for row in name_only],
                   key=lambda pair: (pair[0].opened_at, pair[0].id))
    held = assignment.usernames(session, [row.id for row, _ in found])
    return [CaseRef(id=row.id, reference=row.reference, status=row.status, assignees=held.get(row.id, []),
                    confidence=confidence) for row, confidence in found]


# ---- the planner ------------------------------------------------------------------------------------------------

def _plan(
    session: Session, vault: CaseVault, query: str, words: list[frozenset[str]], *, status: str | None, limit: int,
    position: Position | None,
) -> list[Any]:
    """The newest `limit` cases (after `position`) holding, for every word of the query, one of its terms
    (`words`), with `status` if given.

    Driven by a pair of words when the query has two words or more (near-unique for a full name), else by one
    word; each term the driving word (or pair) may stand for is walked, and cases with too many name words for pair
    rows beside them. Every candidate is checked against every word. Before `rehab names reindex` has given older
    cases their pair rows, the rarest word drives instead."""
    pairs = vault.query_pair_terms(query) if len(words) > 1 else []
    if pairs and queries.pairs_indexed(session):
        drivers = [(PAIR_TERM, term) for term in sorted(_rarest(session, PAIR_TERM, pairs))]
        drivers.append((PAIR_TERM, MANY_WORDS))
    else:
        drivers = [(TOKEN_TERM, term) for term in sorted(_rarest(session, TOKEN_TERM, words))]
    rows = []
    for kind, driver in drivers:
        rows += session.execute(_walk(kind, driver, words, status=status, limit=limit, position=position)).all()
    if len(drivers) > 1:
        unique = {row.id: row for row in rows}  # a case holding two readings of a short form is walked twice
        rows = sorted(unique.values(), key=lambda r: (r.opened_at, r.id), reverse=True)[:limit]
    return rows


def _walk(
    kind: str, driver: str, words: list[frozenset[str]], *, status: str | None, limit: int,
    position: Position | None,
) -> Any:
    """One term's cases newest first, straight from `ix_case_name_terms_search`, keeping those holding one term of
    every word (each check is a primary-key lookup, or a few) and, when asked, those of one status."""
    t = queries.NAME_TERMS.alias("t")
    c = queries.CASES.c
    statement = (
        select(*queries.LIST_COLUMNS)
        .select_from(t.join(queries.CASES, c.id == t.c.case_id))
        .where(t.c.kind == kind, t.c.term == driver)
        .order_by(t.c.opened_at.desc(), t.c.case_id.desc())
        .limit(limit)
    )
    for word in sorted(words, key=sorted):
        if kind == TOKEN_TERM and word == {driver}:
            continue  # the driving word itself
        # One EXISTS per term, OR-ed, not one EXISTS with `term IN (…)`: a single term is a primary-key lookup, and
        # SQLite plans an IN over several terms through the search index instead, reading every entry of a common
        # given name for each candidate (a short form in two name groups: p95 777 ms at 1M cases, bench/RESULTS.md).
        held = []
        for term in sorted(word):
            other = queries.NAME_TERMS.alias()
            held.append(exists().where(other.c.case_id == t.c.case_id, other.c.kind == TOKEN_TERM,
                                       other.c.term == term))
        statement = statement.where(or_(*held))
    if status:
        statement = statement.where(c.status == status)
    if position:
        statement = statement.where(beyond((t.c.opened_at, t.c.case_id), position, descending=True))
    return statement


def _rarest(session: Session, kind: str, choices: list[frozenset[str]]) -> Collection[str]:
    """Of several words (or pairs), each a set of terms of which a case holds one, the one whose terms have the
    fewest index entries (counted up to `COUNT_UP_TO` each); the only one of a one-word list."""
    if len(choices) == 1:
        return choices[0]
    t = queries.NAME_TERMS.c

    def entries(term: str) -> int:
        held = select(literal(1)).where(t.kind == kind, t.term == term).limit(COUNT_UP_TO).subquery()
        return session.execute(select(func.count()).select_from(held)).scalar_one()

    return min(choices, key=lambda terms: (sum(entries(term) for term in terms), sorted(terms)))
