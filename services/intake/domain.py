"""Intake's rules and words: what a case's status allows, who may open a case (need-to-know), its human reference
and its ETag, and the one list of need categories (the API's shapes and the events' payloads take theirs from
here). No I/O; refusals are the kit's domain errors (kit.errors), which know nothing of HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, get_args

from kit.errors import Conflict, Invalid, Refused, Stale
from kit.need_to_know import Access, need_to_know

# The kinds of help a need, a consent or a referral is about: the one list, here.
Category = Literal["medical", "psychological", "relocation", "legal", "housing", "employment", "financial"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Urgency = Literal["low", "medium", "high", "critical"]

CaseStatus = Literal["open", "closed", "duplicate", "erased"]
OPEN, CLOSED, DUPLICATE, ERASED = get_args(CaseStatus)
FIRST_VERSION = 1
REFERENCE_PREFIX = "BY"


def reference(year: int, number: int) -> str:
    """`BY-2026-00042`: the year the case was opened and its number within that year."""
    return f"{REFERENCE_PREFIX}-{year}-{number:05d}"


def ensure_changeable(status: str) -> None:
    """Only an open case takes changes: a closed case can be read, an erased one holds nothing any more."""
    if status == ERASED:
        raise Conflict("This case was erased; it can no longer be changed.", code="case-erased")
    if status == CLOSED:
        raise Conflict("This case is closed; it can be read but no longer changed.", code="case-closed")
    if status == DUPLICATE:
        raise Conflict("This case was marked a duplicate of another case; make changes in the case that is kept.",
                       code="case-duplicate")


@dataclass(frozen=True)
class ConsentTerms:
    """What a consent lets partners have: the kinds of help it covers (none: withdrawn), whether contact details and
    a health summary go with a referral, and until when (None: until withdrawn)."""

    categories: frozenset[str]
    share_contact: bool
    share_health: bool
    expires_on: date | None


def narrows(new: ConsentTerms, current: ConsentTerms | None) -> bool:
    """Whether `new` gives partners nothing `current` did not: no kind of help, detail or day more. A withdrawal
    always narrows; a first consent (no `current`) narrows only when it is a withdrawal."""
    if not new.categories:
        return True
    if current is None:
        return False
    return (new.categories <= current.categories
            and current.share_contact >= new.share_contact and current.share_health >= new.share_health
            and (current.expires_on is None or (new.expires_on is not None and new.expires_on <= current.expires_on)))


def common_terms(current: ConsentTerms, kept: ConsentTerms) -> ConsentTerms:
    """What both consents allow: the consent of a duplicate case once the person narrows the consent of the case
    kept. The person is one; what they take back on one case they take back on the other."""
    both = current.categories & kept.categories  # none left: withdrawn, and nothing else shared
    ends = [day for day in (current.expires_on, kept.expires_on) if day is not None]
    return ConsentTerms(both, bool(both) and current.share_contact and kept.share_contact,
                        bool(both) and current.share_health and kept.share_health, min(ends, default=None))


def ensure_consent_changeable(status: str, narrowing: bool) -> None:
    """Consent is recorded on an open case. On a closed case, or one marked a duplicate, it may still be narrowed or
    withdrawn, never widened: a partner may still hold a referral of that case, and a person takes back what they
    agreed to whenever they ask (GDPR Art. 7(3)), not only while the case is open."""
    if status not in (CLOSED, DUPLICATE):
        ensure_changeable(status)
    elif not narrowing:
        code = "case-closed" if status == CLOSED else "case-duplicate"
        raise Conflict(f"This case is {'closed' if status == CLOSED else 'marked a duplicate'}: its consent may be "
                       "narrowed or withdrawn, not widened.", code=code)


# A release before the birth is a typing mistake, refused as a kind of its own so that a client (the console) says
# this, not what any other refused date is told.
RELEASE_BEFORE_BIRTH = "release_before_birth"
RELEASE_BEFORE_BIRTH_SAID = "the release date must be after the date of birth"


def ensure_release_after_birth(release_date: str | None, date_of_birth: str | None) -> None:
    """The request model refuses a release before the birth when both dates come in one body; this, when a change
    brings one of them and the other is stored (ISO dates: compared as written). Refused in the shape of that
    validation error about `release_date`, so that a form says it beside that field."""
    if release_date and date_of_birth and release_date <= date_of_birth:
        raise Invalid(f"release_date: {RELEASE_BEFORE_BIRTH_SAID}", code="validation-error", errors=[
            {"loc": ["body", "release_date"], "type": RELEASE_BEFORE_BIRTH, "msg": RELEASE_BEFORE_BIRTH_SAID}])


def closes(status: str) -> bool:
    """Whether closing changes anything: an open case closes, a closed one stays closed, an erased one or one
    marked a duplicate refuses."""
    if status == ERASED:
        raise Conflict("This case was erased; it can no longer be closed.", code="case-erased")
    if status == DUPLICATE:
        raise Conflict("This case was marked a duplicate of another case; it is not closed on its own.",
                       code="case-duplicate")
    return status == OPEN


# What a reopening takes a case back from: a closing, or the mark of a duplicate (which reopening undoes).
REOPENABLE = (CLOSED, DUPLICATE)


def ensure_reopenable(status: str) -> None:
    """A closed case reopens, and so does one marked a duplicate (the mark was a mistake: the case is open again and
    no longer points at another); an open or erased one does not."""
    if status not in REOPENABLE:
        raise Conflict(f"Only a closed case, or one marked a duplicate, can be reopened; this one is {status}.",
                       code="case-not-closed")


def ensure_may_be_duplicate(case_id: str, status: str, kept_id: str, kept_status: str | None, *,
                            kept_by_others: bool = False) -> None:
    """A case (open or closed) becomes a duplicate of another case that exists, is not erased, not itself a
    duplicate (the kept case is the one to go to), and not the case itself. A case that others are marked
    duplicates of is kept: it does not become a duplicate in turn, which would leave them pointing at a duplicate
    (reopen them, or mark them duplicates of the other case, first)."""
    if status in (ERASED, DUPLICATE):
        raise Conflict(f"This case is {'erased' if status == ERASED else 'already marked a duplicate'}; it cannot be "
                       "marked a duplicate.", code=f"case-{status}")
    if kept_id == case_id:
        raise Conflict("A case cannot be a duplicate of itself.", code="duplicate-of-itself")
    if kept_status is None:
        raise Conflict("There is no case with the id given as the case to keep.", code="kept-case-not-found")
    if kept_status in (ERASED, DUPLICATE):
        raise Conflict(f"The case to keep is {'erased' if kept_status == ERASED else 'itself marked a duplicate'}; "
                       "name the case that is kept.", code=f"kept-case-{kept_status}")
    if kept_by_others:
        raise Conflict("Other cases are marked duplicates of this one: it is the case kept for them, and cannot "
                       "itself become a duplicate. Reopen them, or mark them duplicates of the other case, first.",
                       code="case-is-kept")


# ---- needs ------------------------------------------------------------------------------------------------------

# A task's statuses (casework writes them; queries reads them: a reassignment hands on the open ones). A cancelled
# task was given up (made in error, no longer needed): neither open nor done; only an open task changes.
OPEN_TASK, DONE_TASK, CANCELLED_TASK = "open", "done", "cancelled"

NeedStatus = Literal["open", "in_progress", "met", "dropped"]
NEED_MOVES: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "met", "dropped"}),
    "in_progress": frozenset({"met", "dropped"}),
    "met": frozenset(),
    "dropped": frozenset(),
}
ACTIVE_NEEDS = frozenset({"open", "in_progress"})  # a need still to be met: what a referral is suggested for


def ensure_need_moves(current: str, wanted: str) -> None:
    """A need moves open → in_progress → met | dropped (open → met | dropped directly too); nothing leaves met or
    dropped, and a need does not move to where it is."""
    if wanted not in NEED_MOVES.get(current, frozenset()):
        if current in ("met", "dropped"):
            detail = f"This need is {current}; it no longer changes (record a new need if help is needed again)."
        else:
            detail = f"A need that is {current.replace('_', ' ')} cannot become {wanted.replace('_', ' ')}."
        raise Conflict(detail, code="need-transition")


def etag(case_id: str, version: int) -> str:
    """A strong entity tag of one version of a case."""
    return '"' + hashlib.sha256(f"{case_id}:{version}".encode()).hexdigest()[:24] + '"'


def if_match_allows(header: str, current: str) -> bool:
    """RFC 9110 If-Match: a list of entity tags compared strongly (a weak tag never matches). `*` (any version) is
    refused before this (428): a change is made on a version the caller saw."""
    return any(tag.strip() == current for tag in header.split(",") if not tag.strip().startswith("W/"))


def ensure_current(if_match: str, case_id: str, version: int) -> None:
    """A change is made only by a caller who saw the case's current version (If-Match)."""
    if not if_match_allows(if_match, etag(case_id, version)):
        raise Stale("The case changed since you read it: read it again, then make your change.", code="stale-etag")


