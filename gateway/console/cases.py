"""The caseworker's pages of the staff console: the list of their cases and search, a new case, a case's page (needs,
consent, documents, notes and tasks, aid, its timeline), editing a case with its conflicts, break-glass (the routes:
the reason itself is kept by the visit, `router.opened_reason`), and referrals. Every page asks the services as the
caseworker (`router.call`), so each service checks need-to-know again."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import uuid
from base64 import urlsafe_b64decode, urlsafe_b64encode
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from gateway.console import i18n
from gateway.console.router import (
    BREAK_GLASS_COOKIE,
    BREAK_GLASS_COOKIE_SECONDS,
    CATEGORIES,
    DOCUMENT_KINDS,
    FIELD_ERROR_WORDS,
    MAX_REASON,
    MIN_REASON,
    NEED_MOVES,
    NONCE_BYTES,
    OPEN_REFERRALS,
    PAGE_HEADERS,
    URGENCIES,
    Answer,
    NotTheCases,
    Visit,
    VisitDep,
    back_to,
    break_glass_path,
    call,
    console_key,
    field_errors,
    form_problem,
    items,
    key_for_retry,
    need_to_know_page,
    reason_for_part,
    refusal,
    render,
    resend_of,
    same_secret,
    seal_reason,
    secure_cookies,
    spoken,
    staff_names,
    supervises_only,
    typed_back,
)
from kit import context, logs
from kit.need_to_know import MIN_REASON_LETTERS, said_in_words

log = logs.get("gateway.console")

router = APIRouter(include_in_schema=False)

# --- caseworker: cases -------------------------------------------------------------------------------------------

CASES_PER_PAGE = 50


@router.get("/console/cases", response_class=HTMLResponse)
async def cases(v: VisitDep, cursor: str | None = None) -> Response:
    """My cases: those assigned to the caseworker, newest first. A page's cursor is a position (a date and a case
    id), never anything typed."""
    if "q" in v.request.query_params:  # an old bookmark: it no longer searches, and the name leaves the address bar
        return back_to("/console/cases")
    if not v.can("caseworker") and v.can("supervisor"):  # a supervisor holds no cases: theirs is the caseload
        return back_to("/console/caseload")
    if not v.can("caseworker"):  # finance, an admin, a coordinator: not a caseworker's page under a refusal
        raise HTTPException(403, "Your role has no cases.")
    answer = await call(v, "GET", "/api/intake/cases", params={"cursor": cursor, "limit": CASES_PER_PAGE})
    next_cursor = answer.body.get("next_cursor") if answer.ok else None
    next_link = f"/console/cases?{urlencode({'cursor': next_cursor})}" if next_cursor else None
    listed = items(answer)
    home = {**(await due_tasks(v)), **(await new_messages(v))} if not cursor else {}
    return render(v.request, "cases.html", visit_=v, q="", cases=listed, mine={case["id"] for case in listed},
                  references={case["id"]: case["reference"] for case in listed},
                  problem=answer.problem, next_link=next_link, cases_unshown=not answer.ok, **home)


async def new_messages(v: Visit) -> dict[str, Any]:
    """For the caseworker's home: the referrals of their cases with partner messages none of the case's caseworkers
    has read (the 200 newest referrals of their cases are looked at); each links to its thread
    (console/referral_thread.py)."""
    answer = await call(v, "GET", "/api/referrals/referrals", params={"limit": 200})
    return {"new_messages": [r for r in items(answer) if r.get("unread_messages")]}


@router.post("/console/cases/search", response_class=HTMLResponse)
async def search_cases(v: VisitDep) -> Response:
    """Search by name: a POST answered with the results themselves, so the name is never in a URL. The next page is
    a POST again (the name and the cursor in hidden fields), never a link."""
    form = await v.request.form()
    q = str(form.get("q", "")).strip()
    if not q:
        return back_to("/console/cases")
    search: dict[str, Any] = {"q": q, "limit": CASES_PER_PAGE}
    if cursor := str(form.get("cursor", "")):
        search["cursor"] = cursor
    answer = await call(v, "POST", "/api/intake/cases/search", json=search)
    found = items(answer)
    # The service decides what is the caller's: their own cases come as list items (country, opening date), every
    # other case only in outline (reference, status, assignees) — to be opened by break-glass, if at all.
    mine = {case["id"] for case in found if "opened_at" in case}
    errors = field_errors(v, answer, ("q",), kinds={"empty-search": "q"})
    return render(v.request, "cases.html", visit_=v, q=q, cases=found, mine=mine, errors=errors,
                  problem=form_problem(v, answer, errors), cases_unshown=not answer.ok and not errors,
                  status=200 if answer.ok else answer.status,
                  next_cursor=answer.body.get("next_cursor") if answer.ok else None)


@router.get("/console/cases/search")
async def search_cases_by_address() -> Response:
    """Typed into the address bar, or reached after signing in again: the search form is on the cases page."""
    return back_to("/console/cases")


@router.get("/console/cases/new", response_class=HTMLResponse)
async def new_case(v: VisitDep) -> Response:
    if not v.can("caseworker"):  # intake opens cases for caseworkers only: no form to fill in vain (a review's find)
        raise HTTPException(403, "Only a caseworker opens a case.")
    # One idempotency key per rendered form: a double click or a resent form opens one case, not two.
    return render(v.request, "case_new.html", visit_=v, form={"idempotency_key": str(uuid.uuid4())})


# The fields of a case as a caseworker types them, in the order the new-case and edit forms show them; the contact
# channels are one field (`contact`) to the API.
CASE_FIELDS = ("full_name", "other_names", "date_of_birth", "country", "city", "languages", "phone", "telegram",
               "signal", "email", "release_date", "facility", "articles", "safety_notes")
CONTACT_FIELDS = ("phone", "telegram", "signal", "email")
LIST_FIELDS = frozenset({"other_names", "languages", "articles"})
DATE_FIELDS = frozenset({"date_of_birth", "release_date"})


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _items(field: str, text: str) -> list[str]:
    """A list field as typed: other names one per line (a name may hold a comma); languages and articles separated by
    commas or lines."""
    if field == "other_names":
        return [line.strip() for line in text.splitlines() if line.strip()]
    return _lines(text)


def _api_value(field: str, text: str) -> Any:
    """A typed field as the API takes it; an emptied field clears what was stored (the full name is refused empty)."""
    if field in LIST_FIELDS:
        return _items(field, text)
    text = text.strip()
    if field == "full_name":
        return text
    return (text.upper() if field == "country" else text) or None


def _contact(form: dict[str, str]) -> dict[str, str] | None:
    return {key: form[key].strip() for key in CONTACT_FIELDS if form.get(key, "").strip()} or None


def case_body(form: dict[str, str]) -> dict[str, Any]:
    """A new case from its form: what was typed, nothing for what was left empty."""
    body = {field: _api_value(field, form.get(field, "")) for field in CASE_FIELDS if field not in CONTACT_FIELDS}
    return {**{key: value for key, value in body.items() if value is not None}, "contact": _contact(form)}


def case_form(case: dict[str, Any]) -> dict[str, str]:
    """A stored case as its edit form holds it: each field as text."""
    contact = case.get("contact") or {}
    form = {}
    for field in CASE_FIELDS:
        value = contact.get(field) if field in CONTACT_FIELDS else case.get(field)
        if field in LIST_FIELDS:
            form[field] = ("\n" if field == "other_names" else ", ").join(value or [])
        else:
            form[field] = "" if value is None else str(value)
    return form


def _same(field: str, one: str, other: str) -> bool:
    """Whether two texts of a field say the same (spaces, letter case of a country, list separators aside)."""
    if field in LIST_FIELDS:
        return _items(field, one) == _items(field, other)
    return _api_value(field, one) == _api_value(field, other)


def case_changes(typed: dict[str, str], original: dict[str, str]) -> dict[str, Any]:
    """The PATCH of an edit form: only the fields changed since the form was opened (the contact as a whole when any
    of its channels changed), so that a save never writes back what someone else may have changed meanwhile."""
    changed = [field for field in CASE_FIELDS if not _same(field, typed[field], original.get(field, ""))]
    body = {field: _api_value(field, typed[field]) for field in changed if field not in CONTACT_FIELDS}
    if set(changed) & set(CONTACT_FIELDS):
        body["contact"] = _contact(typed)
    return body


DUPLICATE_KEYS = ("full_name", "other_names", "date_of_birth")


@router.post("/console/cases", response_class=HTMLResponse)
async def create_case(v: VisitDep) -> Response:
    """Save a new case, but first name the cases that may be the same person and let the caseworker look.

    The warning page carries a seal of the names it was shown for: "save anyway" with the same names saves; changed
    names are checked again.
    """
    submitted = await v.request.form()
    form = {key: str(value) for key, value in submitted.items() if key not in ("csrf", "checked")}
    form.setdefault("idempotency_key", str(uuid.uuid4()))
    body = case_body(form)
    names = {key: body[key] for key in DUPLICATE_KEYS if key in body}
    names_seal = _names_seal(v, names)
    if not same_secret(str(submitted.get("checked", "")), names_seal):
        check = await call(v, "POST", "/api/intake/cases/duplicates", json=names)
        if not check.ok:
            return _new_case_refused(v, form, check)
        if check.body["possible_duplicates"]:
            return render(v.request, "case_new.html", visit_=v, form=form, checked=names_seal,
                          duplicates=check.body["possible_duplicates"])
    answer = await call(v, "POST", "/api/intake/cases", json=body, idempotency_key=form["idempotency_key"])
    if not answer.ok:
        return _new_case_refused(v, form, answer)
    return render(v.request, "case_created.html", visit_=v, case=answer.body,
                  duplicates=answer.body.get("possible_duplicates") or [])


def _new_case_refused(v: Visit, form: dict[str, str], answer: Answer) -> Response:
    """The new-case form again with what was typed, each refused field saying why next to it."""
    errors = field_errors(v, answer, CASE_FIELDS)
    return render(v.request, "case_new.html", visit_=v, form=form, errors=errors, status=answer.status,
                  problem=i18n.translator(v.language)("fields_wrong") if errors else answer.problem)


def _names_seal(v: Visit, names: dict[str, Any]) -> str:
    """An HMAC of the names, bound to this session: proof that the duplicates shown were for exactly these names."""
    canonical = json.dumps(names, ensure_ascii=False, sort_keys=True).encode()
    return hmac.new(console_key(v.request, "csrf"), b"duplicates checked\0" + v.token.encode() + b"\0" + canonical,
                    hashlib.sha256).hexdigest()


async def _case_page_values(v: Visit, case_id: str) -> dict[str, Any]:
    """Everything the case page shows, asked with the break-glass reason stated for this case, if any: without it
    a case not assigned to the visitor answers `need_to_know` and nothing of the person is read. The services are
    asked side by side: a page of ten answers waits for the slowest, not for their sum."""
    if supervises_only(v):
        return {"case": None, "need_to_know": True, "status": 403}
    reason = v.reason_for(case_id)
    case = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=reason)
    if case.need_to_know:
        return {"case": None, "need_to_know": True, "status": case.status}
    if not case.ok:
        return {"case": None, "problem": case.problem, "status": case.status}
    values: dict[str, Any] = {"case": case.body, "status": 200,
                              "break_glass_minutes": _minutes_left(v, case_id, case.body)}
    if case.body.get("status") == "erased":
        return values

    def of_case(path: str, **params: Any) -> Any:
        return call(v, "GET", f"/api/intake/cases/{case_id}{path}", params=params, reason=reason)

    # Whom a colleague may be added from: asked only where the page offers it (an open case the visitor holds).
    adds_colleagues = case.body.get("status") == "open" and v.username in case.body.get("assignees", [])
    needs, consent, timeline, documents, referrals, aid, partners, grants, casework, staff = await asyncio.gather(
        of_case("/needs", limit=100), of_case("/consent"), of_case("/timeline", limit=200),
        of_case("/documents", limit=200),
        call(v, "GET", "/api/referrals/referrals", params={"case_id": case_id, "limit": 100}, reason=reason),
        call(v, "GET", "/api/funds/disbursements", params={"case_id": case_id, "limit": 100}, reason=reason),
        call(v, "GET", "/api/referrals/partners", params={"limit": 200}),
        call(v, "GET", "/api/funds/grants/open", params={"limit": 200}),
        _casework_values(v, case_id, reason),
        call(v, "GET", "/api/intake/caseworkers") if adds_colleagues else asyncio.sleep(0))
    # What the lists leave out because it may describe the person — a partner's outcome or reason for declining, an
    # aid request's purpose — is read one record at a time, each read audited by its service.
    replied = [r for r in items(referrals) if r.get("status") in ("completed", "declined")]
    opened = await asyncio.gather(
        *(call(v, "GET", f"/api/referrals/referrals/{r['id']}", reason=reason) for r in replied),
        *(call(v, "GET", f"/api/funds/disbursements/{d['id']}", reason=reason) for d in items(aid)))
    details = {answer.body["id"]: answer.body for answer in opened if answer.ok}
    history = consent.body.get("history", []) if consent.ok else []
    disbursements = [{**d, **details.get(d["id"], {})} for d in items(aid)]
    names = staff_names(v, {c["recorded_by"] for c in history} | {d["requested_by"] for d in disbursements})
    values.update(casework)
    values.update(needs=items(needs), consent=consent.body.get("current") if consent.ok else None,
                  consent_history=list(reversed(history)), names=names,
                  referrals=[{**r, **details.get(r["id"], {})} for r in items(referrals)],
                  disbursements=disbursements, aid_totals=aid_totals(disbursements), grants=items(grants),
                  grants_listed=grants.ok,
                  timeline=grouped_openings(items(timeline)),
                  partner_names={p["id"]: p["name"] for p in items(partners)}, documents=items(documents),
                  colleagues=[c["username"] for c in items(staff) if c["username"] not in case.body["assignees"]]
                  if adds_colleagues else [],
                  side_problems=[a.problem for a in (needs, consent, referrals, aid, timeline, documents) if a.problem],
                  # a list its service did not give is said so, never as "none yet" (a caseworker would refer again)
                  unshown={name for name, answer in (("referrals", referrals), ("aid", aid)) if answer.status >= 500})
    return values



# Aid waiting for finance, and aid paid; rejected and voided requests count for neither.
AID_WAITING = ("requested", "approved")


def aid_totals(disbursements: list[dict[str, Any]]) -> dict[str, list[tuple[str, Decimal]]]:
    """Per currency, what was paid to this person and what still waits for approval or payment."""
    totals: dict[str, dict[str, Decimal]] = {"paid": {}, "waiting": {}}
    for d in disbursements:
        shown = "paid" if d["status"] == "paid" else "waiting" if d["status"] in AID_WAITING else None
        if shown:
            totals[shown][d["currency"]] = totals[shown].get(d["currency"], Decimal(0)) + Decimal(d["amount"])
    return {shown: sorted(sums.items()) for shown, sums in totals.items()}


def grouped_openings(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline with each run of break-glass openings by one person for one reason shown once, with how many
    times and until when. Intake records every request that carries a reason (one page view is several), which is
    right for the audit trail and noise for someone reading the case's story."""
    shown: list[dict[str, Any]] = []
    for entry in timeline:
        last = shown[-1] if shown else None
        if (entry.get("kind") == "case.break_glass" and last is not None and last.get("kind") == "case.break_glass"
                and last.get("details") == entry.get("details")):
            last["times"] += 1
            last["last_at"] = entry.get("at")
            continue
        shown.append({**entry, "times": 1, "last_at": entry.get("at")})
    return shown



