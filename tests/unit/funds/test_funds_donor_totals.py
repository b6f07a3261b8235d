"""Which of a grant's totals a donor report shows: each only when it covers five people or more (or is a nought that
covers nobody), and never two of paid, committed and available — which with the budget give the third — when the
third is withheld."""

from __future__ import annotations

import itertools

import pytest

from services.funds import domain
from services.funds.reports import _donor_totals

NOBODY: tuple[int, set[str]] = (0, set())


def people(n: int, prefix: str) -> set[str]:
    return {f"{prefix}{i}" for i in range(n)}


def totals(*, paid: int, committed: int, released: int = 0, approved: int = 0) -> set[str]:
    """The totals shown when `paid` people were paid, `committed` others wait, and so many had an FX difference."""
    return _donor_totals(
        paid=(100 * paid, people(paid, "p")), committed=(100 * committed, people(committed, "c")),
        fx_released=(7 * released, people(released, "p")), fx_approved=(3 * approved, people(approved, "p")))


def test_the_case_of_the_review_one_paid_four_committed_hides_both_and_shows_only_their_sum():
    shown = totals(paid=1, committed=4)
    assert "paid" not in shown and "committed" not in shown
    assert "available" in shown                        # budget − available = the five people's sum, nothing less
    assert not {"fx_released", "fx_approved"} & shown  # parts of what the one person was paid, even at nought


def test_everything_is_shown_when_every_total_covers_five_people_or_nobody():
    assert totals(paid=5, committed=5, released=5, approved=0) == {
        "paid", "committed", "available", "fx_released", "fx_approved"}
    assert totals(paid=0, committed=0) == {"paid", "committed", "available", "fx_released", "fx_approved"}
    assert totals(paid=6, committed=0) == {"paid", "committed", "available", "fx_released", "fx_approved"}


@pytest.mark.parametrize("paid, committed, released, approved",
                         itertools.product(range(8), range(8), range(0, 8, 3), range(0, 8, 3)))
def test_no_total_covers_a_few_people_and_no_withheld_one_follows_from_the_shown(paid, committed, released, approved):
    released, approved = min(released, paid), min(approved, paid)
    shown = totals(paid=paid, committed=committed, released=released, approved=approved)
    few = range(1, domain.SMALL_COUNT)
    for name, n in (("paid", paid), ("committed", committed), ("fx_released", released),
                    ("fx_approved", approved)):
        if n in few:
            assert name not in shown, (name, n)
    # budget = available + committed + paid: two of the three shown means the third is shown
    assert len({"paid", "committed", "available"} & shown) != 2, shown
    # available alone gives committed + paid: only ever the sum of five people or more
    if "available" in shown and not {"paid", "committed"} <= shown:
        assert paid + committed >= domain.SMALL_COUNT
    if "paid" not in shown:
        assert not {"fx_released", "fx_approved"} & shown


def test_an_amount_with_nobody_behind_it_is_not_a_nought_and_stays_hidden():
    # the ledger holds a paid amount the report cannot tie to people: never shown as if it were nobody's
    shown = _donor_totals(paid=(5000, set()), committed=NOBODY, fx_released=NOBODY, fx_approved=NOBODY)
    assert "paid" not in shown and "available" not in shown
