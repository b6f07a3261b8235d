"""The admin's pages of the staff console: staff accounts and the approvals of separation of duties (SPEC §2, §3).

The admin API's own handlers (gateway/api.py) are called in-process, as the sign-in form calls `api.password_grant`:
each change gets exactly the API's checks, audit entries and effects (a password checked against the policy, the
account's standing refreshed at once), and the page shows what the API answered — `pending_approval` included — in the
admin's language. The admin role is checked here first, as the API's own dependency checks it.

With a single enabled admin every change takes effect at once and nobody checks it; every admin page says so and
asks for a second admin. With two or more, a change another admin must approve is shown as waiting for them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, select
from starlette.exceptions import HTTPException

from gateway import api, domain, mfa, service
from gateway.console import i18n
from gateway.console.router import (
    CSP,
    WEAK_PASSWORD_WORDS,
    Answer,
    Visit,
    VisitDep,
    call,
    field_errors,
    form_problem,
    items,
    render,
)
from gateway.models import ApprovalPublic, RolesChange, User, UserCreate, UserPublic
from gateway.runtime import GatewayRuntime
from kit import problems
from kit.errors import DomainError
from kit.problems import Problem

router = APIRouter(include_in_schema=False)

USERS_PAGE = "/console/admin/users"
APPROVALS_PAGE = "/console/admin/approvals"
# The roles an admin may give, in the order the forms list them; `admin` last, as it is held alone.
ROLES = ("caseworker", "supervisor", "finance", "auditor", "coordinator", "partner_staff", "admin")
# An NGO's staff fits on one page; should it not, the page says that more accounts exist than it shows.
USERS_SHOWN = 500
APPROVALS_SHOWN = 200

# What a change did, named in the address it redirects to (`?done=`): only these fixed words, never anything typed.
# Each is the i18n key of the sentence the page then shows.
DONE = {
    "created": "admin_done_created", "created-pending": "admin_done_created_pending",
    "roles": "admin_done_roles", "roles-pending": "admin_done_roles_pending",
    "disabled": "admin_done_disabled", "enabled": "admin_done_enabled", "enabled-pending": "admin_done_enabled_pending",
    "mfa-reset": "admin_done_mfa_reset", "mfa-reset-pending": "admin_done_mfa_reset_pending",
    "signed-out": "admin_done_signed_out", "approved": "admin_done_approved", "rejected": "admin_done_rejected",
}

# The admin API's refusals in the admin's language, by problem type; where one type has several reasons, by the
# API's exact words. Anything else is shown as the API worded it.
REFUSALS: dict[str, str | dict[str, str]] = {
    "roles-not-combinable": {
        "The admin role is never combined with another role.": "admin_refused_admin_alone",
        "A partner's staff member holds the partner_staff role alone.": "admin_refused_partner_staff_alone",
        "A partner's staff member needs the partner_id of their organisation.": "admin_refused_partner_id_needed",
        "Only a partner's staff member (partner_staff) is bound to a partner.": "admin_refused_partner_id_only",
    },
    "weak-password": WEAK_PASSWORD_WORDS,
    "username-taken": "admin_refused_username_taken",
    "own-roles": "admin_refused_own_account",
    "own-factor": "admin_refused_own_account",
    "last-admin": "admin_refused_last_admin",
    "own-request": "admin_refused_own_request",
    "own-account-code": "admin_refused_own_account_code",
    "approval-decided": "admin_refused_decided",
    "approval-not-found": "admin_refused_no_request",
    "user-not-found": "admin_refused_no_user",
    "partner-unknown": "problem_partner_unknown",
}


# --- who may come here ----------------------------------------------------------------------------------------------

async def admin_visit(v: VisitDep) -> Visit:
    """A signed-in admin (with a second factor where one is required: `visit` sends everyone else to enrol)."""
    if not v.can("admin"):
        raise HTTPException(403, "Only an admin may open the admin pages.")
    return v


AdminVisit = Annotated[Visit, Depends(admin_visit)]


# --- asking the admin API, in-process ---------------------------------------------------------------------------------

async def ask(work: Callable[[], Awaitable[Any]]) -> Answer:
    """One request to the admin API: its answer, or its refusal as an `Answer` the page can show (as the console's
    calls to the services give theirs). A form the API's models refuse is refused like the API refuses a body."""
    try:
        return Answer(200, await work())
    except Problem as problem:
        return Answer(problem.status, {"detail": problem.detail, "type": problem.kind})
    except DomainError as error:
        return Answer(problems.status_of(error), {"detail": error.detail, "type": error.code})
    except ValidationError as error:
        fields = sorted({str(issue["loc"][0]) for issue in error.errors() if issue.get("loc")})
        # Each issue as the API's 422 lists it (where and what kind, never the value), for `field_errors`.
        issues = [{"loc": ["body", *(str(part) for part in issue.get("loc", ()))], "type": issue.get("type", "")}
                  for issue in error.errors()]
        return Answer(422, {"detail": f"Not valid: {', '.join(fields)}.", "type": "invalid-form", "fields": fields,
                            "errors": issues})


