"""Every console form says what is wrong in the visitor's language, field by field (issue #19): what a service refuses
comes back as the form again, each refused field marked invalid and described by a sentence beside it, in Belarusian
(and Russian) — never the service's English `detail`, nor a code path like `packet.language`. In-process against the
gateway and every service as a process; each row of the table sends one form what its API refuses."""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from html import unescape

import httpx
import pytest

from gateway.console import i18n
from tests.console.test_console_admin import USERS, admin_console
from tests.console.test_console_case_page import form_of, referral_sent
from tests.console.test_console_caseload import Caseworker, open_case, person
from tests.console.test_console_partner import World, partner_staff_signed_in
from tests.console.world import add_partner, csrf_of
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

# What a service's English says of a field, and how it names one: neither may reach a page.
ENGLISH = re.compile(r"\b(?:body|packet|payee|contact|query)\.[a-z_]+|Value error|String should|Input should|"
                     r"Field required|List should|should be a valid|is not a valid|The service answered")
CYRILLIC = re.compile(r"[А-Яа-яЁёІіЎў]")


@dataclass
class Refused:
    """A form's answer, and where on it the refusal must be said: the field's id, the id of its message, and the
    message's i18n key (None where the sentence is filled in, e.g. with an example amount)."""

    answer: httpx.Response
    field: str
    key: str | None
    message: str = ""

    def __post_init__(self) -> None:
        self.message = self.message or f"{self.field}-error"


def unique_name() -> str:
    """A name no other case has (a name another case has asks first whether it is the same person)."""
    letters = "абвгдежзiклмнопрстуфхцчшы"
    return "Алесь " + "".join(letters[int(c, 16)] for c in uuid.uuid4().hex[:10]).capitalize()


async def speaking(visitor: httpx.AsyncClient, language: str) -> httpx.AsyncClient:
    chosen = await visitor.get(f"/console/language/{language}", params={"next": "/"})
    assert chosen.status_code == 303, chosen.text
    return visitor


async def post_form(visitor: httpx.AsyncClient, page: str, action: str, data: dict, **more) -> httpx.Response:
    """A form of `page` sent with `data`: with the page's CSRF token, as a browser sends it."""
    shown = await visitor.get(page)
    assert shown.status_code == 200, shown.text
    return await visitor.post(action, data={"csrf": csrf_of(shown.text), **data}, **more)


async def caseworker_with_case(door: Door, language: str = "be", **person_data: object) -> tuple[Caseworker, dict]:
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **{"full_name": "Алесь Рабчэня", "country": "LT", **person_data})
    await speaking(ala.visitor, language)
    return ala, case


async def consented(door: Door, ala: Caseworker, case: dict, *, share_contact: bool = False) -> None:
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": share_contact, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text


# --- the forms, each sent what its API refuses ------------------------------------------------------------------------

async def need_notes(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/needs",
                           {"category": "medical", "urgency": "high", "notes": "ж" * 5001})
    return Refused(sent, "need-notes", "error_too_long")


async def need_category(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/needs", {"category": "astrology", "urgency": "high"})
    return Refused(sent, "need-category", "error_choice")


async def note_empty(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/notes", {"text": "   "})
    return Refused(sent, "note-text", "error_required")


async def task_due_not_a_date(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/tasks", {"title": "Патэлефанаваць", "due_on": "31.12.2026",
                                                                "assignee": ala.username})
    assert 'value="Патэлефанаваць"' in sent.text  # what was typed stays
    return Refused(sent, "task-due", "error_date")


async def consent_already_expired(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/consent", {"categories": ["medical"], "method": "written",
                                                                  "expires_on": "2001-01-01"})
    return Refused(sent, "consent-expires", "error_expires")


