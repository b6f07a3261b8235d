"""Intake's use cases. Each is a function of a session: it changes rows, writes its events to the outbox and its
audit entry in the caller's transaction, and never commits (the route runs it as a unit of `runtime.uow`). Every
read of personal data leaves an audit entry too, so those reads are units of work as well."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, literal, or_, tuple_
from sqlmodel import Session, select

from kit import logs
from kit.audit import AuditTrail
from kit.crypto import DecryptionError
from kit.db import dialect_insert
from kit.pagination import decode_cursor, encode_cursor
from kit.problems import Problem
from services.intake import domain, events
from services.intake.models import (
    PERSONAL_FIELDS,
    Case,
    CaseCreate,
    CaseCreated,
    CaseKey,
    CaseListItem,
    CaseNameTerm,
    CasePublic,
    CaseRef,
    CaseSummary,
    CaseUpdate,
    Consent,
    ConsentPublic,
    ConsentRecord,
    ConsentSet,
    ConsentView,
    DuplicateCheck,
    ErasedCase,
    NameIndexPending,
    Need,
    NeedCreate,
    NeedPublic,
    ReferenceCounter,
    TimelineEntry,
    TimelineEntryPublic,
)
from services.intake.protection import (
    MANY_WORDS,
    NAME_DOB_TERM,
    PAIR_TERM,
    TOKEN_TERM,
    CaseVault,
    scrub_write_ahead_log,
)

log = logs.get("intake")

CASES, NEEDS = "cases", "needs"
LIST_FIELDS = {"other_names", "languages", "articles"}
CASE_TABLE, CASE_KEY_TABLE = Case.__table__, CaseKey.__table__
TERM_TABLE, TIMELINE_TABLE = CaseNameTerm.__table__, TimelineEntry.__table__

NAME_FIELDS = {"full_name", "other_names", "date_of_birth"}


# ---- cases ------------------------------------------------------------------------------------------------------

def open_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_in: CaseCreate, actor: str,
) -> CaseCreated:
    """Open a case under a new data key, index its names, and name the cases that may be the same person."""
    now = datetime.now(UTC)
    case_id = str(uuid.uuid4())
    data_key, wrapped = vault.new_case_key()
    personal = case_in.model_dump(mode="json", include=set(PERSONAL_FIELDS))
    reference = domain.reference(now.year, _next_reference_number(session, now.year))
    terms = vault.name_terms([case_in.full_name, *case_in.other_names], case_in.date_of_birth)
    # Looked up before this case's own terms are written, so it cannot find itself.
    duplicates = _cases_with_terms(session, [t for kind, t in terms if kind == NAME_DOB_TERM], excluding=case_id)
    # Core inserts, one statement per table (the terms in one executemany): the ORM's unit of work would build an
    # object per row and flush them in several rounds, which cost more than the whole rest of this function.
    session.execute(insert(CASE_TABLE), {
        "id": case_id, "reference": reference, "status": domain.OPEN, "country": case_in.country, "opened_at": now,
        "updated_at": now, "closed_at": None, "erased_at": None, "version": domain.FIRST_VERSION,
        **{_column(field): vault.seal(data_key, CASES, _column(field), case_id, personal[field]) for field in PERSONAL_FIELDS},
    })
    session.execute(insert(CASE_KEY_TABLE), {"case_id": case_id, "kid": wrapped.kid, "wrapped": wrapped.blob,
                                             "created_at": now, "rewrapped_at": None})
    _index_names(session, case_id, now, terms)
    _note(session, case_id, now, "case.opened", {"reference": reference})
    events.publish(session, events.CASE_OPENED, events.CaseOpened(
        case_id=case_id, reference=reference, country=case_in.country, opened_at=now), case_id=case_id)
    audit.record(session, actor=actor, action="case.create", target_id=case_id)
    created = CaseCreated(id=case_id, reference=reference, status=domain.OPEN, country=case_in.country, opened_at=now,
                          closed_at=None, updated_at=now, **personal, possible_duplicates=duplicates)
    log.info("case opened", case_id=case_id, possible_duplicates=len(duplicates))
    return created


def find_duplicates(
    *, session: Session, vault: CaseVault, audit: AuditTrail, check: DuplicateCheck, actor: str,
) -> list[CaseRef]:
    """The cases that `open_case` would name as possible duplicates, asked before saving; nothing is stored but the
    audit entry (who checked, never the name)."""
    terms = vault.name_terms([check.full_name, *check.other_names], check.date_of_birth)
    duplicates = _cases_with_terms(session, [t for kind, t in terms if kind == NAME_DOB_TERM])
    audit.record(session, actor=actor, action="case.duplicate-check")
    return duplicates


def list_cases(
    *, session: Session, vault: CaseVault, audit: AuditTrail, actor: str, query: str | None, status: str | None,
    limit: int, cursor: str | None,
) -> dict[str, Any]:
    """Cases newest first, without personal data; `query` finds names in any script through the blind index.

    A search walks the index entries of one term newest first, the rarest the query has, and keeps the cases that
    also hold every other word: a page costs about a page of index entries, not one per person sharing a name.
    """
    position = _decode_position(cursor) if cursor else None
    if query is not None and query.strip():
        words = vault.query_terms(query)
        if not words:
            raise Problem(422, "A search needs at least one word of a name.", kind="empty-search")
        audit.record(session, actor=actor, action="case.search")  # who looked for a person by name, never the name
        rows = _search(session, vault, query, words, status=status, limit=limit + 1, position=position)
    else:
        c = Case.__table__.c
        statement = select(*_list_columns()).order_by(c.opened_at.desc(), c.id.desc()).limit(limit + 1)
        if status:
            statement = statement.where(c.status == status)
        if position:
            statement = statement.where(_before(c.opened_at, c.id, position))
        rows = session.execute(statement).all()
    page = rows[:limit]
    return {
        "items": [CaseListItem(id=r.id, reference=r.reference, status=r.status, country=r.country, opened_at=r.opened_at)
                  for r in page],
        "next_cursor": _encode_position(page[-1].opened_at, page[-1].id) if len(rows) > limit else None,
    }


# How far the index entries of a candidate driving term are counted to choose the rarest: enough to tell a rare
# term from a common one (a surname from a given name), without reading all of a common one.
_COUNT_UP_TO = 5_000
# Engines whose database had no pending part of the name index: a part does not become pending again.
_complete_index: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _search(
    session: Session, vault: CaseVault, query: str, words: set[str], *, status: str | None, limit: int,
    position: tuple[datetime, str] | None,
) -> list[Any]:
    """The newest `limit` cases (after `position`) holding every word term of `words`, with `status` if given.

    Driven by a pair term when the query has two words or more (near-unique for a full name), else by the one
    word; cases with too many name words for pair rows are walked beside it. Every candidate is checked against
    every word, so the answer is what `count(DISTINCT term) = len(words)` over the word terms gives. Before
    `rehab names reindex` has given older cases their pair rows, the rarest word drives instead."""
    pairs = vault.query_pair_terms(query) if len(words) > 1 else []
    if pairs and _pairs_indexed(session):
        drivers = [(PAIR_TERM, _rarest(session, PAIR_TERM, pairs)), (PAIR_TERM, MANY_WORDS)]
    else:
        drivers = [(TOKEN_TERM, _rarest(session, TOKEN_TERM, sorted(words)))]
    rows = []
    for kind, driver in drivers:
        rows += session.execute(_walk(kind, driver, words, status=status, limit=limit, position=position)).all()
    if len(drivers) > 1:
        rows.sort(key=lambda r: (r.opened_at, r.id), reverse=True)
        rows = rows[:limit]
    return rows


def _walk(
    kind: str, driver: str, words: set[str], *, status: str | None, limit: int, position: tuple[datetime, str] | None,
) -> Any:
    """One term's cases newest first, straight from `ix_case_name_terms_search`, keeping those holding every word
    (each check is a primary-key lookup) and, when asked, those of one status."""
    t = CaseNameTerm.__table__.alias("t")
    c = Case.__table__.c
    statement = (
        select(*_list_columns())
        .select_from(t.join(Case.__table__, c.id == t.c.case_id))
        .where(t.c.kind == kind, t.c.term == driver)
        .order_by(t.c.opened_at.desc(), t.c.case_id.desc())
        .limit(limit)
    )
    for word in sorted(words - {driver} if kind == TOKEN_TERM else words):
        other = CaseNameTerm.__table__.alias()
        statement = statement.where(exists().where(other.c.case_id == t.c.case_id, other.c.kind == TOKEN_TERM,
                                                   other.c.term == word))
    if status:
        statement = statement.where(c.status == status)
    if position:
        statement = statement.where(_before(t.c.opened_at, t.c.case_id, position))
    return statement


def _rarest(session: Session, kind: str, terms: list[str]) -> str:
    """The term with the fewest index entries (counted up to `_COUNT_UP_TO`); the first of a one-term list."""
    if len(terms) == 1:
        return terms[0]
    t = CaseNameTerm.__table__.c

    def entries(term: str) -> int:
        held = select(literal(1)).where(t.kind == kind, t.term == term).limit(_COUNT_UP_TO).subquery()
        return session.execute(select(func.count()).select_from(held)).scalar_one()

    return min(terms, key=entries)


def _pairs_indexed(session: Session) -> bool:
    """Whether every case has its pair rows (none is waiting for `rehab names reindex`)."""
    engine = session.get_bind().engine  # the engine also when the session is bound to a shared transaction
    if _complete_index.get(engine):
        return True
    pending = session.execute(select(NameIndexPending.part).where(NameIndexPending.part == PAIR_TERM)).first()
    if pending is None:
        _complete_index[engine] = True
    return pending is None


def _list_columns() -> tuple[Any, ...]:
    c = Case.__table__.c
    return c.id, c.reference, c.status, c.country, c.opened_at


def _before(at_column: Any, id_column: Any, position: tuple[datetime, str]) -> Any:
    """Rows after `position` in newest-first order: (opened_at, id) below the cursor's, as one range of an index."""
    opened_at, row_id = position
    return tuple_(at_column, id_column) < tuple_(literal(opened_at, at_column.type), literal(row_id, id_column.type))


