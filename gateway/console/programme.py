"""The programme report (SPEC §9, issue #20), for coordinators and finance: what the programme did in a period of
months — cases, needs, referrals and how fast partners took them, aid approved and paid — as the reports service
publishes it, small numbers already withheld there ("<5", "≥N"). The page draws it as tables and server-rendered
SVG charts (charts.py), every word and number in the visitor's language, and offers the same numbers as CSV.

The period is chosen with a POST form (the console puts nothing a person chose in a URL) and the CSV comes from a
POST too. The page shows nothing the reports service did not publish: it never adds two published numbers up, since
a sum of withheld numbers could say more than they do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from gateway.console import charts, i18n
from gateway.console.router import Answer, Visit, VisitDep, call, csv_download, render

router = APIRouter(include_in_schema=False)

PROGRAMME_PAGE = "/console/programme"
PROGRAMME_CSV = "/console/programme/csv"
REPORT = "/api/reports/programme"
READERS = ("coordinator", "finance")
MONTHS_OFFERED = 36  # the months one can choose from, the newest first
DEFAULT_MONTHS = 12
CASE_COLUMNS = ("opened", "closed", "erased")
OUTCOMES = ("sent", "accepted", "declined", "started", "completed", "cancelled")
NEED_MOVES = ("in_progress", "met", "dropped")

# What the reports service publishes for a month whose sums of money are withheld until it has settled
# (services/reports/disclosure.py: PENDING).
PENDING = "pending"


def reader(v: VisitDep) -> Visit:
    if not any(v.can(role) for role in READERS):
        raise HTTPException(403, "The programme report is for coordinators and finance.")
    return v


ReaderVisit = Annotated[Visit, Depends(reader)]


# --- the period -------------------------------------------------------------------------------------------------------

def months_offered(today: date) -> list[str]:
    """The last MONTHS_OFFERED months as "YYYY-MM", the newest first."""
    year, month, offered = today.year, today.month, []
    for _ in range(MONTHS_OFFERED):
        offered.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return offered


def chosen_period(first: str | None, last: str | None, today: date) -> tuple[str, str, bool]:
    """The period asked for, or the last twelve months; whether what was asked for could be used."""
    offered = months_offered(today)
    default = (offered[DEFAULT_MONTHS - 1], offered[0])
    if first is None and last is None:
        return (*default, True)
    if first in offered and last in offered and first <= last:  # type: ignore[operator]
        return first, last, True  # type: ignore[return-value]
    return (*default, False)


def month_name(month: str, language: str) -> str:
    """"2026-03" as the language writes a month of a year ("March 2026", «сакавік 2026», «март 2026»): the whole
    name, since it stands in sentences and choosers too, where «за сак 2026» reads as no word at all."""
    year, number = (int(part) for part in month.split("-"))
    return babel_dates.format_date(date(year, number, 1), "LLLL y", locale=language)


def month_only(month: str, language: str) -> str:
    """"2026-03" as the month alone, for a chart's label ("Mar", «сак», «март»): the year is written once under it."""
    year, number = (int(part) for part in month.split("-"))
    return babel_dates.format_date(date(year, number, 1), "LLL", locale=language)


# --- numbers as published -----------------------------------------------------------------------------------------

def figure(value: Any, language: str, currency: str | None = None, nothing_shown: str = "programme_not_shown") -> str:
    """A published number in the language: a count ("1 234"), an amount ("1 234,50 €"), a withheld count ("<5"),
    a total over withheld ones ("≥1 234"), an amount with too few payments behind it ("<5"), a month's amount not
    published yet ("pending"). `nothing_shown` words a total of which every number was withheld."""
    if value is None:
        return "—"
    if isinstance(value, str) and value.startswith("<"):
        return value
    if value == PENDING:
        return i18n.translator(language)("programme_pending")
    if isinstance(value, str) and value.startswith("≥"):
        if not Decimal(value[1:]):  # at least nothing: every number in it was withheld
            return i18n.translator(language)(nothing_shown)
        return "≥" + figure(value[1:], language, currency)
    if currency:
        return i18n.format_money(value, currency, language)
    if isinstance(value, float):
        return babel_numbers.format_decimal(value, "#,##0.0", locale=language)
    return babel_numbers.format_decimal(int(value), locale=language)


