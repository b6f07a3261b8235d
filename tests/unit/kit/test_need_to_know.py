"""kit.need_to_know: a caseworker acts on their own cases, or states why (10–500 characters) — one rule, the same
answer in every service: 403 `need-to-know` without a reason or with one that says nothing, 422 `access-reason-length`
with one too long."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kit.errors import Invalid, Refused
from kit.need_to_know import MAX_REASON, Access, AccessReason, need_to_know
from kit.problems import as_problem


@pytest.mark.parametrize(("assignees", "reason", "access"), [
    ({"cw-1"}, None, Access.ASSIGNED),
    ({"cw-1", "cw-2"}, "", Access.ASSIGNED),
    ({"cw-1"}, "covering for a colleague", Access.ASSIGNED),  # an assignee needs no reason
    ({"cw-2"}, "Ana is away", Access.BREAK_GLASS),            # 10 characters a reader sees: a reason
    ({"cw-2"}, "сястра и\u0306дзе", Access.BREAK_GLASS),  # й as и and a combining breve: one letter
    (set(), "covering for a colleague", Access.BREAK_GLASS),  # assignment not known yet
    ({"cw-2"}, "covering " * (MAX_REASON // 9), Access.BREAK_GLASS),
])
def test_a_caseworker_acts_on_their_own_cases_or_states_why(assignees, reason, access):
    assert need_to_know("cw-1", frozenset(assignees), reason) is access


@pytest.mark.parametrize("assignees", [{"cw-2"}, set(), {"CW-1"}])  # another's; nobody's yet; ids compare exactly
def test_without_a_reason_another_case_is_refused_and_told_how(assignees):
    with pytest.raises(Refused) as refused:
        need_to_know("cw-1", frozenset(assignees), None)
    problem = as_problem(refused.value)
    assert (problem.status, problem.kind) == (403, "need-to-know") and "Access-Reason" in problem.detail


@pytest.mark.parametrize("reason", [
    "", "012345678", "   urgent     ", "x         y", "a \t b \n c  d e",
    "\u200b" * 10,                          # zero-width spaces: a reason that looks blank in the timeline
    "ok\u2060\u2060\u2060\u00ad\u00ad\u00ad\u200d\u200d",  # word joiners, soft hyphens, zero-width joiners
    "x\u00a0\u00a0\u2003\u3000y",            # no-break, em and ideographic spaces: one space
    "ab" + "\u0301" * 10,                    # combining accents with nothing to sit on but one letter
])
def test_a_reason_that_says_nothing_is_no_reason(reason):
    """SPEC §4: another case is 403 need-to-know unless the request carries a reason of at least 10 characters
    (every run of spaces counted as one, and only what a reader sees: no zero-width or other invisible character)."""
    with pytest.raises(Refused) as refused:
        need_to_know("cw-1", frozenset({"cw-2"}), reason)
    problem = as_problem(refused.value)
    assert (problem.status, problem.kind) == (403, "need-to-know") and "at least 10 characters" in problem.detail


def test_a_reason_that_says_everything_is_invalid():
    with pytest.raises(Invalid) as refused:
        need_to_know("cw-1", frozenset({"cw-2"}), "x" * (MAX_REASON + 1))
    problem = as_problem(refused.value)
    assert (problem.status, problem.kind) == (422, "access-reason-length")


@pytest.mark.parametrize("reason", [
    "----------", "0123456789", "aaaaaaaaaa", "ab ab ab ab ab", "!!! ?? 12345 ...",
    "%D0%97%D0%B0%D0%BC%D1%8F%D0%BD%D1%8F%D1%8E",  # percent-encoded Belarusian: gibberish on the timeline
    "=?utf-8?b?0JfQsNC80Y/QvdGP0Y4g0LrQsNC70LXQs9GD?=",  # a MIME encoded-word
])
def test_a_reason_of_signs_one_letter_or_encoded_text_is_refused_and_told_why(reason):
    with pytest.raises(Invalid) as refused:
        need_to_know("cw-1", frozenset({"cw-2"}), reason)
    problem = as_problem(refused.value)
    assert (problem.status, problem.kind) == (422, "access-reason-words") and "in words" in problem.detail


def test_a_reason_written_in_belarusian_arrives_as_written():
    app = FastAPI()

    @app.get("/reason")
    async def stated(access_reason: AccessReason = None) -> dict:
        return {"reason": access_reason}

    client = TestClient(app)
    reason = "Кліент прыйшоў у офіс"
    assert client.get("/reason").json() == {"reason": None}
    assert client.get("/reason", headers=[(b"Access-Reason", reason.encode())]).json() == {"reason": reason}