def read_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, actor: str,
) -> tuple[CasePublic | ErasedCase, str | None]:
    """The whole case, decrypted, with its ETag; an erased case is only its reference and status."""
    # The case row and its wrapped key in one Core select: two ORM `get`s cost several times the query.
    case = session.execute(_CASE_WITH_KEY, {"case_id": case_id}).first()
    if case is None:
        raise _no_such_case()
    if case.status == domain.ERASED:
        return _erased(case), None
    audit.record(session, actor=actor, action="case.read", target_id=case.id)
    try:
        data_key = vault.unwrap_case_key(case.kid, case.wrapped)
    except DecryptionError:
        raise _undecryptable(case) from None
    public = _public(case, _open_fields(session, vault, case, data_key=data_key))
    return public, domain.etag(case.id, case.version)


def update_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, changes: CaseUpdate, if_match: str,
    actor: str,
) -> tuple[CasePublic, str]:
    """Replace the fields present in `changes`, only if the caller saw the current version (If-Match)."""
    case = _get_case(session, case_id, lock=True)
    if not domain.if_match_allows(if_match, domain.etag(case.id, case.version)):
        raise Problem(412, "The case changed since you read it: read it again, then make your change.", kind="stale-etag")
    domain.ensure_changeable(case.status)
    data_key = _data_key(session, vault, case)
    personal = _open_fields(session, vault, case, data_key=data_key)
    given = changes.model_dump(mode="json", exclude_unset=True)
    for field, value in given.items():
        if field == "country":
            case.country = value
            continue
        personal[field] = [] if value is None and field in LIST_FIELDS else value
        setattr(case, _column(field), vault.seal(data_key, CASES, _column(field), case.id, personal[field]))
    if given.keys() & NAME_FIELDS:
        _replace_name_terms(session, vault, case, personal)
    now = datetime.now(UTC)
    case.version += 1
    case.updated_at = now
    _note(session, case.id, now, "case.updated", {"fields": sorted(given)})  # which fields, never their values
    audit.record(session, actor=actor, action="case.update", target_id=case.id)
    public = _public(case, personal)
    return public, domain.etag(case.id, case.version)


