"""The finance pages of the console (gateway/console/finance.py) against the gateway and every service as a process:
a finance officer creates a grant (an Idempotency-Key per form; errors beside their fields, in words); a caseworker
asks for aid through the API; another officer sees the request in the queue with its case reference, grant, purpose
and the payee masked, shows the payee (funds' audit trail records it), approves — never their own request —, pays
once however often the form is sent, voids where funds allows it; the donor report and the CSVs; money in each
currency's own decimals (yen without); every page in Belarusian, Russian and English; nobody else gets in."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest

from gateway.console import i18n
from gateway.console.finance import amount_example, percent, said
from gateway.console.i18n import typed_amount
from gateway.console.router import Answer, Visit
from tests.console.test_console_caseload import service_away
from tests.console.test_console_pages import browser, sign_in
from tests.console.world import (
    alert,
    backends_publishing_months_under_way,
    csrf_of,
    hung_on_changes,
    send_again_form,
)
from tests.integration.gateway.door import STAFF_PASSWORD, Backends, Door

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    yield from backends_publishing_months_under_way(tmp_path_factory)


QUEUE, GRANTS = "/console/disbursements", "/console/grants"
IBAN = "LT60 1010 0123 4567 8901"


def words(key: str, language: str = "en", **fields: object) -> str:
    text = i18n.MESSAGES[language][key]
    return text.format(**fields) if fields else text


def page_text(answer: httpx.Response) -> str:
    return html.unescape(answer.text)


class Officer:
    """A member of the finance staff: their console visitor (in `language`) and their API token."""

    def __init__(self, user: dict, visitor: httpx.AsyncClient, api: dict[str, str]) -> None:
        self.user, self.visitor, self.api = user, visitor, api


async def person(door: Door, role: str, language: str = "en", *, also: tuple[str, ...] = ()) -> Officer:
    user = await door.add_user(role, *also)
    visitor = browser(door)
    signed = await sign_in(visitor, user["username"])
    assert signed.status_code == 303, signed.text
    if language != "en":
        await visitor.get(f"/console/language/{language}", params={"next": "/"})
    api = await door.bearer_for(await door.sign_in(user["username"], STAFF_PASSWORD))
    return Officer(user, visitor, api)


async def grant_of(door: Door, finance: dict[str, str], *, currency: str = "EUR", amount: str = "5000.00",
                   categories: tuple[str, ...] = ("medical", "housing")) -> dict:
    today = date.today()
    made = await door.client.post("/api/funds/grants", headers=finance, json={
        "donor": "Solidarity Fund", "code": f"G-{uuid.uuid4().hex[:6]}", "currency": currency, "amount": amount,
        "starts_on": str(today - timedelta(days=1)), "ends_on": str(today + timedelta(days=300)),
        "categories": list(categories)})
    assert made.status_code == 201, made.text
    return made.json()


async def case_of(door: Door, caseworker: dict[str, str]) -> dict:
    made = await door.client.post("/api/intake/cases", headers=caseworker, json={"full_name": "Ales Zhuk"})
    assert made.status_code == 201, made.text
    return made.json()


async def ask(door: Door, requester: dict[str, str], case: dict, grant: dict, *, amount: str = "300.00",
              category: str = "medical", purpose: str = "dentist in Vilnius", payee: dict | None = None) -> dict:
    """A request for aid through the API, retried while funds has not yet learned the case from intake's event."""
    body = {"case_id": case["id"], "grant_id": grant["id"], "category": category, "amount": amount,
            "currency": grant["currency"], "purpose": purpose, **({"payee": payee} if payee else {})}
    deadline = time.monotonic() + 20
    while True:
        made = await door.client.post("/api/funds/disbursements", json=body,
                                      headers={**requester, "Idempotency-Key": str(uuid.uuid4())})
        if made.status_code == 201 or time.monotonic() > deadline:
            assert made.status_code == 201, made.text
            return made.json()
        await asyncio.sleep(0.1)


def card(page: str, disbursement_id: str) -> str:
    """One disbursement's card on the queue page (its HTML)."""
    found = re.search(rf'<li class="disbursement[^"]*" id="d-{disbursement_id}">.*?</li>', page, re.DOTALL)
    assert found, f"no card for {disbursement_id}"
    return found.group(0)


