"""Notes and tasks on a case (SPEC §4): a caseworker's own words about it, and what is to be done for it by when.

Like the rest of a case, a note's text and a task's title are sealed under the case's data key (associated data:
table, column, row), so erasure — which destroys that key and deletes these rows (`cases._erase`) — takes them
along. The case's timeline says that a note or a task was added, or a task done, by whom and when; never the words.
The audit trail records each write and each read, never the words either.

Notes and a case's tasks open the case like every route under `/cases/{id}` (`cases._admitted`: its assignees, or
a caseworker stating why). A task is given to one of the case's assignees, and marked done only by one of them: a
stated reason opens a case for reading, it does not make its caller someone who works its tasks. "My tasks" lists
the caller's tasks on the cases they hold now, one index range per page (`ix_tasks_assignee_status_due`).

Corrections. What was added in error does not stay: a note written into the wrong case (naming someone else) is
removed by one of the case's assignees — never by a caseworker who opened the case with a stated reason, as for
erasure (`domain.may_erase`) — with a reason from a fixed list (`RemovalReason`: no typed words that could name
someone in turn). Its text goes for good: the sealed column is cleared (SQLite overwrites deleted content,
`secure_delete`, and the write-ahead log is truncated after the commit), and every stored Idempotency-Key answer
that repeats it is sealed again without it (`Idempotency.rewrite`: a replay then answers the tombstone, and adds
nothing). What stays is a tombstone: the note's author and time, and who removed it, when and why, in the list and
on the timeline. A task is changed (title, due date, assignee; If-Match on its ETag, as a case is) or cancelled —
neither open nor done — while it is open, instead of being marked done to make it go away.

Use cases are functions of a session that never commit, like those of `cases`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from kit.audit import AuditTrail, refusal_recorded
from kit.db import get_or_raise
from kit.errors import Conflict, Invalid, NotFound, Refused, Stale
from kit.pagination import Page, keyset_page
from services.intake import cases, domain, queries
from services.intake.models import (
    MyTask,
    Note,
    NoteCreate,
    NotePublic,
    Removal,
    Task,
    TaskChange,
    TaskCreate,
    TaskPublic,
)
from services.intake.protection import CaseVault, forget_in_stored_answers

NOTES, TASKS = "notes", "tasks"  # tables named in a ciphertext's associated data
NOTE_ADDED, TASK_ADDED, TASK_DONE = "note.added", "task.added", "task.done"  # timeline kinds
NOTE_REMOVED, TASK_CHANGED, TASK_CANCELLED = "note.removed", "task.changed", "task.cancelled"

_TASKS = Task.__table__
_CASES = queries.CASES
_ASSIGNEES = queries.ASSIGNEES


# ---- notes ------------------------------------------------------------------------------------------------------

def add_note(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, note_in: NoteCreate, caller: domain.Caller,
) -> NotePublic:
    """Write a note on an open case, signed with the caller's handle; its text sealed under the case's key."""
    case = cases._admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    now = datetime.now(UTC)
    note = Note(id=str(uuid.uuid4()), case_id=case.id, author_id=caller.user_id, author=caller.username, at=now)
    note.text_sealed = vault.seal(cases._data_key(session, vault, case), NOTES, "text_sealed", note.id, note_in.text)
    session.add(note)
    queries.add_timeline_entry(session, case.id, now, NOTE_ADDED, {"note_id": note.id, "by": caller.username})
    audit.record(session, actor=caller.user_id, action="notes.add", target_id=case.id)
    return _note_public(note, note_in.text)


def list_notes(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller, limit: int,
    cursor: str | None,
) -> Page[NotePublic]:
    """A case's notes, newest first, decrypted."""
    case = cases._admitted(session, vault, audit, case_id, caller)
    notes, next_cursor = keyset_page(session, select(Note).where(Note.case_id == case.id),
                                     order=[Note.at, Note.id], limit=limit, cursor=cursor, descending=True)
    items = []
    if notes:
        data_key = cases._data_key(session, vault, case)
        items = [_note_public(n, None if n.removed_at else
                              cases._open(vault, data_key, NOTES, "text_sealed", n.id, n.text_sealed, case))
                 for n in notes]
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="notes.read", target_id=case.id)
    return Page[NotePublic](items=items, next_cursor=next_cursor)