def reindex_names(*, session: Session, vault: CaseVault, after: str, limit: int) -> tuple[list[str], list[str]]:
    """Write the name terms of the next `limit` cases (not erased) with an id above `after` again from their
    decrypted names, in the caller's transaction, each case locked meanwhile (`rehab names reindex`, after an
    upgrade that added a kind of term). The ids of the cases read, in order, and of those whose names did not
    open (their terms stay as they were)."""
    c, k = Case.__table__.c, CaseKey.__table__.c
    rows = session.execute(
        select(c.id, c.opened_at, k.kid, k.wrapped, *(c[_column(field)] for field in sorted(NAME_FIELDS)))
        .select_from(Case.__table__.outerjoin(CaseKey.__table__, k.case_id == c.id))
        .where(c.id > after, c.status != domain.ERASED).order_by(c.id).limit(limit)
        .with_for_update(of=Case.__table__)
    ).all()
    terms, done, unreadable = [], [], []
    for row in rows:
        try:
            data_key = vault.unwrap_case_key(row.kid, row.wrapped)
            names = {field: vault.open(data_key, CASES, _column(field), row.id, getattr(row, _column(field)))
                     for field in NAME_FIELDS}
        except DecryptionError:
            unreadable.append(row.id)
            continue
        birth = date.fromisoformat(names["date_of_birth"]) if names["date_of_birth"] else None
        terms += [{"case_id": row.id, "kind": kind, "term": term, "opened_at": row.opened_at}
                  for kind, term in vault.name_terms([names["full_name"], *names["other_names"]], birth)]
        done.append(row.id)
    if done:
        session.execute(delete(CaseNameTerm).where(CaseNameTerm.case_id.in_(done)))
        session.execute(insert(CaseNameTerm.__table__), terms)
    return [row.id for row in rows], unreadable


