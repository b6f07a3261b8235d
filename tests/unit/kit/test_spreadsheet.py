"""CSV a spreadsheet opens without running a cell (kit.spreadsheet): read back by a parser that, as Excel does where
`;` separates cells, splits on `;` and honours quotes."""

from __future__ import annotations

import csv
import io

from kit.spreadsheet import csv_text


def test_a_semicolon_in_a_cell_never_starts_a_cell_where_semicolons_separate_them():
    text = csv_text(["donor", "people", "paid"], [{"donor": "Fund;=HYPERLINK(\"http://x\")", "people": 7,
                                                    "paid": "-2.50"}])

    header, row = text.split("\r\n")[:2]
    assert header == '"donor","people","paid"' and row == '"Fund;=HYPERLINK(""http://x"")",7,"-2.50"'
    as_excel_in_minsk = next(csv.reader(io.StringIO(row), delimiter=";"))
    assert not any(cell.lstrip().startswith(("=", "+", "-", "@")) for cell in as_excel_in_minsk)
    assert next(csv.reader(io.StringIO(row))) == ['Fund;=HYPERLINK("http://x")', "7", "-2.50"]