@dataclass
class Table:
    """A table as the page shows it: a caption, column headings, rows (a heading and its figures), a totals row."""

    id: str
    caption: str
    corner: str
    columns: list[str]
    rows: list[tuple[str, list[str]]] = field(default_factory=list)
    totals: tuple[str, list[str]] | None = None


def month_table(table_id: str, caption: str, published: dict[str, Any], columns: list[tuple[str, str]],
                v: Visit, currency: str | None = None, nothing_shown: str = "programme_not_shown") -> Table:
    """A published month × column table: a row per month with its total, and the period's totals under it."""
    t, language = i18n.translator(v.language), v.language
    shown = Table(table_id, caption, t("programme_month"), [label for _, label in columns] + [t("programme_all")])
    for month, cells in published["cells"].items():
        shown.rows.append((month_name(month, language),
                           [figure(cells.get(key, 0), language, currency) for key, _ in columns]
                           + [figure(row_total(published, month), language, currency, nothing_shown)]))
    shown.totals = (t("programme_total"),
                    [figure(published["column_totals"].get(key, 0), language, currency, nothing_shown)
                     for key, _ in columns] + [figure(published["total"], language, currency, nothing_shown)])
    return shown


def row_total(published: dict[str, Any], month: str) -> Any:
    """A month's total as published, or "pending" where every figure of the month is (its total, "≥0", would
    otherwise read as numbers withheld for being small)."""
    cells = published["cells"][month]
    return PENDING if cells and set(cells.values()) == {PENDING} else published["row_totals"][month]


def period_table(table_id: str, caption: str, rows: list[tuple[str, str]], columns: list[tuple[str, Any]],
                 v: Visit, currency: str | None = None, nothing_shown: str = "programme_not_shown") -> Table:
    """Whole-period figures: a row per category, a column per published table (its column totals)."""
    t, language = i18n.translator(v.language), v.language
    shown = Table(table_id, caption, t("programme_category"), [label for label, _ in columns])
    for key, label in rows:
        shown.rows.append((label, [figure(published["column_totals"].get(key, 0), language, currency, nothing_shown)
                                   for _, published in columns]))
    shown.totals = (t("programme_total"), [figure(published["total"], language, currency, nothing_shown)
                                           for _, published in columns])
    return shown


def bars_of(chart_id: str, title: str, description: str, published: dict[str, Any], column: str | None,
            v: Visit) -> Any:
    """A month's figure per bar: one column of a month table, or each month's total."""
    items = []
    for month, cells in published["cells"].items():
        value = cells.get(column, 0) if column else row_total(published, month)
        items.append(charts.Bar(month_only(month, v.language), value, figure(value, v.language), year=month[:4]))
    return charts.bars(chart_id, title, description, items)


def funnel_of(referrals: dict[str, Any], v: Visit) -> Any:
    t = i18n.translator(v.language)
    steps = []
    first = referrals["by_outcome"]["sent"]["total"]
    for outcome in ("sent", "accepted", "completed"):
        value = referrals["by_outcome"][outcome]["total"]
        shown = figure(value, v.language)
        if isinstance(value, int) and isinstance(first, int) and first and outcome != "sent":
            shown += f" ({babel_numbers.format_percent(value / first, locale=v.language)})"
        steps.append(charts.Step(t(f"programme_outcome_{outcome}"), value, shown))
    return charts.funnel("funnel", t("programme_funnel"), t("programme_funnel_desc"), steps)


