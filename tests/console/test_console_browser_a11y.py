"""Every role's pages checked for accessibility in a real browser (headless Debian chromium driven by Playwright,
against the gateway over HTTP in front of every service), with the production default that every person signs in
with a second factor: axe-core (the copy bundled in the axe-playwright-python package, injected by Playwright, never
fetched) runs on each page against WCAG 2.0, 2.1 and 2.2 A and AA, and no page may have a serious or critical
violation. Each page also fits a 360 px wide phone without scrolling sideways, and its HTML, CSS and scripts
(images aside) weigh under 100 KB as transferred.

Besides each role's pages as they open, the pages a person meets after pressing something or following a link that
leads nowhere: a form's errors, the warning about a possible duplicate and the page of the case just created, a
case's erasure to confirm, a webhook's removal and an API client's revocation to confirm and a new client's secret,
the auditor's trail filtered, the programme report for a coordinator with a period that runs backwards, the error
page and the partner's "no such referral"; partner staff's pages in Polish and Lithuanian, staff pages in Belarusian
and Russian. The test ends by comparing the pages checked with the list of those it meant to check.

Skips, saying why, where chromium or the playwright package is absent (the imported module skips), or where
axe-playwright-python is."""

from __future__ import annotations

import re
import time
import uuid

import pyotp
import pytest

from tests.console import test_console_browser
from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, sync_api
from tests.console.test_console_browser_doors import (  # noqa: F401 (gateway_settings: the fixture, narrowed)
    GIVEN_PASSWORD,
    ApiWithFactor,
    gateway_settings,
    own_password_chosen,
    sign_in,
)
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:
    pytest.skip("the accessibility test needs the axe-playwright-python package (the test extra)",
                allow_module_level=True)

# Some sixty pages, each checked by axe-core and at two widths, on a shared 2-core machine: longer than the two
# minutes a test gets by default (pyproject.toml).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

served = test_console_browser.served  # the fixture: the gateway over real HTTP, in front of every service
DESK = {"width": 1100, "height": 1000}
PHONE = {"width": 360, "height": 740}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
SERIOUS = {"serious", "critical"}
HEAVIEST = 100_000  # bytes of HTML + CSS + JS a page may transfer
TEXT_TYPES = {"document", "stylesheet", "script"}
PUBLIC_HOOK = "https://93.184.215.14/hooks/rehab"  # a public address literal: accepted without any lookup
# Each field marked invalid names, in its aria-describedby, the message that says what is wrong with it.
UNTIED_ERRORS = """() => [...document.querySelectorAll('[aria-invalid="true"]')].filter(field =>
    !(field.getAttribute('aria-describedby') || '').split(/\\s+/).map(id => id && document.getElementById(id))
      .some(said => said && said.textContent.trim() &&
            said.matches('.field-error, .problem, [role=alert], [id$=error], [id$=problem]')))
  .map(field => field.id || field.name)"""
# Everything one can tab to shows that it has the focus: an outline or a ring.
FOCUS_UNSEEN = """() => {
  const x = scrollX, y = scrollY, was = document.activeElement;
  const unseen = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')]
    .filter(el => !el.disabled && el.getClientRects().length).filter(el => {
      el.focus();
      if (document.activeElement !== el) return false;
      const style = getComputedStyle(el);
      return (style.outlineStyle === 'none' || parseFloat(style.outlineWidth) === 0) && style.boxShadow === 'none';
    }).map(el => el.id || el.name || el.textContent.trim().slice(0, 30));
  if (was && was.focus) was.focus(); else document.activeElement.blur();
  scrollTo(x, y);
  return unseen;
}"""


