"""The admin's partner pages (issue #18): the partner directory, and each partner's details, webhook and deliveries.

The pages ask referrals over HTTP with the admin's own token (`router.call`), so referrals checks the admin role
itself, as for the API. A partner's webhook is set, replaced, rotated and removed here; its signing secret is shown
once, in the answer to the POST that made it — a page sent with `Cache-Control: no-store` (`render`), never a
redirect, never a URL, never a log line — and the next visit of the page no longer has it. The deliveries are the
last 50 of the partner's log, the dead letters marked; the filter is a fixed word in the address (`?state=dead`),
the only value any of these addresses carries besides the partner's id (and a delivery's id in a form's action).
Once the partner's server is mended, the dead letters are sent again with one button, or one delivery with its row's.

What referrals refuses is said in the admin's language: a field's error next to its field, a webhook URL that is
not https or leads to a non-public address in words, never the service's English or its field paths.

A partner's API clients (the credentials its own system takes referrals with) are the gateway's: read, issued and
revoked through the admin API's own handlers, in-process, as admin.py does — the same checks, audit entries and
approvals. A new client's setup secret is shown once, like a webhook's, in the answer to the form that issued it (the
partner's system exchanges it for the client's own secret, with the code the approving admin is shown on the
approvals page where another admin approves it: gateway/activation.py); revoking asks once more on a page of its own.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from gateway import api
from gateway.console import i18n
from gateway.console.admin import AdminVisit, ask, refusal
from gateway.console.router import CATEGORIES, CSP, Answer, Visit, call, every_page, field_errors, items, render
from gateway.models import ApiClientCreate, ApiClientPublic

router = APIRouter(include_in_schema=False)

PARTNERS_PAGE = "/console/admin/partners"
# Read whole, in pages of the service's largest; an NGO's directory is a few dozen partners, this bounds it.
DIRECTORY_PAGES = 5
DIRECTORY_PAGE_SIZE = 200
DELIVERIES_SHOWN = 50
# How many of referrals' answers about the partners' webhooks the directory waits for at once.
DIRECTORY_LOOKUPS = 8
EVENTS = ("referral.sent", "referral.cancelled", "referral.message")
EDITABLE = ("name", "countries", "cities", "languages", "contact_email", "capacity_note", "active")
LIST_FIELDS = ("countries", "cities", "languages")

# What a change did, named in the address it redirects to (`?done=`): fixed words only, each an i18n key.
DONE = {"created": "padmin_done_created", "updated": "padmin_done_updated",
        "webhook-removed": "padmin_done_webhook_removed", "client-revoked": "pclients_done_revoked",
        "redelivered": "padmin_done_redelivered", "dead-letters-redelivered": "padmin_done_dead_letters_redelivered",
        "dead-letters-none": "padmin_done_dead_letters_none"}
# The gateway's API clients are read whole, in pages of the admin API's largest, and those of one partner kept.
CLIENT_PAGES = 10
CLIENT_PAGE_SIZE = 500
# Referrals' refusals of a webhook URL, by problem type, in the admin's words (shown next to the URL field).
URL_REFUSALS = {"webhook-https-required": "padmin_refused_https", "webhook-url-invalid": "padmin_refused_url",
                "webhook-target-refused": "padmin_refused_address"}
# Refusals about no one field, in the admin's words.
SAID = {"webhook-not-found": "padmin_refused_no_webhook", "webhook-delivery-pending": "padmin_refused_pending",
        "webhook-delivery-not-found": "padmin_refused_no_delivery",
        "webhook-event-not-subscribed": "padmin_refused_not_subscribed"}
# A field's error when pydantic's kind of error says nothing more than "not valid" (router.ERROR_WORDS first).
FIELD_WORDS = {"countries": "error_country", "languages": "padmin_error_language", "contact_email": "error_email",
               "events": "padmin_refused_events", "category": "padmin_error_category"}
# Why a delivery's last attempt failed (webhook_delivery.send's `last_error`), in words.
DELIVERY_ERRORS = {"timeout": "padmin_error_timeout", "connect-failed": "padmin_error_connect_failed",
                   "protocol-error": "padmin_error_protocol_error", "redirect-not-followed": "padmin_error_redirect",
                   "http-status": "padmin_error_http_status"}


# A delivery's id (its `webhook-id`): what referrals writes, so that nothing else is put in the path it calls.
DELIVERY_ID = re.compile(r"msg_[0-9a-f]{32}")


def partner_path(partner_id: str) -> str:
    return f"{PARTNERS_PAGE}/{partner_id}"


def _partner_id(value: str) -> str:
    """A partner id is a UUID; anything else names no partner (404, as an unknown id)."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise HTTPException(404, "There is no such partner.") from None


