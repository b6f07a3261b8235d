"""Finance asks for aid from a partner's cost estimate in the console (gateway/console/estimates.py), against the
gateway and every service as a process: a clinic completes a referral with what its help cost; a finance officer
finds the estimate with its case's reference, is offered only the grants that can pay it, asks once however often
the form is sent; the request waits in the queue for another officer (four-eyes); the estimate is gone from the
list, and a second request for it is refused in words. Nobody but finance opens the page."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid

import pytest

from gateway.console import i18n
from tests.console.test_console_case_page import referral_sent
from tests.console.test_console_caseload import open_case
from tests.console.test_console_caseload import person as caseworker
from tests.console.test_console_finance import QUEUE, card, form_in, grant_of, person, state_of
from tests.console.world import add_partner
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

ESTIMATES = "/console/estimates"


def words(key: str, language: str = "en") -> str:
    return i18n.MESSAGES[language][key]


def estimate_card(page: str, referral_id: str) -> str:
    found = re.search(rf'<li class="estimate[^"]*" id="e-{referral_id}">.*?</li>', page, re.DOTALL)
    assert found, f"no estimate {referral_id} on the page"
    return found.group(0)


async def completed_with_estimate(door: Door, *, amount: str = "180.00", currency: str = "EUR") -> tuple[dict, dict]:
    """A case whose referral a clinic completed with a cost estimate, once funds has learned the estimate."""
    ala = await caseworker(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Estimatevich")
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    clinic = await add_partner(door)
    referral = await referral_sent(door, ala, case["id"], clinic)
    partner = await door.partner(clinic["id"])
    for step, body in (("accept", None), ("start", None), ("complete", {
            "outcome": "Two fillings", "cost_estimate": {"amount": amount, "currency": currency}})):
        moved = await door.client.post(f"/api/partner/referrals/{referral['id']}/{step}", headers=partner, json=body)
        assert moved.status_code == 200, moved.text
    return case, referral


async def listed_on_page(visitor, referral_id: str) -> str:
    """The estimates page once funds has learned the estimate from referrals' event."""
    deadline = time.monotonic() + 20
    while True:
        page = await visitor.get(ESTIMATES)
        if f'id="e-{referral_id}"' in page.text or time.monotonic() > deadline:
            assert f'id="e-{referral_id}"' in page.text, "the estimate never reached the page"
            return page.text
        await asyncio.sleep(0.2)


async def test_finance_asks_for_aid_from_an_estimate_once_and_another_officer_approves_it(door: Door):
    anna, boris = await person(door, "finance"), await person(door, "finance")
    fits = await grant_of(door, anna.api, categories=("medical",))
    other_currency = await grant_of(door, anna.api, currency="PLN", categories=("medical",))
    other_category = await grant_of(door, anna.api, categories=("housing",))
    case, referral = await completed_with_estimate(door)

    page = await listed_on_page(anna.visitor, referral["id"])
    shown = estimate_card(page, referral["id"])
    form = form_in(page, f"{ESTIMATES}/{referral['id']}")
    typed = {**form, "grant_id": fits["id"], "purpose": "Dental treatment after release", "payee_name": "",
             "payee_account": ""}
    first = await anna.visitor.post(f"{ESTIMATES}/{referral['id']}", data=typed)
    again = await anna.visitor.post(f"{ESTIMATES}/{referral['id']}", data=typed)  # a double click: asked once

    assert case["reference"] in shown and "€180.00" in shown and words("category_medical") in shown
    assert fits["code"] in shown and other_currency["code"] not in shown and other_category["code"] not in shown
    assert f'{fits["code"]} — {fits["donor"]} (Available: €5,000.00)' in html.unescape(shown)  # finance's own view
    assert "Estimatevich" not in page  # finance reads the case's reference, never the person
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == f"{QUEUE}?done=requested"
    asked = (await door.client.get("/api/funds/disbursements", headers=anna.api,
                                   params={"case_id": case["id"]})).json()["items"]
    assert len(asked) == 1
    aid = await state_of(door, anna.api, asked[0]["id"])
    assert (aid["amount"], aid["currency"], aid["category"], aid["status"]) == ("180.00", "EUR", "medical", "requested")
    assert aid["referral_id"] == referral["id"] and aid["requested_by"] == anna.user["id"]

    queue = await anna.visitor.get(first.headers["location"])
    mine = card(queue.text, aid["id"])
    assert words("fin_done_requested") in html.unescape(queue.text)
    assert words("fin_four_eyes") in html.unescape(mine)  # not approved by the one who asked
    theirs = (await boris.visitor.get(QUEUE)).text
    approve = form_in(theirs, f"{QUEUE}/{aid['id']}/approve")
    approved = await boris.visitor.post(f"{QUEUE}/{aid['id']}/approve", data=approve)
    assert approved.status_code == 303
    assert (await state_of(door, anna.api, aid["id"]))["status"] == "approved"

    after = (await anna.visitor.get(ESTIMATES)).text
    assert f'id="e-{referral["id"]}"' not in after  # asked for: no longer waiting
    # The old page sent again under a new key: refused in words, nothing more asked.
    refused = await anna.visitor.post(f"{ESTIMATES}/{referral['id']}",
                                      data={**typed, "idempotency_key": str(uuid.uuid4())})
    assert refused.status_code == 409
    assert words("est_refused_requested") in html.unescape(refused.text)
    assert len((await door.client.get("/api/funds/disbursements", headers=anna.api,
                                      params={"case_id": case["id"]})).json()["items"]) == 1


