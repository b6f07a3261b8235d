"""Intake's use cases: cases, needs, consent, the timeline, erasure and the name index's upkeep.

Every one of them that names a case opens it through `_admitted` (need-to-know, SPEC §4): a caseworker opens the
cases assigned to them, another only with a stated reason, which is recorded (audit trail, and the case's timeline
with the reason sealed under the case's key); a refusal is recorded too (`domain.ACCESS_REFUSED`). Erasure, and
marking a case a duplicate or undoing that mark, are its own caseworkers' alone (`domain.may_erase`,
`domain.may_mark_duplicate`): a reason opens a case, it does not erase or retire it. Who holds a case, and
reassigning it, is `assignment`.

Each is a function of a session: it changes rows, writes its events to the outbox and its audit entry in the
caller's transaction, and never commits (a route runs it as a unit of `runtime.uow`, a handler inside the bus's
inbox unit, `manage` in `kit.db.transaction`). Every read of personal data leaves an audit entry too, so those reads
are units of work as well. Refusals are the domain's errors (kit.errors), answered by the kit. Searching by name
and the duplicate check are in `search`; the statements of the hot paths in `queries`."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, select

from kit import logs, need_to_know
from kit.audit import AuditTrail, refusal_recorded
from kit.crypto import DecryptionError
from kit.db import get_or_raise
from kit.errors import NotFound, Unreadable
from kit.need_to_know import Access
from kit.pagination import Page, keyset_page, scope_of
from services.intake import assignment, domain, events, names, queries, search
from services.intake.models import (
    LIST_FIELDS,
    NAME_FIELDS,
    PERSONAL_FIELDS,
    BreakGlassOpening,
    Case,
    CaseCreate,
    CaseCreated,
    CaseKey,
    CaseNameTerm,
    CasePublic,
    CaseSummary,
    CaseUpdate,
    Consent,
    ConsentPublic,
    ConsentRecord,
    ConsentSet,
    ConsentView,
    Document,
    DocumentChunk,
    ErasedCase,
    Need,
    NeedCreate,
    NeedPublic,
    Note,
    StaffMember,
    Task,
    TimelineEntry,
    TimelineEntryPublic,
    sealed_column,
)
from services.intake.protection import CaseVault, forget_in_stored_answers, scrub_write_ahead_log

log = logs.get("intake")

CASES, NEEDS, OPENINGS = "cases", "needs", "break_glass_openings"  # tables named in a ciphertext's associated data


# ---- cases ------------------------------------------------------------------------------------------------------

def open_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_in: CaseCreate, caller: domain.Caller,
) -> CaseCreated:
    """Open a case under a new data key, assigned to its creator; index its names, and name the cases that may be
    the same person."""
    now = datetime.now(UTC)
    case_id = str(uuid.uuid4())
    data_key, wrapped = vault.new_case_key()
    personal = case_in.model_dump(mode="json", include=set(PERSONAL_FIELDS))
    reference = domain.reference(now.year, queries.next_reference_number(session, now.year))
    terms = vault.name_terms([case_in.full_name, *case_in.other_names], case_in.date_of_birth)
    # Looked up before this case's own terms are written, so it cannot find itself.
    duplicates = search.possible_duplicates(session, terms, excluding=case_id)
    session.execute(queries.INSERT_CASE, {
        "id": case_id, "reference": reference, "status": domain.OPEN, "country": case_in.country, "opened_at": now,
        "updated_at": now, "closed_at": None, "erased_at": None, "version": domain.FIRST_VERSION,
        **{sealed_column(field): vault.seal(data_key, CASES, sealed_column(field), case_id, personal[field])
           for field in PERSONAL_FIELDS},
    })
    session.execute(queries.INSERT_CASE_KEY, {"case_id": case_id, "kid": wrapped.kid, "wrapped": wrapped.blob,
                                              "created_at": now, "rewrapped_at": None})
    queries.add_name_terms(session, case_id, now, terms)
    queries.add_timeline_entry(session, case_id, now, "case.opened", {"reference": reference})
    assignees = assignment.assign_creator(session, case_id=case_id, opened_at=now, caller=caller)
    events.publish(session, events.CASE_OPENED, events.CaseOpened(
        case_id=case_id, reference=reference, country=case_in.country, opened_at=now,
        assignees=[caller.user_id]), about=case_id)
    audit.record(session, actor=caller.user_id, action="case.create", target_id=case_id)
    search.record_named(session, audit, caller, duplicates)
    created = CaseCreated(id=case_id, reference=reference, status=domain.OPEN, country=case_in.country, opened_at=now,
                          closed_at=None, updated_at=now, assignees=assignees, **personal,
                          possible_duplicates=duplicates)
    log.info("case opened", case_id=case_id, possible_duplicates=len(duplicates))
    return created


def list_cases(
    *, session: Session, caller: domain.Caller, everyone: bool, status: str | None, limit: int, cursor: str | None,
    unattended: bool = False,
) -> Page[assignment.CaseloadItem]:
    """The caller's own cases (assigned to them), or with `everyone` the whole caseload (a supervisor's view);
    newest first, without personal data, of one status if asked (one range of an index either way). Each says whether
    anyone who holds it can still work it (`assignment.CaseloadItem`); with `unattended`, only those nobody can."""
    if everyone:
        domain.may_see_caseload(caller)
        query, order, key = select(*queries.LIST_COLUMNS), queries.LIST_ORDER, None
    else:
        query = queries.my_cases(caller.user_id)
        order, key = queries.MY_CASES_ORDER, (lambda row: (row.opened_at, row.id))
    if status:
        query = query.where(queries.CASES.c.status == status)
    else:  # a case marked a duplicate leaves the caseload: its kept case is the one worked on (`?status=duplicate`)
        query = query.where(queries.CASES.c.status != domain.DUPLICATE)
    scope = None
    if unattended:  # by who is inactive now, which may change between two pages: the cursor names the list before
        scope = "unattended:" + scope_of(query, session)
        query = query.where(queries.unattended(assignment.inactive_staff(session)))
    rows, next_cursor = keyset_page(session, query, order=order, limit=limit, cursor=cursor, descending=True, key=key,
                                    scope=scope)
    return Page[assignment.CaseloadItem](items=assignment.caseload_items(session, rows), next_cursor=next_cursor)


def read_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
) -> tuple[CasePublic | ErasedCase, str | None]:
    """The whole case, decrypted, with its ETag; an erased case is only its reference and status (and no ETag)."""
    case = queries.case_with_key(session, case_id)
    if case is None:
        raise _no_such_case()
    _admit(session, vault, audit, case, caller)
    if case.status == domain.ERASED:
        return _erased(case), None
    audit.record(session, actor=caller.user_id, action="case.read", target_id=case.id)
    try:
        data_key = vault.unwrap_case_key(case.kid, case.wrapped)
    except DecryptionError:
        raise _unreadable(case) from None
    public = _public(session, case, _open_fields(session, vault, case, data_key=data_key))
    return public, domain.etag(case.id, case.version)


def update_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, changes: CaseUpdate, if_match: str,
    caller: domain.Caller,
) -> tuple[CasePublic, str]:
    """Replace the fields present in `changes`, only if the caller saw the current version (If-Match). Only what
    differs counts: the same values again (a form sent twice, an empty body) change nothing, not even the ETag, and
    are only a read."""
    case = _admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)  # an erased or closed case first: no version of it takes a change
    domain.ensure_current(if_match, case.id, case.version)
    data_key = _data_key(session, vault, case)
    personal = _open_fields(session, vault, case, data_key=data_key)
    now_is = {**personal, "country": case.country}
    given = {field: [] if value is None and field in LIST_FIELDS else value
             for field, value in changes.model_dump(mode="json", exclude_unset=True).items()}
    given = {field: value for field, value in given.items() if value != now_is[field]}
    if not given:
        audit.record(session, actor=caller.user_id, action="case.read", target_id=case.id)
        return _public(session, case, personal), domain.etag(case.id, case.version)
    changed = {**personal, **given}
    domain.ensure_release_after_birth(changed.get("release_date"), changed.get("date_of_birth"))
    for field, value in given.items():
        if field == "country":
            case.country = value
            continue
        personal[field] = value
        setattr(case, sealed_column(field), vault.seal(data_key, CASES, sealed_column(field), case.id, personal[field]))
    if given.keys() & NAME_FIELDS:
        session.execute(delete(CaseNameTerm).where(CaseNameTerm.case_id == case.id))
        queries.add_name_terms(session, case.id, case.opened_at, _name_terms(vault, personal))
    now = datetime.now(UTC)
    case.version += 1
    case.updated_at = now
    queries.add_timeline_entry(session, case.id, now, "case.updated", {"fields": sorted(given)})  # never the values
    audit.record(session, actor=caller.user_id, action="case.update", target_id=case.id)
    # A value corrected (the wrong person's phone, say) must not stay in a stored answer that a replay of the POST
    # that opened the case (or of an earlier change) would give back: each says what the case now says.
    forget_in_stored_answers(session, vault, case.id, case.id, lambda answer: {
        **answer, **{field: value for field, value in given.items() if field in answer}})
    return _public(session, case, personal), domain.etag(case.id, case.version)


def close_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
) -> CaseSummary:
    """Close a case; closing a closed case again changes nothing."""
    case = _admitted(session, vault, audit, case_id, caller, lock=True)
    if domain.closes(case.status):
        now = datetime.now(UTC)
        case.status, case.closed_at, case.updated_at = domain.CLOSED, now, now
        case.version += 1
        queries.add_timeline_entry(session, case.id, now, "case.closed", {"by": caller.username})
        events.publish(session, events.CASE_CLOSED, events.CaseClosed(case_id=case.id, closed_at=now), about=case.id)
        audit.record(session, actor=caller.user_id, action="case.close", target_id=case.id)
    return _summary(session, case)


def reopen_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
) -> CaseSummary:
    """Open a closed case again, or one marked a duplicate (409 for any other status): the mark is undone, the case no
    longer points at the kept one, and it is back in its caseworkers' lists and the duplicate checks, like any case
    reopened. Referrals and funds take it as open once more (the event says which status it left). Undoing the mark
    is its own caseworkers', as marking it is (`domain.may_mark_duplicate`); a closed case opens to a stated reason
    as every change does."""
    case = _case_to_change(session, case_id)
    if case.status == domain.DUPLICATE:
        _ensure_its_own(session, case, caller, domain.may_mark_duplicate)
    else:
        _admit(session, vault, audit, case, caller)
    domain.ensure_reopenable(case.status)
    now = datetime.now(UTC)
    left, kept_id = case.status, case.duplicate_of
    case.status, case.closed_at, case.duplicate_of, case.updated_at = domain.OPEN, None, None, now
    case.version += 1
    kept = session.get(Case, kept_id) if left == domain.DUPLICATE and kept_id else None
    if kept is None:
        queries.add_timeline_entry(session, case.id, now, "case.reopened", {"by": caller.username})
    else:
        queries.add_timeline_entry(session, case.id, now, "case.duplicate_undone",
                                   {"by": caller.username, "kept_case_id": kept.id, "kept_reference": kept.reference})
        if kept.status != domain.ERASED:  # an erased case keeps no timeline
            queries.add_timeline_entry(session, kept.id, now, "case.duplicate_kept_undone",
                                       {"by": caller.username, "duplicate_case_id": case.id,
                                        "duplicate_reference": case.reference})
    events.publish(session, events.CASE_REOPENED, events.CaseReopened(case_id=case.id, reopened_at=now,
                                                                      reopened_from=left), about=case.id)
    audit.record(session, actor=caller.user_id, action="case.reopen", target_id=case.id)
    return _summary(session, case)


def mark_duplicate(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, kept_case_id: str,
    caller: domain.Caller,
) -> CaseSummary:
    """Mark a case (open or closed) a duplicate of the case kept: it leaves the caseload lists, takes no more
    changes, referrals or aid, and points at the kept case. The kept case must exist, not be erased nor itself a
    duplicate, and not be this case; this case must not be the one kept for others. Only one of this case's own
    caseworkers marks it (`domain.may_mark_duplicate`: never a visitor by break-glass), and only they undo it, by
    reopening it; the kept case is named, not read, so it need not be theirs.

    Both cases are locked, in the order of their ids: two caseworkers marking each case a duplicate of the other at
    the same moment would otherwise both pass, and leave two duplicates pointing at each other (PostgreSQL; SQLite
    has one writer)."""
    locked = {key: session.get(Case, key, with_for_update=True) for key in sorted({case_id, kept_case_id})}
    case = locked[case_id]
    if case is None:
        raise _no_such_case()
    _ensure_its_own(session, case, caller, domain.may_mark_duplicate)
    kept = locked[kept_case_id]  # absent: the caller's mistake, 409
    domain.ensure_may_be_duplicate(case.id, case.status, kept_case_id, kept.status if kept is not None else None,
                                   kept_by_others=queries.kept_for_duplicates(session, case.id))
    now = datetime.now(UTC)
    case.status, case.duplicate_of, case.updated_at = domain.DUPLICATE, kept_case_id, now
    case.version += 1
    queries.add_timeline_entry(session, case.id, now, "case.duplicate",
                               {"by": caller.username, "kept_case_id": kept.id, "kept_reference": kept.reference})
    queries.add_timeline_entry(session, kept.id, now, "case.duplicate_kept",
                               {"by": caller.username, "duplicate_case_id": case.id,
                                "duplicate_reference": case.reference})
    events.publish(session, events.CASE_DUPLICATE, events.CaseDuplicate(
        case_id=case.id, kept_case_id=kept.id, marked_at=now), about=case.id)
    audit.record(session, actor=caller.user_id, action="case.duplicate", target_id=case.id)
    return _summary(session, case)


def erase_case(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
) -> ErasedCase:
    """Erase a case: destroy its data key (every ciphertext of the person becomes unrecoverable), drop its index
    terms, needs, notes, tasks, consent, timeline, break-glass reasons, documents and their pieces, and every
    stored Idempotency-Key answer and request fingerprint about it; keep only the reference, the status and who holds
    it (staff, not the person). The erasure goes in the erasure ledger (kit.erasures) through the outbox, in this
    same transaction, so that a restored backup can not bring the person back. Erasing twice changes nothing. Once
    committed, the write-ahead log is truncated before the caller is answered, so the destroyed key leaves the disk
    too. Only one of the case's own caseworkers erases it, never a reason stated (`domain.may_erase`)."""
    case = _case_to_change(session, case_id)
    _ensure_its_own(session, case, caller, domain.may_erase)
    if case.status == domain.ERASED:
        return _erased(case)
    now = datetime.now(UTC)
    # The person is one: the cases marked duplicates of this one are theirs too, and go with it (whoever holds them).
    duplicates = [_case_to_change(session, duplicate_id) for duplicate_id in queries.duplicates_of(session, case.id)]
    for erased in [case, *duplicates]:
        _erase(session, vault, audit, erased, actor=caller.user_id, now=now)
        # Ids only, kept for ever outside the databases: what `rehab restore` re-applies.
        events.publish(session, events.ERASURE_RECORDED, events.ErasureRecorded(case_id=erased.id, erased_at=now),
                       about=erased.id)
    return _erased(case)


