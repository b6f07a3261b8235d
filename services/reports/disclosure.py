"""Statistical disclosure control for programme reports: no published figure may single out a person.

Reports travel to donors, boards and the press, and the people counted in them are hunted. So:

- A count from 1 to 4 is published as "<5" (primary suppression). Zero is published as 0: it describes nobody.
- A sum of money is published as "<5" when it is about 1 to 4 people, however many payments it sums
  (`publish_amounts`): it is counted by the people in it, not by their payments.
- A total that sums a suppressed cell is never exact. It is "≥N", N being the published cells in it plus one for each
  suppressed cell in it (each is at least 1). Totals with no suppressed cell in them are exact.
- No breakdown finer than month × category is shown unless every non-zero cell of it is at least 5
  (`breakdown_allowed`).
- A month's figures are "pending" until the month has ended and settled (`pending` of `publish_table` and
  `publish_amounts`): read twice while it still changes, a sum tells what was paid between the two reads (five people
  paid 500.00, then 737.45: the sixth got 237.45), and a count what happened (six cases opened where there were five,
  one more psychological need: the sixth person's), however many people the cell holds; a zero that becomes "<5"
  tells as much. Totals treat a pending cell as a suppressed one that may hold nothing.

Why the margins carry the complementary suppression rather than extra hidden cells: a reader may ask for any range of
months, and the cells are per month × category, the same whichever range is asked. An exact total over a range that
contains a suppressed cell would give that cell away through two reports (January–March minus January–February) even
if every single report hid a second cell. Under the rule above every published figure is a function of the published
cells and of the pattern of suppression only, and both are the same in every report; two tables that differ only in a
suppressed cell therefore publish identical reports for every range, and no combination of them recovers the cell.

A single figure published on its own (`publish_count`) must not be a sum of cells suppressed elsewhere in the same
report; such a figure belongs to the table's margins.

Pure: no I/O, no clock, nothing logged.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction

SMALL = "<5"
PENDING = "pending"
AT_LEAST = "≥"
SMALLEST_SHOWN = 5

Figure = int | str
Table = dict[str, object]


def publish_count(n: int) -> Figure:
    """One count as it may be shown: exact from 5 up, and 0; "<5" from 1 to 4."""
    _check_count(n)
    return SMALL if 0 < n < SMALLEST_SHOWN else n


def breakdown_allowed(counts: Mapping[tuple, int]) -> bool:
    """Whether a breakdown finer than month × category may be shown: only when no non-zero cell is below 5."""
    for n in counts.values():
        _check_count(n)
    return all(n == 0 or n >= SMALLEST_SHOWN for n in counts.values())


def publish_table(counts: Mapping[tuple[str, str], int], rows: Sequence[str], columns: Sequence[str], *,
                  pending: Collection[str] = ()) -> Table:
    """Counts per (row, column) as they may be shown, with row, column and grand totals. Every cell of a row in
    `pending` (a month still under way) is "pending", whatever it holds.

    A missing key counts 0; keys outside rows × columns are not part of this table and are left out."""
    cells: dict[str, dict[str, Figure]] = {}
    for row in rows:
        cells[row] = {}
        for column in columns:
            n = counts.get((row, column), 0)
            cells[row][column] = PENDING if row in pending else publish_count(n)

    def total(line: list[Figure]) -> Figure:
        shown = sum(f for f in line if isinstance(f, int))
        small = sum(1 for f in line if f == SMALL)  # each at least one; a pending cell at least nothing
        return f"{AT_LEAST}{shown + small}" if small or PENDING in line else shown

    return {
        "cells": cells,
        "row_totals": {row: total([cells[row][column] for column in columns]) for row in rows},
        "column_totals": {column: total([cells[row][column] for row in rows]) for column in columns},
        "total": total([cells[row][column] for row in rows for column in columns]),
    }


def publish_amounts(
    amounts: Mapping[tuple[str, str], tuple[int, int | None]], rows: Sequence[str], columns: Sequence[str],
    digits: int, *, pending: Collection[str] = (),
) -> Table:
    """Sums of money per (row, column), given as (minor units, number of distinct people in it), as they may be shown.

    A cell about 1 to 4 people is "<5", however many payments it sums: its amount would be close to one person's aid,
    and one person's five payments are one person's aid still. So is a cell whose people are not known (None: summed
    before people were counted, or only from someone erased before their payment was applied): it might be about
    one. Every cell of a row in `pending` (a month still being paid) is "pending", whoever it is about. Other cells are
    decimal strings with `digits` decimals. A total over a suppressed or pending cell is "≥" and the sum of the
    amounts shown in it; nothing is added for the hidden amounts, so that the figure depends on the shown cells
    only."""
    if digits < 0:
        raise ValueError(f"digits must not be negative, got {digits}")
    cells: dict[str, dict[str, str]] = {}
    shown_minor: dict[tuple[str, str], int | None] = {}
    for row in rows:
        cells[row] = {}
        for column in columns:
            minor, people = amounts.get((row, column), (0, 0))
            if people is not None:
                _check_count(people)
            if minor < 0:
                raise ValueError(f"an amount must not be negative, got {minor} minor units")
            if people == 0 and minor != 0:
                raise ValueError(f"{minor} minor units paid to no one at all")
            hidden = row in pending or people is None or 0 < people < SMALLEST_SHOWN
            shown_minor[row, column] = None if hidden else minor
            if row in pending:
                cells[row][column] = PENDING
            else:
                cells[row][column] = SMALL if hidden else format_minor_units(minor, digits)

    def total(keys: list[tuple[str, str]]) -> str:
        figures = [shown_minor[key] for key in keys]
        exact = format_minor_units(sum(f for f in figures if f is not None), digits)
        return f"{AT_LEAST}{exact}" if None in figures else exact

    return {
        "cells": cells,
        "row_totals": {row: total([(row, column) for column in columns]) for row in rows},
        "column_totals": {column: total([(row, column) for row in rows]) for column in columns},
        "total": total([(row, column) for row in rows for column in columns]),
    }


def format_minor_units(minor: int, digits: int) -> str:
    """Whole minor units as a decimal string: 123450 with 2 digits is "1234.50", with 0 digits "123450"."""
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def publish_quantiles(
    histogram_by_column: Mapping[str, Mapping[int, int]],
    quantiles: Sequence[float] = (0.5, 0.9),
    unit: float = 1.0,
) -> dict[str, dict[str, Figure | float | None]]:
    """Per column: how many observations, and their quantiles ("p50", "p90", ...) in units of `unit`.

    A histogram maps a whole number of units (days, or tenths of a day with unit 0.1) to how many observations had
    it. Quantiles are nearest-rank: the q-quantile of n sorted observations is the ceil(q·n)-th of them (1-based),
    the smallest observed value with at least q·n observations at or below it. It is always an observed value, never
    an average of two people's.

    With fewer than 5 observations, n and every quantile are "<5". With none, n is 0 and the quantiles are None:
    there is nothing to describe. With 5 or more, the median is one person's value; that is the accepted practice
    for n ≥ 5 in this field's reporting. A quantile that would be the largest observation is withheld ("<5") — the
    one person who waited longest stands out from the rest — so p90 shows from 10 observations on.

    n over a range of months is a total over months: when the same observations are also counted per month in a
    published table (referrals accepted, say), show that table's column total in its place, not an exact n, or the
    difference of two ranges gives a suppressed month back."""
    ranks = {_quantile_name(q): _rank_fraction(q) for q in quantiles}
    published: dict[str, dict[str, Figure | float | None]] = {}
    for column, histogram in histogram_by_column.items():
        for n in histogram.values():
            _check_count(n)
        n = sum(histogram.values())
        if n == 0:
            published[column] = {"n": 0, **{name: None for name in ranks}}
        elif n < SMALLEST_SHOWN:
            published[column] = {"n": SMALL, **{name: SMALL for name in ranks}}
        else:
            published[column] = {
                "n": n,
                **{name: _value(_nearest_rank(histogram, math.ceil(q * n)), unit) if math.ceil(q * n) < n
                   else SMALL for name, q in ranks.items()},
            }
    return published


def _nearest_rank(histogram: Mapping[int, int], rank: int) -> int:
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("a rank within 1..n is always reached")


def _rank_fraction(q: float) -> Fraction:
    # From the decimal text, so that 0.9 × 10 is exactly 9 and the rank is not pushed up by binary rounding.
    exact = Fraction(repr(q))
    if not 0 < exact <= 1:
        raise ValueError(f"a quantile is between 0 (excluded) and 1, got {q}")
    return exact


def _quantile_name(q: float) -> str:
    return "p" + format((Decimal(repr(q)) * 100).normalize(), "f")


def _value(units: int, unit: float) -> float:
    return float(Decimal(repr(unit)) * units)


def _check_count(n: int) -> None:
    if n < 0:
        raise ValueError(f"a count must not be negative, got {n}")
