"""Intake's rules and words: what a case's status allows, its human reference and its ETag, and the one list of need
categories (the API's shapes and the events' payloads take theirs from here). No I/O; refusals are the kit's domain
errors (kit.errors), which know nothing of HTTP."""

from __future__ import annotations

import hashlib
from typing import Literal, get_args

from kit.errors import Conflict, Stale

# The kinds of help a need, a consent or a referral is about: the one list, here.
Category = Literal["medical", "psychological", "relocation", "legal", "housing", "employment", "financial"]
CATEGORIES: tuple[str, ...] = get_args(Category)
Urgency = Literal["low", "medium", "high", "critical"]

CaseStatus = Literal["open", "closed", "erased"]
OPEN, CLOSED, ERASED = get_args(CaseStatus)
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


def closes(status: str) -> bool:
    """Whether closing changes anything: an open case closes, a closed one stays closed, an erased one refuses."""
    if status == ERASED:
        raise Conflict("This case was erased; it can no longer be closed.", code="case-erased")
    return status == OPEN


def etag(case_id: str, version: int) -> str:
    """A strong entity tag of one version of a case."""
    return '"' + hashlib.sha256(f"{case_id}:{version}".encode()).hexdigest()[:24] + '"'


def if_match_allows(header: str, current: str) -> bool:
    """RFC 9110 If-Match: `*` or a list of entity tags compared strongly (a weak tag never matches)."""
    if header.strip() == "*":
        return True
    return any(tag.strip() == current for tag in header.split(",") if not tag.strip().startswith("W/"))


def ensure_current(if_match: str, case_id: str, version: int) -> None:
    """A change is made only by a caller who saw the case's current version (If-Match)."""
    if not if_match_allows(if_match, etag(case_id, version)):
        raise Stale("The case changed since you read it: read it again, then make your change.", code="stale-etag")