LEDGER_ACTOR = "system:erasure-ledger"


def reapply_erasure(*, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str,
                    erased_at: datetime) -> bool:
    """An erasure from the ledger, again, on a database put back from a backup (`manage erasures apply`, run by
    `rehab restore` before any process starts): the same erasure as `erase_case`, at the time it was first made, by
    the ledger rather than a caseworker (nobody to admit). Not written in the ledger again: it is there already.
    True when it erased something; False for a case already erased, or unknown here (opened after the backup),
    whose stored answers, if any, still go."""
    case = session.get(Case, case_id, with_for_update=True)
    if case is None or case.status == domain.ERASED:
        if vault.stored_answers is not None and vault.stored_answers.forget(session, case_id):
            scrub_write_ahead_log(session)
        return False
    _erase(session, vault, audit, case, actor=LEDGER_ACTOR, now=erased_at)
    return True


def _erase(session: Session, vault: CaseVault, audit: AuditTrail, case: Any, *, actor: str, now: datetime) -> None:
    """What an erasure does to a case's rows (`erase_case`, `reapply_erasure`): the one place it is written."""
    for table in (CaseKey, CaseNameTerm, Need, Note, Task, Consent, ConsentRecord, TimelineEntry, BreakGlassOpening,
                  DocumentChunk, Document):  # a document's pieces before the document they point at
        session.execute(delete(table).where(table.case_id == case.id))
    for field in PERSONAL_FIELDS:
        setattr(case, sealed_column(field), None)
    case.country = None
    case.status, case.erased_at, case.updated_at = domain.ERASED, now, now
    case.version += 1
    if vault.stored_answers is not None:
        # Deleted, found by the case id beside them: sealed under a key derived from the KEK (not the case's key),
        # they would outlive the case's key, and one sealed before a KEK rotation no longer opens to be recognised.
        # A replay of `POST /cases` with the same key is then a new request, as after the key's retention.
        vault.stored_answers.forget(session, case.id)
    events.publish(session, events.CASE_ERASED, events.CaseErased(case_id=case.id, erased_at=now), about=case.id)
    audit.record(session, actor=actor, action="case.erase", target_id=case.id)
    scrub_write_ahead_log(session)
    names.forget_words()
    log.info("case erased", case_id=case.id)


