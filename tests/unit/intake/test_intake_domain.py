"""Intake's rules without I/O: references, ETags and If-Match, what each status allows."""

from __future__ import annotations

import pytest

from kit.problems import Problem
from services.intake import domain


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
        with pytest.raises(Problem) as refused:
            domain.ensure_changeable(status)
        assert refused.value.status == 409 and refused.value.kind == kind


def test_closing_is_idempotent_and_refused_for_erased_cases():
    assert domain.closes(domain.OPEN) is True
    assert domain.closes(domain.CLOSED) is False
    with pytest.raises(Problem) as refused:
        domain.closes(domain.ERASED)
    assert refused.value.status == 409
