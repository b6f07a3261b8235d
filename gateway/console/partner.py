"""The partner console: what a person on a partner organisation's staff (`partner_staff`, bound to one partner) sees
after signing in — the referrals addressed to their partner, one referral with what the caseworker wrote for them,
its answers (accept, decline with a reason, start, complete with an outcome and a cost estimate) and its messages
(SPEC §2, §4; issue #18).

Every page asks the partner-facing API (`/api/partner/…`) through the console's `call`, with the person's own token:
the referrals service decides which referrals are theirs (another partner's is 404, as for an API client) and which
step the lifecycle allows; this page only explains its rules in words beside a button it shows disabled, and puts
the service's refusals into sentences in the visitor's language. Partner staff open nothing else of the console
(`router.partner_may_open`). Addresses hold fixed words and referral ids only: a name, a reason, an outcome or a
message goes in a POST body and comes back in the page, never in a URL.

Languages: be, ru, en, pl and lt — partners sit in Lithuania and Poland (i18n's `_PARTNER_MESSAGES`).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from gateway.console import i18n
from gateway.console.router import (
    CSP, OPEN_REFERRALS, PARTNER_CONSOLE, Answer, Visit, VisitDep, call, every_page, field_errors, items,
    key_for_retry, render,
)
from kit.auth import PARTNER_STAFF_ROLE
from kit.currencies import MAX_INTEGER_DIGITS

router = APIRouter(include_in_schema=False)

INBOX = PARTNER_CONSOLE
REFERRALS = PARTNER_CONSOLE + "/referrals"
API = "/api/partner/referrals"

OPEN = OPEN_REFERRALS
CLOSED = ("completed", "declined", "cancelled")
STATUSES = OPEN + CLOSED
CATEGORIES = ("medical", "psychological", "relocation", "legal", "housing", "employment", "financial")
# The person's languages the page names in words; any other tag is shown as it is written ("ka", "de").
LANGUAGE_TAGS = ("be", "ru", "uk", "pl", "lt", "en")
OPEN_SHOWN = 200  # per open status: a small organisation's open work fits; the page says when more exist
CLOSED_SHOWN = 30  # the most recently closed, for reference

# When a referral is overdue, in one place: the inbox marks it, and says these rules in words.
#   sent     — nobody answered it this long after it was sent (the referrals service flags the same after 72 hours);
#   accepted — accepted, and the work not started this long after (its last change, `updated_at`, is the acceptance).
OVERDUE_AFTER = {"sent": timedelta(days=3), "accepted": timedelta(days=14)}

# The partner's steps, and the one status each is allowed from: the referrals service's lifecycle (its
# domain.TRANSITIONS) decides again; this only chooses which buttons to show enabled and which rule to say.
ALLOWED_FROM = {"accept": "sent", "decline": "sent", "start": "accepted", "complete": "in_progress"}
ACTIONS = tuple(ALLOWED_FROM)
RESULT = {"accept": "accepted", "decline": "declined", "start": "in_progress", "complete": "completed"}
# How long after a referral closed its thread still takes a message (referrals' domain.MESSAGES_AFTER_CLOSING).
MESSAGES_AFTER_CLOSING = timedelta(days=30)
THREAD_PAGES, THREAD_PAGE_SIZE = 5, 200  # a thread of up to 1,000 messages is shown whole

CURRENCIES = ("EUR", "PLN", "USD", "GBP")
# A cost estimate's currency as first offered: the one its partners in that language's country count in.
HOME_CURRENCY = {"pl": "PLN"}
DONE = ("accept", "decline", "start", "complete", "message")


# --- who may come here -----------------------------------------------------------------------------------------------

async def partner_visit(v: VisitDep) -> Visit:
    """A signed-in person on a partner's staff, with their second factor (`visit` sends others to enrol)."""
    if PARTNER_STAFF_ROLE not in v.principal.roles or not v.principal.partner_id:
        raise HTTPException(403, "Only a partner's staff open the partner console.")
    return v


PartnerVisit = Annotated[Visit, Depends(partner_visit)]


# --- what a referral looks like on these pages ------------------------------------------------------------------------

def now() -> datetime:
    """The time overdue is measured by (a function of its own, so that a test can move it on)."""
    return datetime.now(UTC)