def close_case(*, session: Session, audit: AuditTrail, case_id: str, actor: str) -> CaseSummary:
    """Close a case; closing a closed case again changes nothing."""
    case = _get_case(session, case_id, lock=True)
    if domain.closes(case.status):
        now = datetime.now(UTC)
        case.status, case.closed_at, case.updated_at = domain.CLOSED, now, now
        case.version += 1
        _note(session, case.id, now, "case.closed", {})
        events.publish(session, events.CASE_CLOSED, events.CaseClosed(case_id=case.id, closed_at=now), case_id=case.id)
        audit.record(session, actor=actor, action="case.close", target_id=case.id)
    return _summary(case)


def erase_case(*, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, actor: str) -> ErasedCase:
    """Erase a case: destroy its data key (every ciphertext of the person becomes unrecoverable), drop its index
    terms, needs, consent and timeline, and every stored Idempotency-Key answer and request fingerprint about it;
    keep only the reference and the status. Erasing twice changes nothing. Once committed, the write-ahead log is
    truncated before the caller is answered, so the destroyed key leaves the disk too."""
    case = _get_case(session, case_id, lock=True)
    if case.status == domain.ERASED:
        return _erased(case)
    now = datetime.now(UTC)
    for table in (CaseKey, CaseNameTerm, Need, Consent, ConsentRecord, TimelineEntry):
        session.execute(delete(table).where(table.case_id == case.id))
    for field in PERSONAL_FIELDS:
        setattr(case, _column(field), None)
    case.country = None
    case.status, case.erased_at, case.updated_at = domain.ERASED, now, now
    case.version += 1
    if vault.stored_answers is not None:
        # Deleted, found by the case id beside them: sealed under a key derived from the KEK (not the case's key),
        # they would outlive the case's key, and one sealed before a KEK rotation no longer opens to be recognised.
        # A replay of `POST /cases` with the same key is then a new request, as after the key's retention.
        vault.stored_answers.forget(session, case.id)
    events.publish(session, events.CASE_ERASED, events.CaseErased(case_id=case.id, erased_at=now), case_id=case.id)
    audit.record(session, actor=actor, action="case.erase", target_id=case.id)
    scrub_write_ahead_log(session)
    log.info("case erased", case_id=case.id)
    return _erased(case)


