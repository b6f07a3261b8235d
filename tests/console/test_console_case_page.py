"""The case page tells the whole story (issue #17 item 7), in-process against the gateway and every service as a
process: every field recorded at intake, the safety notes first in a box of their own; editing with the case's ETag
(a second form opened on the same version gets a conflict page with both values and overwrites nothing, and a
second save is a deliberate choice); field errors in the visitor's language next to their fields; consent with its
history; referrals with the partner's outcome and cost; aid requested from the case, once for a double click, and
what was paid. Every data value and every step of the timeline in be, ru and en."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from datetime import date, timedelta
from html import unescape
from html.parser import HTMLParser

import httpx
import pytest
from markupsafe import escape

from gateway.console import i18n
from gateway.console.router import CATEGORIES, URGENCIES
from tests.console.test_console_caseload import Caseworker, open_case, person, service_away
from tests.console.test_console_pages import eventually_ok
from tests.console.world import add_grant, add_partner, csrf_of, hung_on_changes, send_again_form
from tests.integration.gateway.door import Backends, Door

pytestmark = pytest.mark.integration

PERSON = {
    "full_name": "Ганна Сянькевіч", "other_names": ["Hanna Siankevich", "Анна Сенкевич"],
    "date_of_birth": "1987-03-14", "country": "LT", "city": "Vilnius", "languages": ["be", "ru"],
    "contact": {"phone": "+375 29 111 22 33", "telegram": "@hanna_s", "signal": "+48 500 600 700",
                "email": "hanna@example.org"},
    "release_date": "2025-06-30", "facility": "IK-4 Gomel", "articles": ["342", "361-1"],
    "safety_notes": "Never call before 10:00: her husband's phone is tapped. Signal only.",
}


def words(language: str) -> dict[str, str]:
    """The console's words in `language` as a page writes them (HTML-escaped)."""
    return {key: str(escape(text)) for key, text in i18n.MESSAGES[language].items()}


EN = words("en")



class FormReader(HTMLParser):
    """The fields of one form of a page, as a browser would send them untouched."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.values = form_id, False, {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.inside = attr.get("id") == self.form_id
        elif not self.inside:
            return
        elif tag == "option" and self._select is not None:
            if "selected" in attr or self._select not in self.values:  # the selected one, else the first
                self.values[self._select] = attr.get("value", "")
        elif tag == "input" and "name" in attr and attr.get("type") not in ("checkbox", "radio", "submit"):
            self.values[attr["name"]] = attr.get("value", "")
        elif tag == "textarea":
            self._textarea = attr["name"]
            self.values[attr["name"]] = ""
        elif tag == "select":
            self._select = attr["name"]

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_of(page: str, form_id: str) -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(page)
    assert reader.values, f"the page has no form #{form_id}"
    return reader.values


def section(page: str, element_id: str) -> str:
    """The HTML of the element with this id, up to its section's end."""
    start = page.index(f'id="{element_id}"')
    return page[start:page.index("</section>", start)]


async def case_now(door: Door, owner: Caseworker, case_id: str) -> dict:
    answer = await door.client.get(f"/api/intake/cases/{case_id}", headers=owner.api)
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- every field, safety first ------------------------------------------------------------------------------------

async def test_every_field_recorded_at_intake_is_on_the_case_page_with_the_safety_notes_first(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)

    page = (await ala.visitor.get(f"/console/cases/{case['id']}")).text

    shown = [PERSON["full_name"], *PERSON["other_names"], "14 Mar 1987", "Lithuania", "Vilnius", "Belarusian, Russian",
             *PERSON["contact"].values(), "30 Jun 2025", PERSON["facility"], "342, 361-1", PERSON["safety_notes"]]
    person_part = page[page.index('id="safety"'):page.index('id="needs-h"')]
    assert [value for value in shown if str(escape(value)) not in person_part] == []
    for key in ("field_other_names", "field_date_of_birth", "field_languages", "field_phone", "field_telegram",
                "field_signal", "field_email", "field_city", "field_release_date", "field_facility", "field_articles"):
        assert f"<dt>{EN[key]}</dt>" in person_part, key
    # The safety notes come first, in a box of their own, before anything else about the person.
    after_heading = page[page.index("</h1>"):]
    assert after_heading.index('<section class="safety" id="safety"') < after_heading.index('id="person"')
    assert EN["safety_title"] in section(page, "safety")
    # A contact is text, never a link: a tel: or mailto: address would carry it.
    assert "tel:" not in page and "mailto:" not in page
    assert f'href="/console/cases/{case["id"]}/edit"' in page