def _minutes_left(v: Visit, case_id: str, case: dict[str, Any]) -> int | None:
    """For a case opened by break-glass (not assigned to the visitor): the minutes their stated reason still
    covers, for the page to say so; None for one's own case."""
    if v.username in case.get("assignees", []):
        return None
    stated = v.stated_reason(case_id)
    if stated is None or stated.lapsed:
        return None
    return stated.minutes_left


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
async def case_page(case_id: uuid.UUID, v: VisitDep) -> Response:
    return await case_page_answer(v, case_id)


async def case_page_answer(v: Visit, case_id: uuid.UUID | str, *, status: int | None = None,
                           problem: str | None = None, **shown: Any) -> Response:
    """The case page, as fetched now; after a refusal with `status`, `problem` said at the top, and `shown` (a form
    sent back with what was typed and its field errors) passed to the page."""
    values = await _case_page_values(v, str(case_id))
    if values.get("need_to_know"):
        return need_to_know_page(v, case_id)
    if values["case"] is None:  # the case can not be read now: what the form held is given back, to copy
        values.update(typed=await typed_back(v.request),
                      typed_explained="typed_kept_timeout" if status == 504 else "typed_kept_unavailable",
                      resend=await resend_of(v.request) if status == 504 else None,
                      **(await _chosen_in_the_form(v) if status == 504 else {}))
    fetched = values.pop("status")
    # A fresh aid form carries a key made now: one request for however many times it is sent. So does every other
    # form of the page that adds or removes something (`new_key()`), unless it comes back with its own.
    fresh = {"aid_form": {"idempotency_key": str(uuid.uuid4())}, "aid_errors": {}, "case_errors": {}, "case_typed": {},
             "task_etags": {}}
    # The page is long and comes back scrolled to its top: the problem line links to the first field said wrong.
    wrong = [*shown.get("case_errors", {}), *shown.get("aid_errors", {})]
    return render(v.request, "case.html", visit_=v, status=status or fetched, categories=CATEGORIES,
                  urgencies=URGENCIES, document_kinds=DOCUMENT_KINDS, need_moves=NEED_MOVES,
                  removal_reasons=REMOVAL_REASONS, new_key=lambda: str(uuid.uuid4()),
                  problem_at=f"{wrong[0]}-error" if wrong else None,
                  **{**values, **fresh, **shown, "problem": problem or values.get("problem")})