# ---- needs ------------------------------------------------------------------------------------------------------

def add_need(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, need_in: NeedCreate, actor: str,
) -> NeedPublic:
    """Record a need; its notes are sealed under the case's data key."""
    case = _get_case(session, case_id, lock=True)
    domain.ensure_changeable(case.status)
    now = datetime.now(UTC)
    need = Need(id=str(uuid.uuid4()), case_id=case.id, category=need_in.category, urgency=need_in.urgency,
                created_at=now, created_by=actor)
    need.notes_sealed = vault.seal(_data_key(session, vault, case), NEEDS, "notes_sealed", need.id, need_in.notes)
    session.add(need)
    _note(session, case.id, now, "needs.assessed", {"need_id": need.id, "category": need.category, "urgency": need.urgency})
    events.publish(session, events.NEEDS_ASSESSED, events.NeedsAssessed(
        case_id=case.id, need_id=need.id, category=need_in.category, urgency=need_in.urgency), case_id=case.id)
    audit.record(session, actor=actor, action="needs.add", target_id=case.id)
    return _need_public(need, need_in.notes)


def list_needs(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, actor: str, limit: int, cursor: str | None,
) -> dict[str, Any]:
    """A case's needs, oldest first, with their notes decrypted."""
    case = _get_case(session, case_id)
    statement = select(Need).where(Need.case_id == case.id).order_by(Need.created_at, Need.id).limit(limit + 1)
    if cursor:
        created_at, need_id = _decode_position(cursor)
        statement = statement.where(or_(Need.created_at > created_at, and_(Need.created_at == created_at, Need.id > need_id)))
    rows = session.exec(statement).all()
    page = rows[:limit]
    items = []
    if page:
        data_key = _data_key(session, vault, case)
        items = [_need_public(n, _open(vault, data_key, NEEDS, "notes_sealed", n.id, n.notes_sealed, case)) for n in page]
    if case.status != domain.ERASED:
        audit.record(session, actor=actor, action="needs.read", target_id=case.id)
    return {"items": items, "next_cursor": _encode_position(page[-1].created_at, page[-1].id) if len(rows) > limit else None}


# ---- consent ----------------------------------------------------------------------------------------------------

def set_consent(*, session: Session, audit: AuditTrail, case_id: str, consent_in: ConsentSet, actor: str) -> ConsentPublic:
    """Replace the consent in force, keep the new version in the history, and tell the other services."""
    case = _get_case(session, case_id, lock=True)
    domain.ensure_changeable(case.status)
    now = datetime.now(UTC)
    fields = {**consent_in.model_dump(), "recorded_at": now, "recorded_by": actor}
    current = session.get(Consent, case.id)
    if current is None:
        session.add(Consent(case_id=case.id, **fields))
    else:
        for name, value in fields.items():
            setattr(current, name, value)
    session.add(ConsentRecord(case_id=case.id, **fields))
    _note(session, case.id, now, "consent.changed", consent_in.model_dump(mode="json"))
    events.publish(session, events.CONSENT_CHANGED, events.ConsentChanged(
        case_id=case.id, categories=consent_in.categories, share_contact=consent_in.share_contact,
        share_health=consent_in.share_health, expires_on=consent_in.expires_on, recorded_at=now), case_id=case.id)
    audit.record(session, actor=actor, action="consent.set", target_id=case.id)
    return ConsentPublic(**fields)