def _moment(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def overdue(referral: dict[str, Any], at: datetime) -> bool:
    """Still `sent` OVERDUE_AFTER["sent"] after it was sent, or `accepted` OVERDUE_AFTER["accepted"] after that."""
    status = referral.get("status")
    since = _moment(referral.get("created_at") if status == "sent" else referral.get("updated_at"))
    return status in OVERDUE_AFTER and since is not None and at - since > OVERDUE_AFTER[status]


def may_write(referral: dict[str, Any], at: datetime) -> bool:
    """Whether the thread takes a message now, as far as the page can tell (the service decides)."""
    if not referral.get("packet_available", True):
        return False
    closed_at = _moment(referral.get("updated_at"))
    return referral.get("status") not in CLOSED or closed_at is None or at - closed_at <= MESSAGES_AFTER_CLOSING


def actions_for(status: str) -> list[dict[str, Any]]:
    return [{"name": name, "allowed": ALLOWED_FROM[name] == status} for name in ACTIONS]


def typed_amount(text: str, language: str, currency: str) -> str | None:
    """A cost as people type it in their language, read as the finance pages read amounts (i18n.typed_amount), or None
    when it is not one the API takes ("about 300", "-5", three decimals, too many digits): the page says so beside the
    field at once, with an example, in the visitor's language."""
    amount = i18n.typed_amount(text, currency, language)
    digits = i18n.minor_digits(currency)
    shape = rf"[0-9]{{1,{MAX_INTEGER_DIGITS}}}" + (rf"\.[0-9]{{{digits}}}" if digits else "")
    return amount if re.fullmatch(shape, amount) else None


# The page's fields by the API's name of each, and what is said next to one the service refused.
FIELDS = {"reason": "reason", "outcome": "outcome", "cost_estimate": "amount", "text": "message-text"}
FIELD_WORDS = {"reason": "partner_refused_reason", "outcome": "partner_refused_outcome",
               "amount": "partner_refused_amount", "message-text": "partner_refused_text"}


def wrong_fields(v: Visit, answer: Answer) -> dict[str, str]:
    """A 422's fields, each with its sentence (the field's rule, in the visitor's language), by the field's id: said
    beside the field too, which the page's alert names alone (a partner's step has one field to get wrong)."""
    t = i18n.translator(v.language)
    return {name: t(FIELD_WORDS[name]).format(example=example_cost(v)) for name in field_errors(v, answer, FIELDS)}


def refusal(v: Visit, answer: Answer, *, action: str | None = None, current: str | None = None) -> str | None:
    """What the referrals service refused, as a sentence in the visitor's language. `current`: the referral's status
    as it is now, for a step the lifecycle did not allow."""
    if answer.ok:
        return None
    t = i18n.translator(v.language)
    body = answer.body if isinstance(answer.body, dict) else {}
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if kind == "referral-transition" and action:
        said = t("partner_refused_transition").format(status=t(f"partner_status_{current}")) if current else ""
        return f"{said} {t(f'partner_rule_{action}')}".strip()
    if kind == "referral-not-found" or answer.status == 404:
        return t("partner_not_found")
    if kind == "packet-withdrawn":
        return t("partner_refused_packet_withdrawn")
    if kind in ("referral-cancelled", "referral-declined"):
        return t("partner_messages_" + kind.removeprefix("referral-"))
    if kind == "referral-closed":
        return t("partner_messages_closed").format(days=MESSAGES_AFTER_CLOSING.days)
    if answer.status == 422:
        fields = {str(part) for error in body.get("errors", []) if isinstance(error, dict)
                  for part in error.get("loc", [])}
        for name, key in (("reason", "partner_refused_reason"), ("outcome", "partner_refused_outcome"),
                          ("cost_estimate", "partner_refused_amount"), ("text", "partner_refused_text")):
            if name in fields:
                return t(key).format(example=example_cost(v))
        return t("partner_refused_other").format(status=answer.status)
    if kind == "sealed":
        return t("partner_refused_sealed")
    if answer.status in (502, 503):
        return t("partner_refused_unavailable")
    if answer.status == 504:  # it may have been done: said so, not "refused"
        return t("partner_refused_timeout")
    if answer.status == 429:
        return t("partner_refused_busy")
    if answer.status in (401, 403):
        return t("partner_refused_forbidden")
    return t("partner_refused_other").format(status=answer.status)


def home_currency(v: Visit) -> str:
    return HOME_CURRENCY.get(v.language, "EUR")


def example_cost(v: Visit, currency: str | None = None) -> str:
    return i18n.format_money("1234.50", currency or home_currency(v), v.language)


def _page_values(v: Visit) -> dict[str, Any]:
    """What every partner page uses: dates as the visitor's language writes them (times in UTC, as kept)."""
    return {"day": lambda value: i18n.format_date(_moment(value).date() if _moment(value) else value, v.language),
            "moment": lambda value: i18n.format_date(_moment(value) or value, v.language),
            "person_language": lambda tag: person_language(v, tag)}


def person_language(v: Visit, tag: str | None) -> str:
    t = i18n.translator(v.language)
    if not tag:
        return t("partner_none_given")
    return t(f"partner_lang_{tag}") if tag in LANGUAGE_TAGS else tag


# --- the inbox --------------------------------------------------------------------------------------------------------

@router.get(INBOX, response_class=HTMLResponse)
async def inbox(v: PartnerVisit, status: str | None = None, cursor: str | None = None) -> Response:
    """The referrals addressed to the visitor's partner: waiting for an answer, accepted, in progress — each group
    newest first, its older ones a link away (`?status=sent&cursor=…`: that group's next page; an outside review's
    find: the oldest, the ones overdue, were out of reach past the first 200) — and the most recently closed last."""
    paged = status if status in OPEN and cursor else None
    answers = {s: await call(v, "GET", API, params={"status": s, "limit": OPEN_SHOWN,
                                                   **({"cursor": cursor} if s == paged else {})}) for s in OPEN}
    closed = [await call(v, "GET", API, params={"status": status, "limit": CLOSED_SHOWN}) for status in CLOSED]
    at = now()
    groups = []
    for s, answer in answers.items():
        next_cursor = answer.body.get("next_cursor") if answer.ok else None
        groups.append({"status": s, "referrals": items(answer), "more": bool(next_cursor), "paged": s == paged,
                       "unshown": not answer.ok,  # never said as "none" (a reviewer read a hung service as no work)
                       "next_link": f"{INBOX}?{urlencode({'status': s, 'cursor': next_cursor})}#group-{s}"
                       if next_cursor else None})
    ended = sorted((r for answer in closed for r in items(answer)), key=lambda r: str(r.get("updated_at")),
                   reverse=True)
    groups.append({"status": "closed", "referrals": ended[:CLOSED_SHOWN], "more": len(ended) > CLOSED_SHOWN,
                   "unshown": not all(answer.ok for answer in closed)})
    failed = next((answer for answer in [*answers.values(), *closed] if not answer.ok), None)
    problem = None if failed is None else (i18n.translator(v.language)("partner_refused_unavailable")
                                           if failed.status >= 500 else refusal(v, failed))  # a read: nothing changed
    return render(v.request, "partner_inbox.html", visit_=v, status=200 if failed is None else failed.status,
                  groups=groups, overdue={r["id"] for g in groups for r in g["referrals"] if overdue(r, at)},
                  overdue_rule=overdue_rule(v), closed_shown=CLOSED_SHOWN, problem=problem, **_page_values(v))


def overdue_rule(v: Visit) -> str:
    return i18n.translator(v.language)("partner_overdue_rule").format(
        sent=i18n.count_days(OVERDUE_AFTER["sent"].days, v.language),
        accepted=i18n.count_days(OVERDUE_AFTER["accepted"].days, v.language))


# --- one referral -----------------------------------------------------------------------------------------------------

@router.get(REFERRALS + "/{referral_id}", response_class=HTMLResponse)
async def referral_page(referral_id: uuid.UUID, v: PartnerVisit, done: str | None = None) -> Response:
    return await _referral_page(v, referral_id, notice=done if done in DONE else None)


async def _referral_page(v: Visit, referral_id: uuid.UUID, *, status: int = 200, problem: str | None = None,
                         typed: dict[str, str] | None = None, notice: str | None = None,
                         errors: dict[str, str] | None = None, idempotency_key: str | None = None) -> Response:
    """The referral, its answers and its messages. `typed`: what the visitor had typed into a form that was just
    refused, back in its box (in this page only); `notice`: the step just done, by its fixed name."""
    answer = await call(v, "GET", f"{API}/{referral_id}")
    if answer.status == 404:
        return render(v.request, "partner_missing.html", visit_=v, status=404)
    if not answer.ok:  # what a step just sent met comes first: a read failing after it says nothing of the step
        return render(v.request, "partner_missing.html", visit_=v, status=status if problem else answer.status,
                      problem=problem or refusal(v, answer))
    referral = answer.body
    thread, thread_problem = await _thread(v, referral_id, unread=int(referral.get("unread_messages") or 0))
    at = now()
    typed = typed or {}
    currency = typed.get("currency") if typed.get("currency") in CURRENCIES else home_currency(v)
    return render(v.request, "partner_referral.html", visit_=v, status=status, referral=referral,
                  is_overdue=overdue(referral, at), overdue_rule=overdue_rule(v),
                  actions=actions_for(referral["status"]), closed=referral["status"] in CLOSED, typed=typed,
                  currencies=CURRENCIES, currency=currency, cost_example=example_cost(v, currency),
                  thread=thread, may_write=may_write(referral, at), idempotency_key=idempotency_key or str(uuid.uuid4()),
                  closing_days=MESSAGES_AFTER_CLOSING.days, notice=notice, errors=errors or {},
                  problem=problem or thread_problem, **_page_values(v))


async def _thread(v: Visit, referral_id: uuid.UUID, *, unread: int) -> tuple[list[dict[str, Any]], str | None]:
    """The referral's messages, oldest first (the newest at the bottom), the caseworker's `unread` newest marked new,
    and a problem to show if the service did not answer."""
    thread, _more, last = await every_page(v, f"{API}/{referral_id}/messages", pages=THREAD_PAGES,
                                           page_size=THREAD_PAGE_SIZE)
    if not last.ok:
        return thread, refusal(v, last)
    theirs = [m for m in thread if m.get("from") == "caseworker"]
    for message in theirs[len(theirs) - unread:] if unread > 0 else []:
        message["new"] = True
    return thread, None


def _done(referral_id: uuid.UUID, done: str, anchor: str = "") -> RedirectResponse:
    """Back to the referral's page saying what was done, by a fixed word (PRG: nothing typed in the address)."""
    assert done in DONE, done
    return RedirectResponse(f"{REFERRALS}/{referral_id}?done={done}{anchor}", status_code=303,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


@router.post(REFERRALS + "/{referral_id}/messages", response_class=HTMLResponse)
async def write_message(referral_id: uuid.UUID, v: PartnerVisit) -> Response:
    form = await v.request.form()
    text = str(form.get("text", ""))
    # The form's key, made when the page was drawn: a double click or a resent form writes one message.
    answer = await call(v, "POST", f"{API}/{referral_id}/messages", json={"text": text.strip()},
                        idempotency_key=str(form.get("idempotency_key", "")) or None)
    if answer.ok:
        return _done(referral_id, "message", "#messages")
    return await _referral_page(v, referral_id, status=answer.status, typed={"text": text},
                                errors=wrong_fields(v, answer), problem=refusal(v, answer),
                                idempotency_key=key_for_retry(answer, form.get("idempotency_key")))


@router.post(REFERRALS + "/{referral_id}/{action}", response_class=HTMLResponse)
async def act(referral_id: uuid.UUID, action: str, v: PartnerVisit) -> Response:
    """Accept, decline (with a reason), start or complete (with an outcome and, if known, a cost estimate)."""
    if action not in ACTIONS:
        raise HTTPException(404, "There is no such action.")
    form = await v.request.form()
    typed = {key: str(form.get(key, "")) for key in ("reason", "outcome", "amount", "currency")}
    body: dict[str, Any] | None = None
    if action == "decline":
        body = {"reason": typed["reason"].strip()}
    elif action == "complete":
        cost = None
        if typed["amount"].strip():
            currency = typed["currency"] if typed["currency"] in CURRENCIES else home_currency(v)
            amount = typed_amount(typed["amount"], v.language, currency)
            if amount is None:
                problem = i18n.translator(v.language)("partner_refused_amount").format(
                    example=example_cost(v, currency))
                return await _referral_page(v, referral_id, status=422, problem=problem, typed=typed,
                                            errors={"amount": problem})
            cost = {"amount": amount, "currency": currency}
        body = {"outcome": typed["outcome"].strip(), "cost_estimate": cost}
    answer = await call(v, "POST", f"{API}/{referral_id}/{action}", json=body)
    if answer.ok:
        return _done(referral_id, action)
    current = None
    if answer.status == 409:
        now_is = await call(v, "GET", f"{API}/{referral_id}")
        current = now_is.body.get("status") if now_is.ok else None
        if current == RESULT[action]:  # done already (a second click, another colleague): what was asked for holds
            return _done(referral_id, action)
    return await _referral_page(v, referral_id, status=answer.status, typed=typed, errors=wrong_fields(v, answer),
                                problem=refusal(v, answer, action=action, current=current))
