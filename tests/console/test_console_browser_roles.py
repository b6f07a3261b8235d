"""Every staff role but the caseworker's (test_console_browser_day.py) does its main task in a real browser (headless
Debian chromium driven by Playwright, against the gateway over HTTP in front of every service), with the production
default that every person signs in with a second factor — a code from their app. Each person picks their language on
the sign-in page (Belarusian), signs in once, and later switches to Russian and English with the links in the header,
as a person would; each task is done once in each language:

- an admin creates an account with a role, which waits because a second admin is around; the second admin sees it
  waiting and approves it in their own browser; the first looks at every backend's status;
- a supervisor sees the caseload with who holds each case, and gives a case to another caseworker;
- finance creates a grant (its budget bar), approves a request a caseworker made, shows its payee (funds records the
  read), pays it, voids another request, opens a grant's donor report and downloads its CSV;
- an auditor sees every chain verified, filters funds' trail to the payee reads finance just made, and opens the list
  of break-glass openings;
- a coordinator chooses this month on the programme page: charts, tables, and the CSV downloaded.

Each page is photographed into test-artifacts/console/ (70-… to 89-…: desk size per language, and one phone-sized
shot per role) for a human to look at. On the Belarusian and Russian pages no English word may show (data typed in
English aside — there is none here), and no page may be wider than its window.

Skips, saying why, where chromium or the playwright package is absent (the imported module skips)."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyotp
import pytest

from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, serving, shot, sync_api
from tests.console.test_console_browser_doors import (  # noqa: F401 (gateway_settings: the fixture, narrowed)
    GIVEN_PASSWORD,
    ApiWithFactor,
    fits_the_screen,
    gateway_settings,
    watch_outside,
)
from tests.integration.gateway.door import ADMIN_PASSWORD, STAFF_PASSWORD, Backends

pytestmark = pytest.mark.integration

expect = sync_api.expect
DESK = {"width": 1100, "height": 1000}
PHONE = {"width": 360, "height": 740}
LANGUAGES = ("be", "ru", "en")  # Belarusian first: chosen on the sign-in page; the others from the header
# The people, by user name (handles are Latin, as people type them; no English word among them).
NAMES = {"supervisor": "alesia.kavalenka", "finance": "mikola.bahdanovich", "auditor": "tamara.lukashevich",
         "coordinator": "pavel.sidarenka", "caseworker": "ala.mikhalevich", "other_caseworker": "ihar.rudzko",
         "checker": "siarhei.astapenka"}
# Words in Latin letters alone that are not English left untranslated: the product's name, codes people know in
# every language, the processes' names shown beside their words for the operators who run them, and the first
# admin's user name.
NOT_ENGLISH = {"Rehab", "Support", "OpenBao", "NATS", "UTC", "EUR", "CSV", "IBAN", "intake", "referrals", "funds",
               "reports", "gateway", "admin"}


@pytest.fixture
def served(backends: Backends, gateway_settings) -> Iterator[str]:  # noqa: F811
    """The gateway over real HTTP with the second factor required (the doors' narrowed settings), on the services'
    NATS: intake learns the caseworkers the gateway creates from its events, which giving a case to one needs. Eight
    people and their setup sign in from one address here, more than a minute's sign-ins from one office allow."""
    from gateway.main import create_app

    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url, signin_rate_limit="200/minute",
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    with serving(create_app(settings)) as url:
        yield url


class Organisation(ApiWithFactor):
    """What is there before anyone signs in, through the public API: a person of every role with their app's secret,
    a second admin, a caseworker's cases (one per language for the supervisor to give away), a grant with a request
    to pay and one to void per language, a paid one for the donor report, and a colleague's break-glass opening."""

    def __init__(self, base: str) -> None:
        self.secrets: dict[str, str] = {}
        self.confirmed: dict[str, float] = {}  # when each person's last code was used: the next must be later
        super().__init__(base)  # the bootstrap admin enrols first (`enrol` below keeps their secret)
        self.secrets["admin"], self.confirmed["admin"] = self.last_enrolment
        # Everyone while the admin is alone (their accounts work at once); the second admin last.
        for role, name in NAMES.items():
            role = "caseworker" if role == "other_caseworker" else "admin" if role == "checker" else role
            self.post("/api/admin/users", self.admin, username=name, password=GIVEN_PASSWORD, roles=[role])
        self.tokens: dict[str, dict[str, str]] = {}
        self.recovery: dict[str, list[str]] = {}
        for name in NAMES.values():
            self.recovery[name] = self.enrolled(name)
            self.secrets[name], self.confirmed[name] = self.last_enrolment
            self.tokens[name] = self.token(name)
        ala, ihar = self.tokens[NAMES["caseworker"]], self.tokens[NAMES["other_caseworker"]]
        finance = self.tokens[NAMES["finance"]]

        self.cases = {language: self.post("/api/intake/cases", ala, full_name=name, country="LT", city="Vilnius")
                      for language, name in zip(LANGUAGES, ("Аксана Мілевіч", "Наста Лойка", "Ihar Losik"),
                                                strict=True)}
        today = date.today()
        self.grant = self.post("/api/funds/grants", finance, donor="Фонд салідарнасці", code="FS-2026-01",
                               currency="EUR", amount="20000.00", starts_on=str(today - timedelta(days=30)),
                               ends_on=str(today + timedelta(days=300)), categories=["medical", "housing"])
        self.to_pay: dict[str, str] = {}
        self.to_void: dict[str, str] = {}
        for language, case in self.cases.items():
            self.to_pay[language] = self.aid(ala, case["id"], "medical", "250.00", "Прыём у пульманолага",
                                             {"name": "Віленская лёгачная клініка", "account": "LT12 1000 0111 0100 "
                                                                                               "1000"})
            self.to_void[language] = self.aid(ala, case["id"], "housing", "400.00", "Аренда за декабрь", None)
        # Paid before today's work: the donor report has something to show.
        for amount in ("120.00", "80.50"):
            paid = self.aid(ala, self.cases["be"]["id"], "medical", amount, "Лекі", None)
            for step, body in (("approve", None), ("pay", {"method": "bank_transfer", "reference": "SEPA-0412"})):
                moved = self.http.post(f"/api/funds/disbursements/{paid}/{step}", json=body,
                                       headers={**finance, "Idempotency-Key": str(uuid.uuid4())})
                assert moved.status_code == 200, moved.text
        opened = self.http.get(f"/api/intake/cases/{self.cases['be']['id']}", headers={
            **ihar, "Access-Reason": "Her caseworker is away; she came to the office"})
        assert opened.status_code == 200, opened.text  # a break-glass opening for the auditor's list
        self.wait_until_intake_knows(NAMES["other_caseworker"])

    def enrol(self, token: dict[str, str]) -> list[str]:
        """Set up a second factor as an app does; its secret and when its code was used are kept as
        `last_enrolment` (the token does not say whose it is: the caller does)."""
        started = self.http.post("/auth/mfa/totp/enrol", headers=token)
        assert started.status_code == 200, started.text
        secret, now = started.json()["secret"], time.time()
        confirmed = self.http.post("/auth/mfa/totp/confirm", headers=token, json={"code": pyotp.TOTP(secret).at(now)})
        assert confirmed.status_code == 200, confirmed.text
        self.last_enrolment = (secret, now)
        return confirmed.json()["recovery_codes"]

    def token(self, who: str) -> dict[str, str]:
        """A bearer for the setup, signed in with a recovery code (no app code spent: the browser needs those)."""
        return self.bearer_with_code(who, STAFF_PASSWORD, self.recovery[who].pop(0))

    def code(self, who: str) -> str:
        """The code the person's app shows next: a code works once, so it is of a later 30-second step than the one
        used last (at most the next step, which the gateway accepts for phones' clocks that run ahead)."""
        totp = pyotp.TOTP(self.secrets[who])
        at = max(time.time(), self.confirmed[who] + totp.interval)
        self.confirmed[who] = at
        return totp.at(at)

    def aid(self, requester: dict[str, str], case_id: str, category: str, amount: str, purpose: str,
            payee: dict[str, str] | None) -> str:
        body = {"case_id": case_id, "grant_id": self.grant["id"], "category": category, "amount": amount,
                "currency": "EUR", "purpose": purpose, **({"payee": payee} if payee else {})}
        return self.until_created("/api/funds/disbursements", requester, body)["id"]

    def wait_until_intake_knows(self, caseworker: str) -> None:
        """Intake learns a new caseworker from the gateway's events, a moment later: until then a case cannot be
        given to them. A case of the caseworker's own is given to them both, which also holds it for the test."""
        ala = self.tokens[NAMES["caseworker"]]
        spare = self.post("/api/intake/cases", ala, full_name="Зміцер Дашкевіч", country="PL", city="Warszawa")
        deadline = time.monotonic() + 20
        while True:
            given = self.http.put(f"/api/intake/cases/{spare['id']}/assignees", headers=self.tokens[
                NAMES["supervisor"]], json={"usernames": [NAMES["caseworker"], caseworker]})
            if given.status_code == 200 or time.monotonic() > deadline:
                assert given.status_code == 200, given.text
                return
            time.sleep(0.2)


class Desk:
    """One browser context per person: the first visit signs them in, having chosen the language on the sign-in
    page; later visits switch language with the header's links. Every page shown in be or ru is read for English."""

    def __init__(self, browser, base: str, world: Organisation) -> None:
        self.browser, self.base, self.world = browser, base, world
        self.pages: dict[str, object] = {}
        self.outside: list[str] = []
        self.english: list[str] = []  # "page: words" for each be/ru page that shows an English word
        self.too_wide: list[str] = []

    def of(self, who: str, language: str, password: str = STAFF_PASSWORD):
        page = self.pages.get(who)
        if page is None:
            page = self.pages[who] = self.browser.new_context(viewport=DESK, accept_downloads=True).new_page()
            watch_outside(page, self.base, self.outside)
            page.goto(self.base + "/")
            page.locator("header nav.languages").get_by_role("link", name="Беларуская").click()
            expect(page.locator("html")).to_have_attribute("lang", "be")
            page.locator("#username").fill(who)
            page.locator("#password").fill(password)
            page.locator("#otp").fill(self.world.code(who))
            page.locator("form[action='/console/sign-in'] button[type=submit]").click()
            page.wait_for_load_state()
            assert page.locator("#sign-in-problem").count() == 0 and "/console/mfa" not in page.url, who
        if page.locator("html").get_attribute("lang") != language:
            names = {"be": "Беларуская", "ru": "Русский", "en": "English"}
            page.locator("header nav.languages").get_by_role("link", name=names[language]).click()
            expect(page.locator("html")).to_have_attribute("lang", language)
        return page

    def shoot(self, page, name: str, language: str) -> None:
        """A photograph for a human, and what a machine can see of what they would look for."""
        shot(page, name)
        if not fits_the_screen(page):
            self.too_wide.append(name)
        if language != "en":
            # A command or setting set as code (`rehab unseal`, `file`) is the same in every language.
            commands = english_words(" ".join(page.locator("code").all_inner_texts()))
            found = english_words(page.locator("body").inner_text()) - commands
            if found:
                self.english.append(f"{name}: {', '.join(sorted(found))}")

    def phone(self, page, name: str) -> None:
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        try:
            self.shoot(page, name, page.locator("html").get_attribute("lang"))
        finally:
            page.set_viewport_size(size)


def english_words(text: str) -> set[str]:
    """Words written in Latin letters alone: on a Belarusian or Russian page, English that slipped through (a user
    name, a reference or a code has dots, digits or hyphens in it; the language links name themselves)."""
    words = {word.strip(".,:;()«»\"'!?·—–") for word in text.split()}
    return {word for word in words if re.fullmatch(r"[A-Za-z]{2,}", word) and word not in NOT_ENGLISH
            and word not in ("English", "Polski", "Lietuvių")}


def test_every_role_does_its_main_task_in_each_language_in_a_real_browser(served: str):
    world = Organisation(served)
    admin, checker = "admin", NAMES["checker"]
    supervisor, finance, auditor = NAMES["supervisor"], NAMES["finance"], NAMES["auditor"]
    newcomers = {language: f"volha.{language}.novik" for language in LANGUAGES}
    grant_codes = {language: f"NED-2026-{language.upper()}" for language in LANGUAGES}
    donors = {"be": "Фонд «Дапамога»", "ru": "Фонд «Поддержка»", "en": "Open Society Trust"}

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        desk = Desk(browser, served, world)
        try:
            for language in LANGUAGES:
                # The admin: an account with a role, waiting for the other admin, who approves it.
                page = desk.of(admin, language, ADMIN_PASSWORD)
                page.goto(served + "/console/admin/users/new")
                page.locator("#username").fill(newcomers[language])
                page.locator("#password").fill(STAFF_PASSWORD)
                page.locator("input[name=roles][value=caseworker]").check()
                desk.shoot(page, f"70-admin-new-account-{language}", language)
                page.locator("form[action='/console/admin/users'] button[type=submit]").click()
                page.wait_for_url(re.compile(r"done=created-pending$"))
                expect(page.locator("#notice")).to_be_visible()

                other = desk.of(checker, language)
                other.goto(served + "/console/admin/approvals")
                asked = other.locator("#approvals tbody tr", has_text=newcomers[language])
                expect(asked).to_have_count(1)
                desk.shoot(other, f"71-admin-approvals-{language}", language)
                asked.locator("form[action$='/approve'] button").click()
                expect(other.locator("#activation-code")).to_be_visible()  # the new account's, to hand over
                desk.shoot(other, f"71b-admin-activation-code-{language}", language)
                expect(other.locator("#approvals tbody tr", has_text=newcomers[language])).to_have_count(0)

                page.goto(served + "/console/admin/status")
                for part in ("gateway", "intake", "referrals", "funds", "reports"):
                    expect(page.locator(f"#part-{part}")).to_be_visible()
                desk.shoot(page, f"72-admin-status-{language}", language)
                if language == "ru":
                    desk.phone(page, "85-admin-status-ru-phone")

                # The supervisor: the caseload with its assignees; a case given to the other caseworker.
                page = desk.of(supervisor, language)
                page.goto(served + "/console/caseload")
                case = world.cases[language]
                row = page.locator(f"#case-{case['id']}")
                expect(row.locator(".assignees")).to_have_text(NAMES["caseworker"])
                expect(row).to_contain_text({"be": "Літва", "ru": "Литва", "en": "Lithuania"}[language])
                desk.shoot(page, f"73-supervisor-caseload-{language}", language)
                if language == "be":
                    desk.phone(page, "86-supervisor-caseload-be-phone")
                row.locator(f"#assign-{case['id']}").fill(NAMES["other_caseworker"])
                row.locator("button[type=submit]").click()
                page.wait_for_url(f"{served}/console/caseload?given={case['id']}")
                expect(page.locator(f"#case-{case['id']} .assignees")).to_have_text(NAMES["other_caseworker"])
                expect(page.locator("#notice")).to_contain_text(NAMES["other_caseworker"])  # where it went, said
                page.locator(f"#case-{case['id']}").scroll_into_view_if_needed()
                desk.shoot(page, f"74-supervisor-reassigned-{language}", language)

                # Finance: a grant; a request approved, its payee shown, paid; another voided; the donor report.
                page = desk.of(finance, language)
                page.goto(served + "/console/grants")
                form = page.locator("#grant-form")
                form.locator("#grant-donor").fill(donors[language])
                form.locator("#grant-code").fill(grant_codes[language])
                form.locator("#grant-currency").select_option("EUR")
                form.locator("#grant-amount").fill("12 000" if language != "en" else "12,000")
                form.locator("#grant-starts-on").fill(str(date.today() - timedelta(days=1)))
                form.locator("#grant-ends-on").fill(str(date.today() + timedelta(days=365)))
                form.locator("input[name=categories][value=medical]").check()
                form.locator("input[name=categories][value=psychological]").check()
                form.locator("button[type=submit]").click()
                page.wait_for_url(re.compile(r"/console/grants/[0-9a-f-]{36}\?done=created(#new-grant)?$"))
                expect(page.locator("h1")).to_contain_text(grant_codes[language])
                desk.shoot(page, f"75-finance-grant-created-{language}", language)

                to_pay, to_void = world.to_pay[language], world.to_void[language]
                page.goto(served + "/console/disbursements")
                page.locator(f"#d-{to_pay} form[action$='/approve'] button").click()
                page.wait_for_url(re.compile(r"done=approved$"))
                page.locator(f"#d-{to_pay} form[action*='/payee'] button").click()
                payee = page.locator(f"#payee-{to_pay}")
                expect(payee).to_contain_text("Віленская лёгачная клініка")
                page.locator(f"#r-{to_pay}").fill(f"SEPA-{language.upper()}-0077")
                desk.shoot(page, f"76-finance-payee-shown-{language}", language)
                if language == "be":
                    desk.phone(page, "87-finance-queue-be-phone")
                page.locator(f"#d-{to_pay}-pay summary").click()  # recording a payment asks once more
                page.locator(f"#d-{to_pay}-pay button[type=submit]").click()
                page.wait_for_url(re.compile(r"done=paid$"))
                page.locator(f"#d-{to_void}-void summary").click()  # voiding asks once more
                page.locator(f"#d-{to_void} form[action$='/void'] button").click()
                page.wait_for_url(re.compile(r"done=voided$"))
                expect(page.locator(f"#d-{to_pay}")).to_have_count(0)
                expect(page.locator(f"#d-{to_void}")).to_have_count(0)
                page.goto(served + "/console/disbursements?status=paid")
                expect(page.locator(f"#d-{to_pay}")).to_contain_text(f"SEPA-{language.upper()}-0077")
                desk.shoot(page, f"77-finance-paid-{language}", language)

                page.goto(served + f"/console/grants/{world.grant['id']}/donor-report")
                expect(page.locator("h1")).to_contain_text(world.grant["code"])
                desk.shoot(page, f"78-finance-donor-report-{language}", language)
                with page.expect_download() as downloading:
                    page.locator("#donor-csv").click()  # a POST form: the month chosen goes in no URL
                rows = list(csv.reader(io.StringIO(Path(downloading.value.path()).read_text(encoding="utf-8-sig"))))
                assert len(rows) >= 2 and world.grant["code"] in "".join(map(",".join, rows)), rows[:3]

                # The auditor: every chain verified, funds' trail filtered to the payee reads, the break-glass list.
                page = desk.of(auditor, language)
                page.goto(served + "/console/audit")
                for service in ("intake", "referrals", "funds"):
                    expect(page.locator(f"#verdict-{service}")).to_have_class(re.compile("verdict-intact"))
                desk.shoot(page, f"79-auditor-verification-{language}", language)
                page.goto(served + "/console/audit?service=funds")
                page.locator("#action").select_option("payee.read")
                page.locator("#audit-filter button[type=submit]").click()
                page.wait_for_selector("#filtered")
                reads = page.locator("#audit-entries tbody tr")
                expect(reads).to_have_count(LANGUAGES.index(language) + 1)  # one per language so far
                assert all(finance in text for text in reads.all_inner_texts())
                desk.shoot(page, f"80-auditor-payee-reads-{language}", language)
                if language == "ru":
                    desk.phone(page, "88-auditor-payee-reads-ru-phone")
                page.goto(served + "/console/audit/break-glass")
                expect(page.locator("#openings tbody tr")).to_have_count(1)
                expect(page.locator("#openings")).to_contain_text(NAMES["other_caseworker"])
                desk.shoot(page, f"81-auditor-break-glass-{language}", language)

                # The coordinator: this month's programme report, chosen with the period form, its charts and
                # its CSV (the people the world made here are in it, small numbers withheld).
                page = desk.of(NAMES["coordinator"], language)
                page.goto(served + "/console/programme")
                this_month = time.strftime("%Y-%m")
                page.locator("#from").select_option(this_month)
                page.locator("#to").select_option(this_month)
                page.locator("#period-form button[type=submit]").click()
                page.wait_for_load_state()
                expect(page.locator("#cases-chart")).to_be_visible()
                expect(page.locator("#funnel")).to_be_visible()
                expect(page.locator("#cases")).to_contain_text(time.strftime("%Y"))
                with page.expect_download() as download:
                    page.locator("#programme-csv").click()
                assert download.value.suggested_filename == f"programme-{this_month}-{this_month}.csv"
                desk.shoot(page, f"82-coordinator-programme-{language}", language)
                if language == "be":
                    desk.phone(page, "89-coordinator-programme-be-phone")
        finally:
            browser.close()

    assert not desk.english, "English on Belarusian or Russian pages:\n" + "\n".join(desk.english)
    assert not desk.too_wide, f"wider than the window: {desk.too_wide}"
    assert desk.outside == []  # nothing loaded from outside the system
    for language in LANGUAGES:  # the approved accounts work; the paid and voided requests are so in funds
        assert world.http.post("/auth/token", data={"grant_type": "password", "username": newcomers[language],
                                                    "password": STAFF_PASSWORD}).status_code == 200
        finance_token = world.token(finance)  # the setup's token has expired by now, perhaps
        paid = world.http.get(f"/api/funds/disbursements/{world.to_pay[language]}", headers=finance_token).json()
        voided = world.http.get(f"/api/funds/disbursements/{world.to_void[language]}", headers=finance_token).json()
        assert (paid["status"], voided["status"]) == ("paid", "voided")
