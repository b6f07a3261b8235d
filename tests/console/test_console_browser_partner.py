"""The partner console in a real browser (headless Debian chromium driven by Playwright, against the gateway over HTTP
in front of every service), with the production default that every person signs in with a second factor: a person
on a Vilnius practice's staff signs in, sets up their factor, signs in again with a code and lands on their inbox;
opens a referral (what the caseworker wrote, the caseworker's message marked new), accepts it, writes back, starts
and completes it with an outcome and a cost estimate — which the caseworker then reads. The inbox and a referral's
page are photographed in English, Polish and Lithuanian into test-artifacts/console/ (60-…) for a human to look at:
nothing untranslated, nothing sticking out, on a desk and on a phone. Nothing of the person is in any address the
browser asked for, and nothing is loaded from outside.

Skips, saying why, where chromium or the playwright package is absent (the imported module skips)."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import unquote

import pyotp
import pytest

from gateway.console import i18n
from tests.console import test_console_browser
from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, shot, sync_api
from tests.console.test_console_browser_doors import (  # noqa: F401 (gateway_settings: the fixture, narrowed)
    GIVEN_PASSWORD,
    PHONE,
    ApiWithFactor,
    fits_the_screen,
    gateway_settings,
    own_password_chosen,
    sign_in,
    watch_outside,
)
from tests.integration.gateway.door import STAFF_PASSWORD

pytestmark = pytest.mark.integration

served = test_console_browser.served  # the fixture: the gateway over real HTTP, in front of every service
expect = sync_api.expect
DESK = {"width": 1100, "height": 1000}
NAME = "Наста Лойка"
NOTE = "Quietpine: panic attacks since release; prefers a woman therapist, evenings only"
MESSAGE = "Quietpine: she can come on Thursdays after 18:00"
REPLY = "Quietpine: Thursday 18:30 is booked, room 4"
OUTCOME = "Quietpine: eight sessions held; sleeping better; a follow-up in three months"


class Practice(ApiWithFactor):
    """The setup that is not the partner's job, through the public API: the practice in the partner directory, a
    caseworker (with a factor) who refers people to it, and an account for a person on its staff."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.partner = self.post("/api/referrals/partners", self.admin, name="Vilnius Psychology Practice",
                                 category="psychological", countries=["LT"], cities=["Vilnius"],
                                 languages=["ru", "lt"], contact_email="intake@practice.example")
        caseworker = self.user("caseworker")
        self.caseworker = self.bearer_with_code(caseworker, STAFF_PASSWORD, self.enrolled(caseworker)[0])
        self.staff_name = f"practice.staff.{uuid.uuid4().hex[:4]}"
        self.post("/api/admin/users", self.admin, username=self.staff_name, password=GIVEN_PASSWORD,
                  roles=["partner_staff"], partner_id=self.partner["id"])

    def refer(self, name: str, language: str, note: str) -> str:
        case = self.post("/api/intake/cases", self.caseworker, full_name=name, country="LT")
        consent = self.http.put(f"/api/intake/cases/{case['id']}/consent", headers=self.caseworker, json={
            "categories": ["psychological"], "share_contact": True, "share_health": True, "method": "written"})
        assert consent.status_code == 200, consent.text
        body = {"case_id": case["id"], "partner_id": self.partner["id"], "need_category": "psychological",
                "packet": {"display_name": name, "language": language, "note": note,
                           "contact": "Signal +370 600 00000", "health_summary": "panic attacks"}}
        deadline = time.monotonic() + 20
        while True:  # referrals learns the case and its consent from intake's events
            made = self.http.post("/api/referrals/referrals", headers=self.caseworker, json=body)
            if made.status_code == 201 or time.monotonic() > deadline:
                assert made.status_code == 201, made.text
                return made.json()["id"]
            time.sleep(0.1)