def read_consent(*, session: Session, audit: AuditTrail, case_id: str, actor: str) -> ConsentView:
    """The consent in force and every version recorded before, oldest first."""
    case = _get_case(session, case_id)
    current = session.get(Consent, case.id)
    history = session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case.id).order_by(ConsentRecord.id)).all()
    if case.status != domain.ERASED:
        audit.record(session, actor=actor, action="consent.read", target_id=case.id)
    view = ConsentView(
        case_id=case.id,
        current=ConsentPublic.model_validate(current, from_attributes=True) if current else None,
        history=[ConsentPublic.model_validate(r, from_attributes=True) for r in history],
    )
    return view


# ---- timeline ---------------------------------------------------------------------------------------------------

def read_timeline(
    *, session: Session, audit: AuditTrail, case_id: str, actor: str, limit: int, cursor: str | None,
) -> dict[str, Any]:
    """The case's story in time order: intake's own steps and what referrals and funds reported."""
    case = _get_case(session, case_id)
    statement = (select(TimelineEntry).where(TimelineEntry.case_id == case.id)
                 .order_by(TimelineEntry.at, TimelineEntry.id).limit(limit + 1))
    if cursor:
        at, entry_id = _decode_position(cursor)
        if not entry_id.isdigit():
            raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor")
        statement = statement.where(or_(TimelineEntry.at > at, and_(TimelineEntry.at == at, TimelineEntry.id > int(entry_id))))
    rows = session.exec(statement).all()
    if case.status != domain.ERASED:
        audit.record(session, actor=actor, action="timeline.read", target_id=case.id)
    page = rows[:limit]
    return {
        "items": [TimelineEntryPublic.model_validate(e, from_attributes=True) for e in page],
        "next_cursor": _encode_position(page[-1].at, str(page[-1].id)) if len(rows) > limit else None,
    }


def note_on_timeline(
    session: Session, *, case_id: str, at: datetime, kind: str, source: str, details: dict[str, Any],
) -> bool:
    """Add what another service reported to a case's timeline, in the caller's transaction.

    False, and nothing kept, for a case intake does not know or has erased.
    """
    case = session.get(Case, case_id)
    if case is None or case.status == domain.ERASED:
        return False
    session.add(TimelineEntry(case_id=case_id, at=at, kind=kind, source=source, details=details))
    return True


# ---- helpers ----------------------------------------------------------------------------------------------------

# The statements of the hot paths, built once with bound parameters: building a statement costs more than running it.
_CASE_WITH_KEY = (
    select(CASE_TABLE, CASE_KEY_TABLE.c.kid, CASE_KEY_TABLE.c.wrapped)
    .outerjoin(CASE_KEY_TABLE, CASE_KEY_TABLE.c.case_id == CASE_TABLE.c.id)
    .where(CASE_TABLE.c.id == bindparam("case_id"))
)
_CASES_WITH_TERMS = (
    select(CASE_TABLE.c.id, CASE_TABLE.c.reference)
    .where(
        CASE_TABLE.c.id.in_(select(TERM_TABLE.c.case_id).where(
            TERM_TABLE.c.kind == NAME_DOB_TERM, TERM_TABLE.c.term.in_(bindparam("terms", expanding=True)))),
        CASE_TABLE.c.id != bindparam("excluding"), CASE_TABLE.c.status != domain.ERASED,
    )
    .order_by(CASE_TABLE.c.opened_at)
)


def _get_case(session: Session, case_id: str, *, lock: bool = False) -> Case:
    case = session.get(Case, case_id, with_for_update=lock)
    if case is None:
        raise _no_such_case()
    return case


def _no_such_case() -> Problem:
    return Problem(404, "There is no case with this id.", kind="case-not-found")


def _next_reference_number(session: Session, year: int) -> int:
    """The year's next number, from a counter row incremented in the caller's transaction.

    One upsert statement: on PostgreSQL concurrent openings queue on the row lock, on SQLite on the write lock.
    """
    return session.execute(_counter_upsert(session.get_bind().dialect.name), {"year": year}).scalar_one()


@cache
def _counter_upsert(dialect: str) -> Any:
    table = ReferenceCounter.__table__
    return (
        dialect_insert(dialect)(table).values(year=bindparam("year"), last_number=1)
        .on_conflict_do_update(index_elements=[table.c.year], set_={"last_number": table.c.last_number + 1})
        .returning(table.c.last_number)
    )


