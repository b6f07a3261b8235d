"""The auditor's pages (issue #19): the audit trail of every service, each chain's verification, and the break-glass
openings of cases.

An auditor reads the trails and verifies them, and never sees personal data (SPEC §2): an entry is who, what, when,
which record and which request. Intake's, referrals' and funds' trails are asked over HTTP with the auditor's own
token (`router.call`), so each service checks the role itself; the gateway's own trail (sign-ins, accounts, approvals)
is read in-process as its API route reads it (`/api/admin/audit`), the role checked here first. Actors are shown by
the user name the gateway knows them by, else as stored; actions in words, an unknown one as its raw name.

A record's id typed into the filter travels in a POST body and is answered in place, and the next page of a filtered
look is a POST again: an id is not a name, but the address of an audit lookup says whom the auditor looked at, and
addresses stay in browser histories and proxy logs. Addresses hold fixed words (the service) and the API's cursor.

Verifying reads a service's whole chain, so it runs on a trail's first page, where the auditor lands — all four
chains side by side — and not again on each following page or filtered look.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from gateway.console import i18n
from gateway.console.router import Answer, Visit, VisitDep, back_to, call, render, staff_names
from kit import problems
from kit.errors import DomainError
from kit.idempotency import REPLAYED
from kit.need_to_know import BREAK_GLASS

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = "/console/audit"
SEARCH = "/console/audit/search"
BREAK_GLASS_PAGE = "/console/audit/break-glass"
ENTRIES_PER_PAGE = 50
SERVICES = ("intake", "referrals", "funds", "gateway")  # the tabs, in this order; intake's is where one lands
# What each service writes into its trail, in the order the action filter lists them; each has words under
# `audit.<action>` in i18n. An action not listed here is shown by its raw name (a service newer than this page).
ACTIONS: dict[str, tuple[str, ...]] = {
    "intake": ("case.create", "case.read", "case.update", "case.search", "case.duplicate-check", "case.assign",
               "case.close", "case.reopen", "case.duplicate", "case.erase", BREAK_GLASS, "needs.add", "needs.read",
               "needs.status", "consent.set", "consent.read", "timeline.read", "notes.add", "notes.read", "tasks.add",
               "tasks.read", "tasks.done", "tasks.change", "tasks.cancel", "tasks.hand_on", "note.removed",
               "document.add", "documents.read", "document.download", "document.removed", "case.access_refused",
               "access.refused", REPLAYED),
    "referrals": ("referral.create", "referral.read", "referral.cancel", "referral.message.write",
                  "referral.message.read", "referral.packet.destroy", BREAK_GLASS, "partner.referral.read",
                  "partner.referral.accept", "partner.referral.decline", "partner.referral.start",
                  "partner.referral.complete", "partner.referral.message.write", "partner.referral.message.read",
                  "partner.referral.denied", "partner.create", "partner.update", "partner.webhook.set",
                  "partner.webhook.rotate", "partner.webhook.delete", "partner.webhook.redeliver",
                  "partner.webhook.redeliver-dead", "case.consent.told", "case.access_refused",
                  "access.refused", REPLAYED),
    "funds": ("grant.create", "disbursement.request", "disbursement.read", "payee.read", "disbursement.approve",
              "disbursement.reject", "disbursement.pay", "disbursement.pay.fx", "disbursement.pay.fx-release",
              "disbursement.pay.fx-approve", "disbursement.void", BREAK_GLASS, "case.shred", "case.access_refused",
              "disbursement.four-eyes-refused", "disbursement.pay-refused", "disbursement.approve-refused",
              "access.refused", REPLAYED),
    "gateway": ("signin.ok", "signin.failed", "signin.refused", "signin.throttled", "user.locked",
                "user.locked_everywhere", "user.codes_locked", "user.unlock", "user.create", "user.roles",
                "user.disable", "user.enable",
                "user.password", "mfa.enrolled", "mfa.reset", "mfa.recovery_code_used", "session.revoke",
                "session.revoke_all", "session.refresh_reused", "client.create", "client.activated", "client.revoke",
                "approval.request", "approval.approve", "approval.reject", "approval.withdraw", "keys.sealed",
                "access.refused"),
}
# Why a chain that holds together is still not vouched for: its newest signed checkpoint's state (kit.checkpoints).
CHECKPOINT_WORDS = {"truncated": "audit_verdict_truncated", "diverged": "audit_verdict_diverged",
                    "forged": "audit_verdict_forged", "missing": "audit_verdict_missing",
                    "unavailable": "audit_verdict_unavailable", "no_key": "audit_verdict_no_key"}
# A record's id as the trails hold it: a UUID, or an API client's id (gateway.service: `pc_` and 24 hex digits).
CLIENT_ID = re.compile(r"pc_[0-9a-f]{24}")


# --- who may come here ----------------------------------------------------------------------------------------------

async def auditor_visit(v: VisitDep) -> Visit:
    """A signed-in auditor; anyone else is refused, as the admin pages refuse a non-admin."""
    if not v.can("auditor"):
        raise HTTPException(403, "Only an auditor may open the audit pages.")
    return v


AuditorVisit = Annotated[Visit, Depends(auditor_visit)]


# --- the pages --------------------------------------------------------------------------------------------------------

@router.get(AUDIT_PAGE, response_class=HTMLResponse)
async def trail_page(v: AuditorVisit, service: str | None = None, cursor: str | None = None) -> Response:
    """A service's trail, newest first; on its first page, every chain's verification above it."""
    return await _trail(v, _service(service), cursor=cursor or None)


@router.post(SEARCH, response_class=HTMLResponse)
async def filtered_trail(v: AuditorVisit) -> Response:
    """The trail about one record and/or of one action, answered in place; its next page is this form again."""
    form = await v.request.form()
    service = _service(str(form.get("service", "")))
    action = str(form.get("action", ""))
    action = action if action in ACTIONS[service] else ""  # only an action of the list: a fixed word
    typed = str(form.get("target_id", "")).strip()
    cursor = str(form.get("cursor", "")) or None
    if not typed and not action:
        return await _trail(v, service, cursor=cursor)
    target = record_id(typed) if typed else ""
    if target is None:
        t = i18n.translator(v.language)
        return render(v.request, "audit_trail.html", visit_=v, status=422, **_tabs(service), entries=[],
                      verdicts=None, filters={"target_id": typed, "action": action},
                      errors={"target_id": t("audit_bad_target")}, listed=False)
    return await _trail(v, service, cursor=cursor, target_id=target, action=action)


@router.get(SEARCH)
async def filtered_trail_by_address() -> Response:
    """Typed into the address bar, or reached after signing in again: the filter is on the trail's page."""
    return back_to(AUDIT_PAGE)


