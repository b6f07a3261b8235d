"""The console's words in Belarusian, Russian and English, and dates and money written as each locale writes them.

The words are gettext catalogues, `locale/<language>/LC_MESSAGES/console.po`, one per language, read with Babel at the
first use of a language (no compiled `.mo` to keep in step). A msgid is a key (`"sign_in"`, `"category_medical"`); the
English catalogue holds the source text a translator works from, and a count takes the plural forms of its language
(`tn("unread_count", 3)`: "3 new messages", «3 новыя паведамленні», «3 новых сообщения»). `pybabel extract -F
gateway/console/babel.cfg` finds every msgid the pages name; `tests/console/test_console_catalogues.py` fails on one
missing or empty in any language, or a translation whose `{placeholders}` differ from the English.

The partner console (partner.py), and the sign-in and second-factor pages partner staff pass through, are also in
Polish and Lithuanian: those catalogues hold only what those pages say. Staff pages offer be/ru/en only, and show
English to staff who chose pl or lt on the sign-in page (`router.render`).

Dates, numbers and money go through Babel, by CLDR's rules for each locale (be/ru: "1 234,50 €", "23.11.2026";
en: "€1,234.50", "23 Nov 2026"; pl: "1234,50 zł", "12 345,50 zł", "3.11.2026, 14:05"; lt: "1 234,50 €",
"2026-11-03 14:05")."""

from __future__ import annotations

import gettext
import io
import math
import os
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

STAFF_LANGUAGES = ("be", "ru", "en")  # every page of the console
LANGUAGES = (*STAFF_LANGUAGES, "pl", "lt")  # pl, lt: the partner console, sign-in and the second factor
DEFAULT = "en"
LANGUAGE_NAMES = {"be": "Беларуская", "ru": "Русский", "en": "English", "pl": "Polski", "lt": "Lietuvių"}
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "console"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """A language's catalogue, compiled in memory, falling back to English for a msgid it lacks (pl and lt on staff
    pages)."""
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    loaded = gettext.GNUTranslations(compiled)
    if language != DEFAULT:
        loaded.add_fallback(translations(DEFAULT))
    return loaded


class _Words(dict):
    """`MESSAGES[language][msgid]`: a catalogue's singular texts, read when first asked for (tests and code that
    want a word outside a page)."""

    def __missing__(self, language: str) -> dict[str, str]:
        if language not in LANGUAGES:
            raise KeyError(language)
        with catalogue_path(language).open("rb") as po:
            catalog = read_po(po, locale=language, domain=DOMAIN)
        words = {message.id: message.string for message in catalog if message.id and not message.pluralizable}
        self[language] = words
        return words


MESSAGES: dict[str, dict[str, str]] = _Words()


def chosen(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT


# Tests set this: a page that names a word no catalogue of its language holds fails, instead of showing the msgid.
# It reaches the words named in no literal `t("…")` too (`t(f"status_{value}")`), which extraction cannot see.
STRICT_ENV = "REHAB_CONSOLE_STRICT_WORDS"


class MissingWord(LookupError):
    """A page named a msgid its language's catalogue (or, for pl/lt on a staff page, the English one) lacks."""


def _strict() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


def _checked(language: str, msgid: str | tuple[str, int]) -> None:
    own = translations(language)._catalog  # type: ignore[attr-defined]  # gettext's parsed messages
    if msgid not in own and (language in STAFF_LANGUAGES or msgid not in translations(DEFAULT)._catalog):  # type: ignore[attr-defined]
        raise MissingWord(f"{msgid!r} is in no catalogue for {language!r}")


def translator(language: str) -> Callable[[str], str]:
    """`t(msgid)`: the word in the language, else in English, else the msgid itself (shown, never an error, except
    under tests: `STRICT_ENV`)."""
    language = chosen(language)
    gettext_ = translations(language).gettext
    if not _strict():
        return gettext_

    def t(msgid: str) -> str:
        _checked(language, msgid)
        return gettext_(msgid)

    return t


def counter(language: str) -> Callable[..., str]:
    """`tn(msgid, n, **fields)`: the plural form of the language for `n`, with `{n}` written as the locale writes
    numbers ("1 234")."""
    language = chosen(language)
    catalogue = translations(language)
    strict = _strict()

    def tn(msgid: str, n: int, **fields: object) -> str:
        if strict:
            _checked(language, (msgid, 0))
        number = babel_numbers.format_decimal(n, locale=language)
        return catalogue.ngettext(msgid, msgid, n).format(n=number, **fields)

    return tn


def count_days(days: int, language: str) -> str:
    """A number of days as the partner console's sentences take it ("within {sent}", "через {sent}", "w ciągu
    {sent}", "per {sent}"): the count form in en, be and ru, the genitive in pl, the accusative in lt."""
    return counter(language)("n_days", days)


_NBSP = "\u00a0"


def negotiated(header: str | None, offered: tuple[str, ...] = LANGUAGES) -> str:
    """The best of `offered` for an `Accept-Language` header (RFC 9110 §12.5.4): the languages by their q-value,
    highest first (in the header's order where equal), `q=0` never; a tag counts for its language (`be-BY` → be,
    `ru-RU` → ru). `*` or nothing offered that is asked for: English."""
    asked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:1000].split(",")):
        tag, _, parameters = part.strip().partition(";")
        q = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        language = tag.strip().lower().split("-", 1)[0]
        if language and 0 < q <= 1:
            asked.append((-q, position, language))
    for _, _, language in sorted(asked):
        if language in offered:
            return language
    return DEFAULT