def _after(path: str, done: str) -> RedirectResponse:
    """Back to a partner page (fixed words and an id), saying what happened by a fixed word."""
    assert done in DONE, done
    return RedirectResponse(f"{path}?done={done}", status_code=303,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


def _notice(v: Visit) -> str | None:
    return DONE.get(v.request.query_params.get("done", ""))


# --- the directory ----------------------------------------------------------------------------------------------------

@router.get(PARTNERS_PAGE, response_class=HTMLResponse)
async def directory_page(v: AdminVisit) -> Response:
    return await _directory(v, form={"active": True})


@router.post(PARTNERS_PAGE, response_class=HTMLResponse)
async def add_partner(v: AdminVisit) -> Response:
    form = _partner_form(await v.request.form())
    answer = await call(v, "POST", "/api/referrals/partners",
                        json={"category": form["category"], **_partner_body(form)})
    if answer.ok:
        return _after(partner_path(answer.body["id"]), "created")
    errors = _field_errors(v, answer, ("category", *EDITABLE))
    return await _directory(v, form=form, errors=errors, status=answer.status,
                            problem=None if errors else _said(v, answer))


async def _directory(v: Visit, *, form: dict[str, Any], errors: dict[str, str] | None = None,
                     problem: str | None = None, status: int = 200) -> Response:
    """Every partner, with whether it has a webhook and dead letters; the form to add one (`form`: what was typed)."""
    partners, more_partners, listed = await every_page(v, "/api/referrals/partners", pages=DIRECTORY_PAGES,
                                                       page_size=DIRECTORY_PAGE_SIZE)
    hooks = await _webhooks_of(v, [p["id"] for p in partners])
    return render(v.request, "admin_partners.html", visit_=v, status=status, partners=partners, hooks=hooks,
                  more_partners=more_partners, categories=CATEGORIES, form=form, errors=errors or {},
                  notice=_notice(v), problem=problem or (listed.problem if listed else None))


async def _webhooks_of(v: Visit, partner_ids: list[str]) -> dict[str, dict[str, bool]]:
    """For each partner: whether a webhook is set, and whether its log holds a dead letter."""
    bound = asyncio.Semaphore(DIRECTORY_LOOKUPS)

    async def look(partner_id: str) -> tuple[str, dict[str, bool]]:
        async with bound:
            hook = await call(v, "GET", f"/api/referrals/partners/{partner_id}/webhook")
            dead = await call(v, "GET", f"/api/referrals/partners/{partner_id}/webhook/deliveries",
                              params={"state": "dead", "limit": 1})
        return partner_id, {"set": hook.ok, "dead": bool(items(dead))}

    return dict(await asyncio.gather(*(look(partner_id) for partner_id in partner_ids)))


# --- one partner: details, webhook, deliveries ------------------------------------------------------------------------

@router.get(PARTNERS_PAGE + "/{partner_id}", response_class=HTMLResponse)
async def partner_page(partner_id: str, v: AdminVisit, state: str | None = None) -> Response:
    return await _page(v, _partner_id(partner_id), dead_only=state == "dead", notice=_notice(v))


@router.post(PARTNERS_PAGE + "/{partner_id}", response_class=HTMLResponse)
async def change_partner(partner_id: str, v: AdminVisit) -> Response:
    partner_id = _partner_id(partner_id)
    form = _partner_form(await v.request.form())
    answer = await call(v, "PATCH", f"/api/referrals/partners/{partner_id}", json=_partner_body(form))
    if answer.ok:
        return _after(partner_path(partner_id), "updated")
    _not_found(answer)
    errors = _field_errors(v, answer, EDITABLE)
    return await _page(v, partner_id, status=answer.status, form=form, errors=errors,
                       problem=None if errors else _said(v, answer))


@router.post(PARTNERS_PAGE + "/{partner_id}/webhook", response_class=HTMLResponse)
async def set_webhook(partner_id: str, v: AdminVisit) -> Response:
    """Set or replace the webhook: the answer is the page with the new secret, this once."""
    partner_id = _partner_id(partner_id)
    submitted = await v.request.form()
    hook_form = {"url": str(submitted.get("url", "")).strip(),
                 "events": [str(e) for e in submitted.getlist("events") if str(e) in EVENTS]}
    answer = await call(v, "PUT", f"/api/referrals/partners/{partner_id}/webhook", json=hook_form)
    if answer.ok:
        return await _page(v, partner_id, secret=answer.body["secret"],
                           notice="padmin_done_webhook_set" if answer.status == 201 else "padmin_done_webhook_replaced")
    _not_found(answer)
    errors = _field_errors(v, answer, ("url", "events"))
    if answer.kind in URL_REFUSALS:
        errors["url"] = i18n.translator(v.language)(URL_REFUSALS[answer.kind])
    return await _page(v, partner_id, status=answer.status, hook_form=hook_form, hook_errors=errors,
                       problem=None if errors else _said(v, answer))


@router.post(PARTNERS_PAGE + "/{partner_id}/webhook/rotate", response_class=HTMLResponse)
async def rotate_secret(partner_id: str, v: AdminVisit) -> Response:
    """A new secret, shown this once; the previous one signs beside it until the answer's `previous_valid_until`."""
    partner_id = _partner_id(partner_id)
    answer = await call(v, "POST", f"/api/referrals/partners/{partner_id}/webhook/rotate")
    if answer.ok:
        return await _page(v, partner_id, secret=answer.body["secret"],
                           secret_until=answer.body["previous_valid_until"], notice="padmin_done_rotated")
    if answer.kind != "webhook-not-found":
        _not_found(answer)
    return await _page(v, partner_id, status=answer.status, problem=_said(v, answer))


@router.get(PARTNERS_PAGE + "/{partner_id}/webhook/remove", response_class=HTMLResponse)
async def remove_confirmation(partner_id: str, v: AdminVisit) -> Response:
    """Removing asks once more, on a page of its own (the button on the partner's page leads here)."""
    return await _page(v, _partner_id(partner_id), confirm_remove=True)


@router.post(PARTNERS_PAGE + "/{partner_id}/webhook/remove", response_class=HTMLResponse)
async def remove_webhook(partner_id: str, v: AdminVisit) -> Response:
    partner_id = _partner_id(partner_id)
    return await _change(v, partner_id, "DELETE", f"/api/referrals/partners/{partner_id}/webhook", "webhook-removed")


@router.post(PARTNERS_PAGE + "/{partner_id}/webhook/dead-letters/redeliver", response_class=HTMLResponse)
async def redeliver_dead_letters(partner_id: str, v: AdminVisit) -> Response:
    """Once the partner's server is mended: every dead letter sent again, with its webhook id."""
    partner_id = _partner_id(partner_id)
    return await _change(v, partner_id, "POST", f"/api/referrals/partners/{partner_id}/webhook/dead-letters/redeliver",
                         lambda answer: "dead-letters-redelivered" if answer.body.get("redelivered") else
                         "dead-letters-none")


@router.post(PARTNERS_PAGE + "/{partner_id}/webhook/deliveries/{delivery_id}/redeliver", response_class=HTMLResponse)
async def redeliver(partner_id: str, delivery_id: str, v: AdminVisit) -> Response:
    """One finished delivery sent again (a dead letter, or one the partner's receiver lost)."""
    partner_id = _partner_id(partner_id)
    if not DELIVERY_ID.fullmatch(delivery_id):
        raise HTTPException(404, "There is no such delivery.")
    api_path = f"/api/referrals/partners/{partner_id}/webhook/deliveries/{delivery_id}/redeliver"
    return await _change(v, partner_id, "POST", api_path, "redelivered")


async def _change(v: Visit, partner_id: str, method: str, api_path: str,
                  done: str | Callable[[Answer], str]) -> Response:
    """A change with nothing typed (a button): done, back to the partner's page saying so (`done`, a word of DONE,
    or what the answer makes it); refused, the page with the refusal in the admin's words (an unknown partner:
    404)."""
    answer = await call(v, method, api_path)
    if answer.ok:
        return _after(partner_path(partner_id), done(answer) if callable(done) else done)
    _not_found(answer)
    return await _page(v, partner_id, status=answer.status, problem=_said(v, answer))


# --- one partner's API clients (the gateway's admin API, in-process) --------------------------------------------------

async def clients_of(v: Visit, partner_id: str) -> list[ApiClientPublic]:
    """The partner's API clients, newest first, as the admin API lists them."""
    runtime = v.request.app.state.runtime
    found: list[ApiClientPublic] = []
    cursor: str | None = None
    with runtime.uow.read() as session:
        for _ in range(CLIENT_PAGES):
            listed = await api.list_clients(session, v.principal, limit=CLIENT_PAGE_SIZE, cursor=cursor)
            found += [client for client in listed["items"] if client.partner_id.lower() == partner_id]
            cursor = listed["next_cursor"]
            if not cursor:
                break
    return sorted(found, key=lambda client: client.created_at, reverse=True)


async def _client_of(v: Visit, partner_id: str, client_id: str) -> ApiClientPublic:
    """One of this partner's clients; any other id names nothing here (404)."""
    client = next((c for c in await clients_of(v, partner_id) if c.client_id == client_id), None)
    if client is None:
        raise HTTPException(404, "This partner has no such API client.")
    return client


@router.post(PARTNERS_PAGE + "/{partner_id}/clients", response_class=HTMLResponse)
async def issue_client(partner_id: str, v: AdminVisit) -> Response:
    """A new API client for the partner: the answer is the partner's page with its id and setup secret, this once."""
    partner_id = _partner_id(partner_id)
    name = str((await v.request.form()).get("name", "")).strip()
    known = await call(v, "GET", f"/api/referrals/partners/{partner_id}")
    _not_found(known)
    if not known.ok:  # a client for a partner nobody can see is not issued blind: the page says why
        return await _page(v, partner_id, status=known.status, client_form={"name": name})
    runtime = v.request.app.state.runtime
    answer = await ask(lambda: api.create_client(ApiClientCreate(partner_id=partner_id, name=name), runtime,
                                                 v.principal))
    if answer.ok:
        issued = json.loads(answer.body.body)  # the API's own answer (ApiClientIssued), held by no one after this
        return await _page(v, partner_id, issued=issued, notice="pclients_issued")
    body = answer.body if isinstance(answer.body, dict) else {}
    if body.get("type") == "invalid-form" and "name" in body.get("fields", []):
        return await _page(v, partner_id, status=422, client_form={"name": name},
                           client_errors={"name": i18n.translator(v.language)("pclients_invalid_name")})
    return await _page(v, partner_id, status=answer.status, client_form={"name": name},
                       problem=refusal(v, answer))


@router.get(PARTNERS_PAGE + "/{partner_id}/clients/{client_id}/revoke", response_class=HTMLResponse)
async def revoke_confirmation(partner_id: str, client_id: str, v: AdminVisit) -> Response:
    """Revoking asks once more, on a page of its own (the client's "Revoke" on the partner's page leads here)."""
    partner_id = _partner_id(partner_id)
    client = await _client_of(v, partner_id, client_id)
    partner = await call(v, "GET", f"/api/referrals/partners/{partner_id}")
    _not_found(partner)
    return render(v.request, "admin_client_revoke.html", visit_=v, partner_id=partner_id, client=client,
                  partner=partner.body if partner.ok else None)


@router.post(PARTNERS_PAGE + "/{partner_id}/clients/{client_id}/revoke", response_class=HTMLResponse)
async def revoke_client(partner_id: str, client_id: str, v: AdminVisit) -> Response:
    partner_id = _partner_id(partner_id)
    client = await _client_of(v, partner_id, client_id)
    runtime = v.request.app.state.runtime
    answer = await ask(lambda: api.revoke_client(client.client_id, runtime, v.principal))
    if answer.ok:
        return _after(partner_path(partner_id), "client-revoked")
    said = i18n.translator(v.language)("pclients_refused_no_client") if answer.kind == "client-not-found" \
        else refusal(v, answer)
    return await _page(v, partner_id, status=answer.status, problem=said)


async def _page(v: Visit, partner_id: str, *, status: int = 200, dead_only: bool = False,
                form: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                hook_form: dict[str, Any] | None = None, hook_errors: dict[str, str] | None = None,
                secret: str | None = None, secret_until: str | None = None, confirm_remove: bool = False,
                issued: dict[str, Any] | None = None, client_form: dict[str, str] | None = None,
                client_errors: dict[str, str] | None = None, notice: str | None = None,
                problem: str | None = None) -> Response:
    """The partner's page. `form`/`hook_form`/`client_form`: what was typed, back in the forms after a refusal;
    `secret`: the signing secret just made, `issued`: the API client just issued (its secret), shown this once."""
    partner = await call(v, "GET", f"/api/referrals/partners/{partner_id}")
    _not_found(partner)
    if not partner.ok:
        return render(v.request, "admin_partner.html", visit_=v, status=partner.status, partner=None,
                      problem=partner.problem)
    webhook, deliveries = await asyncio.gather(
        call(v, "GET", f"/api/referrals/partners/{partner_id}/webhook"),
        call(v, "GET", f"/api/referrals/partners/{partner_id}/webhook/deliveries",
             params={"limit": DELIVERIES_SHOWN, "state": "dead" if dead_only else None}))
    hook = webhook.body if webhook.ok else None
    side = [answer.problem for answer in (webhook, deliveries)
            if not answer.ok and answer.kind != "webhook-not-found"]
    shown = partner.body
    return render(v.request, "admin_partner.html", visit_=v, status=status, partner=shown,
                  form=form or _form_of(shown), errors=errors or {}, webhook=hook, events=EVENTS,
                  hook_form=hook_form or {"url": hook["url"] if hook else "", "events": hook["events"] if hook
                                          else ["referral.sent", "referral.cancelled"]},
                  hook_errors=hook_errors or {}, secret=secret, secret_until=secret_until,
                  deliveries=items(deliveries), dead_only=dead_only, confirm_remove=confirm_remove and hook is not None,
                  delivery_result=lambda d: _delivery_result(v, d), short=_short, notice=notice,
                  clients=await clients_of(v, partner_id), issued=issued, client_form=client_form or {"name": ""},
                  client_errors=client_errors or {}, problem=problem or (side[0] if side else None))


def _not_found(answer: Answer) -> None:
    """A partner the directory does not hold is 404, as any page that is not one."""
    if answer.status == 404 and answer.kind == "partner-unknown":
        raise HTTPException(404, "There is no such partner.")


# --- forms and answers, in the admin's words --------------------------------------------------------------------------

def _partner_form(submitted: Any) -> dict[str, Any]:
    """The partner's form as typed (lists as text: shown back as typed after a refusal)."""
    form: dict[str, Any] = {key: str(submitted.get(key, "")).strip()
                            for key in ("name", "category", "contact_email", "countries", "cities", "languages")}
    form["capacity_note"] = str(submitted.get("capacity_note", "")).strip()
    form["active"] = submitted.get("active") is not None
    return form


def _split(field: str, text: str) -> list[str]:
    """Codes are separated by commas or spaces; city names (which may hold a space) by commas or lines."""
    pattern = r"[,;\n]+" if field == "cities" else r"[\s,;]+"
    return [part.strip() for part in re.split(pattern, text) if part.strip()]


def _partner_body(form: dict[str, Any]) -> dict[str, Any]:
    return {"name": form["name"], "countries": _split("countries", form["countries"]),
            "cities": _split("cities", form["cities"]), "languages": _split("languages", form["languages"]),
            "contact_email": form["contact_email"], "capacity_note": form["capacity_note"] or None,
            "active": form["active"]}


def _form_of(partner: dict[str, Any]) -> dict[str, Any]:
    """The edit form filled in with the partner as stored."""
    return {**{key: partner.get(key) or "" for key in ("name", "category", "contact_email", "capacity_note")},
            **{key: ", ".join(partner.get(key) or []) for key in LIST_FIELDS}, "active": partner.get("active")}


def _field_errors(v: Visit, answer: Answer, fields: tuple[str, ...]) -> dict[str, str]:
    """A 422's issues by the form field each is about, in the admin's words (never the service's English)."""
    return field_errors(v, answer, fields, words=FIELD_WORDS)


def _said(v: Visit, answer: Answer) -> str | None:
    """A refusal about no one field: in words where referrals' kind of problem is known."""
    if answer.kind in SAID:
        return i18n.translator(v.language)(SAID[answer.kind])
    return answer.problem


def _delivery_result(v: Visit, delivery: dict[str, Any]) -> str:
    """The last attempt's answer: its status code, or why there was none, in words."""
    t = i18n.translator(v.language)
    code, error = delivery.get("last_status_code"), str(delivery.get("last_error") or "")
    if error.startswith("address-refused"):
        return t("padmin_error_address_refused")
    if error in DELIVERY_ERRORS:
        return t(DELIVERY_ERRORS[error]).format(code=code)
    if code is not None:
        return t("padmin_answer_ok").format(code=code)
    return ""


def _short(value: str) -> str:
    """An id shortened for a table (its whole in the cell's title): `msg_1a2b3c4d…`."""
    head = 12 if value.startswith("msg_") else 8
    return value if len(value) <= head else value[:head] + "…"