def refusal(v: Visit, answer: Answer) -> str | None:
    """What the API refused, in words the admin reads in their language."""
    if answer.ok:
        return None
    t = i18n.translator(v.language)
    body = answer.body if isinstance(answer.body, dict) else {}
    if body.get("type") == "invalid-form":
        said = [f"admin_invalid_{name}" for name in body["fields"] if f"admin_invalid_{name}" in i18n.MESSAGES["en"]]
        return " ".join(t(key) for key in said) or t("admin_invalid_form")
    known = REFUSALS.get(str(body.get("type")))
    key = known.get(str(body.get("detail"))) if isinstance(known, dict) else known
    return t(key) if key else answer.problem


# An account's form, and the API's refusals about one of its fields, said next to that field.
USER_FIELDS = ("username", "password", "roles", "partner_id")
USER_FIELD_WORDS = {name: f"admin_invalid_{name}" for name in USER_FIELDS}
FIELD_REFUSALS = {"username-taken": "username", "weak-password": "password", "roles-not-combinable": "roles",
                  "partner-unknown": "partner_id"}
ABOUT_PARTNER_ID = ("admin_refused_partner_id_needed", "admin_refused_partner_id_only")  # roles-not-combinable's


def account_errors(v: Visit, answer: Answer, fields: tuple[str, ...] = USER_FIELDS) -> dict[str, str]:
    """What the API refused in an account's form, by field, in the admin's words."""
    errors = field_errors(v, answer, fields, words=USER_FIELD_WORDS)
    body = answer.body if isinstance(answer.body, dict) else {}
    field_ = FIELD_REFUSALS.get(answer.kind)
    rules = REFUSALS["roles-not-combinable"]
    if field_ == "roles" and isinstance(rules, dict) and rules.get(str(body.get("detail"))) in ABOUT_PARTNER_ID:
        field_ = "partner_id"
    if field_ in fields and not answer.ok:
        errors[field_] = refusal(v, answer) or i18n.translator(v.language)("error_invalid")
    return errors


def waits(answer: Answer) -> bool:
    """Whether the API answered that another admin must approve the change first."""
    body = answer.body
    status = body.get("status") if isinstance(body, dict) else getattr(body, "status", None)
    return status == "pending_approval"


# --- what the pages show ----------------------------------------------------------------------------------------------

@dataclass
class Staff:
    """The accounts and what waits for approval, as an admin page needs them."""

    users: list[UserPublic]
    more_users: bool  # more accounts exist than the page shows
    with_factor: set[str]  # ids of the users who have a second factor in force
    enabled_admins: int
    pending: list[ApprovalPublic]
    names: dict[str, str] = field(default_factory=dict)  # user id or client id → user name or client name
    # user id or client id → the partner organisation it is bound to (partner staff, a partner's API client)
    partner_of: dict[str, str] = field(default_factory=dict)
    partners: dict[str, str] = field(default_factory=dict)  # partner id → its name in the directory, where read

    def name(self, subject_id: str) -> str:
        return self.names.get(subject_id, subject_id)

    def user(self, user_id: str) -> UserPublic | None:
        return next((user for user in self.users if user.id == user_id), None)

    def pending_about(self, subject_id: str) -> list[ApprovalPublic]:
        return [asked for asked in self.pending if asked.target_id == subject_id]


