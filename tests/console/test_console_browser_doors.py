"""The console's doors in a real browser (headless Debian chromium, Playwright), with the production default that
every person has a second factor: a new person signs in with a password, is walked through enrolment, reads the key
off the page, confirms a code, is shown ten recovery codes, and signs in again with a code from the app — each code,
and each recovery code, works once. Then the admins: a lone admin is told nobody checks their changes, adds a second
admin, and from then on an account they create waits until the other admin approves it in their own browser.

Screenshots go to test-artifacts/console/ (30-… to 35-…), as test_console_browser.py's do, for a human to look at.
Skips, saying why, where chromium or the playwright package is absent (the imported module skips)."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from gateway.config import GatewaySettings
from tests.console import test_console_browser
from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, Api, shot, sync_api
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD

pytestmark = pytest.mark.integration

served = test_console_browser.served  # the fixture: the gateway over real HTTP, in front of every service
DEFAULT_MFA_ROLES = GatewaySettings.model_fields["mfa_required_roles"].default
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def gateway_settings(gateway_settings):  # the conftest's fixture of this name, narrowed
    """The gateway `served` starts, with the second factor required of every staff role (the default the other
    gateway tests switch off), no wait after a refused sign-in (these tests refuse a used code on purpose), and
    room for more sign-ins a minute than the 20 one address may make: the browser tests that use this fixture sign
    in up to a dozen people through the API and the browser, all from 127.0.0.1, often within one minute."""

    def with_second_factor(secrets_dir, **overrides):
        return gateway_settings(secrets_dir, **{"mfa_required_roles": DEFAULT_MFA_ROLES, "signin_backoff_seconds": 0,
                                                "signin_rate_limit": "200/minute", **overrides})

    return with_second_factor


# An account's first password, typed by the admin who creates it; each person replaces it with their own, which the
# tests here call STAFF_PASSWORD (so that every later sign-in reads as before).
GIVEN_PASSWORD = "what the admin typed in 2026"


def own_password_chosen(page, given: str = GIVEN_PASSWORD) -> None:
    """The page a person given a password meets first, filled in as they would: their own, twice."""
    page.wait_for_selector("#password-first")
    page.get_by_label("Current password").fill(given)
    page.get_by_label("New password", exact=True).fill(STAFF_PASSWORD)
    page.get_by_label("New password again").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_selector("#totp-secret")


class ApiWithFactor(Api):
    """The test's setup through the public API, on a gateway where every person needs a second factor: the admin
    sets theirs up through the API first (as an app would), and keeps the rest of its recovery codes."""

    def __init__(self, base: str) -> None:
        super().__init__(base)  # signed in with a password alone: a token that opens only enrolment
        self.admin_codes = self.enrol(self.admin)
        self.admin = self.bearer_with_code("admin", ADMIN_PASSWORD, self.admin_codes.pop(0))

    def enrol(self, token: dict[str, str]) -> list[str]:
        started = self.http.post("/auth/mfa/totp/enrol", headers=token)
        assert started.status_code == 200, started.text
        confirmed = self.http.post("/auth/mfa/totp/confirm", headers=token,
                                   json={"code": pyotp.TOTP(started.json()["secret"]).now()})
        assert confirmed.status_code == 200, confirmed.text
        return confirmed.json()["recovery_codes"]

    def user(self, role: str, password: str = GIVEN_PASSWORD) -> str:
        """A new account, with the first password an admin gives (the person replaces it: `enrolled`)."""
        return super().user(role, password)

    def enrolled(self, username: str, password: str = GIVEN_PASSWORD) -> list[str]:
        """A person's own password chosen (`STAFF_PASSWORD`, in place of the one given) and their second factor
        set up, through the API: their recovery codes."""
        chosen = self.http.post("/auth/password", headers=self.bearer(username, password),
                                json={"current_password": password, "new_password": STAFF_PASSWORD})
        assert chosen.status_code == 204, chosen.text
        return self.enrol(self.bearer(username, STAFF_PASSWORD))

    def bearer_with_code(self, username: str, password: str, code: str) -> dict[str, str]:
        answer = self.http.post("/auth/token", data={"grant_type": "password", "username": username,
                                                     "password": password, "otp": code})
        assert answer.status_code == 200 and "refresh_token" in answer.json(), answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def sign_in(page, base: str, username: str, password: str = STAFF_PASSWORD, code: str = "") -> None:
    """The sign-in form as a person fills it: the one-time code left empty before there is a second factor."""
    page.goto(base + "/")
    page.get_by_label(re.compile("User name")).fill(username)
    page.get_by_label(re.compile("Password")).fill(password)
    page.get_by_label(re.compile("One-time code")).fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector('input[name="pre_session"]', state="attached")


def fits_the_screen(page) -> bool:
    """Nothing sticks out sideways: the page is no wider than the window."""
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def watch_outside(page, base: str, outside: list[str]) -> None:
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(base) else None)


def test_a_new_person_sets_up_a_second_factor_and_each_code_works_once_in_a_real_browser(served: str):
    api = ApiWithFactor(served)
    username = api.user("caseworker")
    outside: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            watch_outside(page, served, outside)

            sign_in(page, served, username, GIVEN_PASSWORD)  # a password alone: to enrolment, nowhere else
            page.wait_for_url(served + "/console/mfa")
            shot(page, "29-own-password-first")
            assert fits_the_screen(page)
            own_password_chosen(page)  # the admin who typed the given one knows it: their own first
            assert page.locator("figure.qr svg").is_visible()
            secret = page.locator("#totp-secret").inner_text()
            shot(page, "30-mfa-enrol")
            assert re.fullmatch(r"[A-Z2-7]{16,}", secret) and fits_the_screen(page)

            app = pyotp.TOTP(secret)
            page.get_by_label("Code from the app").fill(app.now())
            page.get_by_role("button", name="Confirm").click()
            page.wait_for_selector("#recovery-codes")
            codes = page.locator("#recovery-codes code").all_inner_texts()
            shot(page, "31-recovery-codes")
            assert len(codes) == 10 and len(set(codes)) == 10 and fits_the_screen(page)

            # The enrolment token is spent with the confirmation: the person signs in again, now with a code. The
            # code just confirmed worked once; the app's next one (the next 30-second step) is a fresh code.
            page.get_by_role("link", name="Sign in now with a code from the app").click()
            page.wait_for_selector('input[name="pre_session"]', state="attached")
            fresh = app.at(time.time() + pyotp.TOTP(secret).interval)
            sign_in(page, served, username, code=fresh)
            page.wait_for_url(served + "/console/cases")
            shot(page, "32-sign-in-with-code")
            assert page.get_by_role("button", name="Sign out").is_visible() and fits_the_screen(page)

            sign_out(page)
            sign_in(page, served, username, code=fresh)  # the same code again: refused
            assert page.locator("#sign-in-problem").is_visible()
            sign_in(page, served, username)  # no code at all, now that there is a factor: refused
            assert page.locator("#sign-in-problem").is_visible()

            sign_in(page, served, username, code=codes[0])  # a recovery code, for a lost phone: works once
            page.wait_for_url(served + "/console/cases")
            sign_out(page)
            sign_in(page, served, username, code=codes[0])
            assert page.locator("#sign-in-problem").is_visible()
            sign_in(page, served, username, code=codes[1])  # the others still work
            page.wait_for_url(served + "/console/cases")
        finally:
            browser.close()

    assert outside == []  # nothing was loaded from outside the system


def test_a_lone_admin_is_warned_adds_a_second_and_each_approves_the_others_request_in_a_real_browser(served: str):
    api = ApiWithFactor(served)
    second_admin, newcomer = f"second.admin.{int(time.time())}", f"new.caseworker.{int(time.time())}"
    outside: list[str] = []

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            first = browser.new_context().new_page()
            watch_outside(first, served, outside)
            sign_in(first, served, "admin", ADMIN_PASSWORD, code=api.admin_codes.pop(0))
            first.wait_for_url(served + "/console/admin/users")  # the accounts: an admin's work
            warning = first.locator("#single-admin")
            assert warning.is_visible() and "nobody to approve it" in warning.inner_text()
            shot(first, "33-admin-users")
            assert fits_the_screen(first)

            warning.get_by_role("link", name="Add a second admin").click()
            first.get_by_label("User name").fill(second_admin)
            first.get_by_label("First password").fill(GIVEN_PASSWORD)
            first.get_by_label("Admin", exact=True).check()
            first.get_by_role("button", name="Create the account").click()
            first.wait_for_url(re.compile(r"/console/admin/users\?done=created$"))
            assert "works now" in first.locator("#notice").inner_text()
            assert first.locator("#four-eyes").is_visible() and first.locator("#single-admin").count() == 0

            # Two admins now: what the first asks for waits for the second.
            first.get_by_role("link", name="New account").click()
            first.get_by_label("User name").fill(newcomer)
            first.get_by_label("First password").fill(STAFF_PASSWORD)
            first.get_by_label("Caseworker").check()
            first.get_by_role("button", name="Create the account").click()
            first.wait_for_url(re.compile(r"done=created-pending$"))
            assert "waiting for another admin's approval" in first.locator("#notice").inner_text()
            first.goto(served + "/console/admin/approvals")
            own = first.locator("#approvals tbody tr", has_text=newcomer)
            assert "Your request: waiting for another admin's approval" in own.inner_text()
            assert own.get_by_role("button").count() == 0  # nothing to press on one's own request

            codes = api.enrolled(second_admin)
            checker = browser.new_context(viewport=PHONE).new_page()
            watch_outside(checker, served, outside)
            sign_in(checker, served, second_admin, code=codes[0])
            checker.wait_for_url(served + "/console/admin/users")
            checker.locator("#waiting-for-you a").click()
            checker.wait_for_url(served + "/console/admin/approvals")
            asked = checker.locator("#approvals tbody tr", has_text=newcomer)
            shot(checker, "34-admin-approvals")
            assert asked.get_by_role("button", name="Approve").is_visible() and fits_the_screen(checker)
            asked.get_by_role("button", name="Approve").click()
            checker.wait_for_selector("#activation-code")  # the new account's code, for this admin to hand over
            assert newcomer in checker.locator("#activation").inner_text() and fits_the_screen(checker)
            shot(checker, "34b-activation-code")
            assert checker.locator("#approvals tbody tr", has_text=newcomer).count() == 0

            # The same pages in Belarusian, on a phone: the longest words, and nothing left in English.
            checker.get_by_role("link", name="Беларуская").click()
            checker.goto(served + "/console/admin/users")
            checker.locator("#users a", has_text=newcomer).click()
            checker.wait_for_selector("h1")
            shot(checker, "35-admin-user-in-belarusian")
            assert checker.locator("#roles-h").inner_text() == "Змяніць ролі" and fits_the_screen(checker)
        finally:
            browser.close()

    assert api.http.post("/auth/token", data={"grant_type": "password", "username": newcomer,
                                              "password": STAFF_PASSWORD}).status_code == 200  # approved: it works
    assert outside == []


def test_an_admin_seals_every_key_behind_one_confirmation_in_a_real_browser(served: str):
    """A raid: the admin presses "Seal all keys now", confirms once, and is shown which parts of the system
    forgot their keys; from then on every admin page says the keys are sealed, and a case no longer opens."""
    api = ApiWithFactor(served)
    casey = api.user("caseworker")
    api.enrolled(casey)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=PHONE).new_page()
            sign_in(page, served, "admin", ADMIN_PASSWORD, code=api.admin_codes.pop(0))
            page.wait_for_url(served + "/console/admin/users")
            page.get_by_role("link", name="Seal all keys now").click()
            page.wait_for_url(served + "/console/admin/seal")
            assert page.locator("#seal-explained").is_visible() and fits_the_screen(page)
            shot(page, "36-seal-confirm")

            page.get_by_role("button", name="Yes, seal all keys now").click()
            page.wait_for_selector("#sealed-processes")
            sealed = page.locator("#sealed-processes tbody tr").all_inner_texts()
            shot(page, "37-sealed")
            assert any(row.startswith("gateway") for row in sealed) and fits_the_screen(page)

            page.goto(served + "/console/admin/users")
            assert page.locator("#keys-sealed").is_visible()
            shot(page, "38-sealed-banner")
        finally:
            browser.close()
    assert api.http.get("/healthz").status_code == 200  # alive, only without keys
