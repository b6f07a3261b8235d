"""Who holds a case (SPEC §4, need-to-know): its assignees, reassigning it, and the staff directory that says who
may be assigned (kept from the gateway's events).

A caseworker who leaves (their account disabled, or no longer a caseworker) keeps the cases they held, so that
nothing is lost if they come back; their open tasks go to a colleague who holds the same case
(`follow_staff_change`), and a case that nobody able to work it holds any more is marked for supervisors in the
caseload (`CaseloadItem.unattended`), with its waiting tasks, until a supervisor gives it to someone.

Use cases are functions of a session that never commit, like those of `cases`; refusals are the domain's errors.
Who may open a case is `domain.case_access`; `cases` applies it on every route under a case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from sqlalchemy import Row, delete, func, select
from sqlmodel import Session

from kit import logs
from kit.audit import AuditTrail, refusal_recorded
from kit.db import get_or_raise
from kit.errors import Conflict, Invalid, NotFound
from kit.pagination import Page, cursor_after, read_cursor
from services.intake import domain, events, queries
from services.intake.models import (
    Case,
    CaseAssignee,
    CaseListItem,
    CaseSummary,
    CaseworkerLoad,
    StaffMember,
)

log = logs.get("intake")

# When an event says nothing of an account's being enabled (a change of roles): older than any event that does.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
# Who moves a leaver's open tasks on (the audit trail's actor): intake itself, on the gateway's staff event.
STAFF_DIRECTORY_ACTOR = "system:staff-directory"
# The timeline's word for open tasks handed on because whoever held them can no longer work the case.
TASKS_HANDED_ON = "tasks.handed_on"


class CaseloadItem(CaseListItem):
    """A case in a list (no personal data), with what tells a supervisor whether anyone can work it."""

    unattended: bool = Field(default=False, description=(
        "Nobody who holds the case can work it now: every assignee's account is disabled or no longer a "
        "caseworker's; never an erased case (nor one nobody holds, from before cases had assignees: its "
        "`assignees` are empty). A supervisor gives it to someone; `GET /cases?assigned=any&unattended=true` lists "
        "only these."))
    inactive_assignees: list[str] = Field(default_factory=list, description=(
        "Those of `assignees` who can no longer work the case (account disabled, or no longer a caseworker). They "
        "still hold it: enabled again, they find it as they left it."))
    waiting_tasks: int = Field(default=0, description=(
        "Open tasks of the case left with assignees who can no longer work it: on an unattended case they wait "
        "there, and go to whoever the case is given to."))


# ---- a case's assignees -----------------------------------------------------------------------------------------

def assign_creator(session: Session, *, case_id: str, opened_at: datetime, caller: domain.Caller) -> list[str]:
    """The caseworker who opens a case is its first assignee (the other services learn it from `case.opened`,
    which names them). The handles, as the case shows them."""
    session.execute(queries.INSERT_ASSIGNEES, [{
        "case_id": case_id, "user_id": caller.user_id, "username": caller.username, "position": 0,
        "opened_at": opened_at, "assigned_at": opened_at}])
    return [caller.username]


def usernames(session: Session, case_ids: Iterable[str]) -> dict[str, list[str]]:
    """Each case's assignees' handles, in the order assigned (a case without any maps to none)."""
    return {case_id: [row.username for row in rows] for case_id, rows in queries.assignees_of(session, case_ids).items()}


def _works(holder: Any) -> bool:
    """Whether an assignee or a directory entry (anything with `enabled` and `roles`) can work a case now."""
    return domain.works_cases(holder.enabled, holder.roles)


def caseload_items(session: Session, rows: Sequence[Row[Any]]) -> list[CaseloadItem]:
    """Cases of a list (`queries.LIST_COLUMNS` rows) with their assignees and whether anyone of them can work the
    case; for an unattended case, how many open tasks wait with those who cannot. Two statements a page (the
    assignees, with what the directory says of them; the waiting tasks, only where some case is unattended)."""
    held = queries.assignees_of(session, [row.id for row in rows])
    unattended = {row.id for row in rows if row.status != domain.ERASED and held.get(row.id)
                  and not any(_works(holder) for holder in held[row.id])}
    waiting = queries.open_tasks_by_assignee(session, unattended)
    items = []
    for row in rows:
        holders = held.get(row.id, [])
        inactive = [holder for holder in holders if not _works(holder)]
        tasks = waiting.get(row.id, {})
        items.append(CaseloadItem(**row._mapping, assignees=[holder.username for holder in holders],
                                  unattended=row.id in unattended,
                                  inactive_assignees=[holder.username for holder in inactive],
                                  waiting_tasks=sum(tasks.get(holder.user_id, 0) for holder in inactive)))
    return items


def inactive_staff(session: Session) -> set[str]:
    """The user ids of the staff directory's accounts that can no longer work a case (`domain.works_cases`)."""
    return {row.user_id for row in queries.staff_states(session) if not _works(row)}