async def staff(v: Visit) -> Staff:
    """Read in one read-only session: the API's own lists, and what they do not answer — who has a second factor,
    and how many admins are enabled (whether anybody checks this admin's changes)."""
    runtime = v.request.app.state.runtime
    with runtime.uow.read() as session:
        users = await api.list_users(session, runtime, v.principal, limit=USERS_SHOWN, cursor=None)
        pending = await api.list_approvals(session, v.principal, status="pending", limit=APPROVALS_SHOWN, cursor=None)
        clients = await api.list_clients(session, v.principal, limit=USERS_SHOWN, cursor=None)
        listed: list[UserPublic] = users["items"]
        asked: list[ApprovalPublic] = pending["items"]
        names = {user.id: user.username for user in listed}
        names.update({client.client_id: client.name for client in clients["items"]})
        mentioned = {a.requested_by for a in asked} | {a.target_id for a in asked}
        names.update(_usernames(session, mentioned - names.keys()))
        partner_of = {user.id: user.partner_id for user in listed if user.partner_id}
        partner_of.update({client.client_id: client.partner_id for client in clients["items"]})
        return Staff(users=listed, more_users=users["next_cursor"] is not None,
                     with_factor={user.id for user in listed if mfa.enrolled(session=session, user_id=user.id)},
                     enabled_admins=service.count_checking_admins(session=session), pending=asked, names=names,
                     partner_of=partner_of)


def _usernames(session: Session, ids: set[str]) -> dict[str, str]:
    """Names of accounts (a requester, a target), for the few the page of accounts does not hold."""
    found = {subject_id: session.get(User, subject_id) for subject_id in ids}
    return {subject_id: user.username for subject_id, user in found.items() if user is not None}


def page(v: Visit, template: str, known: Staff, *, status: int = 200, **values: Any) -> HTMLResponse:
    """An admin page: the state of separation of duties on top, and what the last change did."""
    done = DONE.get(v.request.query_params.get("done", ""))
    # Pointed to from every other admin page; the approvals page lists them itself.
    waiting_for_me = [] if template == "admin_approvals.html" else [
        asked for asked in known.pending if asked.requested_by != v.principal.sub]
    return render(v.request, template, visit_=v, status=status, staff=known, me=v.principal.sub, roles=ROLES,
                  notice=done, waiting_for_me=waiting_for_me,
                  key_custody=v.request.app.state.runtime.settings.key_custody, **values)


def after(path: str, done: str) -> RedirectResponse:
    """Back to an admin page (its path holds fixed words and ids only), saying what happened by a fixed word."""
    assert done in DONE, done
    return RedirectResponse(f"{path}?done={done}", status_code=303,
                            headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})


def _form_roles(form: Any) -> list[str]:
    return [str(role) for role in form.getlist("roles")]


# --- staff accounts ---------------------------------------------------------------------------------------------------

@router.get(USERS_PAGE, response_class=HTMLResponse)
async def users_page(v: AdminVisit) -> Response:
    return page(v, "admin_users.html", await staff(v))


async def partner_choices(v: Visit) -> list[dict[str, Any]]:
    """The partner directory's organisations, so that a partner's staff member is bound to one chosen by its name
    (a mistyped id would bind them to nobody's referrals). Empty when referrals does not answer: the form then
    takes the id as typed."""
    return items(await call(v, "GET", "/api/referrals/partners", params={"limit": 200}))