def remove_note(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, note_id: str, removal: Removal,
    caller: domain.Caller,
) -> NotePublic:
    """Remove a note written in error (one of its case's assignees, any status but erased: a closed case's record is
    corrected too). Its text goes for good, here and in the stored answers that repeat it; the tombstone says who
    removed it, when and why. Removing it again changes nothing and answers the same tombstone."""
    note = session.get(Note, note_id, with_for_update=True)
    if note is None or note.case_id != case_id:
        raise NotFound("There is no note with this id in this case.", code="note-not-found")
    ensure_holds(session, note.case_id, caller, "Only a caseworker the case is assigned to removes a note from it: "
                                                "a stated reason opens a case, it does not correct its record.")
    if note.removed_at is None:
        now = datetime.now(UTC)
        note.text_sealed = None
        note.removed_at, note.removed_by, note.removal_reason = now, caller.username, removal.reason
        queries.add_timeline_entry(session, note.case_id, now, NOTE_REMOVED,
                                   {"note_id": note.id, "by": caller.username, "reason": removal.reason})
        audit.record(session, actor=caller.user_id, action="note.removed", target_id=note.case_id)
        tombstone = _note_public(note, None).model_dump(mode="json")
        forget_in_stored_answers(session, vault, note.case_id, note.id, lambda answer: tombstone)
    return _note_public(note, None)


def _note_public(note: Note, text: str | None) -> NotePublic:
    return NotePublic(id=note.id, author=note.author, at=note.at, text=text, removed_at=note.removed_at,
                      removed_by=note.removed_by, removal_reason=note.removal_reason)


# ---- tasks ------------------------------------------------------------------------------------------------------

def add_task(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, task_in: TaskCreate, caller: domain.Caller,
) -> TaskPublic:
    """Give one of an open case's assignees (the caller unless another is named) a task due on a date; its title
    sealed under the case's key."""
    case = cases._admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    assignee = _holder(session, case.id, task_in.assignee, caller=caller)
    now = datetime.now(UTC)
    task = Task(id=str(uuid.uuid4()), case_id=case.id, due_on=task_in.due_on, assignee_id=assignee.user_id,
                assignee=assignee.username, status=domain.OPEN_TASK, created_at=now, created_by=caller.user_id)
    task.title_sealed = vault.seal(cases._data_key(session, vault, case), TASKS, "title_sealed", task.id,
                                   task_in.title)
    session.add(task)
    queries.add_timeline_entry(session, case.id, now, TASK_ADDED, {
        "task_id": task.id, "due_on": task.due_on.isoformat(), "assignee": assignee.username, "by": caller.username})
    audit.record(session, actor=caller.user_id, action="tasks.add", target_id=case.id)
    return _task_public(task, task_in.title, assignee.username)


def list_case_tasks(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller,
    status: str | None, limit: int, cursor: str | None,
) -> Page[TaskPublic]:
    """A case's tasks, soonest due first (of one status if asked), their titles decrypted."""
    case = cases._admitted(session, vault, audit, case_id, caller)
    query = select(Task).where(Task.case_id == case.id)
    if status:
        query = query.where(Task.status == status)
    tasks, next_cursor = keyset_page(session, query, order=[Task.due_on, Task.id], limit=limit, cursor=cursor)
    items = []
    if tasks:
        data_key = cases._data_key(session, vault, case)
        handles = _handles(session, case.id)
        items = [_task_public(t, cases._open(vault, data_key, TASKS, "title_sealed", t.id, t.title_sealed, case),
                              handles.get(t.assignee_id, t.assignee)) for t in tasks]
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=case.id)
    return Page[TaskPublic](items=items, next_cursor=next_cursor)


def finish_task(
    *, session: Session, vault: CaseVault, audit: AuditTrail, task_id: str, caller: domain.Caller,
) -> TaskPublic:
    """Mark a task done (one of its case's assignees); done again changes nothing and answers the same."""
    task = _task_to_change(session, task_id)
    ensure_holds(session, task.case_id, caller, "Only a caseworker the task's case is assigned to marks it done.")
    case = cases._case(session, task.case_id)
    if task.status == domain.CANCELLED_TASK:
        raise Conflict("This task was cancelled; it is not done.", code="task-not-open")
    if task.status != domain.DONE_TASK:
        now = datetime.now(UTC)
        task.status, task.done_at, task.done_by = domain.DONE_TASK, now, caller.user_id
        task.version += 1  # another representation, another ETag (RFC 9110 §8.8.3)
        queries.add_timeline_entry(session, task.case_id, now, TASK_DONE, {"task_id": task.id, "by": caller.username})
        audit.record(session, actor=caller.user_id, action="tasks.done", target_id=task.case_id)
    else:  # done already: nothing changes, but its title is read (decrypted) for the answer
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=task.case_id)
    return _task_answer(session, vault, case, task)


