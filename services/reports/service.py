"""The programme report (SPEC §9): per month and for the whole period, every number passed through the disclosure
control (`disclosure`) before it leaves, as JSON or as CSV with one line per published number.

Read from the aggregate rows of the period only (a few thousand rows for a year, whatever the number of cases);
medians and 90th percentiles come from the duration histograms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from kit.spreadsheet import csv_text
from services.reports import disclosure, domain, queries
from services.reports.models import CurrencyDigits, DurationHistogram, MonthlyAmount, MonthlyCount

PARTNER_CATEGORY = ("the referral's category: no event says what kind of partner a partner is, and a partner takes "
                    "referrals in its own category")
URGENCY_WITHHELD = ("withheld: a cell of category by urgency would be between 1 and 4 (in this month, or for the "
                    "period in one of its months); needs are shown by category only")
DAYS = ("days from sending, rounded down to the tenth of a day under ten days and to the day from ten days on, by the "
        "month the span ended and by partner category")
PERIOD_DAYS_NOTE = ("over the months of the period in which five or more of a category's spans ended: a month of 1 to 4 "
                    "is left out, so that no period figure tells its count or is one of its waits; and so is a month "
                    "not published yet")
MONTH_PENDING = "this month is not published yet (see `pending`)"


def programme_report(*, session: Session, months: list[str], now: datetime | None = None,
                     settling: timedelta = domain.SETTLING) -> dict[str, Any]:
    """The report of `months`, as it may be published at `now` (by default, now): the figures of months that have
    settled (`domain.unsettled`), every figure of the others "pending"."""
    now = now or datetime.now(UTC)
    pending = domain.unsettled(months, now, settling)
    first, last = months[0], months[-1]
    counts: dict[str, dict[tuple[str, str, str], int]] = defaultdict(dict)
    # Plain rows, not ORM objects: a year's aggregates are thousands of rows, read on every request.
    c = MonthlyCount.__table__.c  # type: ignore[attr-defined]
    for month, measure, category, detail, n in session.execute(
            select(c.month, c.measure, c.category, c.detail, c.count).where(c.month >= first, c.month <= last)):
        counts[measure][(month, category, detail)] = n
    return {
        "from": first,
        "to": last,
        "months": months,
        "generated_at": now.isoformat(),
        "small_numbers": ("every count from 1 to 4 is shown as \"<5\", and so is a sum of money paid to fewer than "
                          "five people however many payments it sums; a total that includes one is shown as \"≥N\""),
        "pending_months": sorted(pending),
        "pending": (f"every figure of a month is \"{disclosure.PENDING}\" until {_days_named(settling)} after it "
                    "ends, and left out of the period's figures until then: read twice while a month still changes, "
                    "a count or a sum would tell what happened between the two reads"),
        "cases": _cases(counts["cases"], months, pending),
        "needs": _needs(counts["needs.assessed"], counts["needs.moved"], months, pending),
        "referrals": _referrals(session, counts["referrals"], months, pending),
        "aid": _aid(session, months, pending=pending, settling=settling),
    }


def _days_named(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days >= 0 else "0 days (months under way are published)"


def _by(counts: dict[tuple[str, str, str], int], pick: Any) -> dict[tuple[str, str], int]:
    """Counts summed onto the (row, column) that `pick(month, category, detail)` names (None: left out)."""
    summed: dict[tuple[str, str], int] = defaultdict(int)
    for (month, category, detail), n in counts.items():
        key = pick(month, category, detail)
        if key is not None:
            summed[key] += n
    return dict(summed)


def _cases(counts: dict[tuple[str, str, str], int], months: list[str], pending: set[str]) -> dict[str, Any]:
    return disclosure.publish_table(_by(counts, lambda m, _c, d: (m, d)), months, list(domain.CASE_MOVES),
                                    pending=pending)


def _needs(assessed: dict, moved: dict, months: list[str], pending: set[str]) -> dict[str, Any]:
    categories = domain.columns(domain.CATEGORIES, {c for _m, c, _d in [*assessed, *moved]})
    urgencies = domain.columns(domain.URGENCIES, {d for _m, _c, d in assessed})
    by_month_breakdown: dict[str, Any] = {}
    for month in months:
        if month in pending:
            by_month_breakdown[month] = {"withheld": MONTH_PENDING}
            continue
        cells = _by(assessed, lambda m, c, d, month=month: (c, d) if m == month else None)
        by_month_breakdown[month] = (disclosure.publish_table(cells, categories, urgencies)
                                     if disclosure.breakdown_allowed(cells) else {"withheld": URGENCY_WITHHELD})
    # The period's category × urgency (over its published months) only when every published month's is shown: then
    # it is their sum and says nothing more, whereas a period table of cells ≥ 5 over months that are not could give
    # a month's small cell away (this period minus the previous one).
    # No table of needs by urgency alone: it would share its month totals with needs by category, and a month shown
    # whole in one would give a withheld cell of the other back (the total minus its shown cells).
    published = [month for month in months if month not in pending]
    every_month_shown = bool(published) and all("withheld" not in by_month_breakdown[month] for month in published)
    return {
        "assessed_by_category": disclosure.publish_table(_by(assessed, lambda m, c, _d: (m, c)), months, categories,
                                                         pending=pending),
        "assessed_by_category_and_urgency": {
            "by_month": by_month_breakdown,
            "period": (disclosure.publish_table(_by(assessed, lambda m, c, d: (c, d) if m not in pending else None),
                                                categories, urgencies)
                       if every_month_shown else {"withheld": URGENCY_WITHHELD}),
        },
        **{f"{status}_by_category": disclosure.publish_table(
            _by(moved, lambda m, c, d, status=status: (m, c) if d == status else None), months, categories,
            pending=pending)
           for status in domain.NEED_MOVES},
    }


def _referrals(session: Session, counts: dict, months: list[str], pending: set[str]) -> dict[str, Any]:
    h = DurationHistogram.__table__.c  # type: ignore[attr-defined]
    # (span, month, category) → {tenths: n}, and the period's sums: one row per month, span and category.
    by_month: dict[tuple[str, str, str], dict[int, int]] = {}
    whole: dict[tuple[str, str], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for measure, month, category, buckets in session.execute(
            select(h.measure, h.month, h.category, h.buckets).where(h.month >= months[0], h.month <= months[-1])):
        histogram = by_month[(measure, month, category)] = queries.read_buckets(buckets)
        if month in pending or sum(histogram.values()) < disclosure.SMALLEST_SHOWN:
            # A month too small to show is left out of the period's figures: whether a period quantile is shown
            # (from 5, or 10 for p90) and what it is would otherwise tell a withheld month's count, or be one of its
            # waits (ranges that differ by that month, read side by side).
            continue
        summed = whole[(measure, category)]
        for tenths, n in histogram.items():
            summed[tenths] += n
    categories = domain.columns(domain.CATEGORIES, {c for _m, c, _d in counts} | {c for _s, c in whole})
    section: dict[str, Any] = {
        "by_outcome": {outcome: disclosure.publish_table(
            _by(counts, lambda m, c, d, outcome=outcome: (m, c) if d == outcome else None), months, categories,
            pending=pending)
            for outcome in domain.REFERRAL_OUTCOMES},
        "partner_category": PARTNER_CATEGORY,
    }
    for span in domain.SPANS:
        section[f"days_{span}"] = {
            "unit": DAYS,
            "by_month": {month: ({category: {"p50": disclosure.PENDING, "p90": disclosure.PENDING}
                                  for category in categories} if month in pending else
                                 _days(disclosure.publish_quantiles(
                                     {category: by_month.get((span, month, category), {})
                                      for category in categories})))
                         for month in months},
            "period": _days(disclosure.publish_quantiles({category: dict(whole.get((span, category), {}))
                                                          for category in categories})),
            "period_note": PERIOD_DAYS_NOTE,
        }
    return section


def _days(published: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Quantiles of histograms in tenths of a day, as days. Without their `n`: how many referrals a quantile
    describes is in `by_outcome` (accepted, completed), withheld there as it must be; an exact n over the period
    here would give a withheld month back (this period's n minus the previous one's)."""
    return {column: {name: (value / domain.TENTHS_PER_DAY if isinstance(value, int | float)
                            and not isinstance(value, bool) else value)
                     for name, value in quantiles.items() if name != "n"}
            for column, quantiles in published.items()}