# ---- needs ------------------------------------------------------------------------------------------------------

def add_need(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, need_in: NeedCreate, caller: domain.Caller,
) -> NeedPublic:
    """Record a need; its notes are sealed under the case's data key."""
    case = _admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    now = datetime.now(UTC)
    need = Need(id=str(uuid.uuid4()), case_id=case.id, category=need_in.category, urgency=need_in.urgency,
                created_at=now, created_by=caller.user_id, status="open")
    need.notes_sealed = vault.seal(_data_key(session, vault, case), NEEDS, "notes_sealed", need.id, need_in.notes)
    session.add(need)
    queries.add_timeline_entry(session, case.id, now, "needs.assessed",
                               {"need_id": need.id, "category": need.category, "urgency": need.urgency})
    events.publish(session, events.NEEDS_ASSESSED, events.NeedsAssessed(
        case_id=case.id, need_id=need.id, category=need_in.category, urgency=need_in.urgency), about=case.id)
    audit.record(session, actor=caller.user_id, action="needs.add", target_id=case.id)
    return _need_public(need, need_in.notes)


def list_needs(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller, limit: int,
    cursor: str | None,
) -> Page[NeedPublic]:
    """A case's needs, oldest first, with their notes decrypted."""
    case = _admitted(session, vault, audit, case_id, caller)
    needs, next_cursor = keyset_page(session, select(Need).where(Need.case_id == case.id),
                                     order=[Need.created_at, Need.id], limit=limit, cursor=cursor)
    items = []
    if needs:
        data_key = _data_key(session, vault, case)
        items = [_need_public(n, _open(vault, data_key, NEEDS, "notes_sealed", n.id, n.notes_sealed, case))
                 for n in needs]
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="needs.read", target_id=case.id)
    return Page[NeedPublic](items=items, next_cursor=next_cursor)