async def document_of_another_type(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    page = await ala.visitor.get(path)
    sent = await ala.visitor.post(f"{path}/documents", data={"csrf": csrf_of(page.text), "kind": "other"},
                                  files={"file": ("tool.pdf", b"MZ\x90\x00" + bytes(300), "application/pdf")})
    return Refused(sent, "document-file", "problem_document_type")


async def document_damaged(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    page = await ala.visitor.get(path)
    sent = await ala.visitor.post(f"{path}/documents", data={"csrf": csrf_of(page.text), "kind": "release"},
                                  files={"file": ("release.pdf", b"%PDF-1.7\nthe rest was lost\n", "application/pdf")})
    return Refused(sent, "document-file", "problem_document_damaged")


async def duplicate_of_no_case(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    sent = await post_form(ala.visitor, path, f"{path}/duplicate-of", {"reference": "BY-1999-1"})
    return Refused(sent, "duplicate-reference", "no_case_with_reference")


async def referral_language(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    await consented(door, ala, case)
    clinic = await add_partner(door)
    path = f"/console/cases/{case['id']}/refer"
    sent = await post_form(ala.visitor, path, path, {
        "category": "medical", "country": "LT", "language": "", "partner_id": clinic["id"],
        "display_name": "А. Р.", "packet_language": "не мова!"})
    assert 'value="А. Р."' in sent.text
    return Refused(sent, "packet_language", "error_language")


async def search_too_long(door: Door) -> Refused:
    ala, _case = await caseworker_with_case(door)
    sent = await post_form(ala.visitor, "/console/cases", "/console/cases/search", {"q": "Я" * 201})
    return Refused(sent, "q", "error_too_long")


async def new_case_languages(door: Door) -> Refused:
    ala = await person(door, "caseworker")
    await speaking(ala.visitor, "be")
    sent = await post_form(ala.visitor, "/console/cases/new", "/console/cases", {
        "full_name": unique_name(), "languages": "ж" * 36, "idempotency_key": str(uuid.uuid4())})
    return Refused(sent, "languages", "error_too_long")


async def referral_message_empty(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    await consented(door, ala, case)
    clinic = await add_partner(door)
    referral = await referral_sent(door, ala, case["id"], clinic)
    path = f"/console/cases/{case['id']}/referrals/{referral['id']}"
    page = await ala.visitor.get(path)
    sent = await ala.visitor.post(f"{path}/messages", data={**form_of(page.text, "write-message"), "text": "   "})
    return Refused(sent, "message-text", "error_required")


async def reassignment_name_too_long(door: Door) -> Refused:
    ala, case = await caseworker_with_case(door)
    boss = await person(door, "supervisor")
    await speaking(boss.visitor, "be")
    sent = await post_form(boss.visitor, "/console/caseload", f"/console/caseload/{case['id']}/assignees",
                           {"usernames": "a" * 101, "status": "", "cursor": ""})
    return Refused(sent, f"assign-{case['id']}", "error_too_long", message="assign-problem")


async def new_account_user_name(door: Door) -> Refused:
    visitor = await speaking(await admin_console(door), "be")
    sent = await post_form(visitor, f"{USERS}/new", USERS, {"username": "x", "password": "a long enough passphrase",
                                                            "roles": ["caseworker"], "partner_id": ""})
    return Refused(sent, "username", "admin_invalid_username")


async def new_account_no_role(door: Door) -> Refused:
    visitor = await speaking(await admin_console(door), "be")
    sent = await post_form(visitor, f"{USERS}/new", USERS, {"username": door.next_username(),
                                                            "password": "a long enough passphrase", "partner_id": ""})
    return Refused(sent, "roles", "admin_invalid_roles")


async def account_roles_none(door: Door) -> Refused:
    visitor = await speaking(await admin_console(door), "be")
    target = await door.add_user("finance")
    page = f"{USERS}/{target['id']}"
    sent = await post_form(visitor, page, f"{page}/roles", {})
    return Refused(sent, "roles", "admin_invalid_roles")


async def partner_languages(door: Door) -> Refused:
    visitor = await speaking(await admin_console(door), "be")
    sent = await post_form(visitor, "/console/admin/partners", "/console/admin/partners", {
        "name": "Клініка", "category": "medical", "countries": "LT", "cities": "Vilnius", "languages": "!!",
        "contact_email": "intake@clinic.example", "capacity_note": ""})
    return Refused(sent, "languages", "padmin_error_language")


async def grant_amount(door: Door) -> Refused:
    officer = await person(door, "finance")
    await speaking(officer.visitor, "be")
    page = await officer.visitor.get("/console/grants")
    today = date.today()
    sent = await officer.visitor.post("/console/grants", data={
        **form_of(page.text, "grant-form"), "donor": "Фонд", "code": f"G-{uuid.uuid4().hex[:6]}", "currency": "EUR",
        "amount": "шмат", "starts_on": str(today), "ends_on": str(today + timedelta(days=90)),
        "categories": ["medical"]})
    return Refused(sent, "grant-amount", None)


async def audit_target(door: Door) -> Refused:
    auditor = await person(door, "auditor")
    await speaking(auditor.visitor, "be")
    sent = await post_form(auditor.visitor, "/console/audit", "/console/audit/search",
                           {"service": "intake", "target_id": "не ідэнтыфікатар", "action": ""})
    return Refused(sent, "target_id", "audit_bad_target")


async def partner_decline_reason(door: Door) -> Refused:
    clinic = await add_partner(door, category="psychological", language="ru")
    world = World(door, clinic, await partner_staff_signed_in(door, clinic["id"]), await door.staff("caseworker"))
    referral = await world.refer()
    await speaking(world.visitor, "be")
    sent = await world.press(referral, "decline", reason=" ")
    return Refused(sent, "reason", "partner_refused_reason")


FORMS: dict[str, Callable[[Door], Awaitable[Refused]]] = {
    "need, notes too long": need_notes, "need, not a category": need_category, "note, empty": note_empty,
    "task, not a date": task_due_not_a_date, "consent, already expired": consent_already_expired,
    "document, not an accepted type": document_of_another_type, "document, damaged": document_damaged,
    "duplicate of, no such case": duplicate_of_no_case,
    "referral, not a language tag": referral_language, "search, too long": search_too_long,
    "new case, a language too long": new_case_languages, "referral message, empty": referral_message_empty,
    "reassignment, user name too long": reassignment_name_too_long,
    "new account, not a user name": new_account_user_name, "new account, no role": new_account_no_role,
    "account roles, none": account_roles_none, "partner, not a language": partner_languages,
    "grant, not an amount": grant_amount, "audit filter, not an id": audit_target,
    "partner console, decline without a reason": partner_decline_reason,
}


def assert_said_beside(refused: Refused, language: str) -> None:
    """The form again, its refused field marked invalid and described by a sentence in `language` beside it."""
    page = refused.answer.text
    assert 400 <= refused.answer.status_code < 500 or refused.answer.status_code == 200, refused.answer.status_code
    assert "<form" in page
    message = re.search(rf'<p class="[^"]*" id="{re.escape(refused.message)}"[^>]*>([^<]+)</p>', page)
    assert message, f"nothing is said beside #{refused.field}"
    said = unescape(message.group(1)).strip()
    if refused.key:
        assert said == i18n.MESSAGES[language][refused.key], said
    assert CYRILLIC.search(said) and said != i18n.MESSAGES["en"].get(refused.key or "", ""), said
    field = re.search(rf'<(?:input|select|textarea|fieldset)[^>]* id="{re.escape(refused.field)}"[^>]*>', page) or \
        re.search(rf'<(?:input|select|textarea|fieldset) id="{re.escape(refused.field)}"[^>]*>', page)
    assert field, f"no field #{refused.field}"
    assert 'aria-invalid="true"' in field.group(0), field.group(0)
    described = re.search(r'aria-describedby="([^"]*)"', field.group(0))
    assert described and refused.message in described.group(1).split(), field.group(0)
    assert not ENGLISH.search(page), ENGLISH.search(page).group(0)


@pytest.mark.parametrize("form", list(FORMS))
async def test_a_refused_form_says_what_is_wrong_beside_the_field_in_belarusian(door: Door, form: str):
    refused = await FORMS[form](door)
    assert_said_beside(refused, "be")


async def test_the_new_case_form_says_it_in_russian_and_the_problem_line_asks_to_correct_the_fields(door: Door):
    ala = await person(door, "caseworker")
    await speaking(ala.visitor, "ru")
    sent = await post_form(ala.visitor, "/console/cases/new", "/console/cases", {
        "full_name": unique_name(), "languages": "ж" * 36, "idempotency_key": str(uuid.uuid4())})
    assert sent.status_code == 422
    assert_said_beside(Refused(sent, "languages", "error_too_long"), "ru")
    assert i18n.MESSAGES["ru"]["fields_wrong"] in unescape(sent.text)


async def test_a_refusal_the_console_has_no_sentence_for_is_said_in_words_by_its_status(door: Door):
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    page = await ala.visitor.get(path)
    gone = await ala.visitor.post(f"/console/cases/{case['id']}/needs/{uuid.uuid4()}/status",
                                  data={"csrf": csrf_of(page.text), "status": "met"})
    assert gone.status_code == 404
    assert i18n.MESSAGES["be"]["problem_gone"] in unescape(gone.text) and not ENGLISH.search(gone.text)
    assert "There is no" not in gone.text  # the service's English detail


async def test_a_rule_the_service_refuses_by_is_said_by_its_kind(door: Door):
    ala, case = await caseworker_with_case(door)
    path = f"/console/cases/{case['id']}"
    closed = await door.client.post(f"/api/intake/cases/{case['id']}/close", headers=ala.api)
    assert closed.status_code == 200, closed.text
    await speaking(ala.visitor, "ru")
    page = await ala.visitor.get(path)
    refused = await ala.visitor.post(f"{path}/notes", data={"csrf": csrf_of(page.text), "text": "Позвонила сама"})
    assert refused.status_code == 409
    assert i18n.MESSAGES["ru"]["problem_case_closed"] in unescape(refused.text) and not ENGLISH.search(refused.text)
    assert "This case is closed" not in refused.text


def test_a_refusal_of_a_kind_the_console_does_not_know_is_said_by_its_status_never_in_the_services_words():
    console = importlib.import_module("gateway.console.router")
    detail = "Something new went wrong: body.thing: Value error, not like that."
    for status, key in ((400, "problem_stale_form"), (409, "problem_conflict"), (413, "problem_document_large"),
                        (422, "fields_wrong"), (429, "problem_too_many"), (503, "problem_unavailable"),
                        (418, "problem_other"), (500, "problem_other")):
        answer = console.Answer(status, {"type": "https://rehab.support/problems/never-heard-of", "detail": detail},
                                language="be")
        assert answer.problem == i18n.MESSAGES["be"][key], status
    assert console.Answer(503, None, language="ru").problem == i18n.MESSAGES["ru"]["problem_unavailable"]
