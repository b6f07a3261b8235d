"""The console in a real browser: headless Debian chromium driven by Playwright, against the gateway served over
HTTP by uvicorn in front of every service. A caseworker signs in, creates a case and sees the duplicate warning,
records consent and refers; a finance officer approves someone else's request and pays it. Screenshots are kept
under test-artifacts/console/ (git-ignored) for a human to look at.

Skips, saying why, where chromium (`tests/install-debian-tools.sh`) or the playwright package is absent."""

from __future__ import annotations

import asyncio
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import uvicorn

from tests.console.world import variants
from tests.integration.gateway.door import (
    ADMIN_PASSWORD,
    ROOT,
    STAFF_PASSWORD,
    Backends,
)
from tests.support.nats import free_port

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "console"

if not CHROMIUM.exists():
    pytest.skip("the browser test needs Debian's chromium at /usr/bin/chromium "
                "(tests/install-debian-tools.sh installs it in CI)", allow_module_level=True)
try:
    from playwright import sync_api
except ImportError:  # not only "not installed": a broken install skips too, and says so
    pytest.skip("the browser test needs the playwright package (the test extra)", allow_module_level=True)


@pytest.fixture
def served(backends: Backends, gateway_settings) -> Iterator[str]:
    """The gateway over real HTTP on 127.0.0.1, in a thread of its own (uvicorn runs its lifespan)."""
    from gateway.main import create_app

    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    with serving(create_app(settings)) as url:
        yield url


