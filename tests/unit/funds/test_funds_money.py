"""Money at the API's edge: decimal strings with exactly the currency's minor digits, integers inside."""

import pytest

from services.funds.money import MoneyError, format_amount, parse_amount


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("300.00", "EUR", 30000),
    ("0.01", "EUR", 1),
    ("1234567.89", "PLN", 123456789),
    ("300", "JPY", 300),
    ("1.250", "KWD", 1250),
    ("0.001", "BHD", 1),
    ("999999999999.99", "USD", 99999999999999),
])
def test_decimal_strings_become_minor_units_and_back(text, currency, minor):
    assert parse_amount(text, currency) == minor
    assert format_amount(minor, currency) == text


@pytest.mark.parametrize(("text", "currency", "says"), [
    ("300", "EUR", "exactly 2 decimal digits"),       # ambiguous: euros, or forgotten cents?
    ("300.0", "EUR", "exactly 2 decimal digits"),
    ("300.001", "EUR", "exactly 2 decimal digits"),
    ("300.00", "JPY", "no minor unit"),
    ("1.25", "KWD", "exactly 3 decimal digits"),
    ("0.00", "EUR", "greater than zero"),
    ("0", "JPY", "greater than zero"),
    ("-5.00", "EUR", "positive decimal string"),
    ("+5.00", "EUR", "positive decimal string"),
    ("05.00", "EUR", "positive decimal string"),
    ("5,00", "EUR", "positive decimal string"),
    ("1e3", "EUR", "positive decimal string"),
    (" 5.00", "EUR", "positive decimal string"),
    ("5.", "EUR", "positive decimal string"),
    ("١٢.٠٠", "EUR", "positive decimal string"),       # non-ASCII digits are not money here
    ("1000000000000.00", "EUR", "at most 12 digits before the decimal point"),  # beyond 12 integer digits
    ("9999999999999", "JPY", "at most 12 digits before the decimal point"),
    ("300.00", "XYZ", "not one this system pays in"),
    ("300.00", "eur", "not one this system pays in"),
])
def test_anything_else_is_refused_with_a_reason(text, currency, says):
    with pytest.raises(MoneyError, match=says):
        parse_amount(text, currency)


def test_every_supported_currency_round_trips_its_own_example():
    from services.funds.money import MINOR_DIGITS, example

    for currency in MINOR_DIGITS:
        assert format_amount(parse_amount(example(currency), currency), currency) == example(currency)