def _replace_name_terms(session: Session, vault: CaseVault, case: Case, personal: dict[str, Any]) -> None:
    session.execute(delete(CaseNameTerm).where(CaseNameTerm.case_id == case.id))
    birth = date.fromisoformat(personal["date_of_birth"]) if personal["date_of_birth"] else None
    _index_names(session, case.id, case.opened_at, vault.name_terms([personal["full_name"], *personal["other_names"]], birth))


def _index_names(session: Session, case_id: str, opened_at: datetime, terms: Iterable[tuple[str, str]]) -> None:
    rows = [{"case_id": case_id, "kind": kind, "term": term, "opened_at": opened_at} for kind, term in terms]
    if rows:
        session.execute(insert(TERM_TABLE), rows)


def _cases_with_terms(session: Session, terms: list[str], *, excluding: str | None = None) -> list[CaseRef]:
    """Cases (not erased) holding any of these name-and-birth terms: the same person, written another way."""
    if not terms:
        return []
    # No case has the empty id: a check before saving (nothing to exclude) uses the same prepared statement.
    rows = session.execute(_CASES_WITH_TERMS, {"terms": terms, "excluding": excluding or ""}).all()
    return [CaseRef(id=row.id, reference=row.reference) for row in rows]


def _note(session: Session, case_id: str, at: datetime, kind: str, details: dict[str, Any]) -> None:
    session.execute(insert(TIMELINE_TABLE), {"case_id": case_id, "at": at, "kind": kind, "source": "intake",
                                             "details": details})


def _column(field: str) -> str:
    return f"{field}_sealed"


def _data_key(session: Session, vault: CaseVault, case: Case) -> bytes:
    try:
        return vault.case_key(session, case.id)
    except DecryptionError:
        raise _undecryptable(case) from None


def _open_fields(session: Session, vault: CaseVault, case: Case, *, data_key: bytes | None = None) -> dict[str, Any]:
    data_key = data_key or _data_key(session, vault, case)
    return {field: _open(vault, data_key, CASES, _column(field), case.id, getattr(case, _column(field)), case)
            for field in PERSONAL_FIELDS}


def _open(vault: CaseVault, data_key: bytes, table: str, column: str, row_id: str, blob: bytes | None, case: Case) -> Any:
    try:
        return vault.open(data_key, table, column, row_id, blob)
    except DecryptionError:
        raise _undecryptable(case) from None


def _undecryptable(case: Case) -> Problem:
    # A ciphertext that does not open under its own case, column and row was moved or tampered with.
    log.error("case data does not decrypt", case_id=case.id)
    return Problem(500, "This case's personal data could not be decrypted; the incident was logged with the case id.",
                   kind="undecryptable")


def _summary(case: Case) -> CaseSummary:
    return CaseSummary(id=case.id, reference=case.reference, status=case.status, country=case.country,
                       opened_at=case.opened_at, closed_at=case.closed_at)


def _public(case: Case, personal: dict[str, Any]) -> CasePublic:
    return CasePublic(**_summary(case).model_dump(), updated_at=case.updated_at, **personal)


def _erased(case: Case) -> ErasedCase:
    return ErasedCase(id=case.id, reference=case.reference, status=domain.ERASED)


def _need_public(need: Need, notes: str | None) -> NeedPublic:
    return NeedPublic(id=need.id, case_id=need.case_id, category=need.category, urgency=need.urgency, notes=notes,
                      created_at=need.created_at, created_by=need.created_by)


def _encode_position(at: datetime, row_id: str) -> str:
    return encode_cursor(f"{at.isoformat()}|{row_id}")


def _decode_position(cursor: str) -> tuple[datetime, str]:
    at, _, row_id = decode_cursor(cursor).partition("|")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor") from None
    if not row_id or moment.tzinfo is None:
        raise Problem(400, "The cursor is not one this API gave out.", kind="invalid-cursor")
    return moment, row_id
