"""Money at the edges: decimal strings with exactly the currency's minor digits outside, integers in minor units inside.

A float never touches an amount. "300.00" EUR is 30000 minor units; "300" EUR is refused (it is ambiguous whether the
writer meant euros or forgot the cents), as is "300.001". JPY has no minor unit, so "300" is right and "300.00" is not.
"""

from __future__ import annotations

import re
from fractions import Fraction

from kit.currencies import MAX_INTEGER_DIGITS, MINOR_DIGITS
from kit.errors import Invalid

# The currencies and the largest amount are kit's (kit.currencies), shared with referrals, whose cost estimates
# funds pays: MAX_INTEGER_DIGITS keeps a grant's running totals far inside a signed 64-bit column.
_AMOUNT = re.compile(rf"(0|[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}})(?:\.([0-9]+))?")
_AMOUNT_TOO_LONG = re.compile(rf"[1-9][0-9]{{{MAX_INTEGER_DIGITS},}}(?:\.[0-9]+)?")  # well written, too large


class MoneyError(Invalid, ValueError):
    """An amount or currency that cannot be taken as money; the message says what is wrong in words a user reads.

    A domain refusal (Invalid: 422, `invalid-money`) wherever a use case meets it, and a ValueError for pydantic,
    so that a request body's validator reports it among the body's other faults."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="invalid-money")


def check_currency(currency: str) -> str:
    if currency not in MINOR_DIGITS:
        raise MoneyError(f"currency {currency!r} is not one this system pays in ({', '.join(sorted(MINOR_DIGITS))})")
    return currency


def example(currency: str) -> str:
    digits = MINOR_DIGITS[currency]
    return "300" + ("." + "0" * digits if digits else "")


def parse_amount(text: str, currency: str) -> int:
    """A positive decimal string with exactly the currency's minor digits → integer minor units."""
    digits = MINOR_DIGITS[check_currency(currency)]
    match = _AMOUNT.fullmatch(text)
    if match is None and _AMOUNT_TOO_LONG.fullmatch(text):
        raise MoneyError(f"amount is too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    if match is None:
        raise MoneyError(f"amount must be a positive decimal string such as {example(currency)!r}")
    whole, fraction = match.group(1), match.group(2)
    if digits == 0 and fraction is not None:
        raise MoneyError(f"{currency} has no minor unit: write the amount without decimals, e.g. {example(currency)!r}")
    if digits > 0 and (fraction is None or len(fraction) != digits):
        raise MoneyError(f"{currency} amounts have exactly {digits} decimal digits, e.g. {example(currency)!r}")
    minor = int(whole) * 10**digits + int(fraction or "0")
    if minor <= 0:
        raise MoneyError("amount must be greater than zero")
    return minor


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units → the decimal string the API speaks ("300.00")."""
    digits = MINOR_DIGITS[currency]
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}" + (f".{fraction:0{digits}d}" if digits else "")


# ---- paying in another currency ----------------------------------------------------------------------------------

# An exchange rate as a bank or a central bank publishes it ("4.3000", "0.3761", "161.25"): a positive decimal string,
# at most this many significant digits, kept exactly as written (the decimal string itself is stored, never a float).
RATE_SIGNIFICANT_DIGITS = 10
_RATE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def check_rate(text: str) -> str:
    """An exchange rate: units of the paid currency for one unit of the grant's currency, as written ("4.3000")."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise MoneyError("fx_rate must be a positive decimal string such as '4.3000' (units of the paid currency for "
                         "one unit of the grant's)")
    significant = (match.group(1) + (match.group(2) or "")).lstrip("0")
    if not significant.strip("0"):
        raise MoneyError("fx_rate must be greater than zero")
    if len(significant) > RATE_SIGNIFICANT_DIGITS:
        raise MoneyError(f"fx_rate has at most {RATE_SIGNIFICANT_DIGITS} significant digits")
    return text


# Roughly how many units of each currency one euro bought when this table was written (December 2026): the
# yardstick a typed exchange rate is held against when no other finance officer has paid in the same currencies
# lately (domain.check_rate_plausible). Only an order of magnitude is asked of it, so it stays good for years.
UNITS_PER_EUR: dict[str, Fraction] = {code: Fraction(text) for code, text in {
    "EUR": "1", "USD": "1.10", "PLN": "4.25", "GBP": "0.85", "CHF": "0.94", "SEK": "11.2", "CZK": "24.8",
    "GEL": "3.1", "UAH": "46", "BYN": "3.6", "JPY": "165", "KWD": "0.34", "BHD": "0.41"}.items()}


def rough_rate(paid_currency: str, into: str) -> Fraction:
    """The yardstick's rate: units of `paid_currency` for one unit of `into`."""
    return UNITS_PER_EUR[paid_currency] / UNITS_PER_EUR[into]


def convert(paid_minor: int, paid_currency: str, rate: str, into: str) -> int:
    """What `paid_minor` of `paid_currency` is worth in `into` at `rate` (units of the paid currency for one unit of
    `into`), in `into`'s minor units.

    Computed exactly (fractions, no float, no decimal context to run out of digits), then rounded once to the
    currency's minor unit, half to even (banker's rounding, as IEEE 754 and most ledgers round): 1290.00 PLN at
    4.3000 is 300.00 EUR; 0.125 would become 0.12 and 0.135 would become 0.14, so that ties do not drift one way."""
    exact = (Fraction(paid_minor, 10 ** MINOR_DIGITS[paid_currency]) / Fraction(check_rate(rate))
             * 10 ** MINOR_DIGITS[into])
    return round(exact)  # Fraction.__round__ without digits: the nearest integer, ties to the even one