# A form of the case page whose choices are not written at length: the step (its button's words) and each choice, in
# words, with the words of its label (and the values it may take, each said by its prefix and value), or a date as it
# was typed. Sent again from a page that can not draw the case, the choices went with the form they were made in.
CHOSEN_IN_FORM = {
    "needs": ("add_need", {"category": ("category", CATEGORIES, "category_"),
                           "urgency": ("urgency", URGENCIES, "urgency_")}),
    "tasks": ("add_task", {"due_on": ("task_due", None, ""), "assignee": ("task_assignee", None, "")}),
}


async def _chosen_in_the_form(v: Visit) -> dict[str, Any]:
    """What a form of `CHOSEN_IN_FORM` chose (shown beside "Send it again": what it sends), and its step."""
    form_name = v.request.url.path.rsplit("/", 1)[-1]
    if form_name not in CHOSEN_IN_FORM or v.request.method != "POST":
        return {}
    step, fields = CHOSEN_IN_FORM[form_name]
    form, t = await v.request.form(), i18n.translator(v.language)
    chosen = []
    for name, (label, choices, prefix) in fields.items():
        value = str(form.get(name, "")).strip()
        if value and (choices is None or value in choices):
            chosen.append((label, t(prefix + value) if choices else value))
    return {"typed_short": chosen, "resend_step": t(step)}


