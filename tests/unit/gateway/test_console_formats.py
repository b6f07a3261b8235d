"""Money, dates and day counts in the console's five languages, as CLDR writes them (through Babel)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from gateway.console import i18n

NBSP = "\u00a0"

# An amount of each currency in each language: the currency's own decimals (JPY none, KWD three), the locale's
# grouping and sign; BYN «Br» in every language.
MONEY = {
    "be": {"EUR": "1 234 567,50 €", "BYN": "1 234 567,50 Br", "PLN": "1 234 567,50 PLN", "JPY": "1 234 568 ¥",
           "KWD": "1 234 567,500 KWD"},
    "ru": {"EUR": "1 234 567,50 €", "BYN": "1 234 567,50 Br", "PLN": "1 234 567,50 PLN", "JPY": "1 234 568 ¥",
           "KWD": "1 234 567,500 KWD"},
    "en": {"EUR": "€1,234,567.50", "BYN": "Br 1,234,567.50", "PLN": "PLN 1,234,567.50", "JPY": "¥1,234,568",
           "KWD": "KWD 1,234,567.500"},
    "pl": {"EUR": "1 234 567,50 €", "BYN": "1 234 567,50 Br", "PLN": "1 234 567,50 zł", "JPY": "1 234 568 JPY",
           "KWD": "1 234 567,500 KWD"},
    "lt": {"EUR": "1 234 567,50 €", "BYN": "1 234 567,50 Br", "PLN": "1 234 567,50 PLN", "JPY": "1 234 568 JPY",
           "KWD": "1 234 567,500 KWD"},
}
DATES = {"be": "03.12.2026", "ru": "03.12.2026", "en": "3 Dec 2026", "pl": "3.12.2026", "lt": "2026-12-03"}
MOMENTS = {"be": "03.12.2026, 09:05", "ru": "03.12.2026, 09:05", "en": "3 Dec 2026, 09:05", "pl": "3.12.2026, 09:05",
           "lt": "2026-12-03 09:05"}


@pytest.mark.parametrize("language", i18n.LANGUAGES)
@pytest.mark.parametrize("currency", ["EUR", "BYN", "PLN", "JPY", "KWD"])
def test_money_has_the_currencys_digits_and_the_locales_grouping_and_sign(language, currency):
    written = i18n.format_money("1234567.5", currency, language)
    assert written == MONEY[language][currency].replace(" ", NBSP)  # no-break spaces: a line never splits it
    assert i18n.format_money(Decimal("1234567.50"), currency, language) == written


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_a_small_or_negative_amount_and_text_that_is_no_amount(language):
    assert i18n.format_money("-5", "EUR", language).startswith("-")
    assert i18n.format_money("not money", "EUR", language) == "not money EUR"
    assert i18n.format_money(None, "EUR", language) == "None EUR"


def test_an_amount_never_goes_through_a_float():
    assert i18n.format_money("12345678901234567.89", "EUR", "en") == "€12,345,678,901,234,567.89"


def test_polish_leaves_a_four_digit_amount_whole():
    assert i18n.format_money("1234.5", "PLN", "pl") == f"1234,50{NBSP}zł"
    assert i18n.format_money("12345", "PLN", "pl") == f"12{NBSP}345,00{NBSP}zł"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_dates_and_moments(language):
    assert i18n.format_date(date(2026, 12, 3), language) == DATES[language]
    assert i18n.format_date("2026-12-03", language) == DATES[language]
    assert i18n.format_date(datetime(2026, 12, 3, 9, 5), language) == MOMENTS[language]
    # A moment keeps the clock of its own offset (the API's are UTC), never the server's.
    assert i18n.format_date("2026-12-03T09:05:00+00:00", language) == MOMENTS[language]
    minsk = timezone(timedelta(hours=3))
    assert i18n.format_date(datetime(2026, 12, 3, 9, 5, tzinfo=minsk), language) == MOMENTS[language]
    assert i18n.format_date("", language) == "" and i18n.format_date(None, language) == ""
    assert i18n.format_date("soon", language) == "soon"


def test_sizes_and_days():
    assert [i18n.format_size(1572864, language) for language in ("en", "ru", "pl")] == ["1.5 MB", "1,5 МБ", "1,5 MB"]
    assert i18n.format_size(348000, "en") == "340 KB"
    days = {language: [i18n.count_days(n, language).replace(NBSP, " ") for n in (1, 2, 5, 11, 21, 22, 111)]
            for language in i18n.LANGUAGES}
    assert days["ru"] == ["1 день", "2 дня", "5 дней", "11 дней", "21 день", "22 дня", "111 дней"]
    assert days["be"] == ["1 дзень", "2 дні", "5 дзён", "11 дзён", "21 дзень", "22 дні", "111 дзён"]
    assert days["lt"] == ["1 dieną", "2 dienas", "5 dienas", "11 dienų", "21 dieną", "22 dienas", "111 dienų"]
    assert days["pl"] == ["1 dnia", "2 dni", "5 dni", "11 dni", "21 dni", "22 dni", "111 dni"]
    assert days["en"] == ["1 day", "2 days", "5 days", "11 days", "21 days", "22 days", "111 days"]


def test_each_currency_has_its_minor_digits():
    assert {currency: i18n.minor_digits(currency) for currency in ("JPY", "KWD", "BHD", "EUR", "BYN")} == {
        "JPY": 0, "KWD": 3, "BHD": 3, "EUR": 2, "BYN": 2}


@pytest.mark.parametrize(("language", "names"), [
    ("be", "беларуская, руская; Літва"), ("ru", "белорусский, русский; Литва"), ("en", "Belarusian, Russian; Lithuania")])
def test_languages_and_countries_are_named_in_the_pages_language_not_written_as_codes(language, names):
    from gateway.console.router import templates

    page = templates.from_string('{{ ["be", "ru", "xx"]|map("language")|join(", ") }}; {{ "LT"|country }}')
    assert page.render(lang=language) == names.replace(";", ", xx;", 1)  # a code Babel does not know stays a code


@pytest.mark.parametrize(("language", "names"), [
    ("be", "беларуская (Беларусь), сербская (лацініца), be-x-old"),
    ("ru", "белорусский (Беларусь), сербский (латиница), be-x-old"),
    ("en", "Belarusian (Belarus), Serbian (Latin), be-x-old")])
def test_a_language_with_its_region_or_script_is_named_too(language, names):
    from gateway.console.router import templates

    page = templates.from_string('{{ ["be-by", "sr-latn", "be-x-old"]|map("language")|join(", ") }}')
    assert page.render(lang=language) == names


def test_the_country_picker_lists_countries_not_parts_of_one_that_cldr_names_apart():
    from gateway.console.router import templates

    every = templates.from_string('{% for code, name in country_choices()[1] %}{{ code }} {% endfor %}').render(
        lang="en").split()
    assert {"ES", "LT", "PL", "GE", "XK"} <= set(every)  # Kosovo: no ISO code, but the one everyone uses
    assert not {"IC", "EA", "AC", "TA", "DG", "CP", "CQ", "EU", "ZZ"} & set(every)  # the Canary Islands are Spain
    assert len(every) == len(set(every))