# ---- need-to-know -----------------------------------------------------------------------------------------------

CASEWORKER, SUPERVISOR = "caseworker", "supervisor"
# The audit trail's word for a request about a case refused by the rules below (who, which case: never what it sent).
ACCESS_REFUSED = "case.access_refused"
# A break-glass opening covers the caller's requests about the case for this long: one line on its timeline, not one
# per request (each is still audited). The console keeps the stated reason for as long.
OPENING_COVERS = timedelta(minutes=15)


@dataclass(frozen=True)
class Caller:
    """Who asks, as intake's rules see them: the token's subject (a staff user id), the handle others see them by,
    their roles, and the reason they gave for opening a case not assigned to them (`Access-Reason`), if any."""

    user_id: str
    username: str
    roles: frozenset[str]
    reason: str | None = None

    @property
    def supervises(self) -> bool:
        return SUPERVISOR in self.roles


def case_access(caller: Caller, assignees: Collection[str]) -> Access:
    """May `caller` open this case (read its data, or change anything of it), which `assignees` (user ids) hold?

    Only a caseworker opens a case's data, under the need-to-know rule (kit.need_to_know: their own cases; another
    with a stated reason, recorded for the case's caseworkers to see). A supervisor sees the caseload, never the
    people in it, unless they are a caseworker too."""
    if CASEWORKER not in caller.roles:
        raise Refused("Only a caseworker opens a case; a supervisor sees the caseload without personal data.",
                      code="need-to-know")
    return need_to_know(caller.user_id, assignees, caller.reason)