def days_table(referrals: dict[str, Any], categories: list[tuple[str, str]], v: Visit) -> Table:
    t, language = i18n.translator(v.language), v.language
    spans = [("sent_to_accepted", "accepted"), ("sent_to_completed", "completed")]
    shown = Table("days", t("programme_days"), t("programme_category"),
                  [t(f"programme_days_{kind}_{q}") for _, kind in spans for q in ("p50", "p90")])
    for key, label in categories:
        figures = []
        for span, _ in spans:
            quantiles = referrals[f"days_{span}"]["period"].get(key, {})
            figures += [figure(quantiles.get(q), language) for q in ("p50", "p90")]
        shown.rows.append((label, figures))
    return shown


def sections(report: dict[str, Any], v: Visit) -> dict[str, Any]:
    """The report as the page shows it."""
    t = i18n.translator(v.language)
    needs, referrals, aid = report["needs"], report["referrals"], report["aid"]
    categories = [(key, t(f"category_{key}"))
                  for key in needs["assessed_by_category"]["column_totals"]]
    referral_categories = [(key, t(f"category_{key}"))
                           for key in referrals["by_outcome"]["sent"]["column_totals"]]
    case_columns = [(key, t(f"programme_case_{key}")) for key in CASE_COLUMNS]
    by_urgency = needs["assessed_by_category_and_urgency"]["period"]
    elsewhere = aid["paid"]["in_another_currency"]
    released = aid.get("released", {}).get("in_grant_currency", {})  # approvals rejected or voided afterwards
    currencies = sorted(set(aid["approved"]["in_grant_currency"]) | set(aid["paid"]["in_grant_currency"])
                        | set(elsewhere["cost_in_grant_currency"]) | set(released))
    empty = {"cells": {}, "row_totals": {}, "column_totals": {}, "total": 0}
    # A month still being paid has its sums withheld by the reports service: a total may then be "≥0" for that reason
    # and not only for small numbers, and the page says which months and why. So are its counts, while the month
    # still changes (`months_pending`).
    pending = [month for month in report["months"] if month in aid.get("pending_months", ())]
    nothing_shown = "programme_not_shown_or_pending" if pending else "programme_not_shown"
    counts_pending = [month for month in report["months"] if month in report.get("pending_months", ())]
    counted = "programme_not_shown_or_pending" if counts_pending else "programme_not_shown"
    aid_tables = [period_table(
        f"aid-{currency}", t("programme_aid_in").format(currency=currency), categories_of(aid, currency, t),
        [(t("programme_approved"), aid["approved"]["in_grant_currency"].get(currency, empty)),
         *([(t("programme_released"), released[currency])] if currency in released else []),
         (t("programme_paid"), aid["paid"]["in_grant_currency"].get(currency, empty)),
         (t("programme_paid_fx_cost"), elsewhere["cost_in_grant_currency"].get(currency, empty))], v, currency,
        nothing_shown)
        for currency in currencies]
    paid_elsewhere = [period_table(
        f"aid-paid-{currency}", t("programme_aid_received_in").format(currency=currency),
        [(key, t(f"category_{key}")) for key in published["column_totals"]],
        [(t("programme_paid"), published)], v, currency, nothing_shown)
        for currency, published in sorted(elsewhere["as_received"].items())]
    return {
        "cases_chart": bars_of("cases-chart", t("programme_cases_chart"), t("programme_chart_desc"),
                               report["cases"], "opened", v),
        "cases": month_table("cases", t("programme_cases_table"), report["cases"], case_columns, v,
                             nothing_shown=counted),
        "needs": month_table("needs", t("programme_needs_table"), needs["assessed_by_category"], categories, v,
                             nothing_shown=counted),
        "needs_outcomes": period_table("needs-outcomes", t("programme_needs_outcomes"), categories, [
            (t("programme_assessed"), needs["assessed_by_category"]),
            *[(t(f"programme_need_{move}"), needs[f"{move}_by_category"]) for move in NEED_MOVES]], v,
            nothing_shown=counted),
        "urgency": urgency_table(by_urgency, v) if "cells" in by_urgency else None,
        "referrals_chart": bars_of("referrals-chart", t("programme_referrals_chart"), t("programme_chart_desc"),
                                   referrals["by_outcome"]["sent"], None, v),
        "funnel": funnel_of(referrals, v),
        "referrals": period_table("referrals", t("programme_referrals_table"), referral_categories, [
            (t(f"programme_outcome_{outcome}"), referrals["by_outcome"][outcome]) for outcome in OUTCOMES], v,
            nothing_shown=counted),
        "days": days_table(referrals, referral_categories, v),
        "aid": aid_tables,
        "months_pending": t("programme_months_pending").format(
            months=", ".join(month_name(month, v.language) for month in counts_pending)) if counts_pending else None,
        "aid_pending": t("programme_aid_pending").format(
            months=", ".join(month_name(month, v.language) for month in pending)) if pending else None,
        "paid_elsewhere": paid_elsewhere,
    }


