"""Need-to-know on cases (SPEC §2, §4): the one rule every service applies to a caseworker acting on a case.

A caseworker acts on the cases assigned to them. Another case opens only with a stated reason, sent in the
`Access-Reason` header: then the opening is allowed, and the service audits it as `case.break_glass` in the unit of
work of what the caller does. The reason is kept by intake, sealed with the case, and shown on its timeline: a
reason stated in referrals or funds is handed to intake first (`ReasonKeeper`), since only intake holds a key of the
case. Who else may act (a supervisor who assigns, finance who work every disbursement) is each service's own rule,
decided before this one. Intake knows the assignees; referrals and funds learn them from its `case.assigned` events.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import httpx
from fastapi import Depends, Header, Request
from sqlalchemy import Table, bindparam, delete, insert, update
from sqlmodel import Session

from kit import logs
from kit.db import dialect_insert
from kit.errors import Invalid, Refused, Unavailable
from kit.peers import Peer, on_behalf_of
from kit.text import shown_text

MIN_REASON, MAX_REASON = 10, 500  # an Access-Reason's length, in characters, once trimmed
# A reason is said in words: this many letters (of any script) at least, of three different ones at least. An outside
# review opened another's case with "----------" and "aaaaaaaaaa", which meet the length and state nothing.
MIN_REASON_LETTERS = 5
# Text still encoded for transport (percent-encoding, a MIME encoded-word): stored as sent, its caseworkers would read
# "%D0%9F%D0%B0…" on the timeline. A header in Belarusian or Russian is sent as UTF-8 bytes (`_stated_reason`).
_ENCODED = re.compile(r"(%[0-9A-Fa-f]{2}){2}|=\?[^?\s]+\?[BbQq]\?")
HEADER = "Access-Reason"
BREAK_GLASS = "case.break_glass"  # the audit trail's word for an opening with a stated reason

# What a route under a case may answer besides what its signature shows (kit.openapi reads `responses=`).
ANSWERS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The case is not assigned to you (`need-to-know`): send why you open it in the "
                         f"Access-Reason header, at least {MIN_REASON} characters."},
    422: {"description": f"The Access-Reason is longer than {MAX_REASON} characters (`access-reason-length`), or "
                         "not said in words (`access-reason-words`)."},
}
T = TypeVar("T")


class Access(StrEnum):
    """Why a caseworker may act on a case."""

    ASSIGNED = "assigned"        # one of its assignees
    BREAK_GLASS = "break-glass"  # not, but they stated why: the use case audits it as `case.break_glass`


def need_to_know(user_id: str, assignees: Collection[str], reason: str | None) -> Access:
    """May caseworker `user_id` act on a case held by `assignees` (user ids)? Refused (403 `need-to-know`) without a
    reason, or with one too short to say why (SPEC §4: a reason is at least 10 characters); Invalid (422) with one
    too long."""
    if user_id in assignees:
        return Access.ASSIGNED
    ensure_reason(reason)
    return Access.BREAK_GLASS


def ensure_reason(reason: str | None) -> None:
    """A break-glass reason says why, in a sentence: not a word, not an essay. Only the characters a reader sees are
    counted, every run of spaces as one: "x         y", or ten zero-width spaces, says nothing."""
    told = "" if reason is None else shown_text(reason)
    if len(told) < MIN_REASON:
        shorter = "" if reason is None else f" (the one given has {len(told)})"
        raise Refused("This case is not assigned to you. To open it anyway, state why in the Access-Reason header "
                      f"(at least {MIN_REASON} characters{shorter}): the opening is recorded, and its caseworkers "
                      "see it.", code="need-to-know")
    if len(told) > MAX_REASON:
        raise Invalid(f"State the reason for opening this case in at most {MAX_REASON} characters.",
                      code="access-reason-length")
    if not said_in_words(told):
        raise Invalid(f"State the reason for opening this case in words (at least {MIN_REASON_LETTERS} letters, in "
                      "any language), as UTF-8 text: not signs or one letter repeated, and not percent- or "
                      "MIME-encoded.", code="access-reason-words")


def said_in_words(reason: str) -> bool:
    """Whether a reason (as a reader sees it) says something in words: enough letters, not one or two repeated, and
    not still encoded for transport."""
    letters = [char.casefold() for char in reason if char.isalpha()]
    return len(letters) >= MIN_REASON_LETTERS and len(set(letters)) >= 3 and not _ENCODED.search(reason)


_HEADER_SAID = (f"Why you open a case not assigned to you ({MIN_REASON}–{MAX_REASON} characters, in words): "
                "break-glass, recorded in the audit trail and shown to the case's caseworkers. (The header itself may "
                "be longer, up to 4000 bytes: a reason in Cyrillic takes two bytes a letter in UTF-8.)")


def _stated_reason(access_reason: Annotated[str | None, Header(
        alias=HEADER, max_length=4000, description=_HEADER_SAID)] = None) -> str | None:
    """The header's text. HTTP carries bytes, which Starlette reads as Latin-1; a reason written in Belarusian or
    Russian arrives as UTF-8."""
    if access_reason is None:
        return None
    try:
        return access_reason.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return access_reason


# A route's parameter: the reason stated for opening a case not assigned to the caller, or None.
AccessReason = Annotated[str | None, Depends(_stated_reason)]


class ReasonKeeper:
    """Hands a break-glass reason stated in referrals or funds to intake, before the case is opened here.

    SPEC §4 keeps the reason encrypted with the case and shows it to the case's assignees on its timeline; only
    intake holds a key of the case (and its timeline). The reason is sent to intake's
    `POST /api/intake/cases/{id}/openings` with the caller's own token, so intake checks who it is and whether the
    case is theirs: nothing is kept for an assignee, otherwise the opening is audited there and becomes a step of the
    timeline with its reason sealed and where it was opened. Never on the bus: it may describe the person.

    When intake cannot keep it (down, sealed, or any answer but 204 or its 404 `case-not-found`), the opening here is
    refused (503): a case read with the reason kept nowhere is what SPEC §7.8 forbids. A case intake does not know
    is left to the use case (which refuses a case it does not know either). `intake_urls`: intake's base URLs, comma-separated
    when it runs as replicas (tried in turn, the next one when one cannot be reached)."""

    PATH = "/api/intake/cases/{case_id}/openings"

    def __init__(self, intake_urls: str, *, opened_in: str, timeout_seconds: float = 3.0) -> None:
        self.intake = Peer(intake_urls, timeout_seconds=timeout_seconds, connect_seconds=1.0)
        self.opened_in = opened_in

    async def aclose(self) -> None:
        await self.intake.aclose()

    async def keep(self, request: Request, case_id: str) -> None:
        """Keep the reason the request states for opening `case_id` (its `Access-Reason`, as the bytes came)."""
        headers = on_behalf_of(request)
        reason = headers.get("access-reason")
        if not isinstance(reason, bytes):
            return
        for url in self.intake.in_turn():
            try:
                # Quoted whole: a case id as a caller typed it is one path segment, never a way to another route.
                answer = await self.intake.client.post(url + self.PATH.format(case_id=quote(case_id, safe="")),
                                                       headers=headers, json={"opened_in": self.opened_in})
            except httpx.HTTPError as exc:
                _log.warning("intake not reached to keep a break-glass reason", error_type=type(exc).__name__)
                continue
            if answer.status_code == 204 or _no_such_case(answer):
                return
            if answer.status_code in (403, 422):  # a reason too short or too long: the same rule as intake's
                ensure_reason(reason.decode("utf-8", errors="replace"))
            _log.warning("intake did not keep a break-glass reason", status=answer.status_code)
            break
        raise Unavailable("The reason you stated could not be kept with the case (intake did not take it), so the "
                          "case was not opened. Try again in a moment.", code="reason-not-kept")


_log = logs.get("kit.need_to_know")


def _no_such_case(answer: httpx.Response) -> bool:
    """Intake's own 404 for a case it does not know, not any 404 (a wrong URL would otherwise keep no reason)."""
    try:
        return answer.status_code == 404 and str(answer.json().get("type", "")).endswith("/case-not-found")
    except ValueError:
        return False