def _aid(session: Session, months: list[str], *, pending: set[str], settling: timedelta) -> dict[str, Any]:
    digits = {row.currency: row.digits for row in session.execute(select(CurrencyDigits)).scalars()}
    sums: dict[tuple[str, str, str], dict[tuple[str, str], tuple[int, int | None]]] = defaultdict(dict)
    a = MonthlyAmount.__table__.c  # type: ignore[attr-defined]
    for month, stage, basis, category, currency, minor, payments, people in session.execute(
            select(a.month, a.stage, a.basis, a.category, a.currency, a.amount_minor, a.payments, a.people)
            .where(a.month >= months[0], a.month <= months[-1])):
        # Payments and no one counted: summed before people were (until `rehab reports rebuild`), or from someone
        # erased before their payment was applied. Not known, so withheld (None); the payments are never the
        # fallback, one person's five payments are what this count is for.
        sums[(stage, basis, currency)][(month, category)] = (minor, None if payments and not people else people)
    # A currency people were paid in other than a grant's says where they live: one payment in lari makes a table of
    # GEL, a hint where a relocated person went. Such a table is shown only once one of its cells is published (a
    # settled month and category of five people or more); until then it is left out entirely, and how many were left
    # out is not said either (one left out is one person's country). Grants' own currencies are the organisation's.
    shown = {key: cells for key, cells in sums.items()
             if key[1] != "fx_paid" or any(_published(month, people, pending)
                                           for (month, _category), (_minor, people) in cells.items())}
    seen_categories = {category for cells in shown.values() for _month, category in cells}
    categories = domain.columns(domain.CATEGORIES, seen_categories)

    def tables(stage: str, basis: str) -> dict[str, Any]:
        return {currency: disclosure.publish_amounts(cells, months, categories, digits.get(currency, 2),
                                                     pending=pending)
                for (s, b, currency), cells in sorted(shown.items()) if (s, b) == (stage, basis)}

    return {
        "approved": {"in_grant_currency": tables("approved", "grant")},
        # Approvals rejected or voided afterwards, in the month that happened: `approved` keeps every approval made
        # in its month, so that a published month does not change when one is withdrawn later.
        "released": {"in_grant_currency": tables("released", "grant")},
        "paid": {"in_grant_currency": tables("paid", "grant"),
                 "in_another_currency": {"as_received": tables("paid", "fx_paid"),
                                         "cost_in_grant_currency": tables("paid", "fx_grant")}},
        "note": ("a table per currency, never summed across currencies. paid.in_grant_currency: payments made in "
                 "the grant's own currency; paid.in_another_currency: payments made in another, as the person "
                 "received them and as what they cost the grant. A payment is in one group only, so that no "
                 "published sum is another's plus or minus a few people's aid. A currency received (as_received) "
                 "is shown once a month of it is published for five people or more in a category: the currency "
                 "alone would say where a few people live"),
        "pending_months": sorted(pending),
        "pending": (f"a month's sums are \"{disclosure.PENDING}\" until {_days_named(settling)} after it ends: "
                    "read twice while payments are still added, a sum would tell what was paid between the two "
                    "reads"),
    }


