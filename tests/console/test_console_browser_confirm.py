"""What ends something asks once more, in a real browser (headless Debian chromium, Playwright): rejecting another
admin's request, rejecting and voiding aid, cancelling a referral and closing a case each open a disclosure that says
what will happen and holds the real button. Opening it sends nothing (no POST leaves the page, and the services still
have the thing as it was); pressing "Yes, …" does it. The finance queue and the approvals are done on a phone-sized
screen, the confirmations open, and nothing may stick out sideways. Then the error page: a signed-in person's 404
carries their navigation, a stranger's none.

Screenshots go to test-artifacts/console/ (90-… to 95-…). Skips, saying why, where chromium or the playwright package
is absent (the imported module skips)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.console import test_console_browser
from tests.console.test_console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Api,
    shot,
    sign_in,
    sync_api,
)
from tests.console.test_console_browser_doors import PHONE, fits_the_screen
from tests.integration.gateway.door import STAFF_PASSWORD

pytestmark = pytest.mark.integration

served = test_console_browser.served  # the fixture: the gateway over real HTTP, in front of every service
expect = sync_api.expect


class Setup(Api):
    """Through the public API: a case with consent, referred to a partner; two aid requests on a grant; a second
    admin, and a request of the first admin's waiting for the second's decision."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.caseworker, self.finance = self.user("caseworker"), self.user("finance")
        casey, finance = self.bearer(self.caseworker, STAFF_PASSWORD), self.bearer(self.finance, STAFF_PASSWORD)
        partner = self.post("/api/referrals/partners", self.admin, name="Vilnius Lung Clinic", category="medical",
                            countries=["LT"], cities=["Vilnius"], languages=["be"],
                            contact_email="intake@clinic.example")
        self.case = self.post("/api/intake/cases", casey, full_name="Аксана Мілевіч", country="LT", city="Vilnius")
        consent = self.http.put(f"/api/intake/cases/{self.case['id']}/consent", headers=casey, json={
            "categories": ["medical"], "share_contact": True, "share_health": True, "method": "written"})
        assert consent.status_code == 200, consent.text
        self.referral = self.until_created("/api/referrals/referrals", casey, {
            "case_id": self.case["id"], "partner_id": partner["id"], "need_category": "medical",
            "packet": {"display_name": "A. M.", "language": "be"}})
        grant = self.post("/api/funds/grants", finance, donor="Solidarity Fund", code=f"G-{uuid.uuid4().hex[:6]}",
                          currency="EUR", amount="5000.00", starts_on="2026-01-01", ends_on="2030-12-31",
                          categories=["medical", "housing"])
        self.to_reject, self.to_void = [
            self.until_created("/api/funds/disbursements", casey, {
                "case_id": self.case["id"], "grant_id": grant["id"], "category": category, "amount": amount,
                "currency": "EUR", "purpose": purpose})["id"]
            for category, amount, purpose in (("medical", "250.00", "clinic visit"), ("housing", "400.00", "rent"))]
        self.finance_token, self.casey = finance, casey

        self.checker = f"second.admin.{uuid.uuid4().hex[:4]}"  # works at once: the first admin is alone
        self.post("/api/admin/users", self.admin, username=self.checker, password=STAFF_PASSWORD, roles=["admin"])
        asked = self.post("/api/admin/users", self.admin, username=f"new.caseworker.{uuid.uuid4().hex[:4]}",
                          password=STAFF_PASSWORD, roles=["caseworker"])
        assert asked["status"] == "pending_approval", asked
        self.approval = next(a for a in self.approvals("pending") if a["target_id"] == asked["id"])

    def approvals(self, status: str) -> list[dict]:
        listed = self.http.get("/api/admin/approvals", headers=self.admin, params={"status": status})
        assert listed.status_code == 200, listed.text
        return listed.json()["items"]

    def status_of(self, path: str, headers: dict[str, str]) -> str:
        answer = self.http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["status"]


class Posts:
    """Every POST a page sends: opening a confirmation must send none."""

    def __init__(self, page) -> None:
        self.sent: list[str] = []
        page.on("request", lambda request: self.sent.append(request.url) if request.method == "POST" else None)


def confirm(page, box, summary: str, yes: str, unchanged, posts: Posts, *, keyboard: bool = False) -> None:
    """Open the confirmation `box` by its summary, check that it says what will happen and that nothing happened,
    and leave it open with its real button showing."""
    button = box.get_by_role("button", name=yes)
    expect(button).to_be_hidden()  # closed: the real button is not there to be pressed by a slip
    opener = box.locator("summary")
    expect(opener).to_have_text(summary)
    if keyboard:
        opener.focus()
        page.keyboard.press("Enter")
    else:
        opener.click()
    expect(button).to_be_visible()
    assert button.get_attribute("aria-describedby") and box.locator("p").inner_text().strip()
    before = len(posts.sent)
    page.wait_for_timeout(300)
    assert len(posts.sent) == before and unchanged(), "opening the confirmation did something"