async def _partner_unknown(v: Visit, partner_id: str) -> Answer | None:
    """The refusal of a partner id the directory says it does not hold, as the API gives it to an admin's token
    (api.ensure_partner): the form offers the directory's partners, and a form altered on its way must not bind a
    partner's staff member to nobody's referrals. None when the id is none, no id at all (the API's form check says
    so), or the directory cannot be asked (the id is taken as given, as the API does)."""
    try:
        partner = uuid.UUID(partner_id)
    except ValueError:
        return None
    if (await call(v, "GET", f"/api/referrals/partners/{partner}")).status != 404:
        return None
    return Answer(422, {"detail": "There is no partner with this id in the partner directory.",
                        "type": "partner-unknown"})


@router.get(USERS_PAGE + "/new", response_class=HTMLResponse)
async def new_user_page(v: AdminVisit, role: str | None = None) -> Response:
    """The form for a new account; `role` (a fixed word: "admin" from the lone admin's "add a second admin") comes
    ticked."""
    ticked = [role] if role in ADMIN_ROLE_CHOICES else []
    return page(v, "admin_user_new.html", await staff(v), form={"roles": ticked}, partners=await partner_choices(v))


ADMIN_ROLE_CHOICES = ("admin",)  # the roles a link may tick beforehand


def _also_refused(runtime: GatewayRuntime, form: dict[str, Any], password: str, *, said: str) -> list[Answer]:
    """What the API would refuse in a new account's form besides the refusal `said` (its kind): a weak password,
    roles that do not combine, a user name taken (in any letter case). The API stops at the first."""
    found: list[Answer] = []
    if said != "weak-password" and (weakness := domain.password_weakness(password, username=form["username"])):
        found.append(Answer(422, {"detail": weakness, "type": "weak-password"}))
    if said != "roles-not-combinable" and (
            clash := domain.roles_refusal(form["roles"], partner_id=form["partner_id"] or None)):
        found.append(Answer(422, {"detail": clash, "type": "roles-not-combinable"}))
    if said in ("invalid-form", "weak-password", "roles-not-combinable") and form["username"]:
        with runtime.uow.read() as session:
            taken = session.exec(select(User.id).where(User.username == form["username"].lower())).first()
        if taken is not None:
            found.append(Answer(409, {"detail": "", "type": "username-taken"}))
    return found


@router.post(USERS_PAGE, response_class=HTMLResponse)
async def create_user(v: AdminVisit) -> Response:
    submitted = await v.request.form()
    form = {"username": str(submitted.get("username", "")).strip(), "roles": _form_roles(submitted),
            "partner_id": str(submitted.get("partner_id", "")).strip()}
    runtime = v.request.app.state.runtime
    answer = await _partner_unknown(v, form["partner_id"]) or await ask(lambda: api.create_user(UserCreate(
        username=form["username"], password=str(submitted.get("password", "")), roles=form["roles"],
        partner_id=form["partner_id"] or None), runtime, v.principal))
    if answer.ok:
        return after(USERS_PAGE, "created-pending" if waits(answer) else "created")
    # The form again with what was typed (never the password), and the refusal in the admin's words, by field;
    # with it the other refusals the API tells one at a time (the form, then the password, then the roles, then the
    # name taken), so that the admin mends them all in one go.
    errors = account_errors(v, answer)
    for also in _also_refused(runtime, form, str(submitted.get("password", "")), said=answer.kind):
        errors = account_errors(v, also) | errors
    return page(v, "admin_user_new.html", await staff(v), status=answer.status, form=form, errors=errors,
                problem=form_problem(v, answer, errors, refusal(v, answer)), partners=await partner_choices(v))


async def _user_page(v: Visit, user_id: str, *, status: int = 200, problem: str | None = None,
                     errors: dict[str, str] | None = None) -> Response:
    known = await staff(v)
    runtime = v.request.app.state.runtime
    with runtime.uow.read() as session:
        user = session.get(User, user_id)
        if user is None:
            raise HTTPException(404, "There is no such user.")
        locked = service.locked_everywhere(session=session, users=[user], keys=runtime.throttle_keys)
        shown = api.user_public(user, locked=user.id in locked)
        has_factor = mfa.enrolled(session=session, user_id=user.id)
    return page(v, "admin_user.html", known, status=status, problem=problem, errors=errors or {}, user=shown,
                has_factor=has_factor, own=user.id == v.principal.sub, asked=known.pending_about(user.id))


