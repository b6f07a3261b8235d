"""Reports' rules and words: months, the period a report covers, the lists of categories and outcomes, amounts as
minor units, and durations as tenths of a day. No I/O."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from kit.errors import Invalid

# docs/events.md: the one list of categories (needs, consents, referrals and partners alike), the urgencies, the
# states a need moves to and a referral reaches. A value outside them (a newer producer) is still counted.
CATEGORIES: tuple[str, ...] = ("medical", "psychological", "relocation", "legal", "housing", "employment", "financial")
URGENCIES: tuple[str, ...] = ("low", "medium", "high", "critical")
NEED_MOVES: tuple[str, ...] = ("in_progress", "met", "dropped")
REFERRAL_OUTCOMES: tuple[str, ...] = ("sent", "accepted", "declined", "started", "completed", "cancelled")
CASE_MOVES: tuple[str, ...] = ("opened", "closed", "erased")
SPANS: tuple[str, ...] = ("sent_to_accepted", "sent_to_completed")

DEFAULT_MONTHS = 12
MAX_MONTHS = 120  # ten years: a longer period is a mistake, not a report
TENTHS_PER_DAY = 10
# ASCII digits only: `\d` would also take other scripts' digits ("٢٠٢٦-03"), which int() reads as a year.
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# Reports count what the services' events say happened, and the services were written this century: no count can be
# older, so an earlier month is a typing mistake (0000-01 even ran the months into negative years) and is refused.
# 2000 rather than 1900: nothing is lost by it, and it catches more mistyped years.
EARLIEST_MONTH = (2000, 1)
# A month's figures are published once it has ended and this much longer (`unsettled`; REHAB_REPORTS_SETTLING_DAYS):
# events reach reports within seconds, and two days cover a bus that was down over the turn of the month. An event
# applied later than that, to a month already published, still changes its figures; that takes a bus down for two
# days.
SETTLING = timedelta(days=2)


def month_of(moment: datetime) -> str:
    """The UTC month a moment falls in, as `YYYY-MM`."""
    at = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m")


def unsettled(months: list[str], now: datetime, settling: timedelta = SETTLING) -> set[str]:
    """The months whose figures are not published yet: this one, the last one until it has settled (`settling`),
    and any still to come. Read twice while a month still changes, any of its figures would tell what happened in
    between: five cases opened, then six, and the sixth person's needs are the needs counted since."""
    if settling < timedelta(0):  # a demonstration, a test: months under way are published as they change
        return {month for month in months if month > month_of(now)}
    first_unsettled = month_of(now - settling)
    return {month for month in months if month >= first_unsettled}


def parse_month(text: str, name: str) -> tuple[int, int]:
    found = _MONTH.fullmatch(text)
    if found is None:
        raise Invalid(f"`{name}` must be a month written YYYY-MM, such as 2026-03; {text!r} is not.",
                      code="invalid-period")
    month = int(found[1]), int(found[2])
    if month < EARLIEST_MONTH:
        raise Invalid(f"`{name}` must be a month from {_name(EARLIEST_MONTH)} on, the first month reports cover; "
                      f"{text!r} is earlier.", code="invalid-period")
    return month


def months_between(first: tuple[int, int], last: tuple[int, int]) -> list[str]:
    (year, month), (end_year, end_month) = first, last
    months = []
    while (year, month) <= (end_year, end_month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def period(first: str | None, last: str | None, *, today: date | None = None) -> list[str]:
    """The whole months from `first` to `last` (both `YYYY-MM`, both included); by default the last twelve months,
    this one included; `first` alone runs to this month, `last` alone covers the twelve months up to it."""
    today = today or datetime.now(UTC).date()
    end = parse_month(last, "to") if last else (today.year, today.month)
    if first:
        start = parse_month(first, "from")
    else:
        index = end[0] * 12 + end[1] - 1 - (DEFAULT_MONTHS - 1)
        start = (index // 12, index % 12 + 1)
        if start < EARLIEST_MONTH:
            raise Invalid(f"The {DEFAULT_MONTHS} months up to {_name(end)} would start in {_name(start)}, before "
                          f"{_name(EARLIEST_MONTH)}, the first month reports cover: give `from` too.",
                          code="invalid-period")
    if start > end:
        raise Invalid(f"The period starts ({_name(start)}) after it ends ({_name(end)}): `from` must be the earlier "
                      "month.", code="invalid-period")
    months = months_between(start, end)
    if len(months) > MAX_MONTHS:
        raise Invalid(f"A report covers at most {MAX_MONTHS} months; this period has {len(months)}.",
                      code="invalid-period")
    return months


def _name(month: tuple[int, int]) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def minor_units(amount: str) -> tuple[int, int] | None:
    """A decimal string as funds writes it ("300.00") → (minor units, minor digits); None when it is not one."""
    found = re.fullmatch(r"(\d{1,15})(?:\.(\d{1,4}))?", amount.strip())
    if found is None:
        return None
    fraction = found[2] or ""
    return int(found[1] + fraction), len(fraction)


def tenths_of_a_day(start: datetime, end: datetime) -> int:
    """The whole tenths of a day from `start` to `end` (0 when `end` is not later)."""
    seconds = (end - start).total_seconds()
    return max(0, int(seconds // (86400 / TENTHS_PER_DAY)))


# Spans are kept to the tenth of a day up to this many days, to the whole day beyond: a histogram of a year's spans
# has a few hundred buckets per month and category, however many referrals it counts.
FINE_DAYS = 10


def duration_bucket(start: datetime, end: datetime) -> int:
    """The histogram bucket of a span, in tenths of a day: its whole tenths under FINE_DAYS days, its whole days
    (as tenths: 10, 11, … days are 100, 110, …) from there on."""
    tenths = tenths_of_a_day(start, end)
    return tenths if tenths < FINE_DAYS * TENTHS_PER_DAY else tenths - tenths % TENTHS_PER_DAY


def columns(known: tuple[str, ...], seen: set[str]) -> list[str]:
    """The known values in their order, then any other value seen, sorted: a stable table shape."""
    return [*known, *sorted(seen - set(known) - {""})]
