"""The caseworker's side of a referral (issue #18): its own page — what was sent to the partner, what the partner
reported back, and the messages between the case's caseworkers and the partner. (The new messages of one's cases
are on the home page: `router.new_messages`.)

Messages are why this page exists: a caseworker and a partner who cannot talk inside the system talk on a messenger
outside it, which is exactly where what they say about a person leaks. Reading the thread here is what marks the
partner's messages read for the case (the referrals service moves its mark; a break-glass reading moves nothing).
The text a caseworker writes travels in a POST body, never a URL; a form carries an Idempotency-Key made when it was
drawn, so a double click sends one message.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from gateway.console.router import (
    NotTheCases, Visit, VisitDep, back_to, call, every_page, field_errors, form_problem, items, key_for_retry,
    need_to_know_page, reason_for_part, refusal, render, resend_of, supervises_only, typed_back,
)

router = APIRouter(include_in_schema=False)

# A thread is read whole; a referral's talk is a few dozen messages, this bounds a runaway one.
THREAD_PAGES = 10
THREAD_PAGE_SIZE = 200
# The referral states a caseworker may still cancel (SPEC §4: sent | accepted | in_progress → cancelled).
CANCELLABLE = ("sent", "accepted", "in_progress")


def referral_page_path(case_id: uuid.UUID | str, referral_id: uuid.UUID | str) -> str:
    return f"/console/cases/{case_id}/referrals/{referral_id}"


@router.get("/console/cases/{case_id}/referrals/{referral_id}", response_class=HTMLResponse)
async def referral_page(case_id: uuid.UUID, referral_id: uuid.UUID, v: VisitDep) -> Response:
    return await _page(v, case_id, referral_id)


@router.post("/console/cases/{case_id}/referrals/{referral_id}/messages")
async def write_message(case_id: uuid.UUID, referral_id: uuid.UUID, v: VisitDep) -> Response:
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    form = await v.request.form()
    text = str(form.get("text", ""))
    try:
        reason = await _reason(v, case_id, referral_id)
    except NotTheCases:
        return await _page(v, case_id, referral_id)
    answer = await call(v, "POST", f"/api/referrals/referrals/{referral_id}/messages", json={"text": text},
                        idempotency_key=str(form.get("idempotency_key", "")) or None, reason=reason)
    if answer.ok:
        return back_to(referral_page_path(case_id, referral_id), "thread")
    if answer.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    errors = field_errors(v, answer, {"text": "message-text"})
    return await _page(v, case_id, referral_id, status=answer.status, typed=text, errors=errors,
                       problem=form_problem(v, answer, errors, refusal(v, answer)),
                       idempotency_key=key_for_retry(answer, form.get("idempotency_key")))


@router.post("/console/cases/{case_id}/referrals/{referral_id}/cancel")
async def cancel_referral(case_id: uuid.UUID, referral_id: uuid.UUID, v: VisitDep) -> Response:
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    try:
        reason = await _reason(v, case_id, referral_id)
    except NotTheCases:
        return await _page(v, case_id, referral_id)
    answer = await call(v, "POST", f"/api/referrals/referrals/{referral_id}/cancel", reason=reason)
    if answer.ok:
        return back_to(referral_page_path(case_id, referral_id))
    if answer.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    return await _page(v, case_id, referral_id, status=answer.status, problem=refusal(v, answer))


async def _page(v: Visit, case_id: uuid.UUID, referral_id: uuid.UUID, *, status: int = 200,
                problem: str | None = None, typed: str = "", errors: dict[str, str] | None = None,
                idempotency_key: str | None = None) -> Response:
    """The referral with its thread, the case's needs of the referral's category (to mark one met when the partner
    is done), and a form to write; `typed`: the visitor's own text, back in the box after a refusal."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    try:
        reason = await _reason(v, case_id, referral_id)
    except NotTheCases:  # not opened: the reason was stated for this case, not for the referral's
        return render(v.request, "case_referral.html", visit_=v, status=404, referral=None, case_id=str(case_id),
                      problem=None)
    referral = await call(v, "GET", f"/api/referrals/referrals/{referral_id}", reason=reason)
    if referral.need_to_know:
        return need_to_know_page(v, case_id)
    if not referral.ok or referral.body.get("case_id") != str(case_id):
        # Not readable now (referrals not answering): a message being sent is given back, to copy.
        # What the message just sent met comes first: the read failing after it says nothing of the message.
        return render(v.request, "case_referral.html", visit_=v,
                      status=status if problem else 404 if referral.ok else referral.status,
                      referral=None, case_id=str(case_id),
                      problem=problem or (refusal(v, referral) if not referral.ok else None),
                      typed=await typed_back(v.request) if referral.status >= 500 else [],
                      typed_explained="typed_kept_timeout" if status == 504 else "typed_kept_unavailable",
                      resend=await resend_of(v.request) if status == 504 else None)
    case, needs, partner, thread = await asyncio.gather(
        call(v, "GET", f"/api/intake/cases/{case_id}", reason=reason),
        call(v, "GET", f"/api/intake/cases/{case_id}/needs", params={"limit": 100}, reason=reason),
        call(v, "GET", f"/api/referrals/partners/{referral.body['partner_id']}"),
        _thread(v, referral_id, reason))
    messages, thread_problem = thread
    category = referral.body["need_category"]
    open_needs = [n for n in items(needs)
                  if n["category"] == category and (n.get("status") or "open") in ("open", "in_progress")]
    return render(v.request, "case_referral.html", visit_=v, status=status, referral=referral.body,
                  case_id=str(case_id), reference=case.body.get("reference") if case.ok else "",
                  case_open=case.ok and case.body.get("status") == "open",
                  partner_name=partner.body.get("name", "") if partner.ok else "", messages=messages,
                  open_needs=open_needs, cancellable=referral.body["status"] in CANCELLABLE,
                  problem=problem, side_problems=[p for p in (thread_problem, needs.problem) if p],
                  typed=typed, errors=errors or {}, idempotency_key=idempotency_key or str(uuid.uuid4()))


async def _reason(v: Visit, case_id: uuid.UUID, referral_id: uuid.UUID) -> str | None:
    """The reason stated for the case, only for a referral of that case (`router.reason_for_part`)."""
    return await reason_for_part(v, case_id, referral_id, "/api/referrals/referrals", params={"case_id": str(case_id)})


async def _thread(v: Visit, referral_id: uuid.UUID, reason: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Every message of the referral, oldest first (reading them marks the partner's read for the case)."""
    messages, _more, last = await every_page(v, f"/api/referrals/referrals/{referral_id}/messages",
                                             pages=THREAD_PAGES, page_size=THREAD_PAGE_SIZE, reason=reason)
    return messages, last.problem