def change_task(
    *, session: Session, vault: CaseVault, audit: AuditTrail, task_id: str, changes: TaskChange, if_match: str,
    caller: domain.Caller,
) -> TaskPublic:
    """Change an open task's title, due date or assignee (one of the case's caseworkers, as when it was given), only
    if the caller saw its current version (If-Match on its ETag): two colleagues correcting one task do not overwrite
    each other unseen. One of the case's assignees, on an open case. The timeline says which fields changed, with the
    new due date and assignee (as it says them when a task is added), never the title; only what differs counts (the
    same values again change nothing, not even the ETag). A new title is also put in place of the old one in the
    stored answers that repeat it."""
    task = _task_to_change(session, task_id)
    ensure_holds(session, task.case_id, caller, "Only a caseworker the task's case is assigned to changes it.")
    case = cases._case(session, task.case_id)
    domain.ensure_changeable(case.status)
    _ensure_open(task)
    if not domain.if_match_allows(if_match, domain.etag(task.id, task.version)):
        raise Stale("The task changed since you read it: read it again, then make your change.", code="stale-etag")
    given = changes.model_dump(exclude_unset=True)
    data_key = cases._data_key(session, vault, case)
    title = cases._open(vault, data_key, TASKS, "title_sealed", task.id, task.title_sealed, case)
    holder = _holder(session, task.case_id, given["assignee"]) if "assignee" in given else None
    # What differs from the task as it is: a form that sends every field changes (and says) only those edited.
    now_is = {"title": title, "due_on": task.due_on, "assignee": task.assignee_id}
    wanted = {**given, **({"assignee": holder.user_id} if holder else {})}
    fields = sorted(field for field, value in wanted.items() if value != now_is[field])
    if not fields:  # the same values again (a form sent twice): nothing changes, the title was read for the answer
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=task.case_id)
        return _held_task_public(session, task, title)
    details: dict[str, Any] = {"task_id": task.id, "fields": fields, "by": caller.username}
    if "title" in fields:
        title = given["title"]
        task.title_sealed = vault.seal(data_key, TASKS, "title_sealed", task.id, title)
    if "due_on" in fields:
        task.due_on = given["due_on"]
        details["due_on"] = task.due_on.isoformat()
    if "assignee" in fields and holder is not None:
        task.assignee_id, task.assignee = holder.user_id, holder.username
        details["assignee"] = holder.username
    task.version += 1
    queries.add_timeline_entry(session, task.case_id, datetime.now(UTC), TASK_CHANGED, details)
    audit.record(session, actor=caller.user_id, action="tasks.change", target_id=task.case_id)
    changed = _held_task_public(session, task, title)
    if "title" in fields:
        forget_in_stored_answers(session, vault, task.case_id, task.id,
                                 lambda answer: {**answer, "title": changed.title})
    return changed


def cancel_task(
    *, session: Session, vault: CaseVault, audit: AuditTrail, task_id: str, caller: domain.Caller,
) -> TaskPublic:
    """Cancel an open task (one of its case's assignees): it is no longer to be done, and was not done. Cancelled
    again changes nothing and answers the same; a done task is not cancelled (409 `task-not-open`)."""
    task = _task_to_change(session, task_id)
    ensure_holds(session, task.case_id, caller, "Only a caseworker the task's case is assigned to cancels it.")
    case = cases._case(session, task.case_id)
    if task.status != domain.CANCELLED_TASK:
        _ensure_open(task)
        now = datetime.now(UTC)
        task.status, task.cancelled_at, task.cancelled_by = domain.CANCELLED_TASK, now, caller.user_id
        task.version += 1
        queries.add_timeline_entry(session, task.case_id, now, TASK_CANCELLED, {"task_id": task.id,
                                                                               "by": caller.username})
        audit.record(session, actor=caller.user_id, action="tasks.cancel", target_id=task.case_id)
    else:  # cancelled already: nothing changes, but its title is read (decrypted) for the answer
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=task.case_id)
    return _task_answer(session, vault, case, task)


