"""The supervisor's page of the staff console: every case with who holds it, and (re)assignment (SPEC §2). No
personal data: the services answer a supervisor with a case's reference, status, country and assignees only (and
whether anyone of those can still work it)."""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.console import i18n
from gateway.console.cases import CASES_PER_PAGE
from gateway.console.router import (
    CASE_STATUSES,
    CSP,
    Visit,
    VisitDep,
    call,
    field_errors,
    items,
    render,
)

router = APIRouter(include_in_schema=False)

# --- supervisor: the caseload and (re)assignment -----------------------------------------------------------------
#
# A supervisor sees every case with who holds it — reference, status, country, opening date, assignees; no personal
# data (SPEC §2) — and gives cases to caseworkers. The list filters by status with plain links (fixed words only).
# A case nobody who holds it can work any more (its caseworkers left: disabled, or no longer caseworkers) is marked
# on its row, the leavers' names too, and counted at the top with a link that lists only those (`unattended=1`).

UNATTENDED = "1"  # the one value of the address's `unattended` that filters


@router.get("/console/caseload", response_class=HTMLResponse)
async def caseload(v: VisitDep, status: str | None = None, cursor: str | None = None,
                   given: uuid.UUID | None = None, unattended: str | None = None) -> Response:
    return await _caseload_page(v, shown=status, cursor=cursor, given=str(given) if given else None,
                                unattended=unattended == UNATTENDED)


async def _caseload_page(v: Visit, *, shown: str | None, cursor: str | None, failed: dict[str, str] | None = None,
                         given: str | None = None, status: int = 200, unattended: bool = False) -> Response:
    """One page of the caseload, or with `unattended` of the cases nobody can work now. `failed`: a reassignment
    just refused — its case id, what was typed, and why — shown on that case's row with what was typed kept (in the
    page only). `given`: the case just reassigned, said at the top with whom it went to. Above the list, how many
    cases nobody can work (up to a page of them; "more than" past it), so that a leaver's cases are not missed."""
    shown = shown if shown in CASE_STATUSES else None
    unattended_filter = {"unattended": "true"} if unattended else {}
    answer, staff, nobody = await asyncio.gather(
        call(v, "GET", "/api/intake/cases", params={"assigned": "any", "status": shown, "cursor": cursor,
                                                    "limit": CASES_PER_PAGE, **unattended_filter}),
        call(v, "GET", "/api/intake/caseworkers"),  # whom a case can be given to, and who has room
        call(v, "GET", "/api/intake/cases", params={"assigned": "any", "unattended": "true",
                                                    "limit": CASES_PER_PAGE}))
    listed = items(answer)
    next_cursor = answer.body.get("next_cursor") if answer.ok else None
    following = {key: value for key, value in (("status", shown), ("unattended", UNATTENDED if unattended else None),
                                               ("cursor", next_cursor)) if value}
    next_link = f"/console/caseload?{urlencode(following)}" if next_cursor else None
    unattended_count = len(items(nobody))
    more_unattended = bool(nobody.ok and nobody.body.get("next_cursor"))
    problem = answer.problem
    if failed and not any(case["id"] == failed["case_id"] for case in listed):
        problem = problem or failed["problem"]  # its row is not on this page: said at the top instead
    t = i18n.translator(v.language)
    row = next((case for case in listed if case["id"] == given), None) if given else None
    notice = None
    if given:
        notice = (t("caseload_given").format(reference=row["reference"], names=", ".join(row["assignees"]))
                  if row else t("caseload_given_elsewhere"))
    return render(v.request, "caseload.html", visit_=v, status=status, cases=listed, statuses=CASE_STATUSES,
                  shown=shown, cursor=cursor or "", next_link=next_link, failed=failed or {}, problem=problem,
                  caseworkers=items(staff), notice=notice, unattended=unattended,
                  unattended_count=unattended_count, more_unattended=more_unattended,
                  unshown=not answer.ok)  # a list intake did not give is said so, never as no cases


def _caseload_address(shown: str | None, given: str | None = None, unattended: bool = False) -> str:
    """Back to the caseload as it was filtered, saying which case was just given: only a fixed status word, the
    fixed `unattended` filter and a case id ever go in this address."""
    query = {"status": shown} if shown in CASE_STATUSES else {}
    if unattended:
        query["unattended"] = UNATTENDED
    if given:
        query["given"] = given
    return "/console/caseload" + (f"?{urlencode(query)}" if query else "")


@router.post("/console/caseload/{case_id}/assignees", response_class=HTMLResponse)
async def assign_case(case_id: uuid.UUID, v: VisitDep) -> Response:
    """Give a case to these caseworkers (user names, separated by commas or spaces; the first listed first)."""
    form = await v.request.form()
    typed = str(form.get("usernames", ""))
    shown, cursor = str(form.get("status", "")), str(form.get("cursor", "")) or None
    unattended = form.get("unattended") == UNATTENDED
    wanted = [name for name in re.split(r"[\s,;]+", typed) if name]
    t = i18n.translator(v.language)
    if not wanted:
        return await _caseload_page(v, shown=shown, cursor=cursor, status=422, unattended=unattended, failed={
            "case_id": str(case_id), "usernames": typed, "problem": t("assign_none")})
    answer = await call(v, "PUT", f"/api/intake/cases/{case_id}/assignees", json={"usernames": wanted})
    if answer.ok:
        return RedirectResponse(_caseload_address(shown, str(case_id), unattended), status_code=303,
                                headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})
    refused = answer.body.get("usernames") if isinstance(answer.body, dict) else None
    if answer.status == 422 and isinstance(refused, list) and refused:  # the service names whom it refused
        problem = t("assign_refused").format(names=", ".join(str(name) for name in refused))
    else:  # a name the API's model refused (too long, too many) is said by its kind, beside the field
        problem = field_errors(v, answer, ("usernames",)).get("usernames") or answer.problem or t("problem")
    return await _caseload_page(v, shown=shown, cursor=cursor, status=answer.status, unattended=unattended, failed={
        "case_id": str(case_id), "usernames": typed, "problem": problem})