async def keep_stated_reason(request: Request, runtime: Any, case_id: str | None, *, opened_in: str) -> None:
    """Before a use case that may open `case_id` by break-glass: hand the reason the request states, if any, to
    intake (`ReasonKeeper`, one per process, on `runtime.settings.intake_url`). Raises Unavailable (503) when intake
    cannot keep it."""
    if case_id is None or HEADER not in request.headers:
        return
    keeper = runtime.extras.get("reasons")
    if keeper is None:
        keeper = runtime.extras["reasons"] = ReasonKeeper(runtime.settings.intake_url, opened_in=opened_in)
    await keeper.keep(request, case_id)


async def read(uow: Any, reason: str | None, use_case: Callable[[Any], T]) -> T:
    """Run a read on a read-only session; with a stated reason, as a unit of work instead, because a break-glass
    opening writes its audit entry."""
    if reason is None:
        return await uow.reading(use_case)
    return await uow.run(use_case)


def keep_assignees(session: Session, *, assignments: Table, assignees: Table, case_id: str, users: Iterable[str],
                   assigned_at: datetime) -> bool:
    """A service's copy of who a case is assigned to (from intake's `case.opened` and `case.assigned`): the case's
    assignees become `users`, unless the assignment kept is a later one (an older event arriving late changes
    nothing). True when applied. `assignments`: one row per case (`case_id`, `assigned_at`); `assignees`: one per
    case and user (`case_id`, `user_id`).

    Four statements built once, on the unit's connection, and no object loaded: a consumer applies this for every
    case opened, and the ORM's way (load the row, compare, flush, bulk delete and insert with the session kept in
    step) cost referrals more processor time than all the rest of applying the event (py-spy, bench create case)."""
    conn = session.connection()
    create, move, clear, add = _assignee_statements(assignments, assignees, conn.dialect.name)
    conn.execute(create, {"case_id": case_id, "assigned_at": assigned_at})
    # Moved forward only if not older than the one kept: on PostgreSQL the UPDATE takes the row's lock and looks at
    # its newest version, so two assignments of one case apply in turn; on SQLite the write lock serialises.
    if conn.execute(move, {"case": case_id, "at": assigned_at}).rowcount != 1:
        return False
    conn.execute(clear, {"case": case_id})
    kept = sorted(set(users))
    if kept:
        conn.execute(add, [{"case_id": case_id, "user_id": user} for user in kept])
    return True


@functools.cache
def _assignee_statements(assignments: Table, assignees: Table, dialect: str) -> tuple[Any, Any, Any, Any]:
    create = dialect_insert(dialect)(assignments).on_conflict_do_nothing(index_elements=["case_id"])
    move = (update(assignments)
            .where(assignments.c.case_id == bindparam("case"), assignments.c.assigned_at <= bindparam("at"))
            .values(assigned_at=bindparam("at")))
    clear = delete(assignees).where(assignees.c.case_id == bindparam("case"))
    return create, move, clear, insert(assignees)