def move_need(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, need_id: str, status: str,
    caller: domain.Caller,
) -> NeedPublic:
    """Move a need: open → in_progress → met | dropped (open → met | dropped too); nothing leaves met or dropped.
    Who and when go on the need and the timeline; a met or dropped need is no longer suggested for a referral."""
    case = _admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    need = session.get(Need, need_id, with_for_update=True)
    if need is None or need.case_id != case.id:
        raise NotFound("This case has no need with this id.", code="need-not-found")
    domain.ensure_need_moves(need.status, status)
    now = datetime.now(UTC)
    before = need.status
    need.status, need.status_changed_at, need.status_changed_by = status, now, caller.username
    session.add(need)
    queries.add_timeline_entry(session, case.id, now, "needs.status_changed", {
        "need_id": need.id, "category": need.category, "from": before, "to": status, "by": caller.username})
    events.publish(session, events.NEEDS_MOVED, events.NeedsMoved(
        case_id=case.id, need_id=need.id, category=need.category, urgency=need.urgency, status=status, moved_at=now),
        about=case.id)
    audit.record(session, actor=caller.user_id, action="needs.status", target_id=case.id)
    notes = _open(vault, _data_key(session, vault, case), NEEDS, "notes_sealed", need.id, need.notes_sealed, case)
    return _need_public(need, notes)