async def test_a_refused_request_comes_back_beside_its_estimate_as_typed_in_the_officer_s_language(door: Door):
    anna = await person(door, "finance", "be")
    await grant_of(door, anna.api, categories=("medical",))
    _case, referral = await completed_with_estimate(door, amount="75.50")
    page = await listed_on_page(anna.visitor, referral["id"])
    form = form_in(page, f"{ESTIMATES}/{referral['id']}")

    # No purpose (the browser asks for one; a script may not): said beside the field, the payee kept as typed.
    answer = await anna.visitor.post(f"{ESTIMATES}/{referral['id']}", data={
        **form, "grant_id": re.search(r'<option value="([^"]+)"', estimate_card(page, referral["id"])).group(1),
        "purpose": "  ", "payee_name": "Клініка Дантыст", "payee_account": "LT60 1010 0123 4567 8901"})
    shown = html.unescape(estimate_card(answer.text, referral["id"]))

    assert answer.status_code == 422
    assert f'id="e-{referral["id"]}-purpose-error"' in shown and 'aria-invalid="true"' in shown
    assert "Клініка Дантыст" in shown and "LT60 1010 0123 4567 8901" in shown
    assert words("est_request", "be") in shown
    new_key = re.search(r'name="idempotency_key" value="([^"]+)"', shown).group(1)
    assert new_key != form["idempotency_key"]  # the old key holds the refusal


async def test_an_estimate_no_open_grant_can_pay_says_so_and_offers_no_form(door: Door):
    anna = await person(door, "finance")
    await grant_of(door, anna.api, categories=("housing",))
    _case, referral = await completed_with_estimate(door, amount="40.00", currency="GEL")
    page = await listed_on_page(anna.visitor, referral["id"])
    shown = html.unescape(estimate_card(page, referral["id"]))

    assert words("est_no_grant").format(category=words("category_medical"), currency="GEL") in shown
    assert "<form" not in shown


async def test_only_finance_opens_the_estimates(door: Door):
    ala = await caseworker(door, "caseworker")
    page = await ala.visitor.get(ESTIMATES, headers={"Accept": "text/html"})
    sent = await ala.visitor.post(f"{ESTIMATES}/{uuid.uuid4()}", headers={"Accept": "text/html"},
                                  data={"grant_id": str(uuid.uuid4()), "purpose": "x"})
    assert page.status_code == 403 and sent.status_code in (403, 400)
    assert words("estimates") not in page.text.split("<main", 1)[0]  # not in a caseworker's navigation