# A date as each locale writes it, numerically where CLDR's short date is (ru, pl and lt's short dates; be writes as ru
# does, its own short "3.12.26" cutting the year), en as British English's medium date ("3 Dec 2026"); times 24-hour.
DATE_PATTERNS = {"be": "dd.MM.y", "ru": "dd.MM.y", "en": "d MMM y", "pl": "d.MM.y", "lt": "y-MM-dd"}
TIME_PATTERN = "HH:mm"


def format_date(value: date | datetime | str | None, language: str) -> str:
    """A date ("03.12.2026", "3 Dec 2026") or a moment, on the clock of the offset it carries ("3.12.2026, 14:05"),
    joined as CLDR joins a short date and time in that locale; text that is not an ISO date comes back as it is."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
        except ValueError:
            return value
    language = chosen(language)
    day = value.date() if isinstance(value, datetime) else value
    text = babel_dates.format_date(day, DATE_PATTERNS[language], locale=language)
    if not isinstance(value, datetime):
        return text
    shown = babel_dates.format_time(value.time().replace(tzinfo=None), TIME_PATTERN, locale=language)
    return str(Locale.parse(language).datetime_formats["short"]).format(shown, text)


# The currencies grants are kept in (services/funds/money.py keeps its own list: the gateway imports no service);
# each one's decimals are ISO 4217's minor units as CLDR has them (JPY none, KWD and BHD three, the others two).
CURRENCIES = ("BHD", "BYN", "CHF", "CZK", "EUR", "GBP", "GEL", "JPY", "KWD", "PLN", "SEK", "UAH", "USD")
# Where CLDR's sign is not the one people write: the Belarusian rouble is «Br» in every language (CLDR gives it in
# be; in ru, en, pl and lt it gives the code).
_SYMBOL_OVERRIDES = {"BYN": "Br"}
# CLDR's minimumGroupingDigits where it is 2 (Babel does not apply it): a four-digit amount stays whole.
_MIN_GROUPING_TWO = {"pl"}


def minor_digits(currency: str) -> int:
    """How many decimals an amount of this currency is written with (CLDR: JPY 0, KWD 3, any other 2 by default)."""
    return babel_numbers.get_currency_precision(currency)


def format_money(amount: str | Decimal | None, currency: str, language: str) -> str:
    """An amount with its currency's own number of decimals, grouped and signed as the locale writes it ("150,000
    JPY" has none, "1,234.500 KWD" three); never through a float."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"
    if not value.is_finite():
        return f"{amount} {currency}"
    language = chosen(language)
    pattern = None
    if language in _MIN_GROUPING_TWO and abs(value) < 10000:
        pattern = Locale.parse(language).currency_formats["standard"].pattern.replace("#,##", "#")
    text = babel_numbers.format_currency(value, currency, pattern, locale=language)
    symbol = babel_numbers.get_currency_symbol(currency, locale=language)
    override = _SYMBOL_OVERRIDES.get(currency)
    if override and override != symbol:
        text, symbol = text.replace(symbol, override), override
    if symbol[-1:].isalpha() and symbol in text:
        # CLDR's currency spacing, which Babel leaves out: a sign ending in a letter is kept off the digits
        # ("BYN 10.00", not "BYN10.00").
        head, _, tail = text.partition(symbol)
        if tail[:1].isdigit():
            text = f"{head}{symbol}{_NBSP}{tail}"
    return text