@router.get(BREAK_GLASS_PAGE, response_class=HTMLResponse)
async def break_glass_page(v: AuditorVisit, cursor: str | None = None) -> Response:
    """Every opening of a case not assigned to the opener, stating a reason (intake's `case.break_glass`): who,
    which case, when — the reason itself stays encrypted with the case, for its caseworkers' eyes."""
    answer = await _entries(v, "intake", cursor=cursor or None, action=BREAK_GLASS)
    body = answer.body if answer.ok and isinstance(answer.body, dict) else {}
    found = body.get("items", [])
    next_cursor = body.get("next_cursor")
    return render(v.request, "audit_break_glass.html", visit_=v, status=400 if answer.status == 400 else 200,
                  services=SERVICES, shown="break-glass", openings=_shown_entries(v, "intake", found),
                  next_link=f"{BREAK_GLASS_PAGE}?{urlencode({'cursor': next_cursor})}" if next_cursor else None,
                  problem=None if answer.ok else _unread(v, "intake", answer))


# --- a trail: its entries and its verification ------------------------------------------------------------------------

async def _trail(v: Visit, service: str, *, cursor: str | None, target_id: str = "", action: str = "") -> Response:
    filtered = bool(target_id or action)
    first_look = not cursor and not filtered
    entries, verdicts = await asyncio.gather(
        _entries(v, service, cursor=cursor, target_id=target_id, action=action),
        _verdicts(v) if first_look else _nothing())
    body = entries.body if entries.ok and isinstance(entries.body, dict) else {}
    next_cursor = body.get("next_cursor")
    next_link = None
    if next_cursor and not filtered:
        next_link = f"{AUDIT_PAGE}?{urlencode({'service': service, 'cursor': next_cursor})}"
    bad_entry = next((r.get("first_bad") for r in verdicts or [] if r["service"] == service), None)
    return render(v.request, "audit_trail.html", visit_=v, status=400 if entries.status == 400 else 200,
                  **_tabs(service), entries=_shown_entries(v, service, body.get("items", [])), verdicts=verdicts,
                  bad_entry=bad_entry, filters={"target_id": target_id, "action": action}, errors={}, listed=entries.ok,
                  next_link=next_link, next_cursor=next_cursor if filtered else None,
                  problem=None if entries.ok else _unread(v, service, entries))


async def _nothing() -> None:
    return None


def _tabs(service: str) -> dict[str, Any]:
    return {"services": SERVICES, "shown": service, "actions": ACTIONS[service]}


def _service(value: str | None) -> str:
    return value if value in SERVICES else SERVICES[0]


def record_id(typed: str) -> str | None:
    """A record's id as stored (a UUID in its usual form, or an API client's id), or None for anything else."""
    if CLIENT_ID.fullmatch(typed.lower()):
        return typed.lower()
    try:
        return str(uuid.UUID(typed))
    except ValueError:
        return None


async def _entries(v: Visit, service: str, *, cursor: str | None, target_id: str = "",
                   action: str = "") -> Answer:
    """One page of a trail, newest first."""
    if service == "gateway":
        return _gateway_entries(v, cursor=cursor, target_id=target_id, action=action)
    return await call(v, "GET", f"/api/{service}/audit", params={
        "limit": ENTRIES_PER_PAGE, "order": "desc", "cursor": cursor, "target_id": target_id, "action": action})


