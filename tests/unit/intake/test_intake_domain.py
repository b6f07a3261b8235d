"""Intake's rules without I/O: references, ETags and If-Match, what each status allows, need-to-know."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest

from kit.errors import Conflict, Invalid, Refused, Stale
from kit.need_to_know import MAX_REASON, Access
from kit.problems import status_of
from services.intake import domain, events, models


def test_reference_is_year_and_five_digit_number():
    assert domain.reference(2026, 42) == "BY-2026-00042"
    assert domain.reference(2027, 1) == "BY-2027-00001"


def test_etag_changes_with_every_version_and_case():
    assert domain.etag("a", 1) == domain.etag("a", 1)
    assert len({domain.etag("a", 1), domain.etag("a", 2), domain.etag("b", 1)}) == 3
    assert domain.etag("a", 1).startswith('"') and domain.etag("a", 1).endswith('"')


@pytest.mark.parametrize(("header", "allowed"), [
    ('"current"', True),
    ('"old", "current"', True),
    ("*", False),  # any version: refused (428) before it gets here, and no match if it did
    ('"old"', False),
    ('W/"current"', False),  # If-Match compares strongly
    ("current", False),  # an entity tag is quoted
    ("", False),
])
def test_if_match(header, allowed):
    assert domain.if_match_allows(header, '"current"') is allowed


def test_only_open_cases_change():
    domain.ensure_changeable(domain.OPEN)
    for status, kind in ((domain.CLOSED, "case-closed"), (domain.ERASED, "case-erased")):
        with pytest.raises(Conflict) as refused:
            domain.ensure_changeable(status)
        assert status_of(refused.value) == 409 and refused.value.code == kind


def test_closing_is_idempotent_and_refused_for_erased_cases():
    assert domain.closes(domain.OPEN) is True
    assert domain.closes(domain.CLOSED) is False
    with pytest.raises(Conflict) as refused:
        domain.closes(domain.ERASED)
    assert status_of(refused.value) == 409


def test_a_duplicate_changes_no_more_and_only_a_closed_case_or_a_duplicate_reopens():
    for refuse in (domain.ensure_changeable, domain.closes):
        with pytest.raises(Conflict) as refused:
            refuse(domain.DUPLICATE)
        assert refused.value.code == "case-duplicate"
    domain.ensure_reopenable(domain.CLOSED)
    domain.ensure_reopenable(domain.DUPLICATE)  # the mark undone: open again
    for status in (domain.OPEN, domain.ERASED):
        with pytest.raises(Conflict) as refused:
            domain.ensure_reopenable(status)
        assert status_of(refused.value) == 409 and refused.value.code == "case-not-closed"


def test_a_case_is_a_duplicate_only_of_another_case_that_is_kept():
    domain.ensure_may_be_duplicate("a", domain.OPEN, "b", domain.OPEN)
    domain.ensure_may_be_duplicate("a", domain.CLOSED, "b", domain.CLOSED)
    for args, code in ((("a", domain.OPEN, "a", domain.OPEN), "duplicate-of-itself"),
                       (("a", domain.OPEN, "b", None), "kept-case-not-found"),
                       (("a", domain.OPEN, "b", domain.ERASED), "kept-case-erased"),
                       (("a", domain.OPEN, "b", domain.DUPLICATE), "kept-case-duplicate"),
                       (("a", domain.DUPLICATE, "b", domain.OPEN), "case-duplicate"),
                       (("a", domain.ERASED, "b", domain.OPEN), "case-erased")):
        with pytest.raises(Conflict) as refused:
            domain.ensure_may_be_duplicate(*args)
        assert status_of(refused.value) == 409 and refused.value.code == code
    with pytest.raises(Conflict) as refused:  # others point at it: it stays the case kept
        domain.ensure_may_be_duplicate("a", domain.OPEN, "b", domain.OPEN, kept_by_others=True)
    assert status_of(refused.value) == 409 and refused.value.code == "case-is-kept"


@pytest.mark.parametrize(("current", "wanted", "allowed"), [
    ("open", "in_progress", True), ("open", "met", True), ("open", "dropped", True), ("in_progress", "met", True),
    ("in_progress", "dropped", True), ("open", "open", False), ("in_progress", "open", False),
    ("in_progress", "in_progress", False), ("met", "open", False), ("met", "dropped", False),
    ("dropped", "in_progress", False), ("dropped", "met", False),
])
def test_a_need_moves_forward_only(current: str, wanted: str, allowed: bool):
    if allowed:
        domain.ensure_need_moves(current, wanted)
        return
    with pytest.raises(Conflict) as refused:
        domain.ensure_need_moves(current, wanted)
    assert status_of(refused.value) == 409 and refused.value.code == "need-transition"


def test_a_change_needs_the_current_version():
    domain.ensure_current(domain.etag("a", 2), "a", 2)
    with pytest.raises(Stale) as refused:
        domain.ensure_current(domain.etag("a", 1), "a", 2)
    assert status_of(refused.value) == 412 and refused.value.code == "stale-etag"


def test_one_list_of_categories_and_statuses():
    assert domain.CATEGORIES == ("medical", "psychological", "relocation", "legal", "housing", "employment", "financial")
    # the API's shapes and the events' payloads take theirs from the domain, none keeps a copy
    assert models.NeedCreate.model_fields["category"].annotation is domain.Category
    assert models.ConsentSet.model_fields["categories"].annotation == list[domain.Category]
    assert events.NeedsAssessed.model_fields["category"].annotation is domain.Category
    assert events.ConsentChanged.model_fields["categories"].annotation == list[domain.Category]
    assert (domain.OPEN, domain.CLOSED, domain.DUPLICATE, domain.ERASED) == get_args(domain.CaseStatus) == (
        "open", "closed", "duplicate", "erased")
    assert models.NeedStatusSet.model_fields["status"].annotation is domain.NeedStatus
    assert set(get_args(domain.NeedStatus)) == set(domain.NEED_MOVES) == {"open", "in_progress", "met", "dropped"}


# ---- need-to-know -------------------------------------------------------------------------------------------------

def _caller(*roles: str, user_id: str = "cw-1", reason: str | None = None) -> domain.Caller:
    return domain.Caller(user_id=user_id, username=user_id, roles=frozenset(roles), reason=reason)


def test_a_caseworker_opens_the_cases_assigned_to_them():
    assert domain.case_access(_caller("caseworker"), {"cw-1", "cw-2"}) == Access.ASSIGNED
    assert domain.case_access(_caller("caseworker", reason="short"), {"cw-1"}) == Access.ASSIGNED  # no reason needed
    assert domain.case_access(_caller("caseworker", "supervisor"), {"cw-1"}) == Access.ASSIGNED


def test_another_case_is_refused_without_a_reason():
    for assignees in ({"cw-2"}, set()):
        with pytest.raises(Refused) as refused:
            domain.case_access(_caller("caseworker"), assignees)
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"


def test_another_case_opens_with_a_stated_reason_of_ten_characters_or_more():
    reason = "Client at the door"
    assert domain.case_access(_caller("caseworker", reason=reason), {"cw-2"}) == Access.BREAK_GLASS
    assert domain.case_access(_caller("caseworker", reason="Ana is away"), {"cw-2"}) == Access.BREAK_GLASS
    # SPEC §4: without a reason of 10 characters, another case is 403 need-to-know (spaces counted once).
    for short in ("", "too short", "   nine c  ", "x         y"):
        with pytest.raises(Refused) as refused:
            domain.case_access(_caller("caseworker", reason=short), {"cw-2"})
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"
    with pytest.raises(Invalid) as refused:
        domain.case_access(_caller("caseworker", reason="x" * (MAX_REASON + 1)), {"cw-2"})
    assert status_of(refused.value) == 422 and refused.value.code == "access-reason-length"


def test_nobody_but_a_caseworker_opens_a_case_reason_or_not():
    for caller in (_caller("supervisor"), _caller("supervisor", reason="I supervise this caseload"),
                   _caller("finance", reason="Checking the payee details"), _caller()):
        with pytest.raises(Refused) as refused:
            domain.case_access(caller, {caller.user_id})
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"


def test_an_assignee_or_a_supervisor_assigns_a_case_a_stated_reason_does_not():
    domain.may_assign(_caller("caseworker"), {"cw-1"}, {"cw-1", "cw-2"})
    domain.may_assign(_caller("caseworker"), {"cw-1"}, {"cw-2"})  # handing it over entirely
    domain.may_assign(_caller("supervisor", user_id="sv-1"), {"cw-1"}, {"cw-2"})
    domain.may_assign(_caller("supervisor", user_id="sv-1"), set(), {"cw-2"})  # an unassigned case too
    for caller in (_caller("caseworker", reason="I want this case for myself"), _caller("finance"),
                   _caller("caseworker", "finance")):
        with pytest.raises(Refused) as refused:
            domain.may_assign(caller, {"cw-2"}, {"cw-1"})
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"


def test_a_supervisor_does_not_assign_themselves_a_case_they_do_not_hold():
    both = _caller("supervisor", "caseworker", user_id="sv-1")
    for held, wanted in (({"cw-1"}, {"cw-1", "sv-1"}), ({"cw-1"}, {"sv-1"}), (set(), {"sv-1"})):
        with pytest.raises(Refused) as refused:
            domain.may_assign(both, held, wanted)
        assert status_of(refused.value) == 403 and refused.value.code == "self-assignment", (held, wanted)
    with pytest.raises(Refused):  # nor does one who supervises only (the directory would refuse them anyway)
        domain.may_assign(_caller("supervisor", user_id="sv-1"), {"cw-1"}, {"sv-1"})
    domain.may_assign(both, {"cw-1"}, {"cw-1", "cw-2"})  # anyone else, as any supervisor
    domain.may_assign(both, {"sv-1", "cw-1"}, {"cw-1", "sv-1"})  # one who holds it stays
    domain.may_assign(both, {"sv-1"}, {"cw-1"})  # or leaves it
    domain.may_assign(_caller("supervisor", "caseworker", user_id="sv-2"), {"cw-1"}, {"cw-1", "sv-1"})  # another


def test_only_a_caseworker_who_holds_a_case_erases_it_a_stated_reason_does_not():
    domain.may_erase(_caller("caseworker"), {"cw-1", "cw-2"})
    domain.may_erase(_caller("caseworker", reason="Erasing at her request"), {"cw-1"})  # a reason changes nothing
    for caller in (_caller("caseworker", reason="Covering for a colleague on leave"), _caller("caseworker"),
                   _caller("supervisor", user_id="sv-1"), _caller("supervisor", "caseworker", user_id="sv-1"),
                   _caller("finance", user_id="fi-1")):
        with pytest.raises(Refused) as refused:
            domain.may_erase(caller, {"cw-2"})
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"
    with pytest.raises(Refused):  # held, but not by a caseworker any more
        domain.may_erase(_caller("supervisor"), {"cw-1"})


def test_only_a_caseworker_who_holds_a_case_marks_it_a_duplicate_or_undoes_it_a_stated_reason_does_not():
    domain.may_mark_duplicate(_caller("caseworker"), {"cw-2", "cw-1"})
    domain.may_mark_duplicate(_caller("caseworker", reason="Same person as BY-2026-00001"), {"cw-1"})
    for caller in (_caller("caseworker", reason="Covering for a colleague on leave"),
                   _caller("supervisor", "caseworker", user_id="sv-1"), _caller("finance", user_id="fi-1")):
        with pytest.raises(Refused) as refused:
            domain.may_mark_duplicate(caller, {"cw-2"})
        assert status_of(refused.value) == 403 and refused.value.code == "need-to-know"
    with pytest.raises(Refused):
        domain.may_mark_duplicate(_caller("supervisor"), {"cw-1"})


def test_only_a_supervisor_sees_the_whole_caseload():
    domain.may_see_caseload(_caller("supervisor"))
    domain.may_see_caseload(_caller("supervisor", "caseworker"))
    with pytest.raises(Refused):
        domain.may_see_caseload(_caller("caseworker"))


def test_only_enabled_caseworkers_of_the_directory_can_be_assigned():
    directory = {
        "ala": domain.StaffEntry("u1", "ala", frozenset({"caseworker"}), True),
        "bo": domain.StaffEntry("u2", "bo", frozenset({"caseworker", "supervisor"}), True),
        "cy": domain.StaffEntry("u3", "cy", frozenset({"caseworker"}), False),
        "di": domain.StaffEntry("u4", "di", frozenset({"finance"}), True),
    }
    assert domain.unassignable(["ala", "bo"], directory) == []
    assert domain.unassignable(["zed", "ala", "cy", "di"], directory) == ["zed", "cy", "di"]
    # One who holds the case already stays, disabled or not, beside one who can work it; never alone.
    assert domain.unassignable(["cy", "ala"], directory, holding={"u3"}) == []
    assert domain.unassignable(["cy", "di"], directory, holding={"u3"}) == ["di"]
    assert domain.unassignable(["cy"], directory, holding={"u3"}) == ["cy"]
    assert domain.unassignable(["cy", "ala"], directory, holding={"u1"}) == ["cy"]


def test_who_can_work_a_case_is_an_enabled_caseworker_or_one_the_directory_does_not_know_yet():
    assert domain.works_cases(True, ["caseworker"]) and domain.works_cases(True, ["supervisor", "caseworker"])
    assert domain.works_cases(None, None)  # no event about them yet: never taken for gone
    assert not domain.works_cases(False, ["caseworker"])
    assert not domain.works_cases(True, ["supervisor"])  # no longer a caseworker


def test_the_staff_events_say_when_an_account_is_enabled():
    assert domain.ENABLED_BY_EVENT == {"created": True, "enabled": True, "disabled": False, "roles_changed": None}
    assert "rehab.intake.case.assigned" in events.PUBLISHED
    assert set(events.CaseAssigned.model_fields) == {"case_id", "assignees", "assigned_at"}


def test_a_release_comes_after_a_birth_when_both_are_given():
    with pytest.raises(ValueError, match="after the date of birth"):
        models.CaseCreate(full_name="Алесь Жук", date_of_birth="2000-01-01", release_date="1999-06-01")
    with pytest.raises(ValueError, match="after the date of birth"):
        models.CaseUpdate(date_of_birth="2000-01-01", release_date="2000-01-01")
    assert models.CaseCreate(full_name="Алесь Жук", date_of_birth="1980-01-01", release_date="2024-06-01")
    assert models.CaseUpdate(release_date="1999-06-01").release_date  # alone: the stored birth date is not at hand


def _terms(*categories: str, contact: bool = True, health: bool = True, until: date | None = None,
           ) -> domain.ConsentTerms:
    return domain.ConsentTerms(frozenset(categories), contact, health, until)


def test_a_consent_narrows_when_it_gives_partners_nothing_more():
    current = _terms("medical", "legal", health=False, until=date(2030, 1, 1))
    assert domain.narrows(_terms("medical", health=False, until=date(2029, 1, 1)), current)
    assert domain.narrows(_terms("medical", contact=False, health=False, until=date(2030, 1, 1)), current)
    assert domain.narrows(_terms(contact=True, health=True), current), "a withdrawal, whatever else is ticked"
    assert domain.narrows(_terms(), None), "withdrawing what was never given"
    assert not domain.narrows(_terms("medical", health=False, until=date(2030, 1, 1)), None)
    assert not domain.narrows(_terms("medical", "housing", health=False, until=date(2030, 1, 1)), current)
    assert not domain.narrows(_terms("medical", health=True, until=date(2030, 1, 1)), current)
    assert not domain.narrows(_terms("medical", health=False, until=date(2031, 1, 1)), current)
    assert not domain.narrows(_terms("medical", health=False), current), "until withdrawn is longer than any day"
    assert domain.narrows(_terms("medical", until=date(2031, 1, 1)), _terms("medical"))


def test_a_duplicate_keeps_what_both_consents_allow():
    both = domain.common_terms(_terms("medical", "legal", health=False),
                               _terms("medical", "housing", contact=False, until=date(2030, 1, 1)))
    assert both == _terms("medical", contact=False, health=False, until=date(2030, 1, 1))
    assert domain.common_terms(_terms("legal"), _terms("medical")) == _terms(contact=False, health=False)
    assert domain.common_terms(_terms("legal", until=date(2029, 5, 1)), _terms()).categories == frozenset()


@pytest.mark.parametrize(("status", "narrowing", "refused"), [
    ("open", False, None), ("open", True, None),
    ("closed", True, None), ("duplicate", True, None),
    ("closed", False, "case-closed"), ("duplicate", False, "case-duplicate"),
    ("erased", True, "case-erased"), ("erased", False, "case-erased"),
])
def test_a_case_no_longer_open_takes_only_a_narrower_consent(status: str, narrowing: bool, refused: str | None):
    if refused is None:
        domain.ensure_consent_changeable(status, narrowing)
        return
    with pytest.raises(Conflict) as raised:
        domain.ensure_consent_changeable(status, narrowing)
    assert raised.value.code == refused