@router.get(USERS_PAGE + "/{user_id}", response_class=HTMLResponse)
async def user_page(user_id: str, v: AdminVisit) -> Response:
    return await _user_page(v, user_id)


async def _change(v: Visit, user_id: str, work: Callable[[], Awaitable[Any]], *, done: str,
                  pending: str | None = None) -> Response:
    """One change to an account, then back to its page saying what happened (or the page with the refusal)."""
    answer = await ask(work)
    if answer.ok:
        return after(f"{USERS_PAGE}/{user_id}", pending if pending and waits(answer) else done)
    errors = account_errors(v, answer, ("roles",))
    return await _user_page(v, user_id, status=answer.status, errors=errors,
                            problem=form_problem(v, answer, errors, refusal(v, answer)))


@router.post(USERS_PAGE + "/{user_id}/roles")
async def change_roles(user_id: str, v: AdminVisit) -> Response:
    roles = _form_roles(await v.request.form())
    runtime = v.request.app.state.runtime
    return await _change(v, user_id, lambda: api.change_roles(user_id, RolesChange(roles=roles), runtime, v.principal),
                         done="roles", pending="roles-pending")


@router.post(USERS_PAGE + "/{user_id}/disable")
async def disable_user(user_id: str, v: AdminVisit) -> Response:
    runtime = v.request.app.state.runtime
    return await _change(v, user_id, lambda: api.disable_user(user_id, runtime, v.principal), done="disabled")


@router.post(USERS_PAGE + "/{user_id}/enable")
async def enable_user(user_id: str, v: AdminVisit) -> Response:
    runtime = v.request.app.state.runtime

    async def enable() -> dict[str, str]:
        return {"status": (await api.enable_user(user_id, runtime, v.principal)).status}

    return await _change(v, user_id, enable, done="enabled", pending="enabled-pending")


@router.post(USERS_PAGE + "/{user_id}/reset-mfa")
async def reset_second_factor(user_id: str, v: AdminVisit) -> Response:
    runtime = v.request.app.state.runtime
    return await _change(v, user_id, lambda: api.reset_mfa(user_id, runtime, v.principal),
                         done="mfa-reset", pending="mfa-reset-pending")


@router.post(USERS_PAGE + "/{user_id}/revoke-sessions")
async def sign_out_everywhere(user_id: str, v: AdminVisit) -> Response:
    runtime = v.request.app.state.runtime
    return await _change(v, user_id, lambda: api.revoke_user_sessions(user_id, runtime, v.principal),
                         done="signed-out")


# --- approvals --------------------------------------------------------------------------------------------------------

@router.get(APPROVALS_PAGE, response_class=HTMLResponse)
async def approvals_page(v: AdminVisit) -> Response:
    return page(v, "admin_approvals.html", await with_partners(v, await staff(v)))


async def with_partners(v: Visit, known: Staff) -> Staff:
    """The partner organisations' names beside what waits for approval: the one thing about a partner's account or
    API client an approving admin has to check is which organisation it opens."""
    if any(known.partner_of.get(asked.target_id) for asked in known.pending):
        known.partners = {p["id"]: p["name"] for p in await partner_choices(v)}
    return known