def test_what_ends_something_asks_once_more_and_happens_only_when_confirmed(served: str):
    world = Setup(served)
    money = "/api/funds/disbursements/"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # Finance, on a phone: reject one request, void another.
            page = browser.new_context(viewport=PHONE).new_page()
            posts = Posts(page)
            sign_in(page, served, world.finance)
            page.wait_for_url(served + "/console/grants")
            page.goto(served + "/console/disbursements")
            card = page.locator(f"#d-{world.to_reject}")
            confirm(page, card.locator(f"#d-{world.to_reject}-reject"), "Reject…", "Yes, reject the request",
                    lambda: world.status_of(money + world.to_reject, world.finance_token) == "requested", posts)
            expect(card.locator(f"#d-{world.to_reject}-reject")).to_contain_text("nothing will be paid")
            confirm(page, card.locator(f"#d-{world.to_reject}-void"), "Void…", "Yes, void it",
                    lambda: world.status_of(money + world.to_reject, world.finance_token) == "requested", posts)
            card.scroll_into_view_if_needed()
            shot(page, "90-finance-reject-and-void-asked-phone")
            assert fits_the_screen(page)
            card.get_by_role("button", name="Yes, reject the request").click()
            page.wait_for_url(re.compile(r"done=rejected$"))
            assert world.status_of(money + world.to_reject, world.finance_token) == "rejected"

            card = page.locator(f"#d-{world.to_void}")
            confirm(page, card.locator(f"#d-{world.to_void}-void"), "Void…", "Yes, void it",
                    lambda: world.status_of(money + world.to_void, world.finance_token) == "requested", posts,
                    keyboard=True)
            assert fits_the_screen(page)
            card.get_by_role("button", name="Yes, void it").click()
            page.wait_for_url(re.compile(r"done=voided$"))
            assert world.status_of(money + world.to_void, world.finance_token) == "voided"

            # The second admin, on a phone: reject the first admin's request.
            page = browser.new_context(viewport=PHONE).new_page()
            posts = Posts(page)
            sign_in(page, served, world.checker)
            page.wait_for_url(served + "/console/admin/users")
            page.goto(served + "/console/admin/approvals")
            approval = world.approval["id"]
            row = page.locator(f"#a-{approval}")
            confirm(page, row.locator(f"#a-{approval}-reject"), "Reject…", "Yes, reject the request",
                    lambda: any(a["id"] == approval for a in world.approvals("pending")), posts)
            expect(row.get_by_role("button", name="Approve")).to_be_visible()  # approving stays one press
            shot(page, "91-admin-reject-asked-phone")
            assert fits_the_screen(page)
            row.get_by_role("button", name="Yes, reject the request").click()
            page.wait_for_url(re.compile(r"done=rejected$"))
            assert any(a["id"] == approval for a in world.approvals("rejected"))

            # The caseworker: cancel the referral, then close the case.
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            posts = Posts(page)
            sign_in(page, served, world.caseworker)
            page.wait_for_url(served + "/console/cases")
            case, referral = world.case["id"], world.referral["id"]
            page.goto(served + f"/console/cases/{case}/referrals/{referral}")
            referral_path = f"/api/referrals/referrals/{referral}"
            confirm(page, page.locator("#cancel-referral"), "Cancel the referral…", "Yes, cancel the referral",
                    lambda: world.status_of(referral_path, world.casey) == "sent", posts)
            shot(page, "92-referral-cancel-asked")
            page.get_by_role("button", name="Yes, cancel the referral").click()
            page.wait_for_load_state()
            assert world.status_of(referral_path, world.casey) == "cancelled"

            page.goto(served + f"/console/cases/{case}")
            case_path = f"/api/intake/cases/{case}"
            confirm(page, page.locator("#close-case"), "Close the case…", "Yes, close the case",
                    lambda: world.status_of(case_path, world.casey) == "open", posts, keyboard=True)
            page.locator("#close-case").scroll_into_view_if_needed()
            shot(page, "93-case-close-asked")
            page.get_by_role("button", name="Yes, close the case").click()
            page.wait_for_load_state()
            assert world.status_of(case_path, world.casey) == "closed"
            expect(page.locator("#close-case")).to_have_count(0)  # closed: there is nothing to close any more
        finally:
            browser.close()


def test_a_signed_in_person_s_404_carries_their_navigation_and_a_stranger_s_none(served: str):
    caseworker = Api(served).user("caseworker")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            sign_in(page, served, caseworker)
            page.wait_for_url(served + "/console/cases")
            answer = page.goto(served + "/console/no-such-page")
            assert answer.status == 404 and page.locator("#error-said").is_visible()
            nav = page.get_by_role("navigation", name="Rehab Support")
            expect(nav.get_by_role("link", name="My cases")).to_be_visible()
            expect(nav.get_by_role("link", name="Grants")).to_have_count(0)  # theirs: no other role's pages
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            shot(page, "94-not-found-signed-in")
            nav.get_by_role("link", name="My cases").click()  # a wrong turn is one click from their work
            page.wait_for_url(served + "/console/cases")

            stranger = browser.new_context(viewport=PHONE).new_page()
            answer = stranger.goto(served + "/console/no-such-page")
            assert answer.status == 404 and stranger.locator("#error-said").is_visible()
            expect(stranger.get_by_role("navigation", name="Rehab Support")).to_have_count(0)
            expect(stranger.get_by_role("button", name="Sign out")).to_have_count(0)
            expect(stranger.locator("#error-home")).to_be_visible()
            shot(stranger, "95-not-found-signed-out")
            assert fits_the_screen(stranger)
        finally:
            browser.close()
