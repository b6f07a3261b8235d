"""Finance asks for aid from a partner's cost estimate (SPEC §2: finance requests disbursements too).

A partner that completes a referral may say what the help cost; funds keeps that estimate until aid is asked for it.
This page lists the estimates still waiting — the case's reference, the category, the amount and when the referral
was completed; no personal data — each with a short form: the grant (only the open grants that pay for the
estimate's category in its currency are offered), the purpose, and the payee if the officer has it. The amount,
currency, category and case come from the estimate itself, so nothing about money is typed. Another officer
approves what was asked here (four-eyes); the request then waits in the disbursement queue like any other.

Each form carries an Idempotency-Key made when the page was rendered: a double click asks once, and a second
request for the same estimate is refused by funds (`estimate-already-requested`), said in words beside it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.console import i18n
from gateway.console.finance import (
    QUEUE_PAGE,
    FinanceVisit,
    all_grants,
    grant_state,
    redirect_done,
    said,
    uuid_or_404,
    with_typed_payee,
)
from gateway.console.router import Visit, call, field_errors, items, key_for_retry, render

router = APIRouter(include_in_schema=False)

ESTIMATES_PAGE = "/console/estimates"
ESTIMATES_SHOWN = 50  # oldest waiting first would need funds' order; newest first, the rest behind "next page"
# The form's fields by funds' name of each (`payee.name` is said as `payee_name`).
FORM_FIELDS = ("grant_id", "purpose", "payee_name", "payee_account")


@router.get(ESTIMATES_PAGE, response_class=HTMLResponse)
async def estimates_page(v: FinanceVisit, cursor: str | None = None) -> Response:
    return await _estimates(v, cursor=cursor)


@router.post(ESTIMATES_PAGE + "/{referral_id}", response_class=HTMLResponse)
async def request_from_estimate(referral_id: str, v: FinanceVisit) -> Response:
    """Ask for aid for one estimate under the form's Idempotency-Key; the queue, saying so, is the answer."""
    referral_id = uuid_or_404(referral_id, "cost estimate")
    form = {key: str(value) for key, value in (await v.request.form()).items() if key != "csrf"}
    body = with_typed_payee({"grant_id": form.get("grant_id", ""), "purpose": form.get("purpose", "").strip()}, form)
    answer = await call(v, "POST", f"/api/funds/cost-estimates/{referral_id}/request", json=body,
                        idempotency_key=form.get("idempotency_key") or str(uuid.uuid4()))
    if answer.ok:
        return redirect_done(QUEUE_PAGE, "requested")
    errors = field_errors(v, answer, FORM_FIELDS)
    t = i18n.translator(v.language)
    # The form comes back as typed: under a new key after a refusal, under the same one when funds may have done it.
    words = (t("fields_wrong") if errors else t("est_refused_gone") if answer.status == 404  # not funds' "disbursement"
             else said(v, answer))
    refused = {"referral_id": referral_id, "form": {**form, "idempotency_key": key_for_retry(
        answer, form.get("idempotency_key"))},
               "errors": errors, "said": words}
    return await _estimates(v, cursor=form.get("cursor") or None, refused=refused, status=answer.status)


async def _estimates(v: Visit, *, cursor: str | None, refused: dict[str, Any] | None = None,
                     status: int = 200) -> Response:
    """The waiting estimates, each with the open grants that could pay it; `refused`: a request just refused, said
    beside its estimate (and at the top) with what was typed kept."""
    # Finance's own list of grants (with donor and balance, which the caseworkers' `grants/open` leaves out), of
    # which those aid may be approved from today.
    listed, (grants, _more, grants_answer) = await asyncio.gather(
        call(v, "GET", "/api/funds/cost-estimates", params={"limit": ESTIMATES_SHOWN, "cursor": cursor}),
        all_grants(v))
    today = datetime.now(UTC).date()
    running = [g for g in grants if grant_state(g, today) == "running"]
    estimates = [{**estimate, "grants": [g for g in running if g["currency"] == estimate["currency"]
                                         and estimate["category"] in g.get("categories", [])]}
                 for estimate in items(listed)]
    next_cursor = listed.body.get("next_cursor") if listed.ok else None
    problems = [said(v, answer) for answer in (listed, grants_answer) if not answer.ok]
    if refused and not any(e["referral_id"] == refused["referral_id"] for e in estimates):
        problems.insert(0, refused["said"])  # its estimate is gone from the list (asked for meanwhile): said on top
    return render(v.request, "finance_estimates.html", visit_=v, status=status, estimates=estimates,
                  refused=refused or {}, cursor=cursor or "", new_key=lambda: str(uuid.uuid4()),
                  next_link=f"{ESTIMATES_PAGE}?{urlencode({'cursor': next_cursor})}" if next_cursor else None,
                  problem=(refused or {}).get("said") or (problems[0] if problems else None))
