"""Paying aid in another currency from the console's queue (issue #20), against the gateway and every service as a
process, in Belarusian: the pay form's "Paid in another currency" part; a payment worth less than approved comes back
with the numbers in words and one choice to tick (nothing paid meanwhile), and is paid once it is ticked; a refused
rate is said next to its field; the requester is not offered to approve an extra; the paid card shows both amounts;
the donor report says what was paid per currency (or that a currency is hidden)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator

import pytest

from gateway.console import i18n
from gateway.console.finance import payment_body, typed_rate
from tests.console.test_console_finance import (
    GRANTS,
    QUEUE,
    ask,
    card,
    case_of,
    form_in,
    grant_of,
    page_text,
    person,
    state_of,
    words,
)
from tests.console.world import backends_publishing_months_under_way
from tests.integration.gateway.door import Backends, Door

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    yield from backends_publishing_months_under_way(tmp_path_factory)


NBP = "NBP table A 2026-12-02"


def money(amount: str, currency: str) -> str:
    return i18n.format_money(amount, currency, "be")


async def approved_in_queue(door: Door, approver, requester_api: dict, grant: dict, case: dict) -> dict:
    asked = await ask(door, requester_api, case, grant, amount="300.00",
                      payee={"name": "Hanna Zhuk", "account": "PL61109010140000071219812874"})
    queue = await approver.visitor.get(QUEUE)
    approve = f"{QUEUE}/{asked['id']}/approve"
    assert (await approver.visitor.post(approve, data=form_in(queue.text, approve))).status_code == 303
    return asked


async def asked_by_anna_approved_by_boris(door: Door) -> tuple:
    """Two finance officers reading Belarusian and a caseworker: 300.00 EUR of a 1000.00 EUR grant asked for by anna
    (finance may ask too) and approved by boris on the console. Anna, boris, olga, the case and the request."""
    anna = await person(door, "finance", "be")
    boris = await person(door, "finance", "be")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api, amount="1000.00")
    case = await case_of(door, olga.api)
    return anna, boris, olga, case, await approved_in_queue(door, boris, anna.api, grant, case)


async def test_a_payment_in_zloty_worth_less_is_said_in_words_and_paid_once_the_release_is_ticked(door: Door):
    anna = await person(door, "finance")
    boris = await person(door, "finance", "be")
    olga = await person(door, "caseworker")
    grant = await grant_of(door, anna.api, amount="1000.00")
    asked = await approved_in_queue(door, boris, olga.api, grant, await case_of(door, olga.api))
    pay = f"{QUEUE}/{asked['id']}/pay"

    queue = await boris.visitor.get(QUEUE)
    form = html.unescape(card(queue.text, asked["id"]))
    assert words("fx_paid_elsewhere", "be") in form and 'name="paid_currency"' in form
    assert '<option value="EUR">' not in form and '<option value="PLN">PLN</option>' in form
    typed = {"method": "bank_transfer", "reference": "PL-RENT-1", "paid_currency": "PLN", "paid_amount": "1 279,25",
             "fx_rate": "4,3000", "fx_source": NBP}

    bad_rate = await boris.visitor.post(pay, data={**form_in(queue.text, pay), **typed, "fx_rate": "чатыры"})
    assert bad_rate.status_code == 422
    bad_card = html.unescape(card(bad_rate.text, asked["id"]))
    rate_error = words("fx_error_rate", "be", example="4,3000")
    assert f'<p class="field-error" id="fx-{asked["id"]}-fx_rate-error">{rate_error}' in bad_card
    assert re.search(r'name="fx_rate"[^>]*aria-invalid="true"', bad_card) and 'value="1 279,25"' in bad_card

    difference = await boris.visitor.post(pay, data={**form_in(bad_rate.text, pay), **typed})
    assert difference.status_code == 409
    said = html.unescape(card(difference.text, asked["id"]))
    choice = words("fx_choice_release", "be", difference=money("2.50", "EUR"))
    assert words("fx_difference_less", "be", paid=money("1279.25", "PLN"), converted=money("297.50", "EUR"),
                 difference=money("2.50", "EUR"), approved=money("300.00", "EUR"), choice=choice) in said
    assert 'name="difference" value="release"' in said and "<details class=\"fx\" open>" in said
    for english in ("Paid in another currency", "Exchange rate", "less than", "release"):
        assert english not in re.sub(r"<[^>]+>", " ", said), english
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"   # nothing paid meanwhile

    released = await boris.visitor.post(pay, data={**form_in(difference.text, pay), **typed, "difference": "release"})
    assert released.status_code == 303 and released.headers["location"] == f"{QUEUE}?done=paid"
    payment = (await state_of(door, anna.api, asked["id"]))["payment"]
    assert (payment["paid_amount"], payment["paid_currency"], payment["fx_rate"], payment["converted_amount"],
            payment["difference"], payment["difference_decision"]) == (
        "1279.25", "PLN", "4.3000", "297.50", "-2.50", "release")
    balances = (await door.client.get(f"/api/funds/grants/{grant['id']}", headers=anna.api)).json()
    assert (balances["paid"], balances["committed"], balances["available"]) == ("297.50", "0.00", "702.50")

    paid_card = html.unescape(card((await boris.visitor.get(QUEUE, params={"status": "paid"})).text, asked["id"]))
    assert words("fx_paid_words", "be", paid=money("1279.25", "PLN"), rate="4,3000", source=NBP,
                 converted=money("297.50", "EUR")) in paid_card
    assert words("fx_released_words", "be", difference=money("2.50", "EUR")) in paid_card
    grant_page = page_text(await boris.visitor.get(f"{GRANTS}/{grant['id']}"))
    assert money("1279.25", "PLN") in grant_page and money("300.00", "EUR") in grant_page
    donor = page_text(await boris.visitor.get(f"{GRANTS}/{grant['id']}/donor-report"))
    # One person paid since the grant began: the statement withholds every total, the currencies with them
    assert words("fin_donor_totals_withheld", "be", n=5, month="—") in donor
    assert words("fx_paid_by_currency", "be") not in donor and money("1279.25", "PLN") not in donor
    # One person's aid: with the budget, the totals or the difference would give it to the cent (fewer than five)
    assert words("fin_amounts_hidden", "be", n=5) in donor and money("1000.00", "EUR") in donor  # the budget
    assert words("fx_differences", "be", released=money("2.50", "EUR"), approved=money("0.00", "EUR")) not in donor
    assert money("297.50", "EUR") not in donor and money("2.50", "EUR") not in donor


async def test_the_requester_is_not_offered_to_approve_an_extra_and_another_officer_pays_it(door: Door):
    anna, boris, _, _, asked = await asked_by_anna_approved_by_boris(door)  # anna asked
    pay = f"{QUEUE}/{asked['id']}/pay"
    typed = {"method": "cash", "reference": "GE-1", "paid_currency": "GEL", "paid_amount": "880,00", "fx_rate": "2,9",
             "fx_source": "NBG 2026-12-02"}                                                 # 303.45 EUR: 3.45 more

    queue = await anna.visitor.get(QUEUE)
    own = await anna.visitor.post(pay, data={**form_in(queue.text, pay), **typed})
    own_card = html.unescape(card(own.text, asked["id"]))
    assert own.status_code == 409 and words("fx_own_request", "be") in own_card and 'name="difference"' not in own_card
    forced = await anna.visitor.post(pay, data={**form_in(own.text, pay), **typed, "difference": "approve"})
    assert forced.status_code == 403 and words("fx_refused_four_eyes", "be") in html.unescape(forced.text)

    queue = await boris.visitor.get(QUEUE)
    theirs = await boris.visitor.post(pay, data={**form_in(queue.text, pay), **typed})
    assert 'name="difference" value="approve"' in theirs.text
    paid = await boris.visitor.post(pay, data={**form_in(theirs.text, pay), **typed, "difference": "approve"})
    assert paid.status_code == 303
    payment = (await state_of(door, anna.api, asked["id"]))["payment"]
    assert (payment["converted_amount"], payment["difference"], payment["difference_decision"]) == (
        "303.45", "3.45", "approve")


@pytest.mark.parametrize(("paid_amount", "difference", "said"), [
    ("1160,00", "approve", "fx_refused_extra_too_large"),     # 400.00 EUR: 100.00 more
    ("580,00", "release", "fx_refused_release_too_large"),    # 200.00 EUR: 100.00 less, back to the grant
])
async def test_a_difference_beyond_a_tenth_of_the_approval_is_refused_in_words_and_nothing_is_paid(
        door: Door, paid_amount: str, difference: str, said: str):
    anna, boris, _, _, asked = await asked_by_anna_approved_by_boris(door)
    pay = f"{QUEUE}/{asked['id']}/pay"
    typed = {"method": "cash", "reference": "GE-2", "paid_currency": "GEL", "paid_amount": paid_amount,
             "fx_rate": "2,9", "fx_source": "NBG 2026-12-02", "difference": difference}

    queue = await boris.visitor.get(QUEUE)
    refused = await boris.visitor.post(pay, data={**form_in(queue.text, pay), **typed})

    assert refused.status_code == 409
    assert words(said, "be").format(
        most=money("30.00", "EUR"), approved=money("300.00", "EUR"), difference=money("100.00", "EUR")
    ) in html.unescape(card(refused.text, asked["id"]))
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"


async def test_aid_of_an_erased_case_is_refused_in_another_currency_in_words_and_paid_in_the_grants(door: Door):
    anna, boris, olga, case, asked = await asked_by_anna_approved_by_boris(door)
    assert (await door.client.delete(f"/api/intake/cases/{case['id']}", headers=olga.api)).status_code == 200
    deadline = asyncio.get_running_loop().time() + 20
    while not (await state_of(door, anna.api, asked["id"]))["shredded"]:  # funds hears of the erasure
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    pay = f"{QUEUE}/{asked['id']}/pay"
    typed = {"method": "cash", "reference": "GE-3", "paid_currency": "GEL", "paid_amount": "870,00", "fx_rate": "2,9",
             "fx_source": "NBG 2026-12-02"}

    refused = await boris.visitor.post(pay, data={**form_in((await boris.visitor.get(QUEUE)).text, pay), **typed})
    assert refused.status_code == 409
    assert words("fx_refused_case_erased", "be").format(currency="EUR") in html.unescape(
        card(refused.text, asked["id"]))
    in_euro = {"method": "cash", "reference": "EUR-3"}
    paid = await boris.visitor.post(pay, data={**form_in((await boris.visitor.get(QUEUE)).text, pay), **in_euro})
    assert paid.status_code == 303
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "paid"


async def test_a_rate_far_from_what_is_expected_is_refused_beside_the_rate_in_words(door: Door):
    anna, boris, _, _, asked = await asked_by_anna_approved_by_boris(door)
    pay = f"{QUEUE}/{asked['id']}/pay"
    typed = {"method": "cash", "reference": "GE-4", "paid_currency": "GEL", "paid_amount": "90 000,00",
             "fx_rate": "300", "fx_source": "NBG 2026-12-02"}                   # 300.00 EUR "exactly", at 100× the rate

    refused = await boris.visitor.post(pay, data={**form_in((await boris.visitor.get(QUEUE)).text, pay), **typed})
    shown = html.unescape(card(refused.text, asked["id"]))

    assert refused.status_code == 409
    said = words("fx_refused_rate_unusual", "be").split("{lowest}")[0]
    assert said in shown and re.search(r'name="fx_rate"[^>]*aria-invalid="true"', shown)
    assert 'value="300"' in shown  # what was typed, kept to be corrected
    assert (await state_of(door, anna.api, asked["id"]))["status"] == "approved"


def test_the_pay_form_becomes_funds_body_as_people_type_rates_and_amounts():
    plain = {"method": "cash", "reference": "R-1", "paid_currency": "", "paid_amount": "", "fx_rate": "",
             "fx_source": "", "difference": ""}
    assert payment_body(plain) == {"method": "cash", "reference": "R-1"}
    assert payment_body({**plain, "paid_currency": "JPY", "paid_amount": "48 387", "fx_rate": "0,0062",
                         "fx_source": "ECB", "difference": "approve"}) == {
        "method": "cash", "reference": "R-1", "difference": "approve",
        "paid": {"currency": "JPY", "amount": "48387", "fx_rate": "0.0062", "fx_source": "ECB"}}
    # an amount without a currency still goes, for funds to refuse: never paid in the grant's currency unnoticed
    assert payment_body({**plain, "paid_amount": "100"})["paid"]["currency"] == ""
    assert typed_rate(" 4,3000 ") == "4.3000" and typed_rate("4.3") == "4.3" and typed_rate("4,3,0") == "4,3,0"


def test_every_fx_word_is_written_in_belarusian_russian_and_english():
    ours = {key for key in i18n.MESSAGES["en"] if key.startswith(("fx_", "audit.disbursement.pay.fx"))}
    assert len(ours) >= 30  # present in every language: test_console_catalogues.py
    same = [key for key in ours if (
        i18n.MESSAGES["be"][key] == i18n.MESSAGES["en"][key] or i18n.MESSAGES["ru"][key] == i18n.MESSAGES["en"][key])]
    assert same == []