@router.post(APPROVALS_PAGE + "/{approval_id}/{decision}")
async def decide(approval_id: str, decision: str, v: AdminVisit) -> Response:
    if decision not in ("approve", "reject"):
        raise HTTPException(404, "There is no such decision.")
    runtime = v.request.app.state.runtime
    handler = api.approve if decision == "approve" else api.reject
    answer = await ask(lambda: handler(approval_id, runtime, v.principal))
    code = getattr(answer.body, "activation_code", None) if answer.ok else None
    if code:  # a new account's or client's: in this answer alone (never in an address, never again), to hand over
        known = await with_partners(v, await staff(v))
        target = answer.body.target_id
        activation = {"code": code, "user": known.name(target), "client": answer.body.action == "client.create"}
        if activation["client"]:  # the partner the approving admin hands the code to, by its name in the directory
            partner_id = known.partner_of.get(target, "")
            names = known.partners or {p["id"]: p["name"] for p in await partner_choices(v)}
            activation["partner"] = names.get(partner_id, partner_id)
        return page(v, "admin_approvals.html", known, activation=activation)
    if answer.ok:
        return after(APPROVALS_PAGE, "approved" if decision == "approve" else "rejected")
    return page(v, "admin_approvals.html", await with_partners(v, await staff(v)), status=answer.status,
                problem=refusal(v, answer))


# --- seal: every key of every process forgotten at once (SPEC §8) -----------------------------------------------------
#
# A button on every admin page leads to a confirmation page; its form (POST, CSRF) seals, and the answer lists the
# processes that confirmed. The page needs no key, so it shows while sealed. There is no unseal here on purpose (see
# api.seal_all): that is `rehab unseal` on the server.

SEAL_PAGE = "/console/admin/seal"


@router.get(SEAL_PAGE, response_class=HTMLResponse)
async def seal_confirmation(v: AdminVisit) -> Response:
    return render(v.request, "admin_seal.html", visit_=v)


@router.post(SEAL_PAGE, response_class=HTMLResponse)
async def seal_everything(v: AdminVisit) -> Response:
    answer = await api.seal_all(v.request.app.state.runtime, v.principal)
    return render(v.request, "admin_seal.html", visit_=v, sealed_answer=answer)


# --- the status of every backend, and the key custody (SPEC §3 GET /api/admin/status, §8) -----------------------------
#
# The admin API's own answer, asked in-process each time the page is loaded (nothing kept): the gateway and each
# service ready or not, what each said of its database, migrations, NATS and keys, and how the keys are kept — in
# words. A service that does not answer is said so; the page itself needs no service.

STATUS_PAGE = "/console/admin/status"
# What a service's state is, word by word: the report's short values, each an i18n key (anything else as it came).
STATUS_WORDS = {"ready": "status_ready", "not ready": "status_not_ready", "unreachable": "status_unreachable"}
VALUE_WORDS = {"ok": "status_value_ok", "unreachable": "status_value_unreachable", "current": "status_value_current",
               "behind": "status_value_behind", "connected": "status_value_connected",
               "disconnected": "status_value_disconnected", "connecting": "status_value_connecting",
               "sealed": "status_value_sealed", "unsealed": "status_value_unsealed"}
DETAIL_WORDS = {"no answer in time": "status_detail_timeout", "no connection": "status_detail_no_connection"}


@router.get(STATUS_PAGE, response_class=HTMLResponse)
async def status_page(v: AdminVisit) -> Response:
    report = await api.system_status(v.request.app.state.runtime, v.principal)
    t = i18n.translator(v.language)

    def said(value: Any, words: dict[str, str]) -> str:
        return t(words[value]) if value in words else (str(value) if value else t("status_not_reported"))

    def part(name: str) -> str:
        key = f"status_part_{name}"
        return t(key) if key in i18n.MESSAGES["en"] else name

    parts = [("gateway", report["gateway"]), *report["services"].items()]
    rows = [{"name": name, "part": part(name), "ready": state.get("status") == "ready",
             "status": said(state.get("status"), STATUS_WORDS),
             **{field_: said(state.get(field_), VALUE_WORDS) for field_ in ("database", "migrations", "nats", "keys")},
             "detail": said(state["detail"], DETAIL_WORDS) if state.get("detail") else ""}
            for name, state in parts]
    custody = report["key_custody"]
    return render(v.request, "admin_status.html", visit_=v, rows=rows, custody=custody,
                  custody_words=t(f"status_custody_{custody}") if f"status_custody_{custody}" in i18n.MESSAGES["en"]
                  else custody, not_ready=[row["part"] for row in rows if not row["ready"]])