def may_assign(caller: Caller, assignees: Collection[str], wanted: Collection[str]) -> None:
    """May `caller` give a case that `assignees` hold to `wanted` (user ids, both)? One of its assignees may, or a
    supervisor. Break-glass opens a case, it does not hand it over: a reason stated does not make its caller someone
    who (re)assigns it.

    A supervisor who does not hold the case never adds themselves to it: the power to assign any case would otherwise
    let one person, supervisor and caseworker both, read any case's personal data as its assignee, with no reason
    stated (SPEC §2, §7.8). Another supervisor, or one of its assignees, gives it to them; one who holds it stays."""
    holds_it = caller.user_id in assignees
    if not (caller.supervises or (CASEWORKER in caller.roles and holds_it)):
        raise Refused("Only a caseworker the case is assigned to, or a supervisor, assigns it.", code="need-to-know")
    if caller.user_id in wanted and not holds_it:
        raise Refused("A supervisor does not assign themselves a case: another supervisor, or one of the case's "
                      "assignees, adds them.", code="self-assignment")


def may_erase(caller: Caller, assignees: Collection[str]) -> None:
    """May `caller` erase a case that `assignees` (user ids) hold? Only a caseworker who holds it. Erasure cannot be
    undone: the person's record goes for everyone, and the reasons stated for opening the case go with it (sealed
    under the key erasure destroys). Break-glass opens a case to read it or help in an emergency; a reason stated
    does not make its caller someone who ends the case for good, as it does not make them someone who assigns it."""
    _ensure_held_by(caller, assignees, "Only a caseworker the case is assigned to erases it: a stated reason opens a "
                                       "case, it does not erase it.")


def may_mark_duplicate(caller: Caller, assignees: Collection[str]) -> None:
    """May `caller` mark a case that `assignees` (user ids) hold a duplicate of another, or undo that mark by
    reopening it? Only a caseworker who holds it, as for erasure (`may_erase`): the mark takes the case out of its
    caseworkers' lists and of every duplicate check, and stops its referrals and aid; a visitor by break-glass who
    could set it would leave its own caseworkers a case they no longer see, and could not be told to undo it. A reason
    stated opens a case to read it or help; it does not make its caller one who decides which record of a person is
    kept."""
    _ensure_held_by(caller, assignees, "Only a caseworker the case is assigned to marks it a duplicate, or reopens it "
                                       "once marked: a stated reason opens a case, it does not retire it.")


def _ensure_held_by(caller: Caller, assignees: Collection[str], refusal: str) -> None:
    if CASEWORKER not in caller.roles or caller.user_id not in assignees:
        raise Refused(refusal, code="need-to-know")


def may_see_caseload(caller: Caller) -> None:
    """The whole caseload (references, status, assignees: no personal data) is a supervisor's view."""
    if not caller.supervises:
        raise Refused("Only a supervisor lists every case; `assigned=me` lists yours.", code="forbidden")


@dataclass(frozen=True)
class StaffEntry:
    """What the staff directory knows of a person: enough to assign a case to them."""

    user_id: str
    username: str
    roles: frozenset[str]
    enabled: bool


def works_cases(enabled: bool | None, roles: Collection[str] | None) -> bool:
    """Whether someone who holds a case can work it now, by what the staff directory says of them: an enabled
    caseworker. One the directory does not know (`None`: its events not come yet, or a case assigned before the
    directory existed) is taken to: a case is never called unattended, nor its tasks moved, for want of an event."""
    if enabled is None:
        return True
    return enabled and CASEWORKER in (roles or ())


def unassignable(wanted: Sequence[str], directory: Mapping[str, StaffEntry],
                 holding: Collection[str] = ()) -> list[str]:
    """Of the handles `wanted`, those a case cannot be given to, in the order given: any that does not name an
    enabled caseworker in the staff `directory` (by username), unless they hold the case already (`holding`, user
    ids): one who left keeps the cases they held (enabled again, they find them), so a colleague added beside them
    does not have to take them off. Where every one of `wanted` is such a holder, nobody could work the case: all of
    them."""
    refused = [name for name in wanted if (entry := directory.get(name)) is None
               or not (works_cases(entry.enabled, entry.roles) or entry.user_id in holding)]
    if refused:
        return refused
    if not any(works_cases(directory[name].enabled, directory[name].roles) for name in wanted):
        return list(wanted)
    return []


# What each of the gateway's staff events says of an account's being enabled; a change of roles says nothing of it.
ENABLED_BY_EVENT: dict[str, bool | None] = {"created": True, "enabled": True, "disabled": False, "roles_changed": None}