def without_currency(text: str, currency: str) -> str:
    """An amount as typed, less the currency written before or after it, as the console writes it in any of its
    languages ("€1,234.50", "1 234,50 €", "EUR 300", "300 eur", "Br 10"): the amount is in the form's currency."""
    signs = {currency, _SYMBOL_OVERRIDES.get(currency, currency),
             *(babel_numbers.get_currency_symbol(currency, locale=language) for language in LANGUAGES)}
    stripped = text.strip()
    for sign in sorted(signs, key=len, reverse=True):  # "US$" before "$"
        lowered = stripped.lower()
        if lowered.startswith(sign.lower()):
            stripped = stripped[len(sign):].strip()
        elif lowered.endswith(sign.lower()):
            stripped = stripped[:-len(sign)].strip()
    return stripped


# The one mark that groups thousands as a person of the language types them alone ("12,345"); the others group them
# with a space, which is no mark here.
THOUSANDS_MARK = {"en": ","}


def typed_amount(text: str, currency: str, language: str = "en") -> str:
    """An amount as people type it — "10 000", "1 234,5", "1,234.50", "€1,234.50", "150,000" (yen) — as the services
    read money: a decimal string with exactly the currency's minor digits ("1234.50", "150000"). Anything else goes
    as typed, for the service to refuse in its own words (which the page then says in the visitor's).

    A single mark followed by three digits groups thousands only where the visitor's language writes them so (a
    comma in English: "12,345"); in Belarusian or Russian "12,345" is twelve and a bit, and "0.125" is never a
    hundred and twenty-five anywhere. Read as decimals, those are refused (too many digits), never taken as a
    thousand times the sum."""
    digits = minor_digits(currency)
    compact = re.sub(r"[\s\u00a0\u202f'’]", "", without_currency(text, currency))
    if not re.fullmatch(r"[0-9]+([.,][0-9]+)*", compact):
        return text.strip()
    marks = [mark for mark in compact if mark in ".,"]
    decimal = None
    if len(set(marks)) == 2:  # both: the last one is the decimal mark, the other groups thousands
        decimal = marks[-1]
    elif marks and len(marks) == 1:
        before, after = compact.split(marks[0], 1)
        groups_thousands = (len(after) == 3 and digits != 3 and marks[0] == THOUSANDS_MARK.get(language)
                            and before.lstrip("0") != "")
        if len(after) == 3 and digits != 3 and not groups_thousands:
            # "1.500" is fifteen hundred to many who write a dot between thousands, and its zero is no help: read
            # as 1.50 it was a thousand times too little. Refused as typed, as "12.345" is.
            return text.strip()
        decimal = None if groups_thousands else marks[0]
    whole, _, fraction = compact.rpartition(decimal) if decimal else (compact, "", "")
    groups = re.split(r"[.,]", whole)
    if any(len(group) != 3 for group in groups[1:]) or (fraction and not fraction.isdigit()):
        return text.strip()  # "1.234.5", "1,23.45": not a way of writing an amount; funds refuses it
    whole = "".join(groups)
    if len(fraction) > digits:
        if fraction[digits:].strip("0"):
            return text.strip()  # more decimals than the currency has: funds says how to write it
        fraction = fraction[:digits]
    # Leading zeros dropped as text, not by int(): Python refuses to read more than 4,300 digits as an int. An amount
    # that long still goes to funds (at most 12 integer digits), whose refusal the form says beside the field.
    return (whole.lstrip("0") or "0") + (f".{fraction.ljust(digits, '0')}" if digits else "")


def waiting_time(seconds: int, language: str) -> str:
    """How long to wait, as the language says it ("15 seconds", "15 секунд", "15 minut"), rounded up."""
    from datetime import timedelta

    return babel_dates.format_timedelta(timedelta(seconds=max(1, seconds)), threshold=1.0, add_direction=False,
                                        format="long", locale=chosen(language))


def format_size(size: int, language: str) -> str:
    """A file's size as people read it: "340 KB", "1.5 MB" ("1,5 МБ" in be/ru)."""
    language = chosen(language)
    if size >= 1024 * 1024:
        number = babel_numbers.format_decimal(Decimal(size) / Decimal(1024 * 1024), "#,##0.0", locale=language)
        key = "size_mb"
    else:
        number = babel_numbers.format_decimal(math.ceil(size / 1024), locale=language)
        key = "size_kb"
    return translator(language)(key).format(n=number)
