"""The currencies the system holds money in, with their ISO 4217 minor digits, and how large an amount may be.

One table for every service: money one service takes often ends with another (a referral's cost estimate is paid by
funds), and a currency or amount the second cannot hold would be accepted by the first and silently dropped later.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# ISO 4217 minor digits of the currencies this system pays in.
MINOR_DIGITS: dict[str, int] = {
    "EUR": 2, "USD": 2, "PLN": 2, "GBP": 2, "CHF": 2, "SEK": 2, "CZK": 2, "GEL": 2, "UAH": 2, "BYN": 2,
    "JPY": 0,
    "KWD": 3, "BHD": 3,
}

# At most 12 integer digits (a trillion): amounts, and running totals of them, stay far inside a signed 64-bit
# column even in a currency with 3 minor digits.
MAX_INTEGER_DIGITS = 12


def decimal_string(example: str, *, loses: str = "cents") -> BeforeValidator:
    """Marks a money or rate field, written as a decimal string: what else is sent is refused in words that say so
    (pydantic's "Input should be a valid string" does not tell that a JSON number is refused on purpose). The error
    keeps pydantic's type, `string_type`. Last in its `Annotated`, so that it runs first."""
    said = f'must be a decimal string, such as "{example}"'

    def written_as_text(value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            raise PydanticCustomError("string_type", f"{said} (a JSON number is refused: it may lose {loses})")
        raise PydanticCustomError("string_type", said)

    return BeforeValidator(written_as_text)