async def _act_on_case(v: Visit, case_id: uuid.UUID, method: str, path: str, json: Any = None, *,
                       files: dict[str, Any] | None = None, data: dict[str, str] | None = None,
                       done: Response | None = None, fields: dict[str, str] | None = None,
                       kinds: dict[str, str] | None = None, typed: dict[str, Any] | None = None,
                       section: str | None = None, key: tuple[str, Any] | None = None,
                       said: dict[str, str] | None = None, in_flight_is_done: bool = False) -> Response:
    """One change to the case from a form of its page; done, back to the page at `section` (the part the form is
    in); refused, the page again saying why. `fields` and `kinds`: the form's fields by the API's name of each, and
    refusals about one of them by kind (see `field_errors`): said next to their field, with `typed` (what was typed,
    by field id) back in it. `key`: the form's name and the Idempotency-Key it was drawn with, so that a form sent
    twice (a double click, a reload of a failed answer) acts once; refused, the form comes back under the key
    `router.key_for_retry` gives (as `<name>-key` of what was typed). `said`: the page's own words for a refusal of
    a kind (the i18n key), before the general ones. `in_flight_is_done`: the form's first sending, with the same
    key, is still being done (an upload, which is not sent again while it runs: `router.call`); it is answered as
    done, since the first one does it."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    reason = v.reason_for(case_id)
    answer = await call(v, method, f"/api/intake/cases/{case_id}{path}", json=json, reason=reason, files=files,
                        data=data, idempotency_key=str(key[1] or "") or None if key else None)
    if answer.ok or (in_flight_is_done and answer.kind == "idempotency-key-in-flight"):
        return done or back_to(f"/console/cases/{case_id}", section)
    if answer.need_to_know and not (reason and said and "need-to-know" in said):
        # the stated reason lapsed while the form was open: ask again, say nothing was saved
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    errors = field_errors(v, answer, fields or {}, kinds=kinds)
    typed = dict(typed or {})
    if key:
        typed[f"{key[0]}-key"] = key_for_retry(answer, key[1])
    words = i18n.translator(v.language)(said[answer.kind]) if said and answer.kind in said else refusal(v, answer)
    return await case_page_answer(v, case_id, status=answer.status, problem=form_problem(v, answer, errors, words),
                                  case_errors=errors, case_typed=typed)



@router.post("/console/cases/{case_id}/needs")
async def add_need(case_id: uuid.UUID, v: VisitDep) -> Response:
    form = await v.request.form()
    notes = str(form.get("notes", "")).strip()
    return await _act_on_case(v, case_id, "POST", "/needs", {
        "category": form.get("category"), "urgency": form.get("urgency"), "notes": notes or None},
        fields=NEED_FORM, typed={"need-notes": notes}, section="needs-h", key=("need", form.get("idempotency_key")))


# Each form of the case page: the API's name of each field → the form's id of it (the field its error is said by).
NEED_FORM = {"category": "need-category", "urgency": "need-urgency", "notes": "need-notes"}
CONSENT_FORM = {"categories": "consent-categories", "method": "consent-method", "expires_on": "consent-expires"}
NOTE_FORM = {"text": "note-text"}
TASK_FORM = {"title": "task-title", "due_on": "task-due", "assignee": "task-assignee"}
DOCUMENT_FORM = {"kind": "document-kind", "file": "document-file"}
DOCUMENT_REFUSALS = {"unsupported-document-type": "document-file", "content-too-large": "document-file",
                     "document-damaged": "document-file", "document-encrypted": "document-file",
                     "document-cannot-be-cleaned": "document-file",
                     "document-too-complex": "document-file", "document-cleaning-interrupted": "document-file",
                     "document-missing": "document-file", "multipart-invalid": "document-file",
                     "file-name-too-long": "document-file",
                     "document-kind-invalid": "document-kind"}
DUPLICATE_REFUSALS = {"duplicate-of-itself": "duplicate-reference", "kept-case-not-found": "duplicate-reference"}


@router.post("/console/cases/{case_id}/consent")
async def record_consent(case_id: uuid.UUID, v: VisitDep) -> Response:
    """A new consent from the form; a withdrawal (nothing shared) only from its own button, asked once more: an
    empty form sent by a stray click withdrew the person's consent, and partners lost the packets of referrals under
    way (an outside review's find)."""
    form = await v.request.form()
    consent = {"categories": [str(c) for c in form.getlist("categories")],
               "share_contact": form.get("share_contact") == "on", "share_health": form.get("share_health") == "on",
               "method": form.get("method") or "verbal", "expires_on": str(form.get("expires_on", "")) or None}
    typed = {"consent-expires": str(form.get("expires_on", "")), "consent": consent}
    if form.get("withdraw") == "yes":
        consent = {"categories": [], "share_contact": False, "share_health": False, "method": consent["method"],
                   "expires_on": None}
    elif not consent["categories"] and not supervises_only(v):
        said = i18n.translator(v.language)("consent_tick_or_withdraw")
        return await case_page_answer(v, case_id, status=422, problem=said,
                                      case_errors={"consent-categories": said}, case_typed=typed)
    # Refused, the form comes back as ticked, not as the consent in force: a caseworker's changes stay to correct.
    return await _act_on_case(v, case_id, "PUT", "/consent", consent, fields=CONSENT_FORM, typed=typed,
                              section="consent", key=("consent", form.get("idempotency_key")))


@router.post("/console/cases/{case_id}/assignees")
async def add_colleague(case_id: uuid.UUID, v: VisitDep) -> Response:
    """One more caseworker to hold the case, asked by one who holds it (a colleague to share it with, or to hand it
    to before leaving: a supervisor then takes the leaver off on the caseload)."""
    form = await v.request.form()
    username = str(form.get("username", "")).strip()
    if not username:
        chosen_none = i18n.translator(v.language)("colleague_choose")
        return await case_page_answer(v, case_id, status=422, problem=chosen_none,
                                      case_errors={"colleague": chosen_none})
    answer = await call(v, "POST", f"/api/intake/cases/{case_id}/assignees", json={"username": username})
    if answer.ok:
        return back_to(f"/console/cases/{case_id}", "assignees")
    if answer.need_to_know:
        return need_to_know_page(v, case_id)
    said = (i18n.translator(v.language)("assign_refused").format(names=username)
            if answer.kind == "not-an-enabled-caseworker" else None)
    errors = {"colleague": said} if said else field_errors(v, answer, {"username": "colleague"})
    return await case_page_answer(v, case_id, status=answer.status, problem=form_problem(v, answer, errors,
                                                                                       refusal(v, answer)),
                                  case_errors=errors, case_typed={"colleague": username})


@router.post("/console/cases/{case_id}/close")
async def close_case(case_id: uuid.UUID, v: VisitDep) -> Response:
    return await _act_on_case(v, case_id, "POST", "/close")


@router.post("/console/cases/{case_id}/documents")
async def upload_document(case_id: uuid.UUID, v: VisitDep) -> Response:
    """A document for the case, passed on to intake as it came (intake judges and cleans it). The page's script
    (documents.js, which shows the upload's progress) is answered 204 and loads the case page itself; a plain form
    post is sent back to the case page."""
    upload = getattr(v.request.state, "console_upload", None)
    chosen = upload.files.get("file") if upload is not None else None
    if chosen is None or not chosen.data:
        chosen_none = i18n.translator(v.language)("document_choose")
        return await case_page_answer(v, case_id, status=400, problem=chosen_none,
                                      case_errors={"document-file": chosen_none})
    by_script = v.request.headers.get("x-console-upload") == "1"
    files = {"file": (chosen.filename, bytes(chosen.data), "application/octet-stream")}
    chosen.data.clear()
    done = Response(status_code=204, headers=PAGE_HEADERS) if by_script else back_to(f"/console/cases/{case_id}",
                                                                                    "documents-h")
    # The form's key: the same file sent twice adds it once. A multipart body is not sent again while the first is
    # still being cleaned and saved (`router.call`): that one is saving it, so the second is answered as done.
    return await _act_on_case(v, case_id, "POST", "/documents", files=files,
                              data={"kind": upload.fields.get("kind", "")}, done=done,
                              fields=DOCUMENT_FORM, kinds=DOCUMENT_REFUSALS, section="documents-h",
                              key=("document", upload.fields.get("idempotency_key")), in_flight_is_done=True)


@router.get("/console/cases/{case_id}/documents/{document_id}")
async def download_document(case_id: uuid.UUID, document_id: uuid.UUID, v: VisitDep) -> Response:
    """A document's bytes from intake, passed on as they arrive, as an attachment (never shown in the console's
    own origin: a PDF or an image opened inline could carry script). Under the case's path, so that a break-glass
    reason stated for the case (its cookie's path) goes with it."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    runtime, state = v.request.app.state.runtime, v.request.app.state
    headers: dict[str, str | bytes] = {"Authorization": f"Bearer {v.token}",
                                       "X-Request-ID": context.request_id() or context.new_request_id()}
    try:
        reason = await reason_for_part(v, case_id, document_id, f"/api/intake/cases/{case_id}/documents")
    except NotTheCases:
        raise HTTPException(404, "There is no such document in this case.") from None
    if reason:
        headers["Access-Reason"] = reason.encode("utf-8")
    request = runtime.calls.build_request("GET", f"{state.backend_urls['intake']}/api/intake/documents/"
                                                 f"{document_id}/content", headers=headers)
    try:
        upstream = await runtime.calls.send(request, stream=True)
    except httpx.HTTPError as error:
        log.warning("console call failed", backend="intake", error_type=type(error).__name__)
        return back_to(f"/console/cases/{case_id}")
    if upstream.status_code != 200:
        answer = Answer(upstream.status_code, None)
        try:
            await upstream.aread()
            answer = Answer(upstream.status_code, upstream.json())
        except (ValueError, httpx.HTTPError):
            pass
        finally:
            await upstream.aclose()
        if answer.need_to_know:
            return need_to_know_page(v, case_id)
        return back_to(f"/console/cases/{case_id}")
    passed = {name: upstream.headers[name] for name in ("content-type", "content-length", "content-disposition")
              if name in upstream.headers}

    async def pieces() -> Any:
        try:
            async for piece in upstream.aiter_raw():
                yield piece
        finally:
            await upstream.aclose()

    return StreamingResponse(pieces(), headers={**passed, **PAGE_HEADERS, "X-Content-Type-Options": "nosniff"})


@router.post("/console/cases/{case_id}/reopen")
async def reopen_case(case_id: uuid.UUID, v: VisitDep) -> Response:
    return await _act_on_case(v, case_id, "POST", "/reopen")


@router.post("/console/cases/{case_id}/needs/{need_id}/status")
async def move_need(case_id: uuid.UUID, need_id: uuid.UUID, v: VisitDep) -> Response:
    form = await v.request.form()
    return await _act_on_case(v, case_id, "PATCH", f"/needs/{need_id}", {"status": str(form.get("status", ""))},
                              section="needs-h")


@router.post("/console/cases/{case_id}/duplicate-of")
async def mark_duplicate(case_id: uuid.UUID, v: VisitDep) -> Response:
    """Mark this case a duplicate of the case kept, named by its reference (typed into a POST form, never a URL):
    found among this case's possible duplicates, or among the visitor's own cases."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    form = await v.request.form()
    reference = str(form.get("reference", "")).strip().upper()
    kept = await _case_by_reference(v, str(case_id), reference) if reference else None
    if kept is None:
        unknown = i18n.translator(v.language)("no_case_with_reference")
        return await case_page_answer(v, case_id, status=409, problem=unknown,
                                      case_errors={"duplicate-reference": unknown},
                                      case_typed={"duplicate-reference": reference})
    if form.get("confirmed") != reference:
        # The case leaves the caseload and takes no more changes: a reference mistyped (00042 for 00024) would
        # freeze the wrong one. The page asks once more, naming both cases, as closing a case does.
        return await case_page_answer(v, case_id, duplicate_asked={"reference": reference, "kept": kept},
                                      case_typed={"duplicate-reference": reference})
    return await _act_on_case(v, case_id, "POST", "/duplicate-of", {"case_id": kept}, kinds=DUPLICATE_REFUSALS,
                              typed={"duplicate-reference": reference})


async def _case_by_reference(v: Visit, case_id: str, reference: str) -> str | None:
    reason = v.reason_for(case_id)
    case = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=reason)
    # The same person written another way, whoever holds the case; an erased case has no name left to compare (its
    # page may have stayed open while it was erased): intake then refuses the mark itself, in words.
    if case.ok and case.body.get("status") != "erased":
        check = {"full_name": case.body["full_name"], "other_names": case.body.get("other_names") or [],
                 "date_of_birth": case.body.get("date_of_birth")}
        found = await call(v, "POST", "/api/intake/cases/duplicates", json=check)
        for ref in (found.body.get("possible_duplicates", []) if found.ok else []):
            if ref["reference"] == reference and ref["id"] != case_id:
                return ref["id"]
    mine = await call(v, "GET", "/api/intake/cases", params={"limit": 100})
    return next((c["id"] for c in items(mine) if c["reference"] == reference and c["id"] != case_id), None)