# ---- consent ----------------------------------------------------------------------------------------------------

def set_consent(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, consent_in: ConsentSet,
    caller: domain.Caller,
) -> ConsentPublic:
    """Replace the consent in force, keep the new version in the history, and tell the other services. An open case
    takes any consent; a closed one, or one marked a duplicate, only a narrower one
    (`domain.ensure_consent_changeable`).
    A consent narrowed on a case that others are marked duplicates of narrows theirs too, to what both allow: the
    person is one, and a partner may still hold a referral made from a duplicate."""
    case = _admitted(session, vault, audit, case_id, caller, lock=True)
    current = session.get(Consent, case.id)  # none before the first consent is recorded
    wanted = domain.ConsentTerms(frozenset(consent_in.categories), consent_in.share_contact, consent_in.share_health,
                                 consent_in.expires_on)
    domain.ensure_consent_changeable(case.status, domain.narrows(wanted, _consent_terms(current)))
    now = datetime.now(UTC)
    recorded = _record_consent(session, audit, case.id, current, consent_in.model_dump(), caller=caller, now=now)
    for duplicate_id in queries.duplicates_of(session, case.id):
        theirs = session.get(Consent, duplicate_id, with_for_update=True)
        if theirs is None:
            continue  # nothing agreed there, nothing to take back
        common = domain.common_terms(_consent_terms(theirs), wanted)
        if common != _consent_terms(theirs):
            _record_consent(session, audit, duplicate_id, theirs, {
                "categories": sorted(common.categories), "share_contact": common.share_contact,
                "share_health": common.share_health, "method": consent_in.method, "expires_on": common.expires_on,
            }, caller=caller, now=now, kept=case)
    return recorded


def _consent_terms(consent: Consent | None) -> domain.ConsentTerms | None:
    if consent is None:
        return None
    return domain.ConsentTerms(frozenset(consent.categories), consent.share_contact, consent.share_health,
                               consent.expires_on)


def _record_consent(session: Session, audit: AuditTrail, case_id: str, current: Consent | None, terms: dict, *,
                    caller: domain.Caller, now: datetime, kept: Case | None = None) -> ConsentPublic:
    """One consent recorded on one case: in force, in the history, on the timeline (naming the case kept when it
    was narrowed from there), on the bus (referrals and reports), in the audit trail."""
    fields = {**terms, "recorded_at": now, "recorded_by": caller.user_id}
    if current is None:
        session.add(Consent(case_id=case_id, **fields))
    else:
        for name, value in fields.items():
            setattr(current, name, value)
    session.add(ConsentRecord(case_id=case_id, **fields))
    said = ConsentPublic(**fields)
    details = {**said.model_dump(mode="json", include={"categories", "share_contact", "share_health", "method",
                                                        "expires_on"}), "by": caller.username}
    if kept is not None:
        details |= {"kept_case_id": kept.id, "kept_reference": kept.reference}
    queries.add_timeline_entry(session, case_id, now, "consent.changed", details)
    events.publish(session, events.CONSENT_CHANGED, events.ConsentChanged(
        case_id=case_id, categories=said.categories, share_contact=said.share_contact,
        share_health=said.share_health, expires_on=said.expires_on, recorded_at=now), about=case_id)
    audit.record(session, actor=caller.user_id, action="consent.set", target_id=case_id)
    return said


