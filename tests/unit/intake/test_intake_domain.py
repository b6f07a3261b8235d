"""Intake's rules without I/O: references, ETags and If-Match, what each status allows."""

from __future__ import annotations

from typing import get_args

import pytest

from kit.errors import Conflict, Stale
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
    ("*", True),
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


def test_a_change_needs_the_current_version():
    domain.ensure_current(domain.etag("a", 2), "a", 2)
    domain.ensure_current("*", "a", 2)
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
    assert (domain.OPEN, domain.CLOSED, domain.ERASED) == get_args(domain.CaseStatus) == ("open", "closed", "erased")