def _gateway_entries(v: Visit, *, cursor: str | None, target_id: str, action: str) -> Answer:
    runtime = v.request.app.state.runtime
    try:
        with runtime.uow.read() as session:
            return Answer(200, runtime.audit.page(session, target_id=target_id or None, limit=ENTRIES_PER_PAGE,
                                                  cursor=cursor, action=action or None, newest_first=True))
    except DomainError as error:  # a cursor not given out here (400)
        return Answer(problems.status_of(error), {"detail": error.detail, "type": error.code})


async def _verdicts(v: Visit) -> list[dict[str, Any]]:
    """Every chain's verification, asked at once, each in words."""
    answers = await asyncio.gather(*(_verify(v, service) for service in SERVICES))
    return [{"service": service, **verdict(v, answer), "restored": restored(v, answer)}
            for service, answer in zip(SERVICES, answers, strict=True)]


def restored(v: Visit, answer: Answer) -> str | None:
    """The trail's newest restore from a backup, in words, when it had one: an auditor reads "intact" with it, never
    without (entries between the backup and the restore were replaced)."""
    body = answer.body if answer.ok and isinstance(answer.body, dict) else {}
    mark = (body.get("checkpoint") or {}).get("last_restore") if isinstance(body.get("checkpoint"), dict) else None
    if not isinstance(mark, dict) or not mark.get("backup_made"):
        return None
    return i18n.translator(v.language)("audit_verdict_restored").format(
        made=i18n.format_date(str(mark["backup_made"]), v.language), at=i18n.format_date(mark.get("at"), v.language))


async def _verify(v: Visit, service: str) -> Answer:
    if service != "gateway":
        return await call(v, "GET", f"/api/{service}/audit/verify")
    runtime = v.request.app.state.runtime
    try:  # as `GET /api/admin/audit/verify` answers (kit.audit.audit_router)
        if runtime.checkpoints is None:
            with runtime.uow.read() as session:
                return Answer(200, {**runtime.audit.verify(session), "ok": False, "checkpoint_status": "no_key"})
        return Answer(200, await runtime.checkpoints.verify(runtime.audit.verify))
    except DomainError as error:  # sealed: no audit key to check the chain with
        return Answer(problems.status_of(error), {"detail": error.detail, "type": error.code})


def verdict(v: Visit, answer: Answer) -> dict[str, str]:
    """A verification in words: intact; broken at its first bad entry (its id and its place in the chain); holding
    together but not vouched for by its checkpoint; or not checked at all."""
    t = i18n.translator(v.language)
    body = answer.body if answer.ok and isinstance(answer.body, dict) else None
    if body is None:
        return {"kind": "unknown", "words": t("audit_verdict_unknown")}
    entries = body.get("entries", 0)
    if body.get("ok"):
        return {"kind": "intact", "words": t("audit_verdict_intact").format(n=entries)}
    if body.get("first_bad"):
        return {"kind": "broken", "first_bad": str(body["first_bad"]),
                "words": t("audit_verdict_broken").format(id=body["first_bad"], position=entries)}
    key = CHECKPOINT_WORDS.get(str(body.get("checkpoint_status")), "audit_verdict_not_vouched")
    return {"kind": "warning", "words": t(key).format(n=entries)}


def _unread(v: Visit, service: str, answer: Answer) -> str:
    """Why a trail could not be listed, in words (the service's English never reaches the page)."""
    t = i18n.translator(v.language)
    key = "audit_bad_cursor" if answer.status == 400 else "audit_unread"
    return t(key).format(service=t(f"audit_service_{service}"))


def _shown_entries(v: Visit, service: str, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries as the page shows them: the actor by user name where the gateway knows the id (and, on the gateway's
    own trail, a target that is a staff account too; elsewhere the target as its service names it, a case by its
    reference), the action by its words' key when there are words for it."""
    ids = {str(e.get("actor")) for e in found}
    if service == "gateway":
        ids |= {str(e["target_id"]) for e in found if e.get("target_id")}
    names = staff_names(v, ids)
    english = i18n.MESSAGES[i18n.DEFAULT]
    shown = []
    for entry in found:
        actor, action, target = str(entry.get("actor", "")), str(entry.get("action", "")), entry.get("target_id")
        shown.append({**entry, "actor_name": names.get(actor), "system": _system(actor),
                      "action_key": f"audit.{action}" if f"audit.{action}" in english else None,
                      "target_name": (names.get(str(target)) if service == "gateway" and target
                                      else entry.get("target_label"))})
    return shown


def _system(actor: str) -> str | None:
    """"system" for the services' own work (`system`, `system:erasure-ledger` → "erasure-ledger" beside it), "unknown"
    for a sign-in with a user name nobody has; None for a person or a client."""
    if actor == "unknown":
        return "unknown"
    if actor == "system" or actor.startswith("system:"):
        return "system"
    return None
