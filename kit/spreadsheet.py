"""CSV that opens safely in a spreadsheet: every report that offers `?format=csv` writes it here.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by Excel, LibreOffice and
Google Sheets (CSV injection); such text is written with a leading apostrophe, which they show as plain text, and so
is text that starts so after spaces (which a spreadsheet may trim). A number such as `-2.50` is a number, not a
formula, and stays one. Every text cell is quoted: a spreadsheet opened where `;` separates cells (Russian, Belarusian,
Polish, Lithuanian settings) then keeps `x;=1+1` whole instead of starting a cell at the `=`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def spreadsheet_safe(value: object) -> object:
    """Text a spreadsheet would run as a formula is quoted with a leading apostrophe; None is an empty cell."""
    if isinstance(value, str) and not _NUMBER.fullmatch(value) and (
            value[:1] in FORMULA_STARTS or value.lstrip(" \t\r\n")[:1] in FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A header line and one line per row (CRLF, as RFC 4180 and spreadsheets expect), every cell made safe;
    keys not in `columns` are left out."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n",
                            quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    for row in rows:
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
    return out.getvalue()