@contextmanager
def serving(app) -> Iterator[str]:  # noqa: ANN001
    """`app` over real HTTP on 127.0.0.1, in a thread of its own (uvicorn runs its lifespan); its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


class Api:
    """The setup a test needs that is not the console's job (users, a partner, a grant), through the public API."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=15)
        self.admin = self.bearer("admin", ADMIN_PASSWORD)

    def bearer(self, username: str, password: str) -> dict[str, str]:
        answer = self.http.post("/auth/token", data={"grant_type": "password", "username": username,
                                                     "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def user(self, role: str, password: str = STAFF_PASSWORD) -> str:
        username = f"{variants()[0]['latin_passport'].lower().replace(' ', '.')}.{role}.{uuid.uuid4().hex[:4]}"
        made = self.http.post("/api/admin/users", headers=self.admin,
                              json={"username": username, "password": password, "roles": [role]})
        assert made.status_code == 201, made.text
        return username

    def cases_named(self, headers: dict[str, str], name: str) -> list[dict]:
        found = self.http.post("/api/intake/cases/search", headers=headers, json={"q": name, "limit": 200})
        assert found.status_code == 200, found.text
        return found.json()["items"]

    def post(self, path: str, headers: dict[str, str], **body) -> dict:
        made = self.http.post(path, headers=headers, json=body)
        assert made.status_code == 201, made.text
        return made.json()

    def until_created(self, path: str, headers: dict[str, str], body: dict) -> dict:
        """A POST retried while another service has not yet learned the case from intake's events (within a minute:
        on a 2-core machine busy with other work, the events have been seen to take longer than 20 s). Each try
        has an Idempotency-Key of its own: a refusal is the key's answer for good (SPEC §4, the same key gets the
        first response again), so a retry under the first key would be told the first refusal for ever."""
        deadline = time.monotonic() + 60
        while True:
            made = self.http.post(path, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}, json=body)
            if made.status_code == 201 or time.monotonic() > deadline:
                assert made.status_code == 201, made.text
                return made.json()
            time.sleep(0.1)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.get_by_label(re.compile("User name")).fill(username)
    page.get_by_label(re.compile("Password")).fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_create_a_duplicate_refer_approve_and_pay_in_a_real_browser(served: str):
    api = Api(served)
    caseworker_name, finance_name = api.user("caseworker"), api.user("finance")
    partner = api.post("/api/referrals/partners", api.admin, name="Vilnius Lung Clinic", category="medical",
                       countries=["LT"], cities=["Vilnius"], languages=["be"], contact_email="intake@clinic.example")
    finance = api.bearer(finance_name, STAFF_PASSWORD)
    grant = api.post("/api/funds/grants", finance, donor="Solidarity Fund", code=f"G-{uuid.uuid4().hex[:6]}",
                     currency="EUR", amount="5000.00", starts_on="2026-01-01", ends_on="2030-12-31",
                     categories=["medical"])
    person = variants()[5]

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 390, "height": 844}).new_page()  # a phone-sized screen
            outside: list[str] = []
            page.on("request", lambda request: outside.append(request.url)
                    if not request.url.startswith(served) else None)

            sign_in(page, served, caseworker_name)
            page.wait_for_url(served + "/console/cases")
            shot(page, "01-cases")

            caseworker = api.bearer(caseworker_name, STAFF_PASSWORD)
            known_before = len(api.cases_named(caseworker, person["russian"]))
            for written in (person["belarusian"], person["latin_passport"]):
                page.goto(served + "/console/cases/new")
                page.get_by_label("Full name").fill(written)
                page.get_by_label("Date of birth").fill("1979-02-03")
                page.get_by_label("Country").select_option("LT")
                page.get_by_role("button", name="Save", exact=True).click()
                page.wait_for_selector("h1")
            first_reference = api.cases_named(caseworker, person["russian"])[0]["reference"]  # newest first
            warning = page.locator("#duplicates")  # the second spelling: warned before anything is saved
            assert warning.is_visible() and first_reference in warning.inner_text()
            assert len(api.cases_named(caseworker, person["russian"])) == known_before + 1
            assert page.get_by_label("Full name").input_value() == person["latin_passport"]
            shot(page, "02-duplicate-warning-before-saving")
            page.get_by_role("button", name="Save anyway").click()
            page.wait_for_selector("h1")
            assert len(api.cases_named(caseworker, person["russian"])) == known_before + 2
            assert page.locator("#duplicates").is_visible()

            page.get_by_role("link", name="Open the case").click()
            case_id = page.url.rsplit("/", 1)[1]
            page.get_by_label("medical").check()
            page.get_by_role("button", name="Record consent").click()
            page.get_by_role("link", name="New referral").click()
            page.get_by_label("Country").select_option("LT")
            page.get_by_role("button", name="Find partners").click()
            assert page.get_by_label("Contact for the partner — The consent does not allow this").is_disabled()
            shot(page, "03-referral-form")
            deadline = time.monotonic() + 20
            while True:  # the referrals service learns the case from intake's event, a moment later
                page.get_by_label(re.compile(partner["name"])).check()
                page.get_by_label("Name the partner sees").fill("A. M.")
                page.get_by_role("button", name="Send the referral").click()
                page.wait_for_load_state()
                if page.url.endswith(f"/console/cases/{case_id}#referrals") or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert page.url.endswith(f"/console/cases/{case_id}#referrals")  # back at the list it is now in
            assert partner["name"] in page.locator("#referrals-h + ul").inner_text()
            shot(page, "04-case-with-referral")

            page.goto(served + "/console/cases")  # a search: its answer is the page itself, the name only in the body
            page.get_by_label("Search by name").fill(person["latin_from_russian"])
            page.get_by_role("button", name="Search", exact=True).click()
            page.wait_for_selector("h1")
            assert page.url == served + "/console/cases/search" and first_reference in page.locator("main").inner_text()
            visited = page.evaluate("() => [location.href, ...[...document.links].map(a => a.href)]")
            words = [word.lower() for word in person["latin_from_russian"].split()]
            assert not [url for url in visited if any(word in unquote(url).lower() for word in words)]

            deadline = time.monotonic() + 20
            while True:  # funds, too, learns the case from intake's event
                made = api.http.post("/api/funds/disbursements", headers={**caseworker,
                                     "Idempotency-Key": str(uuid.uuid4())},
                                     json={"case_id": case_id, "grant_id": grant["id"], "category": "medical",
                                           "amount": "250.00", "currency": "EUR", "purpose": "clinic visit"})
                if made.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert made.status_code == 201, made.text
            request_id = made.json()["id"]

            finance_page = browser.new_context().new_page()
            sign_in(finance_page, served, finance_name)
            finance_page.goto(served + "/console/disbursements")
            row = finance_page.locator(f"#d-{request_id}")
            row.get_by_role("button", name="Approve", exact=True).click()
            finance_page.wait_for_url(served + "/console/disbursements?done=approved")
            row = finance_page.locator(f"#d-{request_id}")
            row.get_by_label("Payment reference").fill("TX-42")
            shot(finance_page, "05-approved")
            row.locator("summary", has_text="Record the payment").click()  # asked once more, with the sum
            assert "€250.00" in row.locator(f"#d-{request_id}-pay-said").inner_text()
            row.get_by_role("button", name="Yes, record the payment", exact=True).click()
            finance_page.wait_for_url(served + "/console/disbursements?done=paid")
            finance_page.goto(served + "/console/grants")
            assert "€250.00" in finance_page.locator("main").inner_text()
            shot(finance_page, "06-grants")
            finance_page.get_by_role("link", name="Беларуская").click()  # remembered from here on
            finance_page.goto(served + "/console/grants")
            assert finance_page.locator("h1").inner_text() == "Гранты"
            assert "250,00\u00a0€" in finance_page.locator("main").inner_text()
            shot(finance_page, "07-grants-in-belarusian")
            finance_page.goto(served + "/console/disbursements?status=paid")  # the paid ones, in words
            paid_card = finance_page.locator(f"#d-{request_id}").inner_text()
            assert "250,00\u00a0€" in paid_card and "Банкаўскі пераказ" in paid_card and "TX-42" in paid_card
            shot(finance_page, "08-paid-in-belarusian")
        finally:
            browser.close()

    paid = api.http.get(f"/api/funds/disbursements/{request_id}", headers=finance).json()
    assert paid["status"] == "paid"
    assert outside == []  # nothing was loaded from outside the system
    assert shutil.disk_usage(ARTIFACTS) and len(list(ARTIFACTS.glob("*.png"))) >= 7