async def _case_to_open(v: Visit, case_id: uuid.UUID) -> Answer | Response:
    """The case, read with the visitor's stated reason if they gave one; or the page that asks why (break-glass),
    or tells a supervisor the people in the caseload are not theirs to open."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    case = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=v.reason_for(case_id))
    if case.need_to_know:
        return need_to_know_page(v, case_id)
    return case


@router.get("/console/cases/{case_id}/erase", response_class=HTMLResponse)
async def erase_confirmation(case_id: uuid.UUID, v: VisitDep) -> Response:
    case = await _case_to_open(v, case_id)
    if isinstance(case, Response):
        return case
    return render(v.request, "erase.html", visit_=v, case=case.body if case.ok else None, problem=case.problem,
                  status=case.status if not case.ok else 200)


@router.post("/console/cases/{case_id}/erase")
async def erase_case(case_id: uuid.UUID, v: VisitDep) -> Response:
    return await _act_on_case(v, case_id, "DELETE", "")


# --- caseworker: notes and tasks (SPEC §4) -----------------------------------------------------------------------
#
# Each section of the case page is a partial of its own (case_notes.html, case_tasks.html); the caseworker's landing
# page (`/console/cases`, where `/` sends them) lists what is due today and overdue first (home_tasks.html). A note
# or a task title is typed text: it goes in a POST body only, and every answer is a redirect to a known page (PRG).

async def _casework_values(v: Visit, case_id: str, reason: str | None) -> dict[str, Any]:
    """The case page's notes (newest first) and tasks (soonest due first), with today's date to mark overdue ones."""
    notes = await call(v, "GET", f"/api/intake/cases/{case_id}/notes", params={"limit": 100}, reason=reason)
    tasks = await call(v, "GET", f"/api/intake/cases/{case_id}/tasks", params={"limit": 100}, reason=reason)
    return {"notes": items(notes), "tasks": items(tasks), "today": today().isoformat(),
            "casework_problems": [a.problem for a in (notes, tasks) if a.problem]}


def today() -> date:
    """The day tasks fall due on (UTC, like every date the services keep)."""
    return datetime.now(UTC).date()


COMING_DAYS = 7  # the landing page looks this far ahead, past what is due today


async def due_tasks(v: Visit) -> dict[str, Any]:
    """A caseworker's open tasks for their landing page, soonest first: due today or overdue, and coming in the next
    seven days (to plan the week, not only the day)."""
    if not v.can("caseworker"):
        return {"due_tasks": [], "coming_tasks": []}
    day = today().isoformat()
    answer = await call(v, "GET", "/api/intake/tasks",
                        params={"status": "open", "limit": 100,
                                "due_before": (today() + timedelta(days=COMING_DAYS + 1)).isoformat()})
    listed = items(answer)
    return {"due_tasks": [task for task in listed if task["due_on"] <= day],
            "coming_tasks": [task for task in listed if task["due_on"] > day], "today": day,
            "due_problem": answer.problem}


@router.post("/console/cases/{case_id}/notes")
async def add_note(case_id: uuid.UUID, v: VisitDep) -> Response:
    form = await v.request.form()
    text = str(form.get("text", "")).strip()
    return await _act_on_case(v, case_id, "POST", "/notes", {"text": text}, fields=NOTE_FORM, typed={"note-text": text},
                              section="notes", key=("note", form.get("idempotency_key")))


@router.post("/console/cases/{case_id}/tasks")
async def add_task(case_id: uuid.UUID, v: VisitDep) -> Response:
    form = await v.request.form()
    typed = {"task-title": str(form.get("title", "")).strip(), "task-due": str(form.get("due_on", "")).strip()}
    return await _act_on_case(v, case_id, "POST", "/tasks", {
        "title": typed["task-title"], "due_on": typed["task-due"] or None,
        "assignee": str(form.get("assignee", "")).strip() or None},
        fields=TASK_FORM, kinds={"not-an-assignee": "task-assignee"}, typed=typed, section="tasks",
        key=("task", form.get("idempotency_key")))


# --- caseworker: correcting the record ---------------------------------------------------------------------------
#
# A note or a document added in error is removed by one of the case's own caseworkers (never a visitor who stated a
# reason: intake refuses them, and the page offers it only to the case's caseworkers), with a reason from a fixed
# list, after a confirmation that says the content goes for good; what stays is a tombstone in its list and on the
# timeline. A task is changed (title, due date, assignee) or cancelled while it is open. Every form carries an
# Idempotency-Key made when it was drawn (a double click removes or cancels once); the task's edit form carries the
# ETag of the version it shows, sent as If-Match.

# Why something was removed (intake's `RemovalReason`): each said by `removal_reason_<word>`.
REMOVAL_REASONS = ("wrong_case", "duplicate", "mistake")
# Only the case's own caseworkers correct its record: a stated reason does not make a visitor one of them.
HOLDERS_ONLY = {"need-to-know": "problem_correct_holders_only", "task-not-open": "problem_task_not_open"}


async def _remove(v: Visit, case_id: uuid.UUID, what: str, row_id: uuid.UUID, section: str) -> Response:
    """Remove a note or a document (`what`) added in error, with the reason chosen beside the button."""
    form = await v.request.form()
    name = f"{what}-{row_id}-remove"
    return await _act_on_case(v, case_id, "POST", f"/{what}s/{row_id}/remove",
                              {"reason": str(form.get("reason", ""))}, fields={"reason": f"{name}-reason"},
                              typed={name: "open"}, section=section, key=(name, form.get("idempotency_key")),
                              said=HOLDERS_ONLY)


@router.post("/console/cases/{case_id}/notes/{note_id}/remove")
async def remove_note(case_id: uuid.UUID, note_id: uuid.UUID, v: VisitDep) -> Response:
    return await _remove(v, case_id, "note", note_id, "notes")


@router.post("/console/cases/{case_id}/documents/{document_id}/remove")
async def remove_document(case_id: uuid.UUID, document_id: uuid.UUID, v: VisitDep) -> Response:
    return await _remove(v, case_id, "document", document_id, "documents-h")


@router.post("/console/cases/{case_id}/tasks/{task_id}/edit")
async def change_task(case_id: uuid.UUID, task_id: uuid.UUID, v: VisitDep) -> Response:
    """Save a task's title, due date and assignee as the edit form shows them, on the version it was drawn with
    (If-Match: its ETag); intake changes only what differs. When the task changed meanwhile (412) — or the same form
    was sent twice, and the first sending changed it — the task is read again: already as typed, the save is done;
    else the form comes back with what was typed and the new ETag, saying someone else changed it."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    form = await v.request.form()
    name = f"task-{task_id}"
    typed = {f"{name}-title": str(form.get("title", "")).strip(), f"{name}-due": str(form.get("due_on", "")).strip(),
             f"{name}-assignee": str(form.get("assignee", "")).strip(), name: "open"}
    body = {"title": typed[f"{name}-title"], "due_on": typed[f"{name}-due"] or None,
            "assignee": typed[f"{name}-assignee"] or None}
    answer = await call(v, "PATCH", f"/api/intake/tasks/{task_id}", json=body, if_match=str(form.get("etag", "")),
                        reason=v.reason_for(case_id))
    if answer.ok:
        return back_to(f"/console/cases/{case_id}", "tasks")
    t = i18n.translator(v.language)
    if answer.status == 412:
        now = await _task_of_case(v, case_id, task_id)
        if now is not None and {key: now.get(key) for key in body} == body:
            return back_to(f"/console/cases/{case_id}", "tasks")
        return await case_page_answer(v, case_id, status=412, problem=t("task_changed_meanwhile"),
                                      case_typed=typed, task_etags={str(task_id): now["etag"]} if now else {})
    errors = field_errors(v, answer, {"title": f"{name}-title", "due_on": f"{name}-due",
                                      "assignee": f"{name}-assignee"},
                          kinds={"not-an-assignee": f"{name}-assignee"})
    words = t(HOLDERS_ONLY[answer.kind]) if answer.kind in HOLDERS_ONLY else refusal(v, answer)
    return await case_page_answer(v, case_id, status=answer.status, problem=form_problem(v, answer, errors, words),
                                  case_errors=errors, case_typed=typed,
                                  task_etags={str(task_id): str(form.get("etag", ""))})