def read_consent(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
) -> ConsentView:
    """The consent in force and every version recorded before, oldest first."""
    case = _admitted(session, vault, audit, case_id, caller)
    current = session.get(Consent, case.id)  # none before the first consent is recorded
    history = session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case.id).order_by(ConsentRecord.id)).all()
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="consent.read", target_id=case.id)
    return ConsentView(
        case_id=case.id, case_status=case.status,
        current=ConsentPublic.model_validate(current, from_attributes=True) if current else None,
        history=[ConsentPublic.model_validate(r, from_attributes=True) for r in history],
    )


# ---- timeline ---------------------------------------------------------------------------------------------------

def read_timeline(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller, limit: int,
    cursor: str | None,
) -> Page[TimelineEntryPublic]:
    """The case's story in time order: intake's own steps, what referrals and funds reported, and who opened it
    without being assigned to it, when and why (the reason decrypted)."""
    case = _admitted(session, vault, audit, case_id, caller)
    entries, next_cursor = keyset_page(session, select(TimelineEntry).where(TimelineEntry.case_id == case.id),
                                       order=[TimelineEntry.at, TimelineEntry.id], limit=limit, cursor=cursor)
    openings = [e.details.get("opening_id") for e in entries if e.kind == need_to_know.BREAK_GLASS]
    reasons = _reasons(session, vault, case, openings)
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="timeline.read", target_id=case.id)
    return Page[TimelineEntryPublic](items=[_entry_public(e, reasons) for e in entries], next_cursor=next_cursor)


def note_on_timeline(
    session: Session, *, case_id: str, at: datetime, kind: str, source: str, details: dict[str, Any], event_id: str,
) -> bool:
    """Add what another service reported (event `event_id`) to a case's timeline, in the caller's transaction.

    False, and nothing kept, for a case intake does not know or has erased: an event about it is not a mistake.
    """
    case = session.get(Case, case_id)  # absence is normal here: the producer may know cases intake erased
    if case is None or case.status == domain.ERASED:
        log.info("event for an unknown or erased case skipped", event_id=event_id, kind=kind)
        return False
    queries.add_timeline_entry(session, case_id, at, kind, details, source=source)
    return True


def keep_reason_stated_elsewhere(*, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str,
                                 caller: domain.Caller, opened_in: str) -> None:
    """A caseworker opens a case they do not hold in referrals or funds, stating why there; that service hands the
    reason here first (`kit.need_to_know.ReasonKeeper`), because only intake holds a key of the case to seal it with
    (SPEC §4, §7.8). Kept as an opening in intake is (`_admit`): audited, and a step of the timeline with the reason
    sealed, marked with where the case was opened. Nothing is kept for an assignee; without a reason, 403."""
    _admit(session, vault, audit, _case(session, case_id), caller, source=opened_in)


def note_opening_elsewhere(session: Session, *, case_id: str, user_id: str, at: datetime, source: str,
                           event_id: str) -> bool:
    """A caseworker not assigned to the case opened it in another service (`source`: referrals, funds) with a stated
    reason (announced on the bus: who and when, never the reason): a step of the timeline (who, when, where; no
    reason), in the caller's transaction, unless an opening of theirs already covers that moment
    (`domain.OPENING_COVERS`): the service handed the reason here before opening the case
    (`keep_reason_stated_elsewhere`), so this adds a line only where that opening is missing (an older service, say).
    False when nothing was added."""
    case = session.get(Case, case_id)  # absence is normal here: the producer may know cases intake erased
    if case is None or case.status == domain.ERASED:
        log.info("event for an unknown or erased case skipped", event_id=event_id, kind=need_to_know.BREAK_GLASS)
        return False
    if queries.opened_since(session, case_id=case_id, user_id=user_id, since=at - domain.OPENING_COVERS):
        return False
    staff = session.get(StaffMember, user_id)
    username = staff.username if staff is not None else user_id
    opening = BreakGlassOpening(id=str(uuid.uuid4()), case_id=case_id, user_id=user_id, username=username, at=at)
    session.add(opening)  # no reason sealed: `_reasons` gives None for it
    queries.add_timeline_entry(session, case_id, at, need_to_know.BREAK_GLASS,
                               {"opening_id": opening.id, "by": username}, source=source)
    return True


# ---- the name index ---------------------------------------------------------------------------------------------