class World(ApiWithFactor):
    """Something on every page, through the public API: a caseworker's case with needs, consent, a note, a task and
    a document, referred to a partner with a message; another caseworker's case (to break the glass on); a grant and
    a disbursement request; a second partner with a webhook and an API client (no referral is ever sent to it, so
    nothing is delivered); a person of every other role, each with a second factor."""

    def __init__(self, base: str) -> None:
        super().__init__(base)
        self.codes: dict[str, list[str]] = {}
        self.names = {role: self.user(role)
                      for role in ("caseworker", "supervisor", "finance", "auditor", "coordinator")}
        for role, name in self.names.items():
            self.codes[role] = self.enrolled(name)
        self.other = self.user("caseworker")
        other = self.bearer_with_code(self.other, STAFF_PASSWORD, self.enrolled(self.other)[0])
        casey = self.bearer_with_code(self.names["caseworker"], STAFF_PASSWORD, self.codes["caseworker"].pop(0))
        finance = self.bearer_with_code(self.names["finance"], STAFF_PASSWORD, self.codes["finance"].pop(0))

        self.partner = self.post("/api/referrals/partners", self.admin, name="Vilnius Lung Clinic",
                                 category="medical", countries=["LT"], cities=["Vilnius"], languages=["be", "ru"],
                                 contact_email="intake@clinic.example")
        self.staff = f"clinic.staff.{uuid.uuid4().hex[:4]}"
        self.post("/api/admin/users", self.admin, username=self.staff, password=GIVEN_PASSWORD,
                  roles=["partner_staff"], partner_id=self.partner["id"])
        self.codes["partner_staff"] = self.enrolled(self.staff)
        self.names["partner_staff"] = self.staff
        self.newcomer = self.user("caseworker")  # signs in with a password alone: to the factor's enrolment
        self.legal = self.post("/api/referrals/partners", self.admin, name="Kaunas Legal Aid", category="legal",
                               countries=["LT"], cities=["Kaunas"], languages=["lt", "ru"],
                               contact_email="desk@legal.example")
        hooked = self.http.put(f"/api/referrals/partners/{self.legal['id']}/webhook", headers=self.admin,
                               json={"url": PUBLIC_HOOK, "events": ["referral.sent", "referral.cancelled"]})
        assert hooked.status_code in (200, 201), hooked.text
        self.client_id = self.post("/api/admin/clients", self.admin, partner_id=self.legal["id"],
                                   name="Legal aid case system")["client_id"]
        self.nowhere = str(uuid.uuid4())  # the id of no case and no referral
        self.user_id = next(user["id"] for user in self.http.get(
            "/api/admin/users", headers=self.admin, params={"limit": 100}).json()["items"]
            if user["username"] == self.names["caseworker"])

        self.case = self.post("/api/intake/cases", casey, full_name="Аксана Мілевіч", country="LT", city="Vilnius",
                              safety_notes="Only via Signal")
        case_id = self.case["id"]
        self.theirs = self.post("/api/intake/cases", other, full_name="Ihar Losik", country="LT")
        self.post(f"/api/intake/cases/{case_id}/needs", casey, category="medical", urgency="high")
        self.post(f"/api/intake/cases/{case_id}/needs", casey, category="housing", urgency="low")
        consent = self.http.put(f"/api/intake/cases/{case_id}/consent", headers=casey, json={
            "categories": ["medical"], "share_contact": True, "share_health": True, "method": "written"})
        assert consent.status_code == 200, consent.text
        self.post(f"/api/intake/cases/{case_id}/notes", casey, text="She found a flat in Vilnius")
        self.post(f"/api/intake/cases/{case_id}/tasks", casey, title="Call back about the clinic",
                  due_on=time.strftime("%Y-%m-%d"))
        uploaded = self.http.post(f"/api/intake/cases/{case_id}/documents", headers=casey, data={"kind": "other"},
                                  files={"file": ("letter.txt", b"A letter from the clinic", "text/plain")})
        assert uploaded.status_code == 201, uploaded.text
        # A referral the clinic completed with what its help cost: finance's estimates page has it to ask aid for.
        clinic = self.bearer_with_code(self.staff, STAFF_PASSWORD, self.codes["partner_staff"].pop(0))
        done = self.until_created("/api/referrals/referrals", casey, {
            "case_id": case_id, "partner_id": self.partner["id"], "need_category": "medical",
            "packet": {"display_name": "A. M."}})
        for step, body in (("accept", None), ("start", None), ("complete", {
                "outcome": "Seen; inhaler prescribed", "cost_estimate": {"amount": "90.00", "currency": "EUR"}})):
            moved = self.http.post(f"/api/partner/referrals/{done['id']}/{step}", headers=clinic, json=body)
            assert moved.status_code == 200, moved.text
        self.referral = self.until_created("/api/referrals/referrals", casey, {
            "case_id": case_id, "partner_id": self.partner["id"], "need_category": "medical",
            "packet": {"display_name": "A. M.", "language": "be", "note": "Coughing since release"}})
        self.post(f"/api/referrals/referrals/{self.referral['id']}/messages", casey,
                  text="She can come on Thursdays")
        self.grant = self.post("/api/funds/grants", finance, donor="Solidarity Fund",
                               code=f"G-{uuid.uuid4().hex[:6]}", currency="EUR", amount="5000.00",
                               starts_on="2026-01-01", ends_on="2030-12-31", categories=["medical", "housing"])
        self.until_created("/api/funds/disbursements", casey, {
            "case_id": case_id, "grant_id": self.grant["id"], "category": "medical", "amount": "250.00",
            "currency": "EUR", "purpose": "clinic visit",
            "payee": {"name": "Vilnius Lung Clinic", "account": "LT12 1000 0111 0100 1000"}})
        opened = self.http.get(f"/api/intake/cases/{case_id}", headers={
            **other, "Access-Reason": "Her caseworker is away; she came to the office"})
        assert opened.status_code == 200, opened.text  # a break-glass opening for the auditor's page

    def pages(self) -> dict[str, list[str]]:
        """Each role's pages, by address."""
        case = f"/console/cases/{self.case['id']}"
        grant = f"/console/grants/{self.grant['id']}"
        legal = f"/console/admin/partners/{self.legal['id']}"
        return {
            "caseworker": ["/console/cases", "/console/cases/new", case, case + "/edit",
                           f"{case}/referrals/{self.referral['id']}", case + "/refer",
                           f"/console/cases/{self.theirs['id']}/break-glass", case + "/erase",
                           f"/console/cases/{self.nowhere}", "/console/no-such-page"],
            "supervisor": ["/console/caseload"],
            "finance": ["/console/grants", grant, "/console/disbursements", grant + "/donor-report",
                        "/console/estimates", "/console/programme"],
            "admin": ["/console/admin/users", f"/console/admin/users/{self.user_id}", "/console/admin/users/new",
                      "/console/admin/approvals", "/console/admin/partners",
                      f"/console/admin/partners/{self.partner['id']}", "/console/admin/seal",
                      "/console/admin/status", legal, legal + "/webhook/remove",
                      f"{legal}/clients/{self.client_id}/revoke"],
            "auditor": ["/console/audit", "/console/audit/break-glass"],
            "coordinator": ["/console/programme"],
            "partner_staff": ["/console/partner", f"/console/partner/referrals/{self.referral['id']}",
                              f"/console/partner/referrals/{self.nowhere}"],
        }