async def test_the_case_page_speaks_belarusian_and_russian_down_to_its_data_values(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)
    path = f"/console/cases/{case['id']}"
    page = (await ala.visitor.get(path)).text
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
    for data in ({"category": "housing", "urgency": "critical"}, {"category": "legal", "urgency": "low"}):
        assert (await ala.visitor.post(f"{path}/needs", data={"csrf": csrf, **data})).status_code == 303
    need = (await door.client.get(f"{path.replace('/console', '/api/intake')}/needs", headers=ala.api)).json()
    moved = await ala.visitor.post(f"{path}/needs/{need['items'][0]['id']}/status",
                                   data={"csrf": csrf, "status": "in_progress"})
    assert moved.status_code == 303
    for language in ("be", "ru"):
        await ala.visitor.get(f"/console/language/{language}", params={"next": "/"})
        said = words(language)
        page = (await ala.visitor.get(path)).text
        for key in ("case_status_open", "category_housing", "urgency_critical", "need_in_progress",
                    "field_release_date", "field_articles", "safety_title", "timeline.case.opened",
                    "timeline.needs.assessed", "timeline.needs.status_changed", "source_intake", "aid"):
            assert said[key] in page, (language, key)
        timeline = section(page, "timeline-h")
        assert not re.search(r"\b(case|needs|note|task|document)\.[a-z_]+", timeline), timeline  # no raw kind
        assert "(intake)" not in timeline and ">housing<" not in page


def test_every_step_of_the_timeline_and_every_data_value_has_words_in_each_language():
    kinds = ["case.opened", "case.updated", "case.closed", "case.reopened", "case.duplicate", "case.duplicate_kept",
             "needs.assessed", "needs.status_changed", "consent.changed", "document.added", "note.added",
             "task.added", "task.done", *[f"referral.{s}" for s in ("sent", "accepted", "declined", "started",
                                                                    "completed", "cancelled")],
             *[f"disbursement.{s}" for s in ("requested", "approved", "rejected", "paid", "voided")]]
    values = ([f"timeline.{kind}" for kind in kinds] + ["timeline_assigned", "timeline_break_glass"]
              + [f"category_{c}" for c in CATEGORIES] + [f"urgency_{u}" for u in URGENCIES]
              + [f"case_status_{s}" for s in ("open", "closed", "duplicate", "erased")]
              + [f"referral_{s}" for s in ("sent", "accepted", "declined", "in_progress", "completed", "cancelled")]
              + [f"aid_{s}" for s in ("requested", "approved", "rejected", "paid", "voided")]
              + [f"source_{s}" for s in ("intake", "referrals", "funds")]
              + [f"field_{f}" for f in ("full_name", "other_names", "date_of_birth", "country", "city", "languages",
                                        "phone", "telegram", "signal", "email", "release_date", "facility",
                                        "articles", "safety_notes", "contact")])
    for language in i18n.STAFF_LANGUAGES:
        missing = [key for key in values if not i18n.MESSAGES[language].get(key, "").strip()]
        assert missing == [], (language, missing)
    assert i18n.format_size(1_572_864, "be") == "1,5 МБ" and i18n.format_size(2000, "en") == "2 KB"


# --- editing ------------------------------------------------------------------------------------------------------

async def test_an_edit_is_prefilled_posted_with_the_etag_and_changes_only_what_was_changed(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)
    path = f"/console/cases/{case['id']}"

    form_page = await ala.visitor.get(f"{path}/edit")
    form = form_of(form_page.text, "edit-case")
    stored = await door.client.get(f"/api/intake/cases/{case['id']}", headers=ala.api)
    saved = await ala.visitor.post(f"{path}/edit", data={**form, "city": "Kaunas", "phone": "+370 600 11122",
                                                         "articles": "342, 361-1, 130-1"})
    after = await case_now(door, ala, case["id"])
    page = (await ala.visitor.get(path)).text

    assert form_page.status_code == 200 and re.findall(r'<form method="(\w+)"', form_page.text) == ["post"] * 2
    assert form["full_name"] == PERSON["full_name"] and form["other_names"] == "\n".join(PERSON["other_names"])
    assert form["date_of_birth"] == "1987-03-14" and form["email"] == "hanna@example.org"
    assert form["safety_notes"] == PERSON["safety_notes"] and form["articles"] == "342, 361-1"
    assert unescape(form["etag"]) == stored.headers["etag"] and form["original"]
    assert PERSON["full_name"] not in form["original"]  # sealed: the values the form stood on are not in clear
    assert saved.status_code == 303 and saved.headers["location"] == path  # nothing typed in it
    assert after["city"] == "Kaunas" and after["articles"] == ["342", "361-1", "130-1"]
    assert after["contact"] == {**PERSON["contact"], "phone": "+370 600 11122"}
    assert {key: after[key] for key in ("full_name", "other_names", "safety_notes", "facility", "release_date")} == {
        key: PERSON[key] for key in ("full_name", "other_names", "safety_notes", "facility", "release_date")}
    updated = [line for line in section(page, "timeline-h").split("<li") if EN["timeline.case.updated"] in line]
    assert len(updated) == 1 and EN["field_city"] in updated[0] and EN["field_articles"] in updated[0]
    assert EN["field_contact"] in updated[0] and "Kaunas" not in updated[0]  # the fields, never their values

    unchanged = await ala.visitor.post(f"{path}/edit", data=form_of((await ala.visitor.get(f"{path}/edit")).text,
                                                                    "edit-case"))
    assert unchanged.status_code == 303 and (await case_now(door, ala, case["id"]))["city"] == "Kaunas"