def reindex_names(*, session: Session, vault: CaseVault, after: str, limit: int) -> tuple[list[str], list[str]]:
    """Write the name terms of the next `limit` cases (not erased) with an id above `after` again from their
    decrypted names, in the caller's transaction, each case locked meanwhile (`rehab names reindex`, after an
    upgrade that added a kind of term). The ids of the cases read, in order, and of those whose names did not
    open (their terms stay as they were)."""
    c, k = queries.CASES.c, queries.CASE_KEYS.c
    rows = session.execute(
        select(c.id, c.opened_at, k.kid, k.wrapped, *(c[sealed_column(field)] for field in sorted(NAME_FIELDS)))
        .select_from(queries.CASES.outerjoin(queries.CASE_KEYS, k.case_id == c.id))
        .where(c.id > after, c.status != domain.ERASED).order_by(c.id).limit(limit)
        .with_for_update(of=queries.CASES)
    ).all()
    terms, done, unreadable = [], [], []
    for row in rows:
        try:
            data_key = vault.unwrap_case_key(row.kid, row.wrapped)
            names = {field: vault.open(data_key, CASES, sealed_column(field), row.id, getattr(row, sealed_column(field)))
                     for field in NAME_FIELDS}
        except DecryptionError:
            unreadable.append(row.id)
            continue
        terms += [{"case_id": row.id, "kind": kind, "term": term, "opened_at": row.opened_at}
                  for kind, term in _name_terms(vault, names)]
        done.append(row.id)
    if done:
        session.execute(delete(CaseNameTerm).where(CaseNameTerm.case_id.in_(done)))
    if terms:
        session.execute(queries.INSERT_NAME_TERMS, terms)
    return [row.id for row in rows], unreadable


# ---- helpers ----------------------------------------------------------------------------------------------------

def _no_such_case() -> NotFound:
    return NotFound("There is no case with this id.", code="case-not-found")


def _case(session: Session, case_id: str) -> Case:
    """The case the caller named (its absence is the caller's mistake: 404)."""
    return get_or_raise(session, Case, case_id, _no_such_case())


def _case_to_change(session: Session, case_id: str) -> Case:
    """`_case`, its row locked until the unit of work commits (FOR UPDATE on PostgreSQL; on SQLite the one writer
    holds the database's write lock already)."""
    return get_or_raise(session, Case, case_id, _no_such_case(), lock=True)


def _admitted(
    session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller, *, lock: bool = False,
) -> Case:
    """The case the caller named, once they may open it (`_admit`); locked when they change it."""
    case = _case_to_change(session, case_id) if lock else _case(session, case_id)
    _admit(session, vault, audit, case, caller)
    return case


def _ensure_its_own(session: Session, case: Any, caller: domain.Caller,
                    rule: Callable[[domain.Caller, Collection[str]], None]) -> None:
    """What only the case's own caseworkers do, never a visitor by break-glass (`domain.may_erase`,
    `domain.may_mark_duplicate`): refused unless `rule` allows it of the caller and the case's assignees, the refusal
    audited like any other (`domain.ACCESS_REFUSED`, after the refused unit rolled back)."""
    with refusal_recorded(actor=caller.user_id, action=domain.ACCESS_REFUSED, target_id=case.id):
        rule(caller, queries.assignee_ids(session, case.id))


def _admit(session: Session, vault: CaseVault, audit: AuditTrail, case: Any, caller: domain.Caller, *,
           source: str = "intake") -> None:
    """Need-to-know (`domain.case_access`): refused unless the case is assigned to the caller or they state a
    reason. Every request with a reason is audited (`case.break_glass`; once, when a service asks back on its behalf
    under its request id); an opening also becomes a step of the case's
    timeline (unless it was erased): who and when in clear, the reason sealed under the case's key, and where it was
    opened (`source`). One opening covers `domain.OPENING_COVERS`: the requests of a page and the steps a caseworker
    then takes on the case are not each a new line for its caseworkers to read. A refusal is audited too
    (`domain.ACCESS_REFUSED`, after the refused unit rolled back: kit.audit.refusal_recorded)."""
    with refusal_recorded(actor=caller.user_id, action=domain.ACCESS_REFUSED, target_id=case.id):
        access = domain.case_access(caller, queries.assignee_ids(session, case.id))
    if access is not Access.BREAK_GLASS:
        return
    if audit.recorded_in_this_request(session, actor=caller.user_id, action=need_to_know.BREAK_GLASS,
                                      target_id=case.id):
        return  # referrals asking back for this request (its consent, kit.peers): the opening is in the trail
    audit.record(session, actor=caller.user_id, action=need_to_know.BREAK_GLASS, target_id=case.id)
    log.info("case opened by a caseworker it is not assigned to", case_id=case.id)
    if case.status == domain.ERASED:
        return  # no key left to seal the reason with, nor a timeline to show it on
    now = datetime.now(UTC)
    reason = (caller.reason or "").strip()
    if reason in _reasons_since(session, vault, case, caller.user_id, now - domain.OPENING_COVERS):
        return  # the same words again, within the quarter hour: the line there says it; another reason is a new line
    opening = BreakGlassOpening(id=str(uuid.uuid4()), case_id=case.id, user_id=caller.user_id,
                                username=caller.username, at=now)
    opening.reason_sealed = vault.seal(_data_key(session, vault, case), OPENINGS, "reason_sealed", opening.id, reason)
    session.add(opening)
    queries.add_timeline_entry(session, case.id, now, need_to_know.BREAK_GLASS,
                               {"opening_id": opening.id, "by": caller.username}, source=source)


