"""The currencies the system holds money in, with their ISO 4217 minor digits, and how large an amount may be.

One table for every service: money one service takes often ends with another (a referral's cost estimate is paid by
funds), and a currency or amount the second cannot hold would be accepted by the first and silently dropped later.
"""

from __future__ import annotations

# ISO 4217 minor digits of the currencies this system pays in.
MINOR_DIGITS: dict[str, int] = {
    "EUR": 2, "USD": 2, "PLN": 2, "GBP": 2, "CHF": 2, "SEK": 2, "CZK": 2, "GEL": 2, "UAH": 2, "BYN": 2,
    "JPY": 0,
    "KWD": 3, "BHD": 3,
}

# At most 12 integer digits (a trillion): amounts, and running totals of them, stay far inside a signed 64-bit
# column even in a currency with 3 minor digits.
MAX_INTEGER_DIGITS = 12
