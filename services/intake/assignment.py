"""Who holds a case (SPEC §4, need-to-know): its assignees, reassigning it, and the staff directory that says who
may be assigned (kept from the gateway's events).

Use cases are functions of a session that never commit, like those of `cases`; refusals are the domain's errors.
Who may open a case is `domain.case_access`; `cases` applies it on every route under a case."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session

from kit import logs
from kit.audit import AuditTrail, refusal_recorded
from kit.db import get_or_raise
from kit.errors import Conflict, Invalid, NotFound
from services.intake import domain, events, queries
from services.intake.models import (
    Case,
    CaseAssignee,
    CaseSummary,
    CaseworkerLoad,
    StaffMember,
)

log = logs.get("intake")

# When an event says nothing of an account's being enabled (a change of roles): older than any event that does.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


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
    if refused := domain.unassignable(wanted, directory):
        raise Invalid("A case is assigned only to enabled caseworkers: these usernames are not such (or not known "
                      "yet).", code="not-an-enabled-caseworker", usernames=refused)
    user_ids = [directory[name].user_id for name in wanted]
    if user_ids != list(held):
        now = datetime.now(UTC)
        session.execute(delete(CaseAssignee).where(CaseAssignee.case_id == case.id))
        session.execute(queries.INSERT_ASSIGNEES, [{
            "case_id": case.id, "user_id": user_id, "username": name, "position": position,
            "opened_at": case.opened_at, "assigned_at": held[user_id].assigned_at if user_id in held else now,
        } for position, (user_id, name) in enumerate(zip(user_ids, wanted, strict=True))])
        # The open tasks of those who no longer hold the case go to the first who does: a caseworker's list of
        # tasks is of the cases they hold, so left with their old holder they would be on nobody's list.
        handed = queries.hand_on_open_tasks(session, case.id, holders=user_ids, to_id=user_ids[0], to_name=wanted[0])
        queries.add_timeline_entry(session, case.id, now, "case.assigned",  # staff handles
                                   {"assignees": wanted, **({"tasks_handed_on": handed} if handed else {})})
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
