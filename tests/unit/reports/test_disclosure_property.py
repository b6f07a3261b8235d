"""No combination of published reports pins down a suppressed count.

An attacker reads every report a reader can ask for (every contiguous range of months of one month × category table)
and treats each "<5" as an unknown from 1 to 4 and each total as an equation ("12") or a lower bound ("≥12") over
the cells in it. For each hidden cell it searches, exhaustively with pruning, for values the unknowns can take that
reproduce every published number. Against `publish_table` at least two values stay possible for every hidden cell.

By construction a hidden cell changes no figure `publish_table` shows, so that property alone could never fail. The
same attacker is therefore also run against a publisher that shows exact totals, and there it must recover cells:
the attacker is able to win, and does not win against ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reports.disclosure import SMALL, publish_amounts, publish_table

MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
CATEGORIES = ["housing", "legal", "medical", "psychological", "employment"]
HIDDEN_VALUES = (1, 2, 3, 4)

Cell = tuple[str, str]
Publisher = Callable[[Mapping[Cell, int], Sequence[str], Sequence[str]], dict]


@st.composite
def month_tables(draw) -> tuple[dict[Cell, int], list[str], list[str]]:
    # Values 0–12, so that about a third of the cells are 1–4 and hidden.
    months = MONTHS[:draw(st.integers(1, 12))]
    categories = CATEGORIES[:draw(st.integers(1, 5))]
    counts = {(month, category): draw(st.integers(0, 12)) for month in months for category in categories}
    return counts, months, categories


def every_report(publish: Publisher, counts, months, categories) -> list[tuple[list[str], dict]]:
    """What a reader can ask for: the table over every contiguous range of months."""
    return [
        (months[first:last + 1], publish(counts, months[first:last + 1], categories))
        for first in range(len(months)) for last in range(first, len(months))
    ]


def naive_publish_table(counts, rows, columns) -> dict:
    """Small cells hidden, totals exact: what the issue warns against."""
    def line(keys):
        return sum(counts.get(key, 0) for key in keys)

    table = publish_table(counts, rows, columns)
    table["row_totals"] = {row: line([(row, column) for column in columns]) for row in rows}
    table["column_totals"] = {column: line([(row, column) for row in rows]) for column in columns}
    table["total"] = line([(row, column) for row in rows for column in columns])
    return table


def _bounds(figure) -> tuple[int, float]:
    if isinstance(figure, int):
        return figure, figure
    assert isinstance(figure, str) and figure.startswith("≥"), f"a total is a number or a lower bound: {figure!r}"
    return int(figure[1:]), math.inf


class Attacker:
    """Everything the published numbers say about the hidden cells, and a search over what they allow."""

    def __init__(self, reports: list[tuple[list[str], dict]]) -> None:
        self.known: dict[Cell, int] = {}
        hidden: set[Cell] = set()
        lines: list[tuple[list[Cell], object]] = []
        for months, report in reports:
            categories = list(report["column_totals"])
            for month in months:
                for category in categories:
                    figure = report["cells"][month][category]
                    if figure == SMALL:
                        hidden.add((month, category))
                    else:
                        self.known[month, category] = figure
                lines.append(([(month, c) for c in categories], report["row_totals"][month]))
            for category in categories:
                lines.append(([(m, category) for m in months], report["column_totals"][category]))
            lines.append(([(m, c) for m in months for c in categories], report["total"]))
        # A cell shown in one report and hidden in another is simply known.
        self.hidden = sorted(hidden - set(self.known))

        # Each line becomes: low <= sum of its hidden cells <= high. Lines every choice of 1..4 satisfies say nothing.
        self.constraints: set[tuple[tuple[Cell, ...], float, float]] = set()
        for cells, figure in lines:
            low, high = _bounds(figure)
            unknowns = tuple(sorted(cell for cell in cells if cell not in self.known))
            shown = sum(self.known[cell] for cell in cells if cell in self.known)
            low, high = low - shown, high - shown
            if low <= len(unknowns) * min(HIDDEN_VALUES) and high >= len(unknowns) * max(HIDDEN_VALUES):
                continue
            assert unknowns, f"a total contradicts the cells shown in it: {figure!r}"
            self.constraints.add((unknowns, low, high))

    def possible_values(self, cell: Cell) -> set[int]:
        return {value for value in HIDDEN_VALUES if self._solvable(cell, value)}

    def _solvable(self, cell: Cell, value: int) -> bool:
        """Whether the hidden cells can take values 1..4, with `cell` at `value`, that reproduce every figure."""
        constraints = list(self.constraints)
        touching: dict[Cell, list[int]] = {c: [] for c in self.hidden}
        for k, (unknowns, _, _) in enumerate(constraints):
            for c in unknowns:
                touching[c].append(k)
        assigned = [0] * len(constraints)
        left = [len(unknowns) for unknowns, _, _ in constraints]
        order = [cell] + [c for c in self.hidden if c != cell]
        smallest, largest = min(HIDDEN_VALUES), max(HIDDEN_VALUES)

        def still_possible(k: int) -> bool:
            _, low, high = constraints[k]
            return assigned[k] + smallest * left[k] <= high and assigned[k] + largest * left[k] >= low

        def search(depth: int) -> bool:
            if depth == len(order):
                return True
            unknown = order[depth]
            for candidate in (value,) if depth == 0 else HIDDEN_VALUES:
                for k in touching[unknown]:
                    assigned[k] += candidate
                    left[k] -= 1
                if all(still_possible(k) for k in touching[unknown]) and search(depth + 1):
                    return True
                for k in touching[unknown]:
                    assigned[k] -= candidate
                    left[k] += 1
            return False

        return search(0)


def _hidden_cells(counts) -> list[Cell]:
    return sorted(cell for cell, n in counts.items() if 0 < n < 5)


@settings(max_examples=200, deadline=None)
@given(month_tables())
def test_no_hidden_count_can_be_recomputed_from_every_report_of_every_range(table):
    counts, months, categories = table
    attacker = Attacker(every_report(publish_table, counts, months, categories))
    assert attacker.hidden == _hidden_cells(counts)
    for cell in attacker.hidden:
        possible = attacker.possible_values(cell)
        assert counts[cell] in possible
        assert len(possible) >= 2, f"{cell} is pinned to {possible}"


@settings(max_examples=100, deadline=None)
@given(month_tables(), st.data())
def test_a_table_differing_only_in_a_hidden_count_publishes_the_same_reports(table, data):
    counts, months, categories = table
    hidden = _hidden_cells(counts)
    if not hidden:
        return
    cell = data.draw(st.sampled_from(hidden))
    other = data.draw(st.sampled_from([v for v in HIDDEN_VALUES if v != counts[cell]]))
    altered = {**counts, cell: other}
    assert every_report(publish_table, altered, months, categories) == every_report(
        publish_table, counts, months, categories)


@settings(max_examples=100, deadline=None)
@given(month_tables(), st.data())
def test_amounts_differing_only_in_a_hidden_cell_publish_the_same_reports(table, data):
    # The number of people in a cell is taken from the counts table; the amount is any sum of any number of payments
    # to them (one person paid many times is still one person). The hidden cell is given another amount and another
    # number of people from 1 to 4, or people not known (None).
    counts, months, categories = table
    cells = sorted(counts)
    per_person = data.draw(st.lists(st.integers(1, 50_000), min_size=len(cells), max_size=len(cells)))
    amounts = {cell: (counts[cell] * paid, counts[cell]) for cell, paid in zip(cells, per_person)}
    hidden = _hidden_cells(counts)
    if not hidden:
        return
    cell = data.draw(st.sampled_from(hidden))
    altered = {**amounts, cell: (data.draw(st.integers(1, 500_000)),
                                 data.draw(st.sampled_from((*HIDDEN_VALUES, None))))}

    def reports(source):
        return every_report(lambda a, r, c: publish_amounts(a, r, c, 2), source, months, categories)

    assert reports(altered) == reports(amounts)


@settings(max_examples=100, deadline=None)
@given(month_tables())
def test_the_same_attacker_recovers_every_hidden_count_when_totals_are_exact(table):
    counts, months, categories = table
    attacker = Attacker(every_report(naive_publish_table, counts, months, categories))
    for cell in attacker.hidden:
        assert attacker.possible_values(cell) == {counts[cell]}


def test_two_ranges_give_a_month_away_when_totals_are_exact_and_not_under_lower_bounds():
    # March holds two hidden cells, so its own row total cannot separate them; January–March minus January–February
    # of each column does, when the column totals are exact.
    counts = {
        ("2026-01", "housing"): 6, ("2026-01", "legal"): 8,
        ("2026-02", "housing"): 9, ("2026-02", "legal"): 7,
        ("2026-03", "housing"): 1, ("2026-03", "legal"): 3,
    }
    categories = ["housing", "legal"]
    asked = [MONTHS[:3], MONTHS[:2]]

    naive = Attacker([(months, naive_publish_table(counts, months, categories)) for months in asked])
    assert naive.possible_values(("2026-03", "housing")) == {1}
    assert naive.possible_values(("2026-03", "legal")) == {3}

    ours = Attacker([(months, publish_table(counts, months, categories)) for months in asked])
    assert ours.possible_values(("2026-03", "housing")) == set(HIDDEN_VALUES)
    assert ours.possible_values(("2026-03", "legal")) == set(HIDDEN_VALUES)


def test_the_attacker_solves_a_single_report_with_exact_totals_by_search_not_by_a_lone_cell():
    # Every row and column holds two hidden cells, so no single total names one; together they do, since the
    # 2 × 2 block with row sums 5 and 5 and column sums 2 and 8 has one solution in 1..4: 1, 4 over 1, 4.
    counts = {("2026-01", "housing"): 1, ("2026-01", "legal"): 4, ("2026-02", "housing"): 1, ("2026-02", "legal"): 4}
    attacker = Attacker([(MONTHS[:2], naive_publish_table(counts, MONTHS[:2], ["housing", "legal"]))])
    assert {cell: attacker.possible_values(cell) for cell in attacker.hidden} == {
        cell: {n} for cell, n in counts.items()}