def test_a_partner_staff_member_answers_a_referral_from_sign_in_to_completion_in_a_real_browser(served: str):
    practice = Practice(served)
    referral = practice.refer(NAME, "ru", NOTE)
    waiting = practice.refer("Ihar Losik", "be", "Quietpine: legal stress, wants group sessions")
    wrote = practice.http.post(f"/api/referrals/referrals/{referral}/messages", headers=practice.caseworker,
                               json={"text": MESSAGE})
    assert wrote.status_code == 201, wrote.text
    outside: list[str] = []
    asked: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=DESK).new_page()
            watch_outside(page, served, outside)
            page.on("request", lambda request: asked.append(request.url))

            # The doors staff pass through: the password given, their own chosen, the factor set up, then a code.
            sign_in(page, served, practice.staff_name, GIVEN_PASSWORD)
            page.wait_for_url(served + "/console/mfa")
            own_password_chosen(page)
            secret = page.locator("#totp-secret").inner_text()
            app = pyotp.TOTP(secret)
            page.get_by_label("Code from the app").fill(app.now())
            page.get_by_role("button", name="Confirm").click()
            page.wait_for_selector("#recovery-codes")
            page.get_by_role("link", name="Sign in now with a code from the app").click()
            page.wait_for_selector('input[name="pre_session"]', state="attached")
            sign_in(page, served, practice.staff_name, code=app.at(time.time() + app.interval))
            page.wait_for_url(served + "/console/partner")

            # The inbox: both referrals waiting for an answer, with their need, language and the new message.
            waiting_group = page.locator("#group-sent")
            expect(waiting_group).to_contain_text(NAME)
            expect(waiting_group).to_contain_text("Ihar Losik")
            row = page.locator(f"#referral-{referral}")
            expect(row).to_contain_text("Psychological support")
            expect(row).to_contain_text("Russian")
            expect(row).to_contain_text(i18n.counter("en")("unread_count", 1))
            expect(page.locator("#overdue-rule")).to_contain_text("within 3\u00a0days")
            assert page.locator("header nav a", has_text="My cases").count() == 0  # nothing of the staff's
            shot(page, "60-partner-inbox-en")
            assert fits_the_screen(page)

            # The referral: the packet, the caseworker's message marked new, the steps its state allows.
            row.get_by_role("link", name=NAME).click()
            page.wait_for_url(served + f"/console/partner/referrals/{referral}")
            expect(page.locator("#packet")).to_contain_text(NOTE)
            expect(page.locator("#packet")).to_contain_text("Signal +370 600 00000")
            first = page.locator("ol.thread li").first
            expect(first).to_contain_text(MESSAGE)
            expect(first).to_contain_text("new")
            start = page.locator("#step-start").get_by_role("button", name="Start")
            assert start.is_disabled()
            expect(page.locator("#rule-start")).to_have_text("You can start only after accepting.")
            shot(page, "61-partner-referral-en")

            page.get_by_role("button", name="Accept").click()
            page.wait_for_url(re.compile(r"\?done=accept$"))
            expect(page.locator("#notice")).to_contain_text("You accepted the referral")
            expect(page.locator("#status")).to_have_text("Accepted")
            assert page.locator("#step-decline").get_by_role("button", name="Decline").is_disabled()

            page.get_by_label("Your message").fill(REPLY)
            page.get_by_role("button", name="Send").click()
            page.wait_for_url(re.compile(r"\?done=message#messages$"))
            last = page.locator("ol.thread li").last
            expect(last).to_contain_text(REPLY)
            expect(last).to_contain_text("Your organisation")
            expect(page.locator("ol.thread .new-mark")).to_have_count(0)  # read now

            page.get_by_role("button", name="Start").click()
            page.wait_for_url(re.compile(r"\?done=start$"))
            page.get_by_label("Outcome").fill(OUTCOME)
            page.get_by_label("Amount").fill("1 240,50")
            page.get_by_label("Currency").select_option("EUR")
            shot(page, "62-partner-referral-completing-en")
            page.get_by_role("button", name="Complete").click()
            page.wait_for_url(re.compile(r"\?done=complete$"))
            expect(page.locator("#status")).to_have_text("Completed")
            expect(page.locator("#closed")).to_be_visible()
            assert page.locator("#answer button").count() == 0  # closed: no step left, none shown

            # In Polish and in Lithuanian: the inbox and a referral still waiting, on a desk and on a phone.
            for language, name, accept, new_group in (("pl", "Polski", "Przyjmij", "Czekają na Twoją odpowiedź"),
                                                      ("lt", "Lietuvių", "Priimti", "Laukia jūsų atsakymo")):
                page.goto(served + "/console/partner")
                page.get_by_role("link", name=name).click()
                page.wait_for_url(served + "/console/partner")
                expect(page.locator("html")).to_have_attribute("lang", language)
                expect(page.locator("#group-sent-h")).to_contain_text(new_group)
                shot(page, f"6{3 if language == 'pl' else 5}-partner-inbox-{language}")
                page.locator(f"#referral-{waiting}").get_by_role("link").click()
                page.wait_for_url(served + f"/console/partner/referrals/{waiting}")
                expect(page.locator("#step-accept").get_by_role("button")).to_have_text(accept)
                shot(page, f"6{4 if language == 'pl' else 6}-partner-referral-{language}")
                assert fits_the_screen(page)
                # The same session on a phone-sized screen (its cookies, the language chosen included).
                phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state())
                mobile = phone.new_page()
                watch_outside(mobile, served, outside)
                mobile.on("request", lambda request: asked.append(request.url))
                mobile.goto(served + f"/console/partner/referrals/{waiting}")
                shot(mobile, f"6{7 if language == 'pl' else 8}-partner-referral-{language}-phone")
                assert fits_the_screen(mobile)
                mobile.goto(served + "/console/partner")
                shot(mobile, f"69-partner-inbox-{language}-phone")
                assert fits_the_screen(mobile)
                phone.close()
        finally:
            browser.close()

    detail = practice.http.get(f"/api/referrals/referrals/{referral}", headers=practice.caseworker).json()
    assert detail["status"] == "completed" and detail["outcome"] == OUTCOME
    assert detail["cost_estimate"] == {"amount": "1240.50", "currency": "EUR"}
    thread = practice.http.get(f"/api/referrals/referrals/{referral}/messages", headers=practice.caseworker).json()
    assert [(m["from"], m["text"]) for m in thread["items"]] == [("caseworker", MESSAGE), ("partner", REPLY)]
    assert outside == []  # nothing was loaded from outside the system
    said = [unquote(url).lower() for url in asked]
    assert not [url for url in said if "quietpine" in url or NAME.lower() in url or "losik" in url]
