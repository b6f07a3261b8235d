"""The finance pages of the staff console (issue #19): grants with their budget bars and a form to create one, each
grant's page with its disbursements and its donor report, and the disbursement queue.

The queue shows each request as finance needs it to decide: the case's reference, the grant, category, purpose,
amount, who asked and when, and the payee masked — the kind of account and its last four characters — until the
officer presses "Show payee": a POST whose answer (`Cache-Control: no-store`, never a redirect or an address) shows
the payee, read from funds with the read it records as `payee.read` in its audit trail. The purposes are read one
disbursement at a time with the payee masked (`?payee=masked`), each read audited by funds as `disbursement.read`.
Approve is never offered on one's own request (four-eyes, said in words beside the disabled button); reject and void
release an approved amount; pay takes a method and a reference. Every form carries an Idempotency-Key made when the
page was rendered, so a double click pays once.

Paid in another currency (issue #20): the pay form's "Paid in another currency" part takes the currency, the amount the
person received, the rate and its source. When that is worth another amount than was approved, funds refuses it
(409 `fx-difference`) and the form comes back with the numbers in words and one choice — give the rest back to the
grant, or approve the extra — to tick before paying again, under a new key: nothing is ever settled silently. A paid
disbursement shows both amounts; the donor report shows what was paid in each currency.

The pages ask funds over HTTP with the officer's own token (`router.call`), so funds checks the finance role itself
(this module checks it first: a caseworker is answered 403). Funds' refusals are said in the visitor's language, next
to the disbursement or the field they are about, never as funds' English or its field paths. Addresses carry ids and
fixed words only (`?status=paid`, `?done=approved`, a cursor): nothing typed.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from gateway.console import i18n
from gateway.console.programme import month_name, months_offered
from gateway.console.router import (
    CATEGORIES,
    CSP,
    ERROR_WORDS,
    PAYMENT_METHODS,
    PROBLEM_WORDS,
    Answer,
    Visit,
    VisitDep,
    call,
    csv_download,
    every_page,
    items,
    key_for_retry,
    render,
    resend_of,
    staff_names,
)

router = APIRouter(include_in_schema=False)

GRANTS_PAGE = "/console/grants"
QUEUE_PAGE = "/console/disbursements"
# Grants are read whole, in pages of funds' largest; an NGO holds a few dozen, this bounds it.
GRANT_PAGES, GRANT_PAGE_SIZE = 5, 200
QUEUE_SHOWN = 50  # per status, newest first; the rest behind "next page"
GRANT_DISBURSEMENTS_SHOWN = 50
DETAIL_LOOKUPS = 8  # how many of funds' answers about single disbursements the queue waits for at once
CURRENCIES = i18n.CURRENCIES
STATUSES = ("requested", "approved", "paid", "rejected", "voided")  # `?status=`: one of them alone
TO_DO = ("requested", "approved")  # the queue without `?status=`: what waits for finance
ACTIONS = {"approve": "approved", "reject": "rejected", "void": "voided", "pay": "paid"}
STEP_WORDS = {"approve": "approve", "reject": "reject", "void": "fin_void", "pay": "pay"}  # each step's button
GRANT_FIELDS = ("donor", "code", "currency", "amount", "starts_on", "ends_on", "categories")
# The pay form's "Paid in another currency" fields, and funds' names for them inside the body's `paid`.
FX_FIELDS = ("paid_currency", "paid_amount", "fx_rate", "fx_source")
FX_FIELD_OF = {"currency": "paid_currency", "amount": "paid_amount", "fx_rate": "fx_rate", "fx_source": "fx_source"}
FX_DECISIONS = ("release", "approve")
# The pay form's fields shown back when funds stopped answering (the queue can not draw the form): each with its label.
PAYMENT_KEPT = {"method": "pay_method", "reference": "pay_reference", "paid_currency": "fx_currency",
                "paid_amount": "fx_amount", "fx_rate": "fx_rate", "fx_source": "fx_source"}
# A payment worth more than a tenth off its approval, either way (funds' domain.check_difference_bound).
FX_TOO_FAR = {"fx-extra-too-large": "fx_refused_extra_too_large",
              "fx-release-too-large": "fx_refused_release_too_large"}
# A refused FX field's words when pydantic's kind of error says no more than "not valid" (router.ERROR_WORDS first).
FX_FIELD_WORDS = {"paid_currency": "fin_error_currency", "fx_rate": "fx_error_rate", "fx_source": "fx_error_source"}
# Funds' 422 refusals of a payment in another currency, by the field each is about.
FX_INVALID = {"fx-same-currency": ("paid_currency", "fx_error_same_currency"),
              "fx-converts-to-nothing": ("paid_amount", "fx_error_nothing")}

# What a step did, named in the address it redirects to (`?done=`): fixed words only, each an i18n key.
DONE = {"created": "fin_done_created", "requested": "fin_done_requested", "approved": "fin_done_approved",
        "rejected": "fin_done_rejected", "voided": "fin_done_voided", "paid": "fin_done_paid"}
# Funds' refusals by problem type, said of a disbursement in the officer's words (some filled in with the grant and
# the amount); a kind not here is said as on any other page (router.PROBLEM_WORDS).
REFUSALS = {
    "four-eyes": "fin_refused_four_eyes", "own-case": "fin_refused_own_case",
    "already-paid": "fin_refused_already_paid",
    "invalid-transition": "fin_refused_changed", "concurrent-change": "fin_refused_changed",
    "grant-funds-short": "fin_refused_funds_short", "grant-period": "fin_refused_grant_period",
    "grant-category": "fin_refused_grant_category", "currency-mismatch": "fin_refused_currency",
    "case-closed": "fin_refused_case_closed", "case-erased": "fin_refused_case_erased",
    "case-duplicate": "fin_refused_case_duplicate", "case-unknown": "fin_refused_case_unknown",
    "not-found": "fin_refused_not_found", "idempotency-key-in-flight": "fin_refused_in_flight",
    "idempotency-key-reused": "fin_refused_key_reused",
    "estimate-already-requested": "est_refused_requested", "estimate-category": "est_refused_category",
}
# A grant field's error when pydantic's kind of error says no more than "not valid" (router.ERROR_WORDS first).
GRANT_FIELD_WORDS = {"code": "fin_error_code", "currency": "fin_error_currency", "ends_on": "fin_error_ends_on",
                     "categories": "fin_error_categories", "donor": "fin_error_donor"}


async def finance_visit(v: VisitDep) -> Visit:
    """A signed-in member of the finance staff; anyone else is answered 403 before funds is asked anything."""
    if not v.can("finance"):
        raise HTTPException(403, "Only finance staff may open the finance pages.")
    return v


FinanceVisit = Annotated[Visit, Depends(finance_visit)]


def uuid_or_404(value: str, what: str) -> str:
    """An id is a UUID; anything else names nothing (404, as an unknown id)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(404, f"There is no such {what}.") from None