def my_tasks(
    *, session: Session, vault: CaseVault, audit: AuditTrail, caller: domain.Caller, status: str,
    due_before: date | None, limit: int, cursor: str | None,
) -> Page[MyTask]:
    """The caller's tasks of one status on the cases they hold, soonest due first (due before a date if asked), each
    with its case's reference and its title decrypted. Each case whose titles were read is audited."""
    if domain.CASEWORKER not in caller.roles:
        raise Refused("Only a caseworker has tasks.", code="forbidden")
    t, a, c = _TASKS.c, _ASSIGNEES.c, _CASES.c
    query = (
        select(t.id, t.case_id, t.title_sealed, t.due_on, t.status, t.version, c.reference)
        .select_from(_TASKS.join(_ASSIGNEES, and_(a.case_id == t.case_id, a.user_id == t.assignee_id))
                     .join(_CASES, c.id == t.case_id))
        .where(t.assignee_id == caller.user_id, t.status == status)
    )
    if due_before is not None:
        query = query.where(t.due_on < due_before)
    rows, next_cursor = keyset_page(session, query, order=[t.due_on, t.id], limit=limit, cursor=cursor,
                                    key=lambda row: (row.due_on, row.id))
    keys: dict[str, tuple[Any, bytes]] = {}  # each case's row and data key, read once a page
    items = []
    for row in rows:
        if row.case_id not in keys:
            case = cases._case(session, row.case_id)
            keys[row.case_id] = case, cases._data_key(session, vault, case)
        case, data_key = keys[row.case_id]
        title = cases._open(vault, data_key, TASKS, "title_sealed", row.id, row.title_sealed, case)
        items.append(MyTask(id=row.id, case_id=row.case_id, title=title, due_on=row.due_on, assignee=caller.username,
                            status=row.status, reference=row.reference, etag=domain.etag(row.id, row.version)))
    for case_id in sorted(keys):
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=case_id)
    return Page[MyTask](items=items, next_cursor=next_cursor)


# ---- helpers ----------------------------------------------------------------------------------------------------

def ensure_holds(session: Session, case_id: str, caller: domain.Caller, refused: str) -> None:
    """Refused (`refused` said; audited as `domain.ACCESS_REFUSED` about the case) unless the caller is a caseworker
    who holds the case: a stated reason (break-glass) opens a case to read it, it does not make its caller someone
    who works or corrects it."""
    with refusal_recorded(actor=caller.user_id, action=domain.ACCESS_REFUSED, target_id=case_id):
        if domain.CASEWORKER not in caller.roles or caller.user_id not in queries.assignee_ids(session, case_id):
            raise Refused(refused, code="need-to-know")


def _task_to_change(session: Session, task_id: str) -> Task:
    return get_or_raise(session, Task, task_id, NotFound("There is no task with this id.", code="task-not-found"),
                        lock=True)


def _ensure_open(task: Task) -> None:
    """Only an open task changes, is done or is cancelled: a done or cancelled one is the record of what happened."""
    if task.status != domain.OPEN_TASK:
        raise Conflict(f"This task is {task.status}; only an open task changes.", code="task-not-open")


def _holder(session: Session, case_id: str, handle: str | None, *, caller: domain.Caller | None = None) -> Any:
    """The case's assignee named by `handle` (the caller's own row when none is named): a task is given only to one
    of the case's caseworkers."""
    holders = queries.assignees_of(session, [case_id]).get(case_id, [])
    if handle is None and caller is not None:
        found = next((row for row in holders if row.user_id == caller.user_id), None)
    else:
        found = next((row for row in holders if row.username.lower() == handle), None)
    if found is None:
        raise Invalid("A task is given to one of the case's caseworkers: name one of them as `assignee`.",
                      code="not-an-assignee")
    return found


def _handles(session: Session, case_id: str) -> dict[str, str]:
    """The case's assignees' current handles, by user id."""
    return {row.user_id: row.username for row in queries.assignees_of(session, [case_id]).get(case_id, [])}


def _task_answer(session: Session, vault: CaseVault, case: Any, task: Any) -> TaskPublic:
    """A task of `case` as its answer says it: its title opened, its assignee by handle."""
    title = cases._open(vault, cases._data_key(session, vault, case), TASKS, "title_sealed", task.id,
                        task.title_sealed, case)
    return _held_task_public(session, task, title)


def _held_task_public(session: Session, task: Any, title: str) -> TaskPublic:
    """A task with its assignee by their current handle (the one kept on the task if they no longer hold the case)."""
    return _task_public(task, title, _handles(session, task.case_id).get(task.assignee_id, task.assignee))


def _task_public(task: Any, title: str, assignee: str) -> TaskPublic:
    return TaskPublic(id=task.id, case_id=task.case_id, title=title, due_on=task.due_on, assignee=assignee,
                      status=task.status, etag=domain.etag(task.id, task.version))