async def test_a_second_form_opened_on_the_same_version_gets_the_conflict_page_and_overwrites_nothing(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)
    path = f"/console/cases/{case['id']}"
    first = form_of((await ala.visitor.get(f"{path}/edit")).text, "edit-case")
    second = form_of((await ala.visitor.get(f"{path}/edit")).text, "edit-case")  # another tab, the same version

    kept = await ala.visitor.post(f"{path}/edit", data={**first, "city": "Kaunas", "phone": "+370 600 11122"})
    refused = await ala.visitor.post(f"{path}/edit", data={**second, "city": "Riga", "facility": "IK-15 Navapolatsk"})
    stored = await case_now(door, ala, case["id"])

    assert kept.status_code == 303
    assert refused.status_code == 409 and EN["conflict_title"] in refused.text
    assert stored["city"] == "Kaunas" and stored["facility"] == PERSON["facility"]  # nothing overwritten
    city = refused.text.split('id="conflict-city"', 1)[1].split("</tr>", 1)[0]
    assert "Kaunas" in city and "Riga" in city and EN["field_city"] in city  # stored now beside typed
    phone = refused.text.split('id="conflict-phone"', 1)[1].split("</tr>", 1)[0]
    assert "+370 600 11122" in phone and EN["conflict_untouched"] in phone  # theirs alone: the form takes it
    assert 'id="conflict-facility"' not in refused.text  # only this visitor changed it: no conflict there
    again = form_of(refused.text, "edit-case")
    assert again["city"] == "Riga" and again["facility"] == "IK-15 Navapolatsk"  # what was typed, kept
    assert again["phone"] == "+370 600 11122"  # not the old phone, which a second save would have written back
    assert again["etag"] != second["etag"]  # the version stored now: a second save is a choice made seeing both

    deliberate = await ala.visitor.post(f"{path}/edit", data=again)
    stored = await case_now(door, ala, case["id"])
    assert deliberate.status_code == 303
    assert stored["city"] == "Riga" and stored["facility"] == "IK-15 Navapolatsk"
    assert stored["contact"]["phone"] == "+370 600 11122"  # the other change survives
    stale = await ala.visitor.post(f"{path}/edit", data={**second, "city": "Minsk"})  # the first stale form again
    assert stale.status_code == 409 and (await case_now(door, ala, case["id"]))["city"] == "Riga"


async def test_field_errors_are_said_next_to_their_fields_in_the_visitor_s_language(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)
    path = f"/console/cases/{case['id']}"
    await ala.visitor.get("/console/language/be", params={"next": "/"})
    form = form_of((await ala.visitor.get(f"{path}/edit")).text, "edit-case")

    refused = await ala.visitor.post(f"{path}/edit", data={**form, "phone": "call me maybe", "email": "nope",
                                                           "date_of_birth": "2099-01-01", "city": "Hrodna"})
    be = words("be")

    assert refused.status_code == 422 and be["fields_wrong"] in refused.text
    for field, key in (("phone", "error_phone"), ("email", "error_email"), ("date_of_birth", "error_birth_date")):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="{field}-error"', refused.text)
        assert f'<p class="field-error" id="{field}-error">{be[key]}</p>' in refused.text, field
    assert "contact.phone" not in refused.text and "Value error" not in refused.text  # no code paths, no English
    assert form_of(refused.text, "edit-case")["city"] == "Hrodna"  # what was typed stays
    assert (await case_now(door, ala, case["id"]))["city"] == "Vilnius"  # nothing saved
    # a release before the birth is told as that, not as what any other refused date is told ("after 1900")
    early = await ala.visitor.post(f"{path}/edit", data={**form, "date_of_birth": "1987-03-14",
                                                         "release_date": "1980-01-01"})
    assert early.status_code == 422
    assert f'<p class="field-error" id="release_date-error">{be["error_release_before_birth"]}</p>' in early.text


# --- consent and referrals ----------------------------------------------------------------------------------------

async def test_a_refused_consent_comes_back_as_ticked_not_as_the_consent_in_force(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Наста Жук")
    path = f"/console/cases/{case['id']}"
    page = await ala.visitor.get(path)
    given = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf_of(page.text), "categories": "legal",
                                                            "method": "verbal"})
    assert given.status_code == 303
    page = await ala.visitor.get(path)

    refused = await ala.visitor.post(f"{path}/consent", data={
        "csrf": csrf_of(page.text), "categories": ["medical", "housing"], "share_contact": "on", "method": "written",
        "expires_on": "2001-01-01"})  # in the past: refused

    assert refused.status_code == 422
    form = section(refused.text, "consent")
    ticked = set(re.findall(r'<input type="checkbox" name="categories" value="(\w+)" checked>', form))
    assert ticked == {"medical", "housing"}  # as ticked, not "legal" as in force
    assert re.search(r'name="share_contact" checked', form) and not re.search(r'name="share_health" checked', form)
    assert '<option value="written" selected>' in form and 'value="2001-01-01"' in form