def redirect_done(path: str, done: str, **fixed: str | None) -> RedirectResponse:
    """Back to a finance page, saying what happened by a fixed word (and keeping a fixed status filter)."""
    assert done in DONE, done
    query = urlencode({**{key: value for key, value in fixed.items() if value}, "done": done})
    return RedirectResponse(f"{path}?{query}", status_code=303,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


def _notice(v: Visit) -> str | None:
    return DONE.get(v.request.query_params.get("done", ""))


def with_typed_payee(body: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """A disbursement request's body with the payee the form's `payee_name` and `payee_account` give, sent only when
    one of them was typed. Without one the money goes to the person themselves: a payee is approved with the request
    (where the money goes is part of what the second person approves) and is never added later."""
    payee = {"name": form.get("payee_name", "").strip(), "account": form.get("payee_account", "").strip()}
    return {**body, "payee": payee} if any(payee.values()) else body


# --- money as people type it and as the pages show it ------------------------------------------------------------

def typed_rate(text: str) -> str:
    """An exchange rate as people type it — "4,3000", " 4.3 " — as funds reads it: "4.3000", "4.3". Anything else goes
    as typed, for funds to refuse (and the page to say why next to the field)."""
    compact = re.sub(r"[\s\u00a0\u202f]", "", text)
    return compact.replace(",", ".") if re.fullmatch(r"[0-9]+([.,][0-9]+)?", compact) else text.strip()


def rate_in_words(value: Any, language: str) -> str:
    """An exchange rate as written, with the language's decimal mark ("4,25" in be and ru)."""
    return str(value) if language == "en" else str(value).replace(".", ",")


def rate_example(language: str) -> str:
    return "4.3000" if language == "en" else "4,3000"


def payment_body(typed: dict[str, str], language: str = "en") -> dict[str, Any]:
    """The pay form as funds' body: method and reference, and — when any of its fields was filled in — what was paid
    in another currency, with the difference decision ticked (if any). Part of it filled in goes all the same, so
    that funds refuses what is missing rather than the payment being made in the grant's currency unnoticed."""
    body: dict[str, Any] = {"method": typed["method"], "reference": typed["reference"]}
    if any(typed.get(name) for name in FX_FIELDS):
        currency = typed.get("paid_currency", "")
        body["paid"] = {"currency": currency, "fx_source": typed.get("fx_source", ""),
                        "amount": i18n.typed_amount(typed.get("paid_amount", ""), currency, language)
                        if currency in CURRENCIES
                        else typed.get("paid_amount", ""), "fx_rate": typed_rate(typed.get("fx_rate", ""))}
        if typed.get("difference") in FX_DECISIONS:
            body["difference"] = typed["difference"]
    return body


def amount_example(currency: str, language: str) -> str:
    """How an amount is typed in this currency and language: "300.00", "300,00", "300" (yen)."""
    digits = i18n.minor_digits(currency)
    return "300" + (("." if language == "en" else ",") + "0" * digits if digits else "")


def amount_error(currency: str, language: str) -> str:
    """What a refused amount in this currency is said as, with how to write one: "like 300.00", "like 300" (yen)."""
    t = i18n.translator(language)
    whole = i18n.minor_digits(currency) == 0
    return (t("fin_error_amount_whole") if whole else t("fin_error_amount")).format(
        example=amount_example(currency, language))


def percent(share: Decimal, language: str) -> str:
    """A share of the budget as the locale writes a percentage: "12.5%", "12,5 %"."""
    text = f"{share.quantize(Decimal('0.1')).normalize():f}"
    return f"{text}%" if language == "en" else f"{text.replace('.', ',')}\u00a0%"


def bar_parts(grant: dict[str, Any]) -> list[tuple[str, Decimal]]:
    """Shares of the budget for the bar, in percent: paid, committed, available (exact decimals, summing to 100)."""
    try:
        budget = Decimal(grant["budget"])
        parts = [(name, Decimal(grant[name])) for name in ("paid", "committed", "available")]
    except (KeyError, InvalidOperation, TypeError):
        return []
    if budget <= 0:
        return []
    return [(name, 100 * value / budget) for name, value in parts]


def grant_state(grant: dict[str, Any], today: date) -> str:
    """Whether aid may be approved from the grant today: `running`, `ended` or `not_started` (an i18n key's end)."""
    if str(grant.get("ends_on", "")) < today.isoformat():
        return "ended"
    if str(grant.get("starts_on", "")) > today.isoformat():
        return "not_started"
    return "running"


def _today() -> date:
    return datetime.now(UTC).date()


def _page_tools(v: Visit) -> dict[str, Any]:
    """What every finance page's template uses besides `render`'s own: the bar, a grant's state, a month in words."""
    language = v.language if v.language in i18n.STAFF_LANGUAGES else i18n.DEFAULT
    t = i18n.translator(language)

    def bar_label(parts: list[tuple[str, Decimal]]) -> str:
        return t("fin_bar_label").format(**{name: percent(share, language) for name, share in parts})

    def month(value: str) -> str:
        year, _, number = str(value).partition("-")
        return f"{t('fin_month_' + str(int(number)))} {year}" if number.isdigit() and 1 <= int(number) <= 12 else value

    def nonzero(value: str | None) -> bool:
        try:
            return Decimal(str(value)) != 0
        except InvalidOperation:
            return False

    return {"bar_parts": bar_parts, "bar_label": bar_label, "width": lambda share: f"{share:.2f}",
            "state": lambda grant: grant_state(grant, _today()), "month": month, "short": lambda value: value[:8],
            "rate": lambda value: rate_in_words(value, language), "nonzero": nonzero}


# --- grants ------------------------------------------------------------------------------------------------------

async def all_grants(v: Visit) -> tuple[list[dict[str, Any]], bool, Answer]:
    """Every grant (newest first), whether more exist than were read, and the last answer (its problem, if any)."""
    return await every_page(v, "/api/funds/grants", pages=GRANT_PAGES, page_size=GRANT_PAGE_SIZE)


def _fresh_grant_form() -> dict[str, Any]:
    return {"currency": "EUR", "starts_on": _today().isoformat(), "categories": [],
            "idempotency_key": str(uuid.uuid4())}


@router.get(GRANTS_PAGE, response_class=HTMLResponse)
async def grants_page(v: FinanceVisit) -> Response:
    return await _grants(v, form=_fresh_grant_form(), notice=_notice(v))


@router.post(GRANTS_PAGE, response_class=HTMLResponse)
async def create_grant(v: FinanceVisit) -> Response:
    """Create a grant under the form's Idempotency-Key (a double click creates one); its page is the answer."""
    submitted = await v.request.form()
    form: dict[str, Any] = {name: str(submitted.get(name, "")).strip() for name in GRANT_FIELDS if name != "categories"}
    form["categories"] = [str(c) for c in submitted.getlist("categories") if str(c) in CATEGORIES]
    body: dict[str, Any] = {name: value for name, value in form.items() if value not in ("", [])}
    body["categories"] = form["categories"]
    if form["amount"]:
        body["amount"] = i18n.typed_amount(form["amount"], form["currency"], v.language)
    answer = await call(v, "POST", "/api/funds/grants", json=body,
                        idempotency_key=str(submitted.get("idempotency_key", "")) or str(uuid.uuid4()))
    if answer.ok:
        return redirect_done(f"{GRANTS_PAGE}/{answer.body['id']}", "created")
    t = i18n.translator(v.language)
    errors = _grant_errors(v, answer, form["currency"])
    if answer.kind == "grant-code-taken":
        errors["code"] = t("fin_error_code_taken")
    # The form comes back as typed: under a new key after a refusal, under the same one when funds may have done it.
    form["idempotency_key"] = key_for_retry(answer, submitted.get("idempotency_key"))
    return await _grants(v, form=form, errors=errors, status=answer.status,
                         problem=t("fields_wrong") if errors else said(v, answer))


async def _grants(v: Visit, *, form: dict[str, Any], errors: dict[str, str] | None = None, status: int = 200,
                  notice: str | None = None, problem: str | None = None) -> Response:
    grants, more, last = await all_grants(v)
    # A list funds did not give (all of it, or the pages after the first) is said so, never as no grants.
    unshown = last is not None and not last.ok
    return render(v.request, "finance_grants.html", visit_=v, status=status, grants=grants, more_grants=more,
                  grants_unshown=unshown,
                  form=form, errors=errors or {}, categories=CATEGORIES, currencies=CURRENCIES, notice=notice,
                  problem=problem or (said(v, last) if last is not None and not last.ok else None),
                  **_page_tools(v))


def _grant_errors(v: Visit, answer: Answer, currency: str) -> dict[str, str]:
    """A 422's issues by the grant form's field each is about, in the visitor's words (never funds' English)."""
    t = i18n.translator(v.language)
    issues = answer.body.get("errors") if answer.status == 422 and isinstance(answer.body, dict) else None
    errors: dict[str, str] = {}
    for issue in issues if isinstance(issues, list) else []:
        where = [str(part) for part in issue.get("loc", [])][1:]  # after "body"
        if not where or where[0] not in GRANT_FIELDS:
            continue
        field, kind = where[0], str(issue.get("type"))
        if field == "amount" and kind not in ERROR_WORDS:
            words = amount_error(currency, v.language)
        else:
            words = t(ERROR_WORDS.get(kind) or GRANT_FIELD_WORDS.get(field) or "error_invalid")
        errors.setdefault(field, words)
    return errors


@router.get(GRANTS_PAGE + "/{grant_id}", response_class=HTMLResponse)
async def grant_page(grant_id: str, v: FinanceVisit, cursor: str | None = None) -> Response:
    """One grant: its numbers and bar, its terms, its disbursements (newest first, a page at a time)."""
    grant_id = uuid_or_404(grant_id, "grant")
    grant, listed = await asyncio.gather(
        call(v, "GET", f"/api/funds/grants/{grant_id}"),
        call(v, "GET", "/api/funds/disbursements",
             params={"grant_id": grant_id, "limit": GRANT_DISBURSEMENTS_SHOWN, "cursor": cursor}))
    if grant.status == 404:
        raise HTTPException(404, "There is no such grant.")
    disbursements = items(listed)
    next_cursor = listed.body.get("next_cursor") if listed.ok else None
    return render(v.request, "finance_grant.html", visit_=v, status=grant.status if not grant.ok else 200,
                  grant=grant.body if grant.ok else None, disbursements=disbursements, unshown=not listed.ok,
                  names=staff_names(v, {d["requested_by"] for d in disbursements}),
                  next_link=f"{GRANTS_PAGE}/{grant_id}?{urlencode({'cursor': next_cursor})}" if next_cursor else None,
                  notice=_notice(v), problem=said(v, grant) if not grant.ok else said(v, listed) if not listed.ok
                  else None, **_page_tools(v))


async def _donor_page(v: Visit, grant_id: str, as_of: str | None) -> Response:
    grant_id = uuid_or_404(grant_id, "grant")
    params = {"grant_id": grant_id, **({"as_of": as_of} if as_of else {})}
    report = await call(v, "GET", "/api/funds/reports/donor", params=params)
    if report.status == 404:
        raise HTTPException(404, "There is no such grant.")
    problem = None
    if not report.ok:
        problem = (i18n.translator(v.language)("fin_donor_month_not_settled") if report.kind == "month-not-settled"
                   else said(v, report))
    offered = months_offered(date.today())  # this one included: funds says in words when it has not settled
    chosen = report.body.get("as_of") if report.ok else as_of
    return render(v.request, "finance_donor_report.html", visit_=v, status=report.status,
                  report=report.body if report.ok else None, grant_id=grant_id, as_of=chosen,
                  months=[(month, month_name(month, v.language)) for month in offered],
                  problem=problem, **_page_tools(v))


@router.get(GRANTS_PAGE + "/{grant_id}/donor-report", response_class=HTMLResponse)
async def donor_report(grant_id: str, v: FinanceVisit) -> Response:
    """What the donor may see (funds' donor report: no case identity, no count below five), as of the end of the
    last month that has settled."""
    return await _donor_page(v, grant_id, None)


async def _chosen_month(v: Visit) -> str | None:
    """The month chosen in the form (its CSRF token was checked on the way in): one of those offered, or none."""
    form = await v.request.form()
    month = str(form.get("as_of", ""))
    return month if month in months_offered(date.today()) else None


@router.post(GRANTS_PAGE + "/{grant_id}/donor-report", response_class=HTMLResponse)
async def donor_report_of_month(grant_id: str, v: FinanceVisit) -> Response:
    """The donor statement as of the end of the month chosen (a POST form: nothing chosen goes in a URL)."""
    return await _donor_page(v, grant_id, await _chosen_month(v))


@router.get(GRANTS_PAGE + "/{grant_id}/donor-report.csv")
async def donor_report_csv(grant_id: str, v: FinanceVisit) -> Response:
    grant_id = uuid_or_404(grant_id, "grant")
    return _download(await call(v, "GET", "/api/funds/reports/donor", params={"grant_id": grant_id, "format": "csv"}),
                     "donor-report.csv")


@router.post(GRANTS_PAGE + "/{grant_id}/donor-report.csv")
async def donor_report_csv_of_month(grant_id: str, v: FinanceVisit) -> Response:
    grant_id = uuid_or_404(grant_id, "grant")
    as_of = await _chosen_month(v)
    params = {"grant_id": grant_id, "format": "csv", **({"as_of": as_of} if as_of else {})}
    return _download(await call(v, "GET", "/api/funds/reports/donor", params=params), "donor-report.csv")


@router.get("/console/reports/grants.csv")
async def grants_report_csv(v: FinanceVisit) -> Response:
    return _download(await call(v, "GET", "/api/funds/reports/grants", params={"format": "csv"}),
                     "grants-report.csv")


def _download(answer: Answer, filename: str) -> Response:
    """Funds' CSV as an attachment, under funds' own file name (made safe there) or ours."""
    if not answer.ok:
        raise HTTPException(answer.status, "The report is not available.")
    return csv_download(answer.text, filename, (answer.headers or {}).get("content-disposition"))


# --- the disbursement queue --------------------------------------------------------------------------------------

@router.get(QUEUE_PAGE, response_class=HTMLResponse)
async def queue_page(v: FinanceVisit, status: str | None = None, cursor: str | None = None) -> Response:
    return await _queue(v, shown=status, cursor=cursor, notice=_notice(v))


@router.post(QUEUE_PAGE + "/{disbursement_id}/payee", response_class=HTMLResponse)
async def show_payee(disbursement_id: str, v: FinanceVisit) -> Response:
    """The payee of one disbursement, in this answer alone: funds records the read (`payee.read`)."""
    disbursement_id = uuid_or_404(disbursement_id, "disbursement")
    shown, cursor = await _where(v)
    answer = await call(v, "GET", f"/api/funds/disbursements/{disbursement_id}")
    if answer.ok and answer.body.get("payee"):
        return await _queue(v, shown=shown, cursor=cursor, revealed={disbursement_id: answer.body["payee"]})
    return await _queue(v, shown=shown, cursor=cursor, status=answer.status if not answer.ok else 200,
                        failed={"id": disbursement_id, "answer": answer} if not answer.ok else None)


@router.post(QUEUE_PAGE + "/{disbursement_id}/{action}", response_class=HTMLResponse)
async def act_on_disbursement(disbursement_id: str, action: str, v: FinanceVisit) -> Response:
    """Approve, reject, void or pay, under the Idempotency-Key the form was rendered with: sent twice, done once."""
    if action not in ACTIONS:
        raise HTTPException(404, "There is no such action.")
    disbursement_id = uuid_or_404(disbursement_id, "disbursement")
    form = await v.request.form()
    shown, cursor = await _where(v)
    body = None
    typed: dict[str, str] = {}
    if action == "pay":
        typed = {"method": str(form.get("method", "")), "reference": str(form.get("reference", "")).strip(),
                 **{name: str(form.get(name, "")).strip() for name in FX_FIELDS},
                 "difference": str(form.get("difference", ""))}
        body = payment_body(typed, v.language)
    answer = await call(v, "POST", f"/api/funds/disbursements/{disbursement_id}/{action}", json=body,
                        idempotency_key=str(form.get("idempotency_key", "")) or str(uuid.uuid4()))
    if answer.ok:
        return redirect_done(QUEUE_PAGE, ACTIONS[action], status=shown)
    return await _queue(v, shown=shown, cursor=cursor, status=answer.status,
                        failed={"id": disbursement_id, "action": action, "answer": answer, "typed": typed},
                        **await _to_send_again(v, answer, action, typed))


async def _to_send_again(v: Visit, answer: Answer, action: str, typed: dict[str, str]) -> dict[str, Any]:
    """After funds stopped answering (504: the step may or may not be done), the step as it was sent, to send again
    under its own key (done once either way), and what its pay form held, shown back: the queue answered with it
    can not be drawn while funds is stalled, and the row's form went with it."""
    if answer.status != 504:
        return {}
    t = i18n.translator(v.language)
    kept = [(label, t(f"fin_method_{typed[name]}") if name == "method" and typed[name] in PAYMENT_METHODS
             else typed[name]) for name, label in PAYMENT_KEPT.items() if typed.get(name)]
    # Which step it was, in its button's words: the queue, and the row it was taken on, are not drawn.
    return {"resend": await resend_of(v.request), "typed_short": kept, "resend_step": t(STEP_WORDS[action])}


async def _where(v: Visit) -> tuple[str | None, str | None]:
    """The queue's filter and page a form was sent from (hidden fields), to answer on the same view."""
    form = await v.request.form()
    shown = str(form.get("status", ""))
    return (shown if shown in STATUSES else None), (str(form.get("cursor", "")) or None)


async def _queue(v: Visit, *, shown: str | None, cursor: str | None, revealed: dict[str, dict] | None = None,
                 failed: dict[str, Any] | None = None, notice: str | None = None, status: int = 200,
                 resend: dict[str, Any] | None = None, typed_short: list[tuple[str, str]] | None = None,
                 resend_step: str | None = None) -> Response:
    """The queue: without a filter, what waits for finance (requested, then approved); with one, that status alone,
    a page at a time. `revealed`: the payee just asked for; `failed`: a step just refused, said beside its
    disbursement (and at the top) with what was typed kept; `resend` and `typed_short`: a step whose outcome is
    unknown, to send again, and what its form held (`_to_send_again`)."""
    shown = shown if shown in STATUSES else None
    statuses = (shown,) if shown else TO_DO
    listed = await asyncio.gather(*(call(v, "GET", "/api/funds/disbursements", params={
        "status": s, "limit": QUEUE_SHOWN, "cursor": cursor if shown else None}) for s in statuses))
    (grants, _more, grants_answer), details = await asyncio.gather(
        all_grants(v), _details(v, [d["id"] for answer in listed for d in items(answer)]))
    by_grant = {g["id"]: g for g in grants}
    sections = []
    for name, answer in zip(statuses, listed, strict=True):
        next_cursor = answer.body.get("next_cursor") if answer.ok else None
        # A group funds did not give is said as cannot be shown, never as empty ("nothing left to pay").
        sections.append({"status": name, "items": [{**d, **details.get(d["id"], {})} for d in items(answer)],
                         "unshown": not answer.ok,
                         "next_link": f"{QUEUE_PAGE}?{urlencode({'status': name, 'cursor': next_cursor})}"
                         if next_cursor else None})
    everything = [d for section in sections for d in section["items"]]
    people = {d.get(k) for d in everything for k in ("requested_by", "approved_by", "rejected_by", "voided_by",
                                                     "paid_by")}
    refused = None
    if failed:
        about = next((d for d in everything if d["id"] == failed["id"]), None)
        grant = by_grant.get((about or {}).get("grant_id"))
        refused = {**failed, "said": said(v, failed["answer"], about, grant),
                   "field": "reference" if about_reference(failed["answer"]) else None}
        if failed.get("action") == "pay":
            refused.update(fx_refusal(v, failed["answer"], failed.get("typed") or {}, grant))
    problems = [said(v, answer) for answer in (*listed, grants_answer) if answer is not None and not answer.ok]
    return render(v.request, "finance_queue.html", visit_=v, status=status, sections=sections, shown=shown,
                  statuses=STATUSES, cursor=cursor or "", grants=by_grant, names=staff_names(v, people - {None}),
                  revealed=revealed or {}, failed=refused, methods=PAYMENT_METHODS, notice=notice,
                  currencies=CURRENCIES, rate_example=rate_example(v.language),
                  new_key=lambda: str(uuid.uuid4()), resend=resend, typed_short=typed_short or [],
                  resend_step=resend_step,
                  typed_explained="typed_kept_timeout",
                  problem=(refused["said"] if refused else None) or (problems[0] if problems else None),
                  **_page_tools(v))


async def _details(v: Visit, disbursement_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each disbursement's purpose and masked payee (`?payee=masked`): funds audits each read."""
    bound = asyncio.Semaphore(DETAIL_LOOKUPS)

    async def read(disbursement_id: str) -> Answer:
        async with bound:
            return await call(v, "GET", f"/api/funds/disbursements/{disbursement_id}", params={"payee": "masked"})

    answers = await asyncio.gather(*(read(i) for i in disbursement_ids))
    return {answer.body["id"]: answer.body for answer in answers if answer.ok and isinstance(answer.body, dict)}


def said(v: Visit, answer: Answer, disbursement: dict[str, Any] | None = None,
         grant: dict[str, Any] | None = None) -> str | None:
    """Why funds refused, in the visitor's language: by its kind of problem, filled in with the grant and the amount
    where the sentence names them; a refusal the console does not know, by its status alone."""
    if answer.ok:
        return None
    t = i18n.translator(v.language)
    kind = answer.kind or ("forbidden" if answer.status == 403 else "")
    key = REFUSALS.get(kind)
    if key is None:
        if answer.status == 503:
            return t("fin_refused_unavailable")
        if answer.status == 422:
            return t("fin_error_reference") if about_reference(answer) else t("fields_wrong")
        if kind in PROBLEM_WORDS:
            return t(PROBLEM_WORDS[kind])
        return t("fin_refused_other").format(status=answer.status)
    if key in ("fin_refused_funds_short", "fin_refused_grant_period", "fin_refused_grant_category"):
        if disbursement is None or grant is None:
            return answer.problem  # its numbers are in funds' words only
        return t(key).format(
            code=grant["code"], available=i18n.format_money(grant["available"], grant["currency"], v.language),
            amount=i18n.format_money(disbursement["amount"], disbursement["currency"], v.language),
            start=i18n.format_date(grant["starts_on"], v.language), end=i18n.format_date(grant["ends_on"], v.language),
            category=t("category_" + disbursement["category"]))
    return t(key)


def about_reference(answer: Answer) -> bool:
    """Whether funds refused a payment's reference (a 422 about that field)."""
    issues = answer.body.get("errors") if answer.status == 422 and isinstance(answer.body, dict) else None
    return any(isinstance(issue, dict) and "reference" in [str(p) for p in issue.get("loc", [])]
               for issue in issues or [])


def fx_refusal(v: Visit, answer: Answer, typed: dict[str, str], grant: dict[str, Any] | None) -> dict[str, Any]:
    """What a refused payment in another currency changes in the card: `said` in words with funds' numbers (the
    difference to decide, the four-eyes rule or the grant's money for an extra), `fx_needed` and `fx_choice` (the
    one decision that settles a difference, to tick), `fx_errors` (a refused field's words beside it)."""
    t = i18n.translator(v.language)
    problem = answer.body if isinstance(answer.body, dict) else {}
    if answer.kind == "fx-difference" and problem.get("decision_needed") in FX_DECISIONS:
        currency = str(problem.get("currency", ""))
        money = {name: i18n.format_money(problem.get(f"{name}_amount" if name != "difference" else name), currency,
                                         v.language) for name in ("approved", "converted", "difference")}
        needed = problem["decision_needed"]
        choice = t(f"fx_choice_{needed}").format(difference=money["difference"])
        paid = (i18n.format_money(i18n.typed_amount(typed.get("paid_amount", ""), typed["paid_currency"], v.language),
                                  typed["paid_currency"], v.language)
                if typed.get("paid_currency") in CURRENCIES else typed.get("paid_amount", ""))
        return {"said": (t("fx_difference_less") if needed == "release" else t("fx_difference_more")).format(
            paid=paid, choice=choice, **money), "fx_needed": needed, "fx_choice": choice}
    if not typed.get("paid_currency"):
        return {}
    if answer.kind == "four-eyes":
        return {"said": t("fx_refused_four_eyes")}
    if answer.kind == "grant-funds-short" and grant is not None and "extra" in problem:
        return {"said": t("fx_refused_funds_short").format(
            code=grant["code"], available=i18n.format_money(problem.get("available"), grant["currency"], v.language),
            extra=i18n.format_money(problem.get("extra"), grant["currency"], v.language))}
    if answer.kind == "case-erased" and grant is not None:
        return {"said": t("fx_refused_case_erased").format(currency=grant["currency"])}
    if answer.kind in FX_TOO_FAR and "most" in problem:
        currency = str(problem.get("currency", ""))
        return {"said": t(FX_TOO_FAR[answer.kind]).format(**{
            name: i18n.format_money(problem.get(field), currency, v.language)
            for name, field in (("most", "most"), ("approved", "approved_amount"), ("difference", "difference"))})}
    if answer.kind == "fx-rate-unusual" and "lowest" in problem and grant is not None:
        said = t("fx_refused_rate_unusual").format(
            lowest=rate_in_words(problem.get("lowest"), v.language), paid=typed["paid_currency"],
            highest=rate_in_words(problem.get("highest"), v.language), grant=grant["currency"])
        return {"fx_errors": {"fx_rate": said}, "said": said}
    if answer.kind in FX_INVALID:
        field, key = FX_INVALID[answer.kind]
        return {"fx_errors": {field: t(key)}, "said": t("fields_wrong")}
    return {"fx_errors": fx_errors(v, answer, typed)}


def fx_errors(v: Visit, answer: Answer, typed: dict[str, str]) -> dict[str, str]:
    """A 422's issues about `paid`, by the pay form's field each is about, in the visitor's words."""
    t = i18n.translator(v.language)
    issues = answer.body.get("errors") if answer.status == 422 and isinstance(answer.body, dict) else None
    errors: dict[str, str] = {}
    for issue in issues if isinstance(issues, list) else []:
        where = [str(part) for part in issue.get("loc", [])][1:]  # after "body"
        if where[:1] != ["paid"]:
            continue
        field, kind = FX_FIELD_OF.get(where[1] if len(where) > 1 else "", "paid_amount"), str(issue.get("type"))
        currency = typed.get("paid_currency", "")
        if field == "paid_amount" and kind not in ERROR_WORDS and currency in CURRENCIES:
            words = amount_error(currency, v.language)
        else:
            words = t(ERROR_WORDS.get(kind) or FX_FIELD_WORDS.get(field) or "error_invalid")
        errors.setdefault(field, words.replace("{example}", rate_example(v.language)))
    return errors