def categories_of(aid: dict[str, Any], currency: str, t: Any) -> list[tuple[str, str]]:
    keys: list[str] = []
    for tables in (aid["approved"]["in_grant_currency"], aid["paid"]["in_grant_currency"],
                   aid["paid"]["in_another_currency"]["cost_in_grant_currency"],
                   aid.get("released", {}).get("in_grant_currency", {})):
        for key in tables.get(currency, {}).get("column_totals", {}):
            if key not in keys:
                keys.append(key)
    return [(key, t(f"category_{key}")) for key in keys]


def urgency_table(published: dict[str, Any], v: Visit) -> Table:
    """Needs by category and urgency over the period, when the reports service could show it (every month's cells
    0 or at least five)."""
    t = i18n.translator(v.language)
    urgencies = list(published["column_totals"])
    return Table("urgency", t("programme_urgency_table"), t("programme_category"),
                 [t(f"programme_urgency_{key}") for key in urgencies],
                 [(t(f"category_{category}"), [figure(row.get(key, 0), v.language) for key in urgencies])
                  for category, row in published["cells"].items()])


# --- the page ---------------------------------------------------------------------------------------------------------

async def _page(v: Visit, first: str | None, last: str | None) -> Response:
    t = i18n.translator(v.language)
    today = date.today()
    first, last, usable = chosen_period(first, last, today)
    answer = await call(v, "GET", REPORT, params={"from": first, "to": last, "format": "json"})
    shown = sections(answer.body, v) if answer.ok else None
    problem = None if usable else t("programme_bad_period")
    if not answer.ok:
        problem = refused(answer, t)
    return render(v.request, "programme.html", visit_=v, status=200 if answer.ok else answer.status,
                  offered=[(month, month_name(month, v.language)) for month in months_offered(today)],
                  first=first, last=last, period=t("programme_period").format(
                      first=month_name(first, v.language), last=month_name(last, v.language)),
                  shown=shown, problem=problem, bad_period=not usable)


def refused(answer: Answer, t: Any) -> str:
    if answer.status == 403:
        return t("programme_forbidden")
    if answer.status in (502, 503, 504):
        return t("programme_unavailable")
    return t("programme_failed").format(status=answer.status)


@router.get(PROGRAMME_PAGE, response_class=HTMLResponse)
async def programme_page(v: ReaderVisit) -> Response:
    return await _page(v, None, None)


async def typed_period(v: Visit) -> tuple[str, str]:
    """The months chosen in the form (its CSRF token was checked on the way in, `router.visit`)."""
    form = await v.request.form()
    return str(form.get("from", "")), str(form.get("to", ""))


@router.post(PROGRAMME_PAGE, response_class=HTMLResponse)
async def programme_period(v: ReaderVisit) -> Response:
    return await _page(v, *await typed_period(v))


@router.post(PROGRAMME_CSV)
async def programme_csv(v: ReaderVisit) -> Response:
    first, last, _ = chosen_period(*await typed_period(v), date.today())
    answer = await call(v, "GET", REPORT, params={"from": first, "to": last, "format": "csv"})
    if not answer.ok:
        raise HTTPException(answer.status, "The report is not available.")
    return csv_download(answer.text, f"programme-{first}-{last}.csv")