async def _task_of_case(v: Visit, case_id: uuid.UUID, task_id: uuid.UUID) -> dict[str, Any] | None:
    tasks = await call(v, "GET", f"/api/intake/cases/{case_id}/tasks", params={"limit": 200},
                       reason=v.reason_for(case_id))
    return next((task for task in items(tasks) if task["id"] == str(task_id)), None)


@router.post("/console/cases/{case_id}/tasks/{task_id}/cancel")
async def cancel_task(case_id: uuid.UUID, task_id: uuid.UUID, v: VisitDep) -> Response:
    """Cancel an open task (made in error, no longer needed): neither open nor done. Asked once more first."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    form = await v.request.form()
    sent = form.get("idempotency_key")
    answer = await call(v, "POST", f"/api/intake/tasks/{task_id}/cancel", idempotency_key=str(sent or "") or None,
                        reason=v.reason_for(case_id))
    if answer.ok:
        return back_to(f"/console/cases/{case_id}", "tasks")
    name = f"task-{task_id}-cancel"
    words = i18n.translator(v.language)(HOLDERS_ONLY[answer.kind]) if answer.kind in HOLDERS_ONLY \
        else refusal(v, answer)
    return await case_page_answer(v, case_id, status=answer.status, problem=words,
                                  case_typed={f"{name}-key": key_for_retry(answer, sent)})


@router.post("/console/tasks/{task_id}/done")
async def finish_task(task_id: uuid.UUID, v: VisitDep) -> Response:
    """Mark a task done, then back to the case it belongs to (a case id, from a hidden field) or to the landing
    page's list of tasks due."""
    form = await v.request.form()
    try:
        case_id: uuid.UUID | None = uuid.UUID(str(form.get("case_id", "")))
    except ValueError:
        case_id = None
    answer = await call(v, "POST", f"/api/intake/tasks/{task_id}/done")
    from_case = bool(case_id and form.get("from") == "case")
    back = f"/console/cases/{case_id}" if from_case else "/console/cases"
    if answer.ok:
        return back_to(back, "tasks" if from_case else None)
    if case_id and form.get("from") == "case":
        return await case_page_answer(v, case_id, status=answer.status, problem=answer.problem)
    listed = await call(v, "GET", "/api/intake/cases", params={"limit": CASES_PER_PAGE})
    return render(v.request, "cases.html", visit_=v, status=answer.status, q="", cases=items(listed),
                  mine={case["id"] for case in items(listed)}, problem=answer.problem, cases_unshown=not listed.ok,
                  **await due_tasks(v))


# --- caseworker: editing a case, and asking for aid (issue #17) --------------------------------------------------
#
# The edit form is opened on one version of the case: its ETag in a hidden field, and the values it was opened with
# sealed in another (`original`), so that a save sends only what the caseworker changed, as a PATCH with If-Match.
# When someone else changed the case meanwhile (412), the form comes back with what was typed kept, each field the
# other person changed shown as stored now beside what was typed, and the new ETag: saving again is then a choice
# made knowing both. Typed values travel only in POST bodies and the pages that answer them.

def seal_original(v: Visit, case_id: str, values: dict[str, str]) -> str:
    """The values an edit form was opened with, sealed (encrypted and authenticated, like a break-glass reason):
    they are the person's data, and a form opened on another case or by another person is not taken for this one."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(console_key(v.request, "case-edit")).encrypt(
        nonce, json.dumps(values, ensure_ascii=False).encode(), _edit_binding(v, case_id))
    return urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def opened_original(v: Visit, case_id: str, sealed: str) -> dict[str, str] | None:
    try:
        raw = urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        values = json.loads(AESGCM(console_key(v.request, "case-edit")).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _edit_binding(v, case_id)))
    except (ValueError, TypeError, InvalidTag):
        return None
    return {field: str(values.get(field, "")) for field in CASE_FIELDS} if isinstance(values, dict) else None


def _edit_binding(v: Visit, case_id: str) -> bytes:
    """What sealed original values are good for: this person's edit form of this case."""
    return f"{v.principal.sub}\0{case_id.lower()}".encode()


def shown_value(field: str, text: str, language: str) -> str:
    """A field's text as the conflict table shows it: a date as the visitor's locale writes it, a list on one line."""
    if field in DATE_FIELDS:
        return i18n.format_date(text.strip(), language)
    if field in LIST_FIELDS:
        return ", ".join(_items(field, text))
    return text.strip()