async def test_consent_is_shown_with_every_version_newest_first_who_when_how_and_until(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Вольга Карповіч")
    path = f"/console/cases/{case['id']}"
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', (await ala.visitor.get(path)).text).group(1)
    first = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "categories": ["medical", "legal"],
                                                            "share_health": "on", "method": "written"})
    second = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "categories": ["housing"],
                                                             "share_contact": "on", "method": "verbal",
                                                             "expires_on": "2031-01-31"})
    assert first.status_code == second.status_code == 303
    await ala.visitor.get("/console/language/ru", params={"next": "/"})
    ru = words("ru")

    history = section((await ala.visitor.get(path)).text, "consent-history").split("<li")[1:]

    assert len(history) == 2
    newest, oldest = history
    assert ru["category_housing"] in newest and ru["verbal"] in newest and "31.01.2031" in newest
    assert ru["consent_in_force"] in newest and ala.username in newest  # who, by name
    assert ru["category_medical"] in oldest and ru["category_legal"] in oldest and ru["written"] in oldest
    assert ru["consent_in_force"] not in oldest and ala.username in oldest and ru["always"] in oldest

    # The form sent with no category ticked (a stray click) is refused beside the categories, not taken as a
    # withdrawal (an outside review's find): the consent in force stays, and the page offers the withdrawal apart.
    stray = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "share_contact": "on", "method": "written"})
    assert stray.status_code == 422 and ru["consent_tick_or_withdraw"] in section(stray.text, "consent-categories")
    assert ru["category_housing"] in section((await ala.visitor.get(path)).text, "consent-now").split("</p>")[0]
    assert ru["consent_withdraw_said"] in section(stray.text, "withdraw-consent")
    # A withdrawal, from its own button, shares nothing: it is said as withdrawn, and how.
    withdrawn = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "withdraw": "yes", "share_contact": "on",
                                                                "method": "written", "expires_on": "2031-01-31"})
    assert withdrawn.status_code == 303
    now = section((await ala.visitor.get(path)).text, "consent-now").split("</p>")[0]
    assert ru["consent_withdrawn"] in now and ru["written"] in now
    assert ru["share_contact"] not in now and "31.01.2031" not in now



async def test_a_closed_case_offers_the_withdrawal_of_its_consent_and_no_new_consent(door: Door):
    """A person takes back what they agreed to whenever they ask: the closed case has no form for a new consent, but
    the withdrawal is there, said as the only change left, and taken."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Тамара Зачыненая")
    path = f"/console/cases/{case['id']}"
    csrf = re.search(r'name="csrf" value="([0-9a-f]{64})"', (await ala.visitor.get(path)).text).group(1)
    assert (await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "categories": ["medical"],
                                                             "method": "written"})).status_code == 303
    assert (await ala.visitor.post(f"{path}/close", data={"csrf": csrf})).status_code == 303
    en = words("en")

    page = (await ala.visitor.get(path)).text
    consent = section(page, "consent")
    assert 'name="categories"' not in consent and en["record_consent"] not in consent
    assert en["consent_withdraw_only"] in consent and en["consent_withdraw_said"] in section(page, "withdraw-consent")
    withdrawn = await ala.visitor.post(f"{path}/consent", data={"csrf": csrf, "withdraw": "yes", "method": "verbal"})
    assert withdrawn.status_code == 303, withdrawn.text
    page = (await ala.visitor.get(path)).text
    assert en["consent_withdrawn"] in section(page, "consent-now").split("</p>")[0]
    assert 'id="withdraw-consent"' not in page  # nothing left to withdraw

async def referral_sent(door: Door, owner: Caseworker, case_id: str, partner: dict) -> dict:
    """A referral, retried while referrals has not yet learned the case and its consent from intake's events."""
    deadline = time.monotonic() + 20
    while True:
        made = await door.client.post("/api/referrals/referrals", headers=owner.api, json={
            "case_id": case_id, "partner_id": partner["id"], "need_category": "medical",
            "packet": {"display_name": "H. S."}})
        if made.status_code == 201 or time.monotonic() > deadline:
            assert made.status_code == 201, made.text
            return made.json()
        await asyncio.sleep(0.1)


