"""Intake's rules: what a case's status allows, its human reference and its ETag. No I/O."""

from __future__ import annotations

import hashlib

from kit.problems import Problem

OPEN, CLOSED, ERASED = "open", "closed", "erased"
FIRST_VERSION = 1
REFERENCE_PREFIX = "BY"


def reference(year: int, number: int) -> str:
    """`BY-2026-00042`: the year the case was opened and its number within that year."""
    return f"{REFERENCE_PREFIX}-{year}-{number:05d}"


def ensure_changeable(status: str) -> None:
    """Only an open case takes changes: a closed case can be read, an erased one holds nothing any more."""
    if status == ERASED:
        raise Problem(409, "This case was erased; it can no longer be changed.", kind="case-erased")
    if status == CLOSED:
        raise Problem(409, "This case is closed; it can be read but no longer changed.", kind="case-closed")


def closes(status: str) -> bool:
    """Whether closing changes anything: an open case closes, a closed one stays closed, an erased one refuses."""
    if status == ERASED:
        raise Problem(409, "This case was erased; it can no longer be closed.", kind="case-erased")
    return status == OPEN


def etag(case_id: str, version: int) -> str:
    """A strong entity tag of one version of a case."""
    return '"' + hashlib.sha256(f"{case_id}:{version}".encode()).hexdigest()[:24] + '"'


def if_match_allows(header: str, current: str) -> bool:
    """RFC 9110 If-Match: `*` or a list of entity tags compared strongly (a weak tag never matches)."""
    if header.strip() == "*":
        return True
    return any(tag.strip() == current for tag in header.split(",") if not tag.strip().startswith("W/"))