def _edit_page(v: Visit, case: dict[str, Any], *, form: dict[str, str], original: dict[str, str], etag: str,
               status: int = 200, errors: dict[str, str] | None = None,
               conflicts: list[dict[str, Any]] | None = None, problem: str | None = None) -> Response:
    return render(v.request, "case_edit.html", visit_=v, status=status, case=case, form=form, etag=etag,
                  original=seal_original(v, case["id"], original), errors=errors or {}, conflicts=conflicts,
                  problem=problem)


@router.get("/console/cases/{case_id}/edit", response_class=HTMLResponse)
async def edit_form(case_id: uuid.UUID, v: VisitDep) -> Response:
    """The case's fields, filled in as stored, on the version the ETag names."""
    case = await _case_to_open(v, case_id)
    if isinstance(case, Response):
        return case
    if not case.ok or case.body.get("status") != "open":  # nothing to edit: the case page says what there is
        return back_to(f"/console/cases/{case_id}")
    stored = case_form(case.body)
    return _edit_page(v, case.body, form=stored, original=stored, etag=(case.headers or {}).get("etag", ""))


@router.post("/console/cases/{case_id}/edit", response_class=HTMLResponse)
async def save_case(case_id: uuid.UUID, v: VisitDep) -> Response:
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    submitted = await v.request.form()
    typed = {field: str(submitted.get(field, "")) for field in CASE_FIELDS}
    etag = str(submitted.get("etag", ""))
    original = opened_original(v, str(case_id), str(submitted.get("original", "")))
    if original is None:  # not a form this console opened on this case for this person: set against what is stored
        return await _conflict_page(v, case_id, typed, None)
    changes = case_changes(typed, original)
    if not changes:
        return back_to(f"/console/cases/{case_id}")
    reason = v.reason_for(case_id)
    answer = await call(v, "PATCH", f"/api/intake/cases/{case_id}", json=changes, if_match=etag, reason=reason)
    if answer.ok:
        return back_to(f"/console/cases/{case_id}")
    if answer.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    if answer.status == 412:
        return await _conflict_page(v, case_id, typed, original)
    case = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=reason)
    if not case.ok or case.body.get("status") == "erased":
        return await case_page_answer(v, case_id, status=answer.status, problem=refusal(v, answer))
    errors = field_errors(v, answer, CASE_FIELDS)
    return _edit_page(v, case.body, form=typed, original=original, etag=etag, status=answer.status, errors=errors,
                      problem=i18n.translator(v.language)("fields_wrong") if errors else refusal(v, answer))


async def _conflict_page(v: Visit, case_id: uuid.UUID, typed: dict[str, str],
                         original: dict[str, str] | None) -> Response:
    """The edit form again, on the version stored now. Each field keeps what the caseworker typed where they changed
    it, and takes the stored value where only someone else did (a second save must not undo that unseen); each field
    someone else changed is listed, stored now beside typed. Without the values the form was opened with, every
    field that differs from what is stored is listed."""
    now = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=v.reason_for(case_id))
    if now.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    if not now.ok or now.body.get("status") == "erased":
        return await case_page_answer(v, case_id, status=now.status if not now.ok else 409,
                                      problem=refusal(v, now) if not now.ok
                                      else i18n.translator(v.language)("problem_case_erased"))
    stored = case_form(now.body)
    form: dict[str, str] = {}
    conflicts: list[dict[str, Any]] = []
    for field in CASE_FIELDS:
        mine = original is None or not _same(field, typed[field], original[field])
        theirs = original is None or not _same(field, stored[field], original[field])
        form[field] = typed[field] if mine else stored[field]
        if theirs and not _same(field, stored[field], typed[field]):
            conflicts.append({"field": field, "stored": shown_value(field, stored[field], v.language),
                              "typed": shown_value(field, typed[field], v.language) if mine else None})
    return _edit_page(v, now.body, form=form, original=stored, etag=(now.headers or {}).get("etag", ""),
                      status=409, conflicts=conflicts)


AID_FIELDS = ("grant_id", "category", "amount", "purpose", "payee_name", "payee_account")


@router.post("/console/cases/{case_id}/aid", response_class=HTMLResponse)
async def request_aid(case_id: uuid.UUID, v: VisitDep) -> Response:
    """Ask for aid for this case from a grant, in the grant's currency. The form's idempotency key was made when the
    form was rendered: a double click or a resent form asks once. Finance approves and pays, never the asker."""
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    from gateway.console import finance  # imported here: finance imports this module

    form = {key: str(value) for key, value in (await v.request.form()).items() if key != "csrf"}
    grants = items(await call(v, "GET", "/api/funds/grants/open", params={"limit": 200}))
    grant = next((g for g in grants if g["id"] == form.get("grant_id")), None)
    currency = grant["currency"] if grant else ""
    # In the grant's own decimals: "300" is 300 yen, 300.000 dinars or 300.00 euros. Without a grant (funds refuses
    # it), as typed.
    amount = (i18n.typed_amount(form.get("amount", ""), currency, v.language) if grant
              else form.get("amount", "").strip())
    body = finance.with_typed_payee({
        "case_id": str(case_id), "grant_id": form.get("grant_id", ""), "category": form.get("category", ""),
        "currency": currency, "amount": amount, "purpose": form.get("purpose", "").strip()}, form)
    answer = await call(v, "POST", "/api/funds/disbursements", json=body, reason=v.reason_for(case_id),
                        idempotency_key=form.get("idempotency_key") or str(uuid.uuid4()))
    if answer.ok:
        return back_to(f"/console/cases/{case_id}", "aid")
    if answer.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    errors = field_errors(v, answer, AID_FIELDS, aliases={"currency": "grant_id"})
    t = i18n.translator(v.language)
    if answer.kind == "grant-category" and grant is not None:  # said beside the category, with what the grant pays
        errors["category"] = t("aid_grant_category").format(code=grant["code"], categories=", ".join(
            t("category_" + c) for c in grant.get("categories", [])))
    if grant is not None and errors.get("amount") == t(FIELD_ERROR_WORDS["amount"]):
        # The general sentence's example has two decimals; say how an amount of this grant's currency is written.
        errors["amount"] = finance.amount_error(currency, v.language)
    # The form comes back as typed: under a new key after a refusal, under the same one when funds may have done it.
    return await case_page_answer(
        v, case_id, status=answer.status, problem=t("fields_wrong") if errors else refusal(v, answer),
        aid_form={**form, "idempotency_key": key_for_retry(answer, form.get("idempotency_key"))}, aid_errors=errors)


@router.get("/console/cases/{case_id}/break-glass", response_class=HTMLResponse)
async def break_glass_form(case_id: uuid.UUID, v: VisitDep) -> Response:
    """Reached from a search result that is not one's own: the question comes before anything is opened."""
    if v.reason_for(case_id):
        return back_to(break_glass_path(case_id))
    return need_to_know_page(v, case_id, status=200)


@router.post("/console/cases/{case_id}/break-glass")
async def state_reason(case_id: uuid.UUID, v: VisitDep) -> Response:
    """The stated reason, kept sealed for this case's pages; then the case itself. Nothing is opened here: the
    case page's own requests carry the reason, and the services record each one."""
    typed = str((await v.request.form()).get("reason", ""))
    reason = spoken(typed)
    if not v.can("caseworker"):
        return need_to_know_page(v, case_id)
    # The services' rule, refused here first, in the page's words.
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        refusal = i18n.translator(v.language)("break_glass_length").format(low=MIN_REASON, high=MAX_REASON)
        return need_to_know_page(v, case_id, typed=typed[: MAX_REASON * 2], problem=refusal, status=422)
    if not said_in_words(reason):
        refusal = i18n.translator(v.language)("break_glass_words").format(letters=MIN_REASON_LETTERS)
        return need_to_know_page(v, case_id, typed=typed[: MAX_REASON * 2], problem=refusal, status=422)
    response = back_to(break_glass_path(case_id))
    response.set_cookie(BREAK_GLASS_COOKIE, seal_reason(v, str(case_id), reason), max_age=BREAK_GLASS_COOKIE_SECONDS,
                        path=break_glass_path(case_id), httponly=True, samesite="strict",
                        secure=secure_cookies(v.request))
    return response