class Checks:
    """What each page is held to; every finding kept, so that one failure names them all."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.axe = Axe()
        self.found: list[str] = []
        self.visited: list[str] = []

    def visit(self, page, path: str) -> None:
        """Open `path` afresh (the browser's cache is off while requests are routed) and check what it shows."""
        responses: list = []

        def keep(response) -> None:
            responses.append(response)

        # The page a click led to loads whole first: its late answers would otherwise be weighed as this visit's, and
        # their bodies are gone once the visit navigates away (seen with the suite in parallel).
        page.wait_for_load_state("load")
        page.on("response", keep)
        try:
            page.goto(self.base + path)
            page.wait_for_load_state("load")
        finally:
            page.remove_listener("response", keep)
        self.check(page, path if page.url.endswith(path) else f"{path} ({page.url.removeprefix(self.base)})",
                   responses)
        chosen = re.match(r"/console/language/(\w+)\?", path)
        said_in = page.evaluate("() => document.documentElement.lang")
        if chosen and said_in != chosen[1]:  # else the page checked is not the one meant: English again, say
            self.found.append(f"{path}: in {said_in!r}, not {chosen[1]!r}")

    def check(self, page, name: str, responses: list) -> None:
        """Check the page as it is now, kept as `name` (a visit's path, or a state's words); a finding names the
        address too when `name` does not."""
        # A page reached by a click may show the element waited for before its stylesheet is applied (seen on a
        # loaded machine: the audit page's links measured at their unstyled size): checked once it has all loaded.
        page.wait_for_load_state("load")
        self.visited.append(name)
        at = page.url.removeprefix(self.base)
        name = name if at in name else f"{name} ({at})"
        results = self.axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG},
                                              "resultTypes": ["violations"]})
        for violation in results.response["violations"]:
            if violation["impact"] in SERIOUS:
                nodes = "; ".join(f"{' '.join(map(str, node['target']))}: {node.get('failureSummary', '')}"
                                  .replace("\n", " ") for node in violation["nodes"][:6])
                self.found.append(f"{name}: {violation['id']} ({violation['impact']}, "
                                  f"{len(violation['nodes'])} nodes) {violation['help']} — {nodes}")
        weight = 0
        for response in responses:
            if response.request.resource_type in TEXT_TYPES:
                sizes = response.request.sizes()
                body = 0 if 300 <= response.status < 400 else len(response.body())  # a redirect has none
                weight += max(sizes["responseBodySize"] + sizes["responseHeadersSize"], body)
        if weight >= HEAVIEST:
            self.found.append(f"{name}: {weight} bytes of HTML, CSS and JS (at most {HEAVIEST})")
        untied = page.evaluate(UNTIED_ERRORS)
        if untied:
            self.found.append(f"{name}: fields marked invalid with no error message tied to them: {untied}")
        unseen = page.evaluate(FOCUS_UNSEEN)
        if unseen:
            self.found.append(f"{name}: no visible focus on {unseen}")
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        wide = page.evaluate("() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
        page.set_viewport_size(size)
        if wide[0] > wide[1]:
            self.found.append(f"{name}: {wide[0]} px wide on a {wide[1]} px phone (it scrolls sideways)")


def test_every_role_s_pages_have_no_serious_accessibility_violation_fit_a_phone_and_are_light(served: str):
    world = World(served)
    checks = Checks(served)
    outside: list[str] = []

    def only_ours(route) -> None:  # routing also switches the browser's cache off: every visit is weighed whole
        if route.request.url.startswith(served):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    def states(page, role: str) -> None:
        """The pages again as a person meets them after pressing something: errors beside the fields, a possible
        duplicate and the case just created, partners found, a payee shown, a secret shown once, a trail filtered,
        another language. `state_names` lists them in the same order."""
        case = f"/console/cases/{world.case['id']}"
        if role == "caseworker":
            checks.visit(page, "/console/cases/new")
            page.locator("form:has(#full_name)").evaluate("form => { form.noValidate = true; }")
            page.get_by_role("button", name="Save", exact=True).click()
            page.wait_for_load_state()
            checks.check(page, "/console/cases/new (nothing typed)", [])
            # The keyboard's place is the problem line, not the top of the page; its link leads to the field.
            assert page.evaluate("() => document.activeElement.id") == "problem"
            page.locator("#problem a").click()
            assert page.evaluate("() => location.hash") == "#full_name"
            page.locator("#full_name").fill("Аксана Мілевіч")  # the same person: a possible duplicate
            page.locator("#country").select_option("LT")
            page.get_by_role("button", name="Save", exact=True).click()
            page.wait_for_selector("#duplicates")
            checks.check(page, "/console/cases/new (a possible duplicate)", [])
            page.get_by_role("button", name="Save anyway").click()
            page.wait_for_selector("a.button[href^='/console/cases/']")
            checks.check(page, "/console/cases/new (created)", [])
            checks.visit(page, case + "/refer")
            page.get_by_label("Country").select_option("LT")
            page.get_by_role("button", name="Find partners").click()
            page.wait_for_load_state()
            checks.check(page, case + "/refer (partners found)", [])
            checks.visit(page, f"/console/cases/{world.theirs['id']}/break-glass")
            page.locator("#reason").evaluate("field => { field.form.noValidate = true; }")
            page.locator("#reason").fill("why")
            page.get_by_role("button", name="Record my reason and open the case").click()
            page.wait_for_load_state()
            checks.check(page, "/console/cases/…/break-glass (reason too short)", [])
            checks.visit(page, case)
            page.locator("#close-case > summary").click()  # the confirmation open: its sentence and real button
            checks.check(page, case + " (closing asked)", [])
            checks.visit(page, f"/console/language/be?next={case}")
        elif role == "supervisor":
            checks.visit(page, "/console/language/ru?next=/console/caseload")
        elif role == "finance":
            checks.visit(page, "/console/disbursements")
            page.get_by_role("button", name="Show payee").first.click()
            page.wait_for_load_state()
            checks.check(page, "/console/disbursements (payee shown)", [])
            for summary in page.locator(".disbursement").first.locator("details.confirm > summary").all():
                summary.click()  # rejecting and voiding asked, both open in the card
            checks.check(page, "/console/disbursements (reject and void asked)", [])
            checks.visit(page, "/console/estimates")
            page.locator("#estimates textarea").first.evaluate("field => { field.form.noValidate = true; }")
            page.get_by_role("button", name="Ask for aid").first.click()
            page.wait_for_selector(".estimate.refused")
            checks.check(page, "/console/estimates (no purpose)", [])
            checks.visit(page, "/console/language/be?next=/console/grants")
        elif role == "admin":
            checks.visit(page, f"/console/admin/partners/{world.legal['id']}")
            page.locator("#client-name").fill("Legal aid reporting")
            page.locator("#issue-client").get_by_role("button").click()
            page.wait_for_selector("#client-secret")
            checks.check(page, "/console/admin/partners/… (a client's secret shown once)", [])
        elif role == "auditor":
            checks.visit(page, "/console/audit")
            page.get_by_label("Record id").fill(world.case["id"])
            page.get_by_label("Action", exact=True).select_option("case.read")
            page.get_by_role("button", name="Show", exact=True).click()
            page.wait_for_selector("#filtered")
            checks.check(page, "/console/audit (filtered)", [])
            page.get_by_label("Record id").fill("not a record")
            page.get_by_role("button", name="Show", exact=True).click()
            page.wait_for_selector("#target_id-error")
            checks.check(page, "/console/audit (not a record's id)", [])
        elif role == "coordinator":
            checks.visit(page, "/console/programme")
            page.locator("#from").select_option(time.strftime("%Y-%m"))
            page.locator("#to").select_option(page.locator("#to option").last.get_attribute("value"))
            page.get_by_role("button", name="Show", exact=True).click()
            page.wait_for_selector("#problem")
            checks.check(page, "/console/programme (a period that runs backwards)", [])
            checks.visit(page, "/console/language/ru?next=/console/programme")
        elif role == "partner_staff":
            referral = f"/console/partner/referrals/{world.referral['id']}"
            checks.visit(page, "/console/language/pl?next=/console/partner")
            checks.visit(page, f"/console/language/lt?next={referral}")
            checks.visit(page, "/console/cases")  # not a partner's page: the error page, in Lithuanian

    def state_names(role: str) -> list[str]:
        """What `states` checks, each by the name it is kept under (a visit that lands elsewhere: where, after)."""
        case = f"/console/cases/{world.case['id']}"
        referral = f"/console/partner/referrals/{world.referral['id']}"
        return {
            "caseworker": ["/console/cases/new", "/console/cases/new (nothing typed)",
                           "/console/cases/new (a possible duplicate)", "/console/cases/new (created)",
                           case + "/refer", case + "/refer (partners found)",
                           f"/console/cases/{world.theirs['id']}/break-glass",
                           "/console/cases/…/break-glass (reason too short)", case, case + " (closing asked)",
                           f"/console/language/be?next={case} ({case})"],
            "supervisor": ["/console/language/ru?next=/console/caseload (/console/caseload)"],
            "finance": ["/console/disbursements", "/console/disbursements (payee shown)",
                        "/console/disbursements (reject and void asked)", "/console/estimates",
                        "/console/estimates (no purpose)",
                        "/console/language/be?next=/console/grants (/console/grants)"],
            "admin": [f"/console/admin/partners/{world.legal['id']}",
                      "/console/admin/partners/… (a client's secret shown once)"],
            "auditor": ["/console/audit", "/console/audit (filtered)", "/console/audit (not a record's id)"],
            "coordinator": ["/console/programme", "/console/programme (a period that runs backwards)",
                            "/console/language/ru?next=/console/programme (/console/programme)"],
            "partner_staff": ["/console/language/pl?next=/console/partner (/console/partner)",
                              f"/console/language/lt?next={referral} ({referral})", "/console/cases"],
        }[role]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            def fresh_page():
                page = browser.new_context(viewport=DESK).new_page()
                page.route("**/*", only_ours)
                return page

            # The sign-in page (and a refused sign-in), and the factor's enrolment a newcomer is sent to.
            expected = ["/", "/ (refused)", "/console/mfa (own password)", "/console/mfa (passwords differ)",
                        "/console/mfa", "/console/mfa (a wrong code)", "/console/mfa (recovery codes)"]
            page = fresh_page()
            checks.visit(page, "/")
            sign_in(page, served, world.newcomer, password="not the password")
            page.wait_for_selector("#sign-in-problem")
            checks.check(page, "/ (refused)", [])
            sign_in(page, served, world.newcomer, GIVEN_PASSWORD)
            page.wait_for_url(served + "/console/mfa")
            page.wait_for_selector("#password-first")
            checks.check(page, "/console/mfa (own password)", [])
            page.get_by_label("Current password").fill(GIVEN_PASSWORD)
            page.get_by_label("New password", exact=True).fill(STAFF_PASSWORD)
            page.get_by_label("New password again").fill(STAFF_PASSWORD + "!")
            page.get_by_role("button", name="Change password").click()
            page.wait_for_selector("#new_password_again-error")
            checks.check(page, "/console/mfa (passwords differ)", [])
            own_password_chosen(page)
            checks.visit(page, "/console/mfa")
            secret = page.locator("#totp-secret").inner_text()
            page.get_by_label("Code from the app").fill("000000")
            page.get_by_role("button", name="Confirm").click()
            page.wait_for_selector("#code-error")
            checks.check(page, "/console/mfa (a wrong code)", [])
            assert page.locator("#totp-secret").inner_text() == secret  # the same key: the app has it already
            page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
            page.get_by_role("button", name="Confirm").click()
            page.wait_for_selector("#recovery-codes")
            checks.check(page, "/console/mfa (recovery codes)", [])
            page.context.close()

            for role, paths in world.pages().items():
                page = fresh_page()
                if role == "admin":
                    sign_in(page, served, "admin", ADMIN_PASSWORD, code=world.admin_codes.pop(0))
                else:
                    sign_in(page, served, world.names[role], code=world.codes[role].pop(0))
                assert "/console/mfa" not in page.url and page.locator("#sign-in-problem").count() == 0, role
                for path in paths:
                    checks.visit(page, path)
                states(page, role)
                expected += [*paths, *state_names(role)]
                page.context.close()
        finally:
            browser.close()

    assert not checks.found, "\n".join([f"{len(checks.found)} findings on {len(checks.visited)} pages:",
                                        *checks.found])
    # Every page meant, each where it was meant to be (a visit sent elsewhere, to sign in say, is named with where
    # it landed), and nothing else.
    assert checks.visited == expected, "\n".join([
        "not checked as meant:", *[name for name in expected if name not in checks.visited],
        "checked, not meant:", *[name for name in checks.visited if name not in expected]])
    assert outside == []