def set_assignees(
    *, session: Session, audit: AuditTrail, case_id: str, wanted: list[str], caller: domain.Caller,
) -> CaseSummary:
    """Give a case to these caseworkers (handles, in order; each an enabled caseworker of the staff directory),
    in place of those who hold it. Asked by one of them or a supervisor. Those who stay keep when they were first
    assigned; the same list again changes nothing."""
    case = get_or_raise(session, Case, case_id, NotFound("There is no case with this id.", code="case-not-found"),
                        lock=True)
    held = {row.user_id: row for row in session.execute(
        select(CaseAssignee).where(CaseAssignee.case_id == case.id).order_by(CaseAssignee.position)).scalars()}
    # Whom the handles name is looked up first: a supervisor adding themselves is known by user id, not by how they
    # typed their handle. Who may assign is still decided before anything is said of the handles (unknown, disabled).
    directory = queries.staff_by_username(session, wanted)
    with refusal_recorded(actor=caller.user_id, action=domain.ACCESS_REFUSED, target_id=case.id):
        domain.may_assign(caller, held, {entry.user_id for entry in directory.values()})
    if case.status == domain.ERASED:
        raise Conflict("This case was erased; there is nothing left to assign.", code="case-erased")
    if refused := domain.unassignable(wanted, directory, holding=held):
        raise Invalid("A case is assigned only to enabled caseworkers (one who holds it already may stay, beside "
                      "one who can work it): these usernames are not such (or not known yet).",
                      code="not-an-enabled-caseworker", usernames=refused)
    user_ids = [directory[name].user_id for name in wanted]
    if user_ids != list(held):
        now = datetime.now(UTC)
        session.execute(delete(CaseAssignee).where(CaseAssignee.case_id == case.id))
        session.execute(queries.INSERT_ASSIGNEES, [{
            "case_id": case.id, "user_id": user_id, "username": name, "position": position,
            "opened_at": case.opened_at, "assigned_at": held[user_id].assigned_at if user_id in held else now,
        } for position, (user_id, name) in enumerate(zip(user_ids, wanted, strict=True))])
        # The open tasks of those who no longer hold the case, or who hold it but can no longer work it, go to the
        # first who can: a caseworker's list of tasks is of the cases they hold, so left with their old holder they
        # would be on nobody's list.
        able = [(directory[name].user_id, name) for name in wanted if _works(directory[name])]
        handed = queries.hand_on_open_tasks(session, case.id, holders=[user_id for user_id, _ in able],
                                            to_id=able[0][0], to_name=able[0][1])
        queries.add_timeline_entry(session, case.id, now, "case.assigned", {  # staff handles
            "assignees": wanted, **({"tasks_handed_on": handed, "tasks_handed_to": able[0][1]} if handed else {})})
        events.publish(session, events.CASE_ASSIGNED, events.CaseAssigned(
            case_id=case.id, assignees=user_ids, assigned_at=now), about=case.id)
        audit.record(session, actor=caller.user_id, action="case.assign", target_id=case.id)
        log.info("case assigned", case_id=case.id, assignees=len(user_ids))
    return CaseSummary(id=case.id, reference=case.reference, status=case.status, country=case.country,
                       opened_at=case.opened_at, closed_at=case.closed_at,
                       assignees=usernames(session, [case.id]).get(case.id, []))


def add_assignee(
    *, session: Session, audit: AuditTrail, case_id: str, username: str, caller: domain.Caller,
) -> CaseSummary:
    """Add one caseworker to those who hold a case, after them (a caseworker asking a colleague to share it; the
    same checks as `set_assignees`). One already holding it changes nothing. The case is locked before its holders
    are read, so an addition and a reassignment at the same moment do not undo each other."""
    get_or_raise(session, Case, case_id, NotFound("There is no case with this id.", code="case-not-found"), lock=True)
    held = [row.username for row in queries.assignees_of(session, [case_id]).get(case_id, [])]
    wanted = held if username.lower() in (name.lower() for name in held) else [*held, username]
    return set_assignees(session=session, audit=audit, case_id=case_id, wanted=wanted, caller=caller)


# ---- the staff directory ----------------------------------------------------------------------------------------

