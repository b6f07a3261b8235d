"""Notes and tasks on a case (SPEC §4): a caseworker's own words about it, and what is to be done for it by when.

Like the rest of a case, a note's text and a task's title are sealed under the case's data key (associated data:
table, column, row), so erasure — which destroys that key and deletes these rows (`cases._erase`) — takes them
along. The case's timeline says that a note or a task was added, or a task done, by whom and when; never the words.
The audit trail records each write and each read, never the words either.

Notes and a case's tasks open the case like every route under `/cases/{id}` (`cases._admitted`: its assignees, or
a caseworker stating why). A task is given to one of the case's assignees, and marked done only by one of them: a
stated reason opens a case for reading, it does not make its caller someone who works its tasks. "My tasks" lists
the caller's tasks on the cases they hold now, one index range per page (`ix_tasks_assignee_status_due`).

Use cases are functions of a session that never commit, like those of `cases`."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, select
from sqlmodel import Session

from kit.audit import AuditTrail, refusal_recorded
from kit.db import get_or_raise
from kit.errors import Invalid, NotFound, Refused
from kit.pagination import Page, keyset_page
from services.intake import cases, domain, queries
from services.intake.models import MyTask, Note, NoteCreate, NotePublic, Task, TaskCreate, TaskPublic
from services.intake.protection import CaseVault

NOTES, TASKS = "notes", "tasks"  # tables named in a ciphertext's associated data
NOTE_ADDED, TASK_ADDED, TASK_DONE = "note.added", "task.added", "task.done"  # timeline kinds

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
    return NotePublic(id=note.id, author=note.author, at=now, text=note_in.text)


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
        items = [NotePublic(id=n.id, author=n.author, at=n.at,
                            text=cases._open(vault, data_key, NOTES, "text_sealed", n.id, n.text_sealed, case))
                 for n in notes]
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="notes.read", target_id=case.id)
    return Page[NotePublic](items=items, next_cursor=next_cursor)


# ---- tasks ------------------------------------------------------------------------------------------------------

def add_task(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, task_in: TaskCreate, caller: domain.Caller,
) -> TaskPublic:
    """Give one of an open case's assignees (the caller unless another is named) a task due on a date; its title
    sealed under the case's key."""
    case = cases._admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    holders = queries.assignees_of(session, [case.id]).get(case.id, [])
    if task_in.assignee is None:
        assignee = next((row for row in holders if row.user_id == caller.user_id), None)
    else:
        assignee = next((row for row in holders if row.username.lower() == task_in.assignee), None)
    if assignee is None:
        raise Invalid("A task is given to one of the case's caseworkers: name one of them as `assignee`.",
                      code="not-an-assignee")
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
    task = get_or_raise(session, Task, task_id, NotFound("There is no task with this id.", code="task-not-found"),
                        lock=True)
    _ensure_assignee(session, task.case_id, caller)
    case = cases._case(session, task.case_id)
    if task.status != domain.DONE_TASK:
        now = datetime.now(UTC)
        task.status, task.done_at, task.done_by = domain.DONE_TASK, now, caller.user_id
        queries.add_timeline_entry(session, task.case_id, now, TASK_DONE, {"task_id": task.id, "by": caller.username})
        audit.record(session, actor=caller.user_id, action="tasks.done", target_id=task.case_id)
    else:  # done already: nothing changes, but its title is read (decrypted) for the answer
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=task.case_id)
    title = cases._open(vault, cases._data_key(session, vault, case), TASKS, "title_sealed", task.id,
                        task.title_sealed, case)
    return _task_public(task, title, _handles(session, task.case_id).get(task.assignee_id, task.assignee))


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
        select(t.id, t.case_id, t.title_sealed, t.due_on, t.status, c.reference)
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
                            status=row.status, reference=row.reference))
    for case_id in sorted(keys):
        audit.record(session, actor=caller.user_id, action="tasks.read", target_id=case_id)
    return Page[MyTask](items=items, next_cursor=next_cursor)


# ---- helpers ----------------------------------------------------------------------------------------------------

def _ensure_assignee(session: Session, case_id: str, caller: domain.Caller) -> None:
    """Refused (audited as `domain.ACCESS_REFUSED` about the case) unless the caller holds the task's case."""
    with refusal_recorded(actor=caller.user_id, action=domain.ACCESS_REFUSED, target_id=case_id):
        if domain.CASEWORKER not in caller.roles or caller.user_id not in queries.assignee_ids(session, case_id):
            raise Refused("Only a caseworker the task's case is assigned to marks it done.", code="need-to-know")


def _handles(session: Session, case_id: str) -> dict[str, str]:
    """The case's assignees' current handles, by user id."""
    return {row.user_id: row.username for row in queries.assignees_of(session, [case_id]).get(case_id, [])}


def _task_public(task: Any, title: str, assignee: str) -> TaskPublic:
    return TaskPublic(id=task.id, case_id=task.case_id, title=title, due_on=task.due_on, assignee=assignee,
                      status=task.status)