def form_in(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to `action` (its CSRF token and Idempotency-Key); a form's action may
    name the part of the page its answer opens at (`#d-…`)."""
    found = re.search(rf'<form method="post" action="{re.escape(action)}(#[^"]*)?".*?</form>', page, re.DOTALL)
    assert found, f"no form to {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', found.group(0)))


async def state_of(door: Door, finance: dict[str, str], disbursement_id: str) -> dict:
    answer = await door.client.get(f"/api/funds/disbursements/{disbursement_id}", params={"payee": "masked"},
                                   headers=finance)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- grants --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_a_finance_officer_creates_a_grant_once_however_often_the_form_is_sent(door: Door, language: str):
    anna = await person(door, "finance", language)
    page = await anna.visitor.get(GRANTS)
    form = form_in(page.text, GRANTS)
    code = f"EU-{uuid.uuid4().hex[:6]}/03"
    typed = {**form, "donor": "Fund for Freedom", "code": code, "currency": "EUR",
             "amount": "10 000,50" if language != "en" else "10,000.50", "starts_on": str(date.today()),
             "ends_on": str(date.today() + timedelta(days=365)), "categories": ["medical", "housing"]}

    created = await anna.visitor.post(GRANTS, data=typed)
    again = await anna.visitor.post(GRANTS, data=typed)  # a double click: the same key, the same grant
    shown = await anna.visitor.get(created.headers["location"])
    listed = (await door.client.get("/api/funds/grants", headers=anna.api, params={"limit": 200})).json()["items"]

    assert page.status_code == 200 and f'<html lang="{language}">' in page.text
    assert words("fin_new_grant", language) in page.text and words("category_medical", language) in page.text
    assert created.status_code == again.status_code == 303, created.text
    assert created.headers["location"] == again.headers["location"]
    assert re.fullmatch(rf"{GRANTS}/[0-9a-f-]{{36}}\?done=created", created.headers["location"])
    (grant,) = [g for g in listed if g["code"] == code]
    assert (grant["budget"], grant["available"], grant["categories"]) == ("10000.50", "10000.50",
                                                                         ["housing", "medical"])
    assert words("fin_done_created", language) in page_text(shown) and code in page_text(shown)
    assert i18n.format_money("10000.50", "EUR", language) in page_text(shown)
    assert '<svg class="bar"' in shown.text and percent(Decimal(100), language) in page_text(shown)
    assert words("fin_grant_running", language) in page_text(shown)


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_a_refused_grant_says_what_is_wrong_next_to_each_field_in_words_and_keeps_what_was_typed(
        door: Door, language: str):
    anna = await person(door, "finance", language)
    taken = await grant_of(door, anna.api)
    page = await anna.visitor.get(GRANTS)
    form = form_in(page.text, GRANTS)

    wrong = await anna.visitor.post(GRANTS, data={
        **form, "donor": "Fund", "code": "no spaces here", "currency": "EUR", "amount": "12,3456",
        "starts_on": "2026-05-01", "ends_on": "2026-04-01"})
    code_taken = await anna.visitor.post(GRANTS, data={
        **form_in(wrong.text, GRANTS), "donor": "Fund", "code": taken["code"], "currency": "EUR",
        "amount": "100", "starts_on": "2026-05-01", "ends_on": "2026-06-01", "categories": ["legal"]})

    text = page_text(wrong)
    errors = dict(re.findall(r'<p class="field-error" id="grant-(\w+)-error">([^<]*)</p>', text))
    assert wrong.status_code == 422
    assert errors == {"code": words("fin_error_code", language),
                      "amount": words("fin_error_amount", language, example=amount_example("EUR", language)),
                      "ends_on": words("fin_error_ends_on", language),
                      "categories": words("fin_error_categories", language)}
    assert alert(wrong.text) == words("fields_wrong", language)
    assert 'aria-describedby="grant-code-hint grant-code-error"' in wrong.text
    assert 'value="no spaces here"' in wrong.text and 'value="12,3456"' in wrong.text  # kept as typed
    assert "Value error" not in text and "body" not in errors and "string_pattern" not in text
    assert form["idempotency_key"] != form_in(wrong.text, GRANTS)["idempotency_key"]  # a fresh key for the retry
    assert code_taken.status_code == 409
    assert re.search(r'id="grant-code-error">([^<]*)<', page_text(code_taken)).group(1) == words(
        "fin_error_code_taken", language)


# --- the queue: reference, grant, purpose, the payee masked and shown, four-eyes -----------------------------------

async def test_the_queue_shows_what_a_decision_needs_the_payee_masked_until_shown_audited_then_approved(door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    auditor = await door.staff("auditor")
    grant = await grant_of(door, anna.api)
    case = await case_of(door, olga.api)
    asked = await ask(door, olga.api, case, grant, payee={"name": "Hanna Zhuk", "account": IBAN},
                      purpose="rent for March")

    queue = await boris.visitor.get(QUEUE)
    shown_card = html.unescape(card(queue.text, asked["id"]))
    shown = await boris.visitor.post(f"{QUEUE}/{asked['id']}/payee", data=form_in(queue.text,
                                                                                  f"{QUEUE}/{asked['id']}/payee"))
    revealed_card = html.unescape(card(shown.text, asked["id"]))
    trail = await door.client.get("/api/funds/audit", params={"target_id": asked["id"]}, headers=auditor)
    approved = await boris.visitor.post(f"{QUEUE}/{asked['id']}/approve",
                                        data=form_in(shown.text, f"{QUEUE}/{asked['id']}/approve"))
    after = await boris.visitor.get(approved.headers["location"])

    assert queue.status_code == 200
    for seen in (case["reference"], grant["code"], "rent for March", "Medical", "€300.00", olga.user["username"],
                 "IBAN", "8901", words("fin_name_hidden"), words("fin_show_payee")):
        assert seen in shown_card, seen
    # "0123 4567": the account's digits as written (a form's random CSRF token may hold "4567" by chance)
    assert "Hanna Zhuk" not in queue.text and "LT60" not in queue.text and "0123 4567" not in queue.text
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    assert "Hanna Zhuk" in revealed_card and IBAN in revealed_card and words("fin_payee_shown") in revealed_card
    assert trail.status_code == 200, trail.text
    actions = [entry["action"] for entry in trail.json()["items"]]
    assert "payee.read" in actions and "disbursement.read" in actions
    assert approved.status_code == 303 and approved.headers["location"] == f"{QUEUE}?done=approved"
    assert words("fin_done_approved") in page_text(after)
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"
    assert "Hanna Zhuk" not in after.text  # shown in that one answer alone


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_finance_cannot_approve_their_own_request_and_the_page_says_why(door: Door, language: str):
    anna = await person(door, "finance", language)
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    own = await ask(door, anna.api, await case_of(door, olga.api), grant)  # finance may ask for aid too

    queue = await anna.visitor.get(QUEUE)
    own_card = html.unescape(card(queue.text, own["id"]))
    forced = await anna.visitor.post(f"{QUEUE}/{own['id']}/approve", data={"csrf": csrf_of(queue.text)})

    assert f'action="{QUEUE}/{own["id"]}/approve"' not in own_card
    assert re.search(rf'<button type="button" disabled aria-describedby="d-{own["id"]}-own">', own_card)
    assert words("fin_four_eyes", language) in own_card
    assert f'action="{QUEUE}/{own["id"]}/reject"' in own_card  # rejecting or voiding one's own is allowed
    assert forced.status_code == 403 and alert(forced.text) == words("fin_refused_four_eyes", language)
    assert words("fin_refused_four_eyes", language) in html.unescape(card(forced.text, own["id"]))
    assert (await state_of(door, anna.api, own["id"]))["status"] == "requested"


async def test_a_caseworker_who_also_holds_finance_is_offered_neither_approve_nor_pay_on_her_own_case(door: Door):
    """Funds refuses both (403 own-case); the queue says so beforehand instead of offering the buttons and then
    refusing them in words (an outside review's find)."""
    vera = await person(door, "finance", also=("caseworker",))
    anna, boris, olga = await person(door, "finance"), await person(door, "finance"), await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    hers = await ask(door, anna.api, await case_of(door, vera.api), grant)  # she opened the case: she is on it
    others = await ask(door, anna.api, await case_of(door, olga.api), grant)

    queue = await vera.visitor.get(QUEUE)
    her_card, other_card = html.unescape(card(queue.text, hers["id"])), html.unescape(card(queue.text, others["id"]))
    assert f'action="{QUEUE}/{hers["id"]}/approve"' not in her_card and words("fin_own_case") in her_card
    assert re.search(rf'<button type="button" disabled aria-describedby="d-{hers["id"]}-own">', her_card)
    assert f'action="{QUEUE}/{others["id"]}/approve"' in other_card and words("fin_own_case") not in other_card

    assert (await boris.visitor.post(f"{QUEUE}/{hers['id']}/approve", data=form_in(
        (await boris.visitor.get(QUEUE)).text, f"{QUEUE}/{hers['id']}/approve"))).status_code in (200, 303)
    approved = await vera.visitor.get(QUEUE, params={"status": "approved"})
    approved_card = html.unescape(card(approved.text, hers["id"]))
    assert f'action="{QUEUE}/{hers["id"]}/pay"' not in approved_card and words("fin_own_case") in approved_card
    assert f'action="{QUEUE}/{hers["id"]}/void"' in approved_card  # giving it back to the grant stays hers to do
    assert (await state_of(door, anna.api, hers["id"]))["status"] == "approved"


# --- paying once, voiding, refusals in words ----------------------------------------------------------------------

async def test_paying_twice_with_the_same_form_pays_once_and_a_new_payment_is_refused_in_words(door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api, amount="1000.00")
    asked = await ask(door, olga.api, await case_of(door, olga.api), grant, amount="250.00")
    queue = await boris.visitor.get(QUEUE)
    await boris.visitor.post(f"{QUEUE}/{asked['id']}/approve", data=form_in(queue.text, f"{QUEUE}/{asked['id']}/approve"))

    approved_page = await boris.visitor.get(QUEUE)
    pay = f"{QUEUE}/{asked['id']}/pay"
    payment = {**form_in(approved_page.text, pay), "method": "bank_transfer", "reference": "TX-2026-001"}
    first, second = await asyncio.gather(boris.visitor.post(pay, data=payment), boris.visitor.post(pay, data=payment))
    if 409 in (first.status_code, second.status_code):  # the second arrived while the first was in flight
        assert words("fin_refused_in_flight") in alert((first if first.status_code == 409 else second).text)
    third = await boris.visitor.post(pay, data=payment)  # sent again later: the same answer, nothing more
    fresh = await boris.visitor.post(pay, data={**payment, "idempotency_key": str(uuid.uuid4())})
    balances = (await door.client.get(f"/api/funds/grants/{grant['id']}", headers=anna.api)).json()
    paid_view = await boris.visitor.get(QUEUE, params={"status": "paid"})

    assert 303 in (first.status_code, second.status_code) and third.status_code == 303
    assert third.headers["location"] == f"{QUEUE}?done=paid"
    assert (balances["paid"], balances["committed"], balances["available"]) == ("250.00", "0.00", "750.00")
    assert fresh.status_code == 409 and alert(fresh.text) == words("fin_refused_already_paid")
    paid_card = html.unescape(card(paid_view.text, asked["id"]))
    assert words("fin_method_bank_transfer") in paid_card and "TX-2026-001" in paid_card
    assert "/pay" not in paid_card and "/void" not in paid_card  # nothing more to do with it


async def test_a_refused_reference_is_said_next_to_it_and_kept_and_a_short_grant_is_said_with_its_numbers(
        door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    small = await grant_of(door, anna.api, amount="100.00")
    case = await case_of(door, olga.api)
    too_much = await ask(door, olga.api, case, small, amount="300.00")
    queue = await boris.visitor.get(QUEUE)
    short = await boris.visitor.post(f"{QUEUE}/{too_much['id']}/approve",
                                     data=form_in(queue.text, f"{QUEUE}/{too_much['id']}/approve"))

    grant = await grant_of(door, anna.api)
    fine = await ask(door, olga.api, case, grant, amount="20.00")
    queue = await boris.visitor.get(QUEUE)
    await boris.visitor.post(f"{QUEUE}/{fine['id']}/approve", data=form_in(queue.text, f"{QUEUE}/{fine['id']}/approve"))
    queue = await boris.visitor.get(QUEUE)
    pay = f"{QUEUE}/{fine['id']}/pay"
    refused = await boris.visitor.post(pay, data={**form_in(queue.text, pay), "method": "cash",
                                                  "reference": "Paid to Hanna Zhuk"})

    assert short.status_code == 409 and alert(short.text) == words(
        "fin_refused_funds_short", code=small["code"], available="€100.00", amount="€300.00")
    assert refused.status_code == 422
    refused_card = html.unescape(card(refused.text, fine["id"]))
    assert words("fin_error_reference") in refused_card and 'aria-invalid="true"' in refused_card
    assert 'value="Paid to Hanna Zhuk"' in refused_card and '<option value="cash" selected>' in refused_card
    assert (await state_of(door, anna.api, fine["id"]))["status"] == "approved"


async def test_an_amount_of_thousands_of_digits_is_refused_next_to_its_field_on_the_grant_and_the_pay_forms(
        door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    huge = "9" * 5000  # past Python's 4,300 digits for int(text): the form must say so, not fail
    page = await anna.visitor.get(GRANTS)
    grant_form = await anna.visitor.post(GRANTS, data={
        **form_in(page.text, GRANTS), "donor": "Fund", "code": f"G-{uuid.uuid4().hex[:6]}", "currency": "EUR",
        "amount": huge, "starts_on": str(date.today()), "ends_on": str(date.today() + timedelta(days=30)),
        "categories": ["medical"]})

    grant = await grant_of(door, anna.api)
    asked = await ask(door, olga.api, await case_of(door, olga.api), grant)
    queue = await boris.visitor.get(QUEUE)
    approve = f"{QUEUE}/{asked['id']}/approve"
    assert (await boris.visitor.post(approve, data=form_in(queue.text, approve))).status_code == 303
    queue = await boris.visitor.get(QUEUE)
    pay = f"{QUEUE}/{asked['id']}/pay"
    pay_form = await boris.visitor.post(pay, data={
        **form_in(queue.text, pay), "method": "bank_transfer", "reference": "PL-1", "paid_currency": "PLN",
        "paid_amount": huge, "fx_rate": "4,3", "fx_source": "NBP"})

    assert grant_form.status_code == 422, grant_form.text
    errors = dict(re.findall(r'<p class="field-error" id="grant-(\w+)-error">([^<]*)</p>', page_text(grant_form)))
    assert errors == {"amount": words("error_too_long")} and alert(grant_form.text) == words("fields_wrong")
    assert pay_form.status_code == 422, pay_form.text
    said = html.unescape(card(pay_form.text, asked["id"]))
    assert f'<p class="field-error" id="fx-{asked["id"]}-paid_amount-error">{words("error_too_long")}</p>' in said
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"


async def test_void_and_reject_where_funds_allows_them_and_the_committed_amount_goes_back(door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api, amount="1000.00")
    case = await case_of(door, olga.api)
    requested, approved, rejected, paid = [await ask(door, olga.api, case, grant, amount="100.00") for _ in range(4)]
    for d in (approved, paid):
        assert (await door.client.post(f"/api/funds/disbursements/{d['id']}/approve", headers=boris.api)).status_code == 200
    assert (await door.client.post(f"/api/funds/disbursements/{paid['id']}/pay", headers={
        **boris.api, "Idempotency-Key": str(uuid.uuid4())}, json={"method": "cash", "reference": "C-1"})).status_code == 200

    queue = await anna.visitor.get(QUEUE)
    voided_requested = await anna.visitor.post(f"{QUEUE}/{requested['id']}/void",
                                               data=form_in(queue.text, f"{QUEUE}/{requested['id']}/void"))
    voided_approved = await anna.visitor.post(f"{QUEUE}/{approved['id']}/void",
                                              data=form_in(queue.text, f"{QUEUE}/{approved['id']}/void"))
    rejected_now = await anna.visitor.post(f"{QUEUE}/{rejected['id']}/reject",
                                           data=form_in(queue.text, f"{QUEUE}/{rejected['id']}/reject"))
    void_paid = await anna.visitor.post(f"{QUEUE}/{paid['id']}/void", data={"csrf": csrf_of(queue.text)})
    again = await anna.visitor.post(f"{QUEUE}/{requested['id']}/void", data={"csrf": csrf_of(queue.text)})
    balances = (await door.client.get(f"/api/funds/grants/{grant['id']}", headers=anna.api)).json()
    voided_view = await anna.visitor.get(QUEUE, params={"status": "voided"})

    assert voided_requested.status_code == voided_approved.status_code == rejected_now.status_code == 303
    assert voided_requested.headers["location"] == f"{QUEUE}?done=voided"
    assert rejected_now.headers["location"] == f"{QUEUE}?done=rejected"
    assert [(await state_of(door, anna.api, d["id"]))["status"] for d in (requested, approved, rejected, paid)] == [
        "voided", "voided", "rejected", "paid"]
    assert (balances["committed"], balances["paid"], balances["available"]) == ("0.00", "100.00", "900.00")
    assert void_paid.status_code == 409 and alert(void_paid.text) == words("fin_refused_already_paid")
    assert again.status_code == 409 and alert(again.text) == words("fin_refused_changed")
    assert f'id="d-{requested["id"]}"' in voided_view.text and f'id="d-{approved["id"]}"' in voided_view.text
    assert f"{QUEUE}?status=voided" in voided_view.text and 'aria-current="page"' in voided_view.text


# --- the queue in Belarusian, money in each currency's decimals ---------------------------------------------------

async def test_the_queue_in_belarusian_has_no_english_value_and_yen_have_no_decimals(door: Door):
    anna = await person(door, "finance")
    boris = await person(door, "finance", "be")
    olga = await person(door, "caseworker")
    yen = await grant_of(door, anna.api, currency="JPY", amount="1500000")
    euro = await grant_of(door, anna.api)
    case = await case_of(door, olga.api)
    in_yen = await ask(door, olga.api, case, yen, amount="15000", category="housing")
    in_euro = await ask(door, olga.api, case, euro, amount="1234.50",
                         payee={"name": "Hanna Zhuk", "account": "+375 29 743 19 58"})

    queue = await boris.visitor.get(QUEUE)
    text = page_text(queue)
    grants = page_text(await boris.visitor.get(GRANTS))
    yen_page = page_text(await boris.visitor.get(f"{GRANTS}/{yen['id']}"))

    assert '<html lang="be">' in queue.text and words("queue", "be") in text
    yen_card = html.unescape(card(queue.text, in_yen["id"]))
    assert "15\u00a0000\u00a0¥" in yen_card and "15\u00a0000,00" not in yen_card
    assert words("category_housing", "be") in yen_card and words("aid_requested", "be") in yen_card
    euro_card = html.unescape(card(queue.text, in_euro["id"]))
    assert "1\u00a0234,50\u00a0€" in euro_card and words("fin_payee_kind_phone", "be") in euro_card
    assert "1958" in euro_card and "Hanna Zhuk" not in euro_card
    for english in ("medical", "housing", "requested", "bank_transfer", "Approve", "Show payee", "Payee"):
        assert english not in re.sub(r"<[^>]+>", " ", text), english
    assert words("fin_method_bank_transfer", "be") in text and words("fin_view_todo", "be") in text
    assert "1\u00a0500\u00a0000\u00a0¥" in grants and "1\u00a0500\u00a0000,00" not in grants
    assert "1\u00a0500\u00a0000\u00a0¥" in yen_page


def test_amounts_are_read_as_people_type_them_in_the_currencys_own_decimals():
    assert typed_amount("10 000,5", "EUR") == "10000.50" and typed_amount("1,234.50", "EUR") == "1234.50"
    assert typed_amount("1.234,5", "EUR") == "1234.50" and typed_amount("300", "EUR") == "300.00"
    assert typed_amount("150,000", "JPY") == "150000" and typed_amount("1 500 000", "JPY") == "1500000"
    assert typed_amount("1500.00", "JPY") == "1500" and typed_amount("1.5", "JPY") == "1.5"  # funds refuses that
    assert typed_amount("1,5", "KWD") == "1.500" and typed_amount("12.345", "KWD") == "12.345"
    assert typed_amount("12,345", "EUR") == "12345.00" and typed_amount("abc", "EUR") == "abc"
    # one mark and three digits: thousands only where the language writes them so, and never after a lone 0
    assert typed_amount("12.345", "EUR") == "12.345" and typed_amount("0,125", "EUR") == "0,125"  # funds refuses
    assert typed_amount("12,345", "EUR", "ru") == "12,345" and typed_amount("12,345", "EUR", "be") == "12,345"
    assert typed_amount("12 345", "EUR", "ru") == "12345.00" and typed_amount("12,5", "EUR", "be") == "12.50"
    assert typed_amount("1.234.5", "EUR") == "1.234.5" and typed_amount("1,23.45", "EUR") == "1,23.45"
    # nor when the three digits end in zeros: "1.500" was read as 1.50, a thousand times too little
    assert [typed_amount(t, "EUR", language) for t, language in (("1.500", "be"), ("12.000", "ru"), ("1,500", "ru"),
                                                                  ("1.500", "en"), ("1.000", "pl"))] == [
        "1.500", "12.000", "1,500", "1.500", "1.000"]
    assert typed_amount("1.5000", "EUR", "be") == "1.50" and typed_amount("1.500,00", "EUR", "be") == "1500.00"
    assert typed_amount("1.234.567,89", "EUR") == "1234567.89" and typed_amount("1,234,567", "JPY") == "1234567"
    # the currency written with it, as the console writes amounts: before or after, sign or code
    assert typed_amount("€120", "EUR") == "120.00" and typed_amount("€1,234.50", "EUR") == "1234.50"
    assert typed_amount("1 234,50 €", "EUR") == "1234.50" and typed_amount("EUR 300", "EUR") == "300.00"
    assert typed_amount("$5", "EUR") == "$5"  # another currency: as typed, for funds to refuse
    assert i18n.format_money("150000", "JPY", "en") == "¥150,000"
    assert i18n.format_money("1234.500", "KWD", "ru") == "1\u00a0234,500\u00a0KWD"
    assert i18n.format_money("10.00", "EUR", "be") == "10,00\u00a0€"


def test_an_amount_longer_than_python_reads_as_an_int_goes_to_funds_as_typed_without_its_leading_zeros():
    assert typed_amount("0" * 5000 + "12,5", "EUR") == "12.50" and typed_amount("0", "JPY") == "0"
    assert typed_amount("9" * 5000, "EUR") == "9" * 5000 + ".00"  # for funds to refuse: at most 12 digits


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
def test_a_refusal_finance_has_no_sentence_of_its_own_for_is_said_as_on_every_other_page(language: str):
    visit = Visit(request=None, token="", principal=None, language=language)  # type: ignore[arg-type]
    refused = {"type": "https://rehab.support/problems/{}", "title": "English", "status": 0}

    def refusal(status: int, kind: str) -> str | None:
        return said(visit, Answer(status=status, body={**refused, "type": refused["type"].format(kind),
                                                       "status": status}, language=language))

    assert refusal(403, "forbidden") == words("problem_forbidden", language)
    assert refusal(429, "rate-limited") == words("problem_too_many", language)
    assert refusal(409, "four-eyes") == words("fin_refused_four_eyes", language), "finance's own sentence first"
    assert refusal(403, "own-case") == words("fin_refused_own_case", language)
    assert refusal(418, "teapot") == words("fin_refused_other", language).format(status=418)


def test_every_finance_word_is_written_in_belarusian_russian_and_english():
    ours = {key for key in i18n.MESSAGES["en"] if key.startswith("fin_")}
    assert len(ours) > 50
    same = [key for key in ours if key != "fin_payee_kind_iban" and (
        i18n.MESSAGES["be"][key] == i18n.MESSAGES["en"][key] or i18n.MESSAGES["ru"][key] == i18n.MESSAGES["en"][key])]
    assert same == []


# --- reports ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_the_donor_report_shows_no_small_count_and_downloads_as_csv(door: Door, language: str):
    anna = await person(door, "finance", language)
    boris = await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    lonely = await grant_of(door, anna.api)
    cases = await asyncio.gather(*(case_of(door, olga.api) for _ in range(6)))
    for index, case in enumerate(cases):
        asked = await ask(door, olga.api, case, grant if index < 5 else lonely, amount="100.00")
        assert (await door.client.post(f"/api/funds/disbursements/{asked['id']}/approve",
                                       headers=boris.api)).status_code == 200
        assert (await door.client.post(f"/api/funds/disbursements/{asked['id']}/pay", json={
            "method": "bank_transfer", "reference": f"TX-{index}"}, headers={
            **boris.api, "Idempotency-Key": str(uuid.uuid4())})).status_code == 200

    report = await anna.visitor.get(f"{GRANTS}/{grant['id']}/donor-report")
    hidden = await anna.visitor.get(f"{GRANTS}/{lonely['id']}/donor-report")
    csv = await anna.visitor.get(f"{GRANTS}/{grant['id']}/donor-report.csv")
    grants_csv = await anna.visitor.get("/console/reports/grants.csv")
    grant_page = await anna.visitor.get(f"{GRANTS}/{grant['id']}")

    month = f"{words('fin_month_' + str(date.today().month), language)} {date.today().year}"
    text = page_text(report)
    assert report.status_code == 200 and words("fin_donor_report_title", language, code=grant["code"]) in text
    row = re.search(r'<table id="donor-cells">.*?</table>', text, re.DOTALL).group(0)
    assert month in row and words("category_medical", language) in row and ">5<" in row
    assert i18n.format_money("500.00", "EUR", language) in row
    assert re.search(r'id="people-helped">5<', text) and words("fin_suppression", language, n=5) in text
    assert cases[0]["reference"] not in text and "Ales" not in text  # no case, no name
    hidden_text = page_text(hidden)
    assert words("fin_people_hidden", language, n=5) in hidden_text and words("fin_cell_hidden", language) in hidden_text
    assert '<tr class="suppressed">' in hidden.text
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"] and grant["code"] in csv.text
    # a person opens it in a spreadsheet: the byte-order mark first tells it the file is UTF-8
    assert csv.content.startswith("\ufeff".encode()) and grants_csv.content.startswith("\ufeff".encode())
    assert csv.text.removeprefix("\ufeff").splitlines()[0].startswith('"code","donor","currency","month","category"')
    assert grants_csv.status_code == 200 and "attachment" in grants_csv.headers["content-disposition"]
    assert grant["code"] in grants_csv.text and lonely["code"] in grants_csv.text
    assert f'href="{GRANTS}/{grant["id"]}/donor-report.csv"' in grant_page.text
    assert grant_page.text.count('<tr id="d-') == 5 and words("aid_paid", language) in page_text(grant_page)

    # A statement as of a month's end, chosen in a POST form (nothing chosen goes in a URL): the month before this
    # one, when none of this aid had been paid yet; the CSV of the month chosen, from a form too.
    this_month = date.today().strftime("%Y-%m")
    assert f'<option value="{this_month}" selected>' in report.text and words("fin_donor_as_of", language) in text
    before = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    earlier = await anna.visitor.post(f"{GRANTS}/{grant['id']}/donor-report",
                                      data={"csrf": csrf_of(report.text), "as_of": before})
    assert earlier.status_code == 200 and f'<option value="{before}" selected>' in earlier.text
    assert '<table id="donor-cells">' not in earlier.text and i18n.format_money("500.00", "EUR", language) not in (
        page_text(earlier))
    earlier_csv = await anna.visitor.post(f"{GRANTS}/{grant['id']}/donor-report.csv",
                                          data={"csrf": csrf_of(report.text), "as_of": before})
    assert earlier_csv.status_code == 200 and f'"{before}"' in earlier_csv.text and "500.00" not in earlier_csv.text


# --- nobody else ----------------------------------------------------------------------------------------------------

async def test_a_caseworker_gets_403_on_every_finance_page(door: Door):
    anna = await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    asked = await ask(door, olga.api, await case_of(door, olga.api), grant)
    token = csrf_of((await olga.visitor.get("/console/cases")).text)

    pages = [await olga.visitor.get(path) for path in (
        GRANTS, QUEUE, f"{GRANTS}/{grant['id']}", f"{GRANTS}/{grant['id']}/donor-report",
        f"{GRANTS}/{grant['id']}/donor-report.csv", "/console/reports/grants.csv")]
    posts = [await olga.visitor.post(path, data={"csrf": token}) for path in (
        GRANTS, f"{QUEUE}/{asked['id']}/approve", f"{QUEUE}/{asked['id']}/payee", f"{QUEUE}/{asked['id']}/pay")]
    nav = (await olga.visitor.get("/console/cases")).text

    assert [p.status_code for p in pages] == [403] * 6 and [p.status_code for p in posts] == [403] * 4
    assert f'href="{QUEUE}"' not in nav and f'href="{GRANTS}"' not in nav
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "requested"


async def test_a_donor_report_says_hidden_in_place_of_each_total_withheld_and_never_none(door: Door):
    """Five people paid, one approved: paid is shown; committed (one person's aid) is withheld, and available with
    it (with the budget and paid it would give committed back)."""
    anna = await person(door, "finance")
    boris = await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    for index, case in enumerate(await asyncio.gather(*(case_of(door, olga.api) for _ in range(6)))):
        asked = await ask(door, olga.api, case, grant, amount="100.00")
        assert (await door.client.post(f"/api/funds/disbursements/{asked['id']}/approve",
                                       headers=boris.api)).status_code == 200
        if index < 5:
            assert (await door.client.post(f"/api/funds/disbursements/{asked['id']}/pay", json={
                "method": "bank_transfer", "reference": f"TX-{index}"}, headers={
                **boris.api, "Idempotency-Key": str(uuid.uuid4())})).status_code == 200

    report = await anna.visitor.get(f"{GRANTS}/{grant['id']}/donor-report")
    totals = re.search(r'<dl class="numbers" id="donor-totals">.*?</dl>', report.text, re.DOTALL).group(0)

    assert report.status_code == 200 and "None" not in report.text
    assert "€500.00" in totals and totals.count(i18n.MESSAGES["en"]["fin_cell_hidden"]) == 2
    assert "€100.00" not in totals and 'id="amounts-hidden"' in report.text


# --- a list funds did not give is said so, never as none --------------------------------------------------------------

@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_with_funds_away_the_queue_says_each_group_cannot_be_shown_not_that_nothing_is_left_to_pay(
        door: Door, backends: Backends, gateway_settings, language: str):
    """An officer who read "Nothing here" under the banner while funds was away took it as nothing left to pay (an
    outside review's find); the same on the page answered after a Pay funds did not answer."""
    anna, boris = await person(door, "finance", language), await person(door, "finance")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    asked = await ask(door, olga.api, await case_of(door, olga.api), grant)
    assert (await door.client.post(f"/api/funds/disbursements/{asked['id']}/approve",
                                   headers=boris.api)).status_code == 200
    pay = f"{QUEUE}/{asked['id']}/pay"
    payment = {**form_in((await anna.visitor.get(QUEUE)).text, pay), "method": "bank_transfer", "reference": "TX-1"}
    async with service_away("funds", door, backends, gateway_settings, anna) as visitor:
        page = await visitor.get(QUEUE)
        paid = await visitor.post(pay, data=payment)

    assert paid.status_code >= 500
    for answer in (page, paid):
        for group in ("requested", "approved"):
            assert f'id="queue-{group}-unshown"' in answer.text, group
        assert page_text(answer).count(words("fin_queue_unshown", language)) == 2
        assert words("nothing_here", language) not in page_text(answer)
        assert answer.text.count('class="problem"') == 1  # the banner, once
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"


async def test_a_step_funds_took_and_never_answered_comes_back_to_send_again_as_it_was_done_once_either_way(
        door: Door, backends: Backends, gateway_settings):
    """With funds stalled (a paused process), a Pay, an approval, a rejection or a void may or may not be done; the
    queue answered after it can not be drawn (funds gives no list), and the row's form went with it, the method and
    reference typed into it too. Each comes back to send again under its own key, what was typed shown."""
    anna, boris, olga = await person(door, "finance"), await person(door, "finance"), await person(door, "caseworker")
    grant = await grant_of(door, anna.api)
    case = await case_of(door, olga.api)
    to_pay, to_void, to_approve, to_reject = [await ask(door, olga.api, case, grant, amount="50.00") for _ in range(4)]
    for approved in (to_pay, to_void):
        assert (await door.client.post(f"/api/funds/disbursements/{approved['id']}/approve",
                                       headers=boris.api)).status_code == 200
    page = (await anna.visitor.get(QUEUE)).text
    typed = {f"{QUEUE}/{to_pay['id']}/pay": {"method": "cash", "reference": "TX-77/B"},
             f"{QUEUE}/{to_approve['id']}/approve": {}, f"{QUEUE}/{to_reject['id']}/reject": {},
             f"{QUEUE}/{to_void['id']}/void": {}}
    sent = {action: {**form_in(page, action), **fields} for action, fields in typed.items()}
    async with hung_on_changes() as hung, service_away("funds", door, backends, gateway_settings, anna,
                                                       instead=hung, backend_timeout_seconds=1.0) as visitor:
        failed = {action: await visitor.post(action, data=data) for action, data in sent.items()}
        # Sent again while funds is still stalled (taken for silent by now): the first sending may still be done when
        # it wakes, so this is no "nothing was changed" either; the form and what was typed stay (an outside review).
        pay = f"{QUEUE}/{to_pay['id']}/pay"
        again_at, again_fields = send_again_form(failed[pay].text)
        still = await visitor.post(again_at, data=again_fields)

    for action, answer in {**failed, "again": still}.items():
        assert answer.status_code == 504, (action, answer.text[:300])
        assert alert(answer.text) == words("problem_timeout"), action
        again = send_again_form(answer.text)
        assert again[1].pop("csrf") and again[1].pop("sent_before") == "1"
        assert again == (pay if action == "again" else action, {
            name: value for name, value in sent[pay if action == "again" else action].items() if name != "csrf"})
    assert words("typed_resend_explained") in still.text and "TX-77/B" in still.text
    paying = failed[f"{QUEUE}/{to_pay['id']}/pay"].text
    kept = re.search(r'<section id="typed".*?</section>', paying, re.DOTALL).group(0)
    assert re.findall(r'<input id="[^"]+" readonly value="([^"]*)">', kept) == [words("fin_method_cash"), "TX-77/B"]
    # a step with nothing typed is not headed "What you wrote" above nothing
    approving = failed[f"{QUEUE}/{to_approve['id']}/approve"].text
    assert words("typed_resend_heading") in approving and words("typed_kept_heading") not in approving
    # each says which step it was: the queue, and the row it was taken on, are not drawn
    for action, answer in failed.items():
        step = re.search(r'<p id="resend-step">[^<]*<strong>([^<]*)</strong>', answer.text).group(1)
        assert step == words({"pay": "pay", "approve": "approve", "reject": "reject", "void": "fin_void"}[
            action.rsplit("/", 1)[1]]), action
    assert words("typed_kept_heading") in paying

    # sent again as it was, twice each, once funds answers: each done once
    for answer in failed.values():
        action, fields = send_again_form(answer.text)
        for _ in range(2):
            done = await anna.visitor.post(action, data=fields)
            assert done.status_code == 303, (action, done.text[:300])
    paid = await state_of(door, anna.api, to_pay["id"])
    assert paid["status"] == "paid" and (paid["payment"]["method"], paid["payment"]["reference"]) == ("cash",
                                                                                                     "TX-77/B")
    assert [(await state_of(door, anna.api, d["id"]))["status"] for d in (to_approve, to_reject, to_void)] == [
        "approved", "rejected", "voided"]


@pytest.mark.parametrize("language", i18n.STAFF_LANGUAGES)
async def test_with_funds_away_the_grants_page_says_the_grants_cannot_be_shown_not_that_there_are_none(
        door: Door, backends: Backends, gateway_settings, language: str):
    """Read as "No grants yet" after the grant form failed, a finance officer would create the grant again."""
    anna = await person(door, "finance", language)
    await grant_of(door, anna.api)
    form = form_in((await anna.visitor.get(GRANTS)).text, GRANTS)
    typed = {**form, "donor": "Fund for Freedom", "code": f"EU-{uuid.uuid4().hex[:6]}", "currency": "EUR",
             "amount": "1000", "starts_on": str(date.today()), "ends_on": str(date.today() + timedelta(days=365)),
             "categories": ["medical"]}
    async with service_away("funds", door, backends, gateway_settings, anna) as visitor:
        page = await visitor.get(GRANTS)
        failed = await visitor.post(GRANTS, data=typed)

    assert failed.status_code >= 500
    for answer in (page, failed):
        assert 'id="grants-unshown"' in answer.text and words("fin_grants_unshown", language) in page_text(answer)
        assert words("fin_grants_none", language) not in page_text(answer)
        assert answer.text.count('class="problem"') == 1  # the banner, once
    assert form_in(failed.text, GRANTS) and "Fund for Freedom" in failed.text  # the form, kept as typed