# --- caseworker: referrals ---------------------------------------------------------------------------------------

@router.get("/console/cases/{case_id}/refer", response_class=HTMLResponse)
async def referral_form(case_id: uuid.UUID, v: VisitDep) -> Response:
    return await _referral_page(v, case_id, {"category": "", "country": "", "language": ""})


@router.post("/console/cases/{case_id}/refer/partners", response_class=HTMLResponse)
async def find_partners(case_id: uuid.UUID, v: VisitDep) -> Response:
    """The partner filters, posted (never in a URL): the referral form again, with the partners that fit, and what
    was typed into it kept (the filters and the packet are one form, so that a referral goes in the category shown;
    Enter in a field finds partners, it never sends)."""
    form = {key: str(value) for key, value in (await v.request.form()).items() if key != "csrf"}
    typed = form if any(form.get(key, "").strip() for key in REFERRAL_FORM.values()) else None
    return await _referral_page(v, case_id, {"category": form.get("category", ""),
                                             "country": form.get("country", "").strip().upper()[:COUNTRY_TYPED],
                                             "language": form.get("language", "").strip()}, form=typed)


async def _referral_page(v: Visit, case_id: uuid.UUID, filters: dict[str, str], *, form: dict[str, str] | None = None,
                         problem: str | None = None, status: int = 200,
                         errors: dict[str, str] | None = None) -> Response:
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    reason = v.reason_for(case_id)
    case = await call(v, "GET", f"/api/intake/cases/{case_id}", reason=reason)
    if case.need_to_know:
        return need_to_know_page(v, case_id, unsaved=form is not None)
    consent = await call(v, "GET", f"/api/intake/cases/{case_id}/consent", reason=reason)
    current = consent.body.get("current") if consent.ok else None
    allowed = list(current["categories"]) if current else []
    # Suggested first: categories with a need still open or in progress; a met or dropped need suggests nothing.
    needs = await call(v, "GET", f"/api/intake/cases/{case_id}/needs", params={"limit": 100}, reason=reason)
    active = {n["category"] for n in items(needs) if n.get("status", "open") in ("open", "in_progress")}
    allowed = [c for c in allowed if c in active] + [c for c in allowed if c not in active]
    category = filters["category"] if filters["category"] in allowed else (allowed[0] if allowed else "")
    partners: list[dict[str, Any]] = []
    if category:
        found = await call(v, "GET", "/api/referrals/partners",
                           params={"category": category, "limit": 200,
                                   **({"country": filters["country"]} if filters["country"] else {})})
        partners = [p for p in items(found) if p.get("active", True)
                    and (not filters["language"] or filters["language"] in p.get("languages", []))]
        if not found.ok and (form or {}).get("partner_id"):
            partners = [chosen_partner(form["partner_id"])]
        wrong = field_errors(v, found, PARTNER_FILTERS)
        errors = {**wrong, **(errors or {})}
        problem = problem or form_problem(v, found, wrong)
    form = form or {}
    return render(v.request, "refer.html", visit_=v, status=status if case.ok else case.status,
                  case=case.body if case.ok else None, consent=current, allowed=allowed,
                  typed=[] if case.ok else await typed_back(v.request),
                  typed_explained="typed_kept_timeout" if status == 504 else "typed_kept_unavailable",
                  resend=await resend_of(v.request) if status == 504 else None,
                  filters={**filters, "category": category}, partners=partners,
                  referred=await _open_referrals(v, case_id, category) if partners else {},
                  form={**form, "idempotency_key": form.get("idempotency_key") or str(uuid.uuid4())},
                  errors=errors or {}, problem=problem or case.problem or consent.problem)


def chosen_partner(partner_id: str) -> dict[str, Any]:
    """The partner a form sent back had chosen, when referrals (which lists the partners) gave no list: kept chosen,
    by its id alone, so that the form sent again goes to the same partner (its name is referrals' to say)."""
    return {"id": partner_id, "kept": True}


async def _open_referrals(v: Visit, case_id: uuid.UUID, category: str) -> dict[str, dict[str, Any]]:
    """The case's referrals still open for this need, by partner: the form says so beside that partner, so that a
    caseworker does not send the person's data to the same partner twice without meaning to (a second one stays
    possible: a first may have gone unanswered)."""
    found = await call(v, "GET", "/api/referrals/referrals", params={"case_id": str(case_id), "limit": 200},
                       reason=v.reason_for(case_id))
    return {r["partner_id"]: r for r in reversed(items(found))
            if r.get("need_category") == category and r.get("status") in OPEN_REFERRALS}


# The referral page's forms: the API's name of each field → the form's id of it (see `field_errors`).
PARTNER_FILTERS = {"category": "f-category", "country": "f-country"}
COUNTRY_TYPED = 16  # a country filter is a two-letter code: more than this is not one, and is said wrong as such
REFERRAL_FORM = {"packet.display_name": "display_name", "packet.language": "packet_language", "packet.note": "note",
                 "packet.contact": "contact", "packet.health_summary": "health_summary", "partner_id": "partner",
                 "need_category": "partner"}
REFERRAL_REFUSALS = {"consent-contact": "contact", "consent-health": "health_summary", "partner-inactive": "partner",
                     "category-mismatch": "partner", "partner-unknown": "partner"}


@router.post("/console/cases/{case_id}/refer", response_class=HTMLResponse)
async def send_referral(case_id: uuid.UUID, v: VisitDep) -> Response:
    if supervises_only(v):
        return need_to_know_page(v, case_id)
    form = {key: str(value) for key, value in (await v.request.form()).items() if key != "csrf"}
    packet = {"display_name": form.get("display_name", "").strip(), "language": form.get("packet_language") or None,
              "note": form.get("note") or None}
    # Disabled fields are not sent by a browser; whatever arrives anyway is checked against the consent by the service.
    for key in ("contact", "health_summary"):
        if form.get(key, "").strip():
            packet[key] = form[key].strip()
    # The form's key, made when it was drawn: a double click or a resent form refers the person once — a second
    # referral would send their data to the partner twice.
    answer = await call(v, "POST", "/api/referrals/referrals", json={
        "case_id": str(case_id), "partner_id": form.get("partner_id", ""),
        "need_category": form.get("category", ""), "packet": packet}, reason=v.reason_for(case_id),
        idempotency_key=form.get("idempotency_key") or None)
    if answer.ok:
        return back_to(f"/console/cases/{case_id}", "referrals")
    if answer.need_to_know:
        return need_to_know_page(v, case_id, unsaved=True, kept=await typed_back(v.request))
    filters = {"category": form.get("category", ""), "country": form.get("country", "")[:COUNTRY_TYPED],
               "language": form.get("language", "")}
    errors = field_errors(v, answer, REFERRAL_FORM, kinds=REFERRAL_REFUSALS)
    said = i18n.translator(v.language)("problem_referral_case_unknown") if answer.kind == "case-unknown" \
        else refusal(v, answer)
    form["idempotency_key"] = key_for_retry(answer, form.get("idempotency_key"))
    return await _referral_page(v, case_id, filters, form=form, status=answer.status, errors=errors,
                                problem=form_problem(v, answer, errors, said))