def _reasons_since(session: Session, vault: CaseVault, case: Any, user_id: str, since: datetime) -> set[str]:
    """The reasons this caseworker gave for openings of the case kept since then (decrypted; a handful at most)."""
    ids = queries.openings_since(session, case_id=case.id, user_id=user_id, since=since)
    return {reason for reason in _reasons(session, vault, case, ids).values() if reason is not None}


def _reasons(session: Session, vault: CaseVault, case: Any, opening_ids: list[str | None]) -> dict[str, str]:
    """The decrypted reasons of these break-glass openings of `case`, by id."""
    ids = [opening_id for opening_id in opening_ids if opening_id]
    if not ids:
        return {}
    openings = session.exec(select(BreakGlassOpening).where(BreakGlassOpening.case_id == case.id,
                                                            BreakGlassOpening.id.in_(ids))).all()
    data_key = _data_key(session, vault, case)
    # An opening in another service has no reason here (`note_opening_elsewhere`).
    return {o.id: _open(vault, data_key, OPENINGS, "reason_sealed", o.id, o.reason_sealed, case) if o.reason_sealed
            else None for o in openings}


def _entry_public(entry: TimelineEntry, reasons: dict[str, str]) -> TimelineEntryPublic:
    details = dict(entry.details)
    if entry.kind == need_to_know.BREAK_GLASS:
        details["reason"] = reasons.get(details.pop("opening_id", None) or "")
    return TimelineEntryPublic(id=entry.id, at=entry.at, kind=entry.kind, source=entry.source, details=details)


def _name_terms(vault: CaseVault, names: dict[str, Any]) -> set[tuple[str, str]]:
    """The blind-index terms of decrypted names (`NAME_FIELDS`, as stored: the date of birth as ISO text)."""
    birth = date.fromisoformat(names["date_of_birth"]) if names["date_of_birth"] else None
    return vault.name_terms([names["full_name"], *names["other_names"]], birth)


def _data_key(session: Session, vault: CaseVault, case: Case) -> bytes:
    try:
        return vault.case_key(session, case.id)
    except DecryptionError:
        raise _unreadable(case) from None


def _open_fields(session: Session, vault: CaseVault, case: Any, *, data_key: bytes | None = None) -> dict[str, Any]:
    data_key = data_key or _data_key(session, vault, case)
    return {field: _open(vault, data_key, CASES, sealed_column(field), case.id, getattr(case, sealed_column(field)), case)
            for field in PERSONAL_FIELDS}


def _open(vault: CaseVault, data_key: bytes, table: str, column: str, row_id: str, blob: bytes | None, case: Any) -> Any:
    try:
        return vault.open(data_key, table, column, row_id, blob)
    except DecryptionError:
        raise _unreadable(case) from None


def _unreadable(case: Any) -> Unreadable:
    # A ciphertext that does not open under its own case, column and row was moved or tampered with.
    log.error("case data does not decrypt", case_id=case.id)
    return Unreadable("This case's personal data could not be decrypted; the incident was logged with the case id.",
                      code="undecryptable")


def _summary(session: Session, case: Any) -> CaseSummary:
    kept = session.get(Case, case.duplicate_of) if case.duplicate_of else None
    return CaseSummary(id=case.id, reference=case.reference, status=case.status, country=case.country,
                       opened_at=case.opened_at, closed_at=case.closed_at, duplicate_of=case.duplicate_of,
                       duplicate_of_reference=kept.reference if kept else None,
                       assignees=assignment.usernames(session, [case.id]).get(case.id, []))


def _public(session: Session, case: Any, personal: dict[str, Any]) -> CasePublic:
    return CasePublic(**_summary(session, case).model_dump(), updated_at=case.updated_at, **personal)


def _erased(case: Any) -> ErasedCase:
    return ErasedCase(id=case.id, reference=case.reference, status=domain.ERASED)


def _need_public(need: Need, notes: str | None) -> NeedPublic:
    return NeedPublic(id=need.id, case_id=need.case_id, category=need.category, urgency=need.urgency, notes=notes,
                      created_at=need.created_at, created_by=need.created_by, status=need.status or "open",
                      status_changed_at=need.status_changed_at, status_changed_by=need.status_changed_by)