async def test_referrals_show_the_partner_s_outcome_and_cost_or_why_they_declined(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Зміцер Бандарэнка", country="LT")
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    clinic, other = await add_partner(door), await add_partner(door)
    done, declined = await referral_sent(door, ala, case["id"], clinic), await referral_sent(door, ala, case["id"],
                                                                                           other)
    partner, other_partner = await door.partner(clinic["id"]), await door.partner(other["id"])
    for step in ("accept", "start"):
        moved = await door.client.post(f"/api/partner/referrals/{done['id']}/{step}", headers=partner)
        assert moved.status_code == 200, moved.text
    completed = await door.client.post(f"/api/partner/referrals/{done['id']}/complete", headers=partner, json={
        "outcome": "Seen by the pulmonologist; inhaler prescribed", "cost_estimate": {"amount": "1480.00",
                                                                                     "currency": "EUR"}})
    refused = await door.client.post(f"/api/partner/referrals/{declined['id']}/decline", headers=other_partner,
                                     json={"reason": "No free places until March"})
    assert completed.status_code == refused.status_code == 200, completed.text

    page = (await ala.visitor.get(f"/console/cases/{case['id']}")).text
    finished = page.split(f'id="referral-{done["id"]}"', 1)[1].split("</li>", 1)[0]
    turned_down = page.split(f'id="referral-{declined["id"]}"', 1)[1].split("</li>", 1)[0]

    assert clinic["name"] in finished and EN["referral_completed"] in finished and EN["category_medical"] in finished
    assert "Seen by the pulmonologist; inhaler prescribed" in finished and "€1,480.00" in finished
    assert other["name"] in turned_down and EN["referral_declined"] in turned_down
    assert EN["declined_because"] in turned_down and "No free places until March" in turned_down


# --- aid ----------------------------------------------------------------------------------------------------------

async def aid_form(visitor: httpx.AsyncClient, path: str) -> dict[str, str]:
    return form_of((await visitor.get(path)).text, "aid-request")


async def test_aid_is_requested_from_the_case_page_once_for_a_double_click_and_shown_as_it_is_paid(door: Door):
    ala = await person(door, "caseworker")
    finance = await door.staff("finance")
    grant = await add_grant(door, finance, amount="5000.00")
    case = await open_case(door, ala, full_name="Насця Лойка")
    path = f"/console/cases/{case['id']}"
    typed = {"grant_id": grant["id"], "category": "medical", "amount": "1 234,5", "purpose": "Dentist in Vilnius",
             "payee_name": "Vilnius Dental", "payee_account": "LT12 1000 0111 0100 1000"}

    deadline = time.monotonic() + 20
    while True:  # funds learns the case, then who holds it, from intake's events a moment after it is opened
        form = {**await aid_form(ala.visitor, path), **typed}
        sent = await ala.visitor.post(f"{path}/aid", data=form)
        if sent.status_code == 303 or time.monotonic() > deadline:
            break
        assert (sent.status_code == 409 and EN["problem_case_unknown"] in sent.text) or sent.status_code == 403, \
            sent.text
        await asyncio.sleep(0.1)
    again = await ala.visitor.post(f"{path}/aid", data=form)  # the same form: a double click, a resent page
    listed = await door.client.get("/api/funds/disbursements", headers=ala.api, params={"case_id": case["id"]})

    assert sent.status_code == again.status_code == 303 and sent.headers["location"] == f"{path}#aid"
    (asked,) = listed.json()["items"]  # one request, not two
    assert (asked["amount"], asked["currency"], asked["status"]) == ("1234.50", "EUR", "requested")
    page = (await ala.visitor.get(path)).text
    row = page.split(f'id="aid-{asked["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "€1,234.50" in row and "Dentist in Vilnius" in row and EN["aid_requested"] in row
    assert ala.username in row and EN["category_medical"] in row
    assert EN["aid_waiting_total"] in section(page, "aid-h")

    for step in ("approve", "pay"):
        body = {"method": "bank_transfer", "reference": "TX-7"} if step == "pay" else None
        approver = await door.staff("finance")
        moved = await door.client.post(f"/api/funds/disbursements/{asked['id']}/{step}", json=body,
                                       headers={**approver, "Idempotency-Key": f"{step}-{asked['id']}"})
        assert moved.status_code == 200, moved.text
    page = (await ala.visitor.get(path)).text
    row = page.split(f'id="aid-{asked["id"]}"', 1)[1].split("</tr>", 1)[0]
    totals = page.split('id="aid-totals"', 1)[1].split("</p>", 1)[0]
    assert EN["aid_paid"] in row and f"{EN['aid_paid_total']}: <strong>€1,234.50</strong>" in totals
    assert EN["aid_waiting_total"] not in totals


async def test_a_refused_aid_request_says_why_next_to_the_field_and_keeps_what_was_typed(door: Door):
    ala = await person(door, "caseworker")
    finance = await door.staff("finance")
    grant = await add_grant(door, finance)
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    await ala.visitor.get("/console/language/ru", params={"next": "/"})
    form = await aid_form(ala.visitor, path)

    refused = await ala.visitor.post(f"{path}/aid", data={**form, "grant_id": grant["id"], "category": "financial",
                                                          "amount": "a lot", "purpose": "Rent for March"})
    ru = words("ru")

    assert refused.status_code == 422 and ru["fields_wrong"] in refused.text
    assert f'<p class="field-error" id="amount-error">{ru["error_amount"]}</p>' in refused.text
    assert f'<a href="#amount-error">{ru["problem_go_to_field"]}</a>' in refused.text  # the page is long
    assert f'<small id="times-utc">{ru["partner_times_utc"]}</small>' in refused.text  # the zone of every time shown
    again = form_of(refused.text, "aid-request")
    assert again["amount"] == "a lot" and again["purpose"] == "Rent for March" and again["category"] == "financial"
    assert again["idempotency_key"] != form["idempotency_key"]  # the next try is a request of its own


async def test_with_funds_not_answering_the_aid_form_keeps_what_was_typed_under_the_same_key(
        door: Door, backends: Backends, gateway_settings):
    """A request whose outcome is unknown (funds did not answer) comes back as typed, with the grant chosen, under
    the key it was sent with: sent again, it is asked once (a new key asked twice after a timeout)."""
    ala = await person(door, "caseworker")
    grant = await add_grant(door, await door.staff("finance"))
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    form = {**await aid_form(ala.visitor, path), "grant_id": grant["id"], "category": "financial",
            "amount": "120", "purpose": "Rent for March"}
    async with service_away("funds", door, backends, gateway_settings, ala) as visitor:
        failed = await visitor.post(f"{path}/aid", data=form)
    assert failed.status_code == 503, failed.text
    assert 'id="aid-grants-unlisted"' in failed.text and EN["aid_no_grants"] not in failed.text
    # the aid already asked for is not said to be none: a list its service did not give is said so
    assert 'id="aid-unshown"' in failed.text and EN["no_aid"] not in failed.text
    again = form_of(failed.text, "aid-request")
    assert (again["grant_id"], again["amount"], again["purpose"]) == (grant["id"], "120", "Rent for March")
    assert again["idempotency_key"] == form["idempotency_key"]


async def test_with_referrals_away_the_case_page_says_its_referrals_cannot_be_shown_not_that_there_are_none(
        door: Door, backends: Backends, gateway_settings):
    """A caseworker who read "No referrals yet" while referrals was hung would send the referral again (an outside
    review's find)."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Жук")
    async with service_away("referrals", door, backends, gateway_settings, ala) as visitor:
        page = await visitor.get(f"/console/cases/{case['id']}")
    assert page.status_code == 200 and 'id="referrals-unshown"' in page.text and EN["no_referrals"] not in page.text
    assert 'id="aid-unshown"' not in page.text  # funds answered: its list, empty, is said as none


async def test_a_note_sent_while_intake_is_not_answering_is_given_back_to_copy(
        door: Door, backends: Backends, gateway_settings):
    """The case page can not be shown again without intake: the note's text comes back on the page that says so,
    to copy and send again (it was an empty list of cases, and the note was gone)."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    page = (await ala.visitor.get(path)).text
    note = "Spoke with her sister; the doctor's visit moves to Thursday."
    async with service_away("intake", door, backends, gateway_settings, ala) as visitor:
        failed = await visitor.post(f"{path}/notes", data={"csrf": csrf_of(page), "text": note})
    assert failed.status_code == 503, failed.text[:300]
    assert EN["typed_kept_unavailable"] in failed.text and f">{escape(note)}</textarea>" in failed.text
    assert (await door.client.get(f"/api/intake/cases/{case['id']}/notes", headers=ala.api)).json()["items"] == []


async def test_a_need_sent_while_intake_is_not_answering_gives_its_notes_back_to_copy(
        door: Door, backends: Backends, gateway_settings):
    """The need form's notes (health, often) were lost with the page, where every other form's text came back (an
    outside review's find)."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    page = (await ala.visitor.get(path)).text
    notes = "Needs a cardiologist; the pills ran out in prison."
    async with service_away("intake", door, backends, gateway_settings, ala) as visitor:
        failed = await visitor.post(f"{path}/needs", data={"csrf": csrf_of(page), "category": "medical",
                                                           "urgency": "high", "notes": notes})
    assert failed.status_code == 503, failed.text[:300]
    assert f">{escape(notes)}</textarea>" in failed.text


async def test_the_referral_form_with_intake_away_says_so_with_a_way_back(
        door: Door, backends: Backends, gateway_settings):
    """It was the problem line alone: no heading, no way back (an outside review's find)."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Жук")
    async with service_away("intake", door, backends, gateway_settings, ala) as visitor:
        page = await visitor.get(f"/console/cases/{case['id']}/refer")
    assert page.status_code == 503
    assert f"<h1>{EN['new_referral']}</h1>" in page.text
    assert f'<p><a href="/console/cases">{EN["back_to_my_cases"]}</a></p>' in page.text


async def test_a_note_intake_took_and_never_answered_is_said_as_maybe_saved_not_as_lost(
        door: Door, backends: Backends, gateway_settings):
    """An intake that stalls after taking a note (a paused process) saves it when it wakes: the page said "not
    saved, send it again", and a caseworker who did stored it twice (an outside review's find)."""

    async def stalls_on_notes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        if head.startswith("POST "):
            await asyncio.sleep(30)  # took it, and says nothing
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    page = (await ala.visitor.get(path)).text
    note = "Spoke with her sister; the doctor's visit moves to Thursday."
    key = re.search(r'name="idempotency_key" value="([^"]+)"', section(page, "notes")).group(1)
    stalled = await asyncio.start_server(stalls_on_notes, "127.0.0.1", 0)
    instead = f"http://127.0.0.1:{stalled.sockets[0].getsockname()[1]}"
    try:
        async with service_away("intake", door, backends, gateway_settings, ala, instead=instead,
                                backend_timeout_seconds=1.0) as visitor:
            failed = await visitor.post(f"{path}/notes", data={"csrf": csrf_of(page), "text": note,
                                                                "idempotency_key": key})
            # a form with nothing written at length (a need without notes) is offered again all the same
            need = await visitor.post(f"{path}/needs", data={"csrf": csrf_of(page), "category": "medical",
                                                              "urgency": "high", "idempotency_key": str(uuid.uuid4())})
            # a task's title, written by hand, is shown back too (an outside review found it lost)
            task = await visitor.post(f"{path}/tasks", data={"csrf": csrf_of(page), "title": "Call Dr. Hanna Zhuk",
                                                              "due_on": "2026-12-20", "assignee": ala.username,
                                                              "idempotency_key": str(uuid.uuid4())})
    finally:
        stalled.close()
    assert failed.status_code == 504, failed.text[:300]
    # Offered to send again, the words are those of sending again (done once), not "look for it before you do"
    assert EN["typed_resend_explained"] in failed.text
    assert EN["typed_kept_timeout"] not in failed.text and EN["typed_kept_unavailable"] not in failed.text
    assert f">{escape(note)}</textarea>" in failed.text
    assert need.status_code == 504 and 'id="send-again"' in need.text and 'value="medical"' in need.text
    # what the need chose, in words, and which step it was: the case page, where it was chosen, is not drawn
    assert f'readonly value="{EN["category_medical"]}"' in need.text and f'readonly value="{EN["urgency_high"]}"' \
        in need.text and f'<strong>{EN["add_need"]}</strong>' in need.text
    assert task.status_code == 504 and ">Call Dr. Hanna Zhuk</textarea>" in task.text, task.text[:300]
    assert 'readonly value="2026-12-20"' in task.text and f'<strong>{EN["add_task"]}</strong>' in task.text
    # "Send again" sends it as it was, under its key: once intake answers, twice pressed, one note
    again = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                            failed.text.split('id="send-again"', 1)[1].split("</form>", 1)[0]))
    assert again["idempotency_key"] == key and unescape(again["text"]) == note
    for _ in range(2):
        sent = await ala.visitor.post(f"{path}/notes", data={name: unescape(value) for name, value in again.items()})
        assert sent.status_code == 303, sent.text[:300]
    notes = (await door.client.get(f"/api/intake/cases/{case['id']}/notes", headers=ala.api)).json()["items"]
    assert [n["text"] for n in notes] == [note]


async def test_a_referral_referrals_took_and_never_answered_comes_back_with_its_partner_chosen_to_send_again(
        door: Door, backends: Backends, gateway_settings):
    """With referrals stalled (a paused process), a referral sent came back with its packet but its partner unticked
    (referrals lists the partners, and gave no list) and nothing offered to send it again as it was."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Зміцер Бандарэнка", country="LT")
    clinic = await add_partner(door)
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    path = f"/console/cases/{case['id']}"
    form = (await ala.visitor.post(f"{path}/refer/partners", data={
        "csrf": csrf_of((await ala.visitor.get(f"{path}/refer")).text), "category": "medical", "country": "LT"})).text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form).group(1)
    data = {"csrf": csrf_of(form), "idempotency_key": key, "category": "medical", "country": "LT", "language": "",
            "partner_id": clinic["id"], "display_name": "K.", "packet_language": "be", "note": "needs a lung doctor"}
    async with hung_on_changes() as hung, service_away("referrals", door, backends, gateway_settings, ala,
                                                       instead=hung, backend_timeout_seconds=1.0) as visitor:
        failed = await visitor.post(f"{path}/refer", data=data)

    assert failed.status_code == 504, failed.text[:300]
    assert re.search(rf'<input type="radio" name="partner_id" value="{clinic["id"]}"[^>]* checked', failed.text)
    assert EN["refer_partner_kept"] in failed.text and ">needs a lung doctor</textarea>" in failed.text
    assert re.search(r'name="idempotency_key" value="([^"]+)"', failed.text).group(1) == key  # the form's, kept
    action, again = send_again_form(failed.text)
    assert action == f"{path}/refer" and again == data | {"csrf": again["csrf"], "sent_before": "1"}
    assert EN["typed_resend_heading"] in failed.text and EN["typed_kept_heading"] not in failed.text
    # sent again as it was, twice, once referrals answers: one referral
    first = await eventually_ok(lambda: ala.visitor.post(action, data=again))
    second = await ala.visitor.post(action, data=again)
    assert first.status_code == second.status_code == 303, second.text[:300]
    referrals = await door.client.get("/api/referrals/referrals", headers=ala.api, params={"case_id": case["id"]})
    assert [r["partner_id"] for r in referrals.json()["items"]] == [clinic["id"]]


async def test_aid_of_a_category_the_grant_does_not_pay_for_is_refused_beside_the_category_at_once(door: Door):
    """Not accepted as "requested" for finance to refuse days later: said now, with what the grant does pay for."""
    ala = await person(door, "caseworker")
    grant = await grant_in(door, await door.staff("finance"), "EUR", "5000.00")  # medical only
    case = await open_case(door, ala, full_name="Алесь Жук")
    path = f"/console/cases/{case['id']}"
    deadline = time.monotonic() + 20  # until funds has heard of the case (else it answers `case-unknown` first)
    while (await door.client.get("/api/funds/disbursements", params={"case_id": case["id"]},
                                 headers=ala.api)).status_code == 409 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    form = await aid_form(ala.visitor, path)

    refused = await ala.visitor.post(f"{path}/aid", data={**form, "grant_id": grant["id"], "category": "relocation",
                                                          "amount": "€900", "purpose": "Tickets to Vilnius"})

    assert refused.status_code == 409
    said = words("en")["aid_grant_category"].format(code=grant["code"], categories=words("en")["category_medical"])
    assert f'<p class="field-error" id="category-error">{html.escape(said, quote=True)}</p>' in refused.text
    again = form_of(refused.text, "aid-request")
    assert again["category"] == "relocation" and again["amount"] == "€900" and again["purpose"] == "Tickets to Vilnius"
    listed = await door.client.get("/api/funds/disbursements", params={"case_id": case["id"]}, headers=ala.api)
    assert listed.json()["items"] == []  # nothing was requested


async def grant_in(door: Door, finance: dict[str, str], currency: str, amount: str) -> dict:
    today = date.today()
    made = await door.client.post("/api/funds/grants", headers=finance, json={
        "donor": "Solidarity Fund", "code": f"G-{uuid.uuid4().hex[:6]}", "currency": currency, "amount": amount,
        "starts_on": str(today - timedelta(days=1)), "ends_on": str(today + timedelta(days=300)),
        "categories": ["medical"]})
    assert made.status_code == 201, made.text
    return made.json()


async def test_aid_is_asked_in_the_grant_s_own_decimals_yen_without_and_dinars_with_three(door: Door):
    ala = await person(door, "caseworker")
    finance = await door.staff("finance")
    yen, dinars = await grant_in(door, finance, "JPY", "1500000"), await grant_in(door, finance, "KWD", "5000.000")
    case = await open_case(door, ala, full_name="Юрась Бяляцкі")
    path = f"/console/cases/{case['id']}"
    typed = {"category": "medical", "purpose": "Dentist in Vilnius"}

    deadline = time.monotonic() + 20
    while True:  # funds learns the case, then whose it is, from intake's events a moment after it is opened
        in_yen = await ala.visitor.post(f"{path}/aid", data={**await aid_form(ala.visitor, path), **typed,
                                                              "grant_id": yen["id"], "amount": "30 000"})
        if in_yen.status_code == 303 or time.monotonic() > deadline:
            break
        assert (in_yen.status_code == 409 and EN["problem_case_unknown"] in in_yen.text
                or in_yen.status_code == 403 and 'id="need-to-know"' in in_yen.text), in_yen.text
        await asyncio.sleep(0.1)
    in_dinars = await ala.visitor.post(f"{path}/aid", data={**await aid_form(ala.visitor, path), **typed,
                                                             "grant_id": dinars["id"], "amount": "12,5"})
    yen_with_decimals = await ala.visitor.post(f"{path}/aid", data={**await aid_form(ala.visitor, path), **typed,
                                                                     "grant_id": yen["id"], "amount": "300,5"})
    listed = await door.client.get("/api/funds/disbursements", headers=ala.api, params={"case_id": case["id"]})

    assert in_yen.status_code == in_dinars.status_code == 303, in_dinars.text
    asked = {(d["amount"], d["currency"]) for d in listed.json()["items"]}
    assert asked == {("30000", "JPY"), ("12.500", "KWD")}
    assert yen_with_decimals.status_code == 422
    whole = str(escape(i18n.MESSAGES["en"]["fin_error_amount_whole"].format(example="300")))
    assert f'<p class="field-error" id="amount-error">{whole}</p>' in yen_with_decimals.text


async def test_the_aid_form_offers_the_grants_open_today_without_their_donor_or_balances(door: Door):
    ala = await person(door, "caseworker")
    finance = await door.staff("finance")
    open_now = await add_grant(door, finance)
    for code, starts, ends in (("ENDED", "2020-01-01", "2020-12-31"), ("COMING", "2098-01-01", "2099-12-31")):
        made = await door.client.post("/api/funds/grants", headers=finance, json={
            "donor": "Old Fund", "code": f"{code}-{ala.username[-6:]}", "currency": "EUR", "amount": "100.00",
            "starts_on": starts, "ends_on": ends, "categories": ["medical"]})
        assert made.status_code == 201, made.text
    case = await open_case(door, ala, full_name="Марыя Каляда")

    offered = await door.client.get("/api/funds/grants/open", headers=ala.api, params={"limit": 200})
    page = (await ala.visitor.get(f"/console/cases/{case['id']}")).text

    listed = {grant["code"]: grant for grant in offered.json()["items"]}
    assert open_now["code"] in listed and not [code for code in listed if code.startswith(("ENDED", "COMING"))]
    assert set(listed[open_now["code"]]) == {"id", "code", "currency", "categories", "ends_on"}
    choice = page.split('id="aid-grant"', 1)[1].split("</select>", 1)[0]
    assert open_now["code"] in choice and "ENDED" not in choice and "COMING" not in choice
    assert "Solidarity Fund" not in page  # the donor is finance's business


async def test_the_referral_page_of_a_case_without_consent_says_to_record_it_and_links_there(door: Door):
    """No consent, nothing to share: the page says so and where to record it, instead of a heading alone."""
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, **PERSON)
    page = (await ala.visitor.get(f"/console/cases/{case['id']}/refer")).text
    assert 'id="consent-first"' in page and EN["refer_consent_first"] in page
    assert f'href="/console/cases/{case["id"]}#consent"' in page


async def test_the_consent_form_names_the_open_referrals_a_narrower_consent_would_take_from(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, full_name="Зміцер Бандарэнка", country="LT")
    path = f"/console/cases/{case['id']}"
    assert 'id="consent-referrals"' not in (await ala.visitor.get(path)).text  # nothing sent: nothing to say
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    clinic = await add_partner(door)
    await referral_sent(door, ala, case["id"], clinic)
    warned = section((await ala.visitor.get(path)).text, "consent")
    assert 'id="consent-referrals"' in warned and EN["consent_open_referrals"] in warned
    assert str(escape(clinic["name"])) in warned