def _published(month: str, people: int | None, pending: set[str]) -> bool:
    """Whether a money cell is published: its month settled and five people or more in it."""
    return month not in pending and people is not None and people >= disclosure.SMALLEST_SHOWN


# ---- CSV ---------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ["section", "month", "dimension", "detail", "currency", "value"]


def programme_csv(report: dict[str, Any]) -> str:
    """One line per published number: easy to pivot in a spreadsheet. `month` is "total" for the whole period,
    `dimension` "all" for a month's total."""
    return csv_text(CSV_COLUMNS, _lines(report))


def _lines(report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from _table_lines("cases", report["cases"])
    needs = report["needs"]
    for name in ("assessed_by_category", *(f"{s}_by_category" for s in domain.NEED_MOVES)):
        yield from _table_lines(f"needs.{name}", needs[name])
    breakdown = needs["assessed_by_category_and_urgency"]
    for month, table in [*breakdown["by_month"].items(), ("total", breakdown["period"])]:
        if "cells" in table:
            for category, row in table["cells"].items():
                for urgency, value in row.items():
                    yield {"section": "needs.assessed_by_category_and_urgency", "month": month,
                           "dimension": category, "detail": urgency, "value": value}
    referrals = report["referrals"]
    for outcome, table in referrals["by_outcome"].items():
        yield from _table_lines(f"referrals.{outcome}", table)
    for span in domain.SPANS:
        days = referrals[f"days_{span}"]
        for month, by_category in [*days["by_month"].items(), ("total", days["period"])]:
            for category, quantiles in by_category.items():
                for name, value in quantiles.items():
                    yield {"section": f"referrals.days_{span}", "month": month, "dimension": category,
                           "detail": name, "value": value}
    yield from _money_lines("aid", report["aid"])


def _money_lines(section: str, tables: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The aid tables, however deep (`aid.paid.in_another_currency.as_received`, one table per currency)."""
    for name, value in tables.items():
        if not isinstance(value, dict):
            continue
        if value and all(isinstance(table, dict) and "cells" in table for table in value.values()):
            for currency, table in value.items():
                yield from _table_lines(f"{section}.{name}", table, currency=currency)
        else:
            yield from _money_lines(f"{section}.{name}", value)


def _table_lines(section: str, table: dict[str, Any], *, currency: str = "") -> Iterator[dict[str, Any]]:
    for month, row in table["cells"].items():
        for column, value in row.items():
            yield {"section": section, "month": month, "dimension": column, "currency": currency, "value": value}
        yield {"section": section, "month": month, "dimension": "all", "currency": currency,
               "value": table["row_totals"][month]}
    for column, value in table["column_totals"].items():
        yield {"section": section, "month": "total", "dimension": column, "currency": currency, "value": value}
    yield {"section": section, "month": "total", "dimension": "all", "currency": currency, "value": table["total"]}