def caseworkers_page(session: Session, *, limit: int, cursor: str | None) -> Page[CaseworkerLoad]:
    """`caseworkers` a page at a time, by handle: a staff directory is a few dozen accounts, so paged in memory."""
    after = read_cursor(cursor, [StaffMember.username], "caseworkers")[0] if cursor else None
    rest = [load for load in caseworkers(session) if after is None or load.username > after]
    page = rest[:limit]
    more = len(rest) > limit
    next_cursor = cursor_after((page[-1].username,), "caseworkers") if more else None
    return Page[CaseworkerLoad](items=page, next_cursor=next_cursor)


def caseworkers(session: Session) -> list[CaseworkerLoad]:
    """Whom a case can be given to: every enabled caseworker of the directory by handle, with how many open cases
    each holds now (who has room). Staff handles and counts only; a staff of an NGO is a few dozen accounts."""
    held = dict(session.execute(
        select(CaseAssignee.user_id, func.count()).join(Case, Case.id == CaseAssignee.case_id)
        .where(Case.status == domain.OPEN).group_by(CaseAssignee.user_id)).all())
    newest: dict[str, StaffMember] = {}
    for member in session.execute(select(StaffMember).order_by(StaffMember.profile_at)).scalars():
        newest[member.username] = member  # a handle once held by an older account names the newest one
    return [CaseworkerLoad(username=name, open_cases=held.get(member.user_id, 0))
            for name, member in sorted(newest.items()) if member.enabled and domain.CASEWORKER in member.roles]


def follow_staff_change(
    session: Session, *, audit: AuditTrail | None, user_id: str, username: str, roles: list[str],
    partner_id: str | None, enabled: bool | None, occurred_at: datetime,
) -> int:
    """One of the gateway's staff events (`record_staff`), and what it means for the cases the account holds: once
    it can no longer work a case (disabled, or no longer a caseworker) its open tasks there go to the first of the
    case's assignees who can; enabled again, it takes those left waiting on the cases it holds that nobody else
    could work (`hand_on_tasks`). It keeps every case it held either way.

    Decided from the directory as it stands after the event, never from the event alone: an event that comes twice,
    or late (an old `enabled` after a newer `disabled`), moves nothing the directory does not call for. How many
    tasks moved."""
    record_staff(session, user_id=user_id, username=username, roles=roles, partner_id=partner_id, enabled=enabled,
                 occurred_at=occurred_at)
    return hand_on_tasks(session, audit=audit, tasks=queries.open_tasks_on_cases_held_by(session, user_id))


def hand_on_tasks(session: Session, *, audit: AuditTrail | None, tasks: Mapping[str, Mapping[str, int]]) -> int:
    """On each case of `tasks` (case id → the user ids holding its open tasks, and how many), the open tasks held by
    someone who can no longer work it (or who no longer holds it) go to the first of its assignees who can; on a
    case nobody can work they stay, and the caseload shows the case to supervisors (`caseload_items`). Each case
    with tasks to move is locked (in the order of ids) and its holders read again under the lock, so a reassignment
    at the same moment is not undone. A step on each case's timeline (who got how many) and an entry in the audit
    trail. How many tasks moved in all."""
    moved = 0
    for case_id in sorted(tasks):
        session.get(Case, case_id, with_for_update=True)
        holders = queries.assignees_of(session, [case_id]).get(case_id, [])
        able = [holder for holder in holders if _works(holder)]
        if not able or set(tasks[case_id]) <= {holder.user_id for holder in able}:
            continue  # nobody to give them to, or nothing held by one who cannot do it
        handed = queries.hand_on_open_tasks(session, case_id, holders=[holder.user_id for holder in able],
                                            to_id=able[0].user_id, to_name=able[0].username)
        if handed:
            queries.add_timeline_entry(session, case_id, datetime.now(UTC), TASKS_HANDED_ON,
                                       {"tasks_handed_on": handed, "tasks_handed_to": able[0].username})
            if audit is not None:
                audit.record(session, actor=STAFF_DIRECTORY_ACTOR, action="tasks.hand_on", target_id=case_id)
            moved += handed
    if moved:
        log.info("open tasks handed on after a staff change", tasks=moved)
    return moved


def record_staff(
    session: Session, *, user_id: str, username: str, roles: list[str], partner_id: str | None, enabled: bool | None,
    occurred_at: datetime,
) -> None:
    """Keep what one of the gateway's staff events says of an account, unless what is kept is newer (events may
    come late, or out of order). `enabled` None: the event says nothing of it (a change of roles)."""
    queries.upsert_staff(session, {
        "user_id": user_id, "username": username, "roles": sorted(set(roles)), "partner_id": partner_id,
        "profile_at": occurred_at,
        "enabled": True if enabled is None else enabled,  # until an event says otherwise: accounts start enabled
        "enabled_at": NEVER if enabled is None else occurred_at,
    })
