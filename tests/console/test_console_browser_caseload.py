"""Need-to-know in a real browser (headless Debian chromium driven by Playwright, against the gateway over HTTP in
front of every service): a caseworker sees "My cases", finds a colleague's case by name, is asked why before anything
of the person shows, types a reason, and works on the case without being asked again — the reason never in an
address; a supervisor sees the caseload, is told in words that a user name is not a caseworker's, and reassigns.
Screenshots go to test-artifacts/console/ (20-…) for a human to look at.

Skips, saying why, where chromium or the playwright package is absent (as test_console_browser.py does)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from tests.console.test_console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Api,
    serving,
    shot,
    sign_in,
    sync_api,
)
from tests.console.world import variants
from tests.integration.gateway.door import STAFF_PASSWORD, Backends

pytestmark = pytest.mark.integration

REASON = "Her caseworker is away; she came to the office asking for a lung clinic"


@pytest.fixture
def served(backends: Backends, gateway_settings) -> Iterator[str]:
    """The gateway over real HTTP, as test_console_browser.py serves it, but on the services' NATS: the staff it
    creates reach intake's staff directory, which a reassignment needs."""
    from gateway.main import create_app

    settings = gateway_settings(backends.secrets_dir, nats_url=backends.nats_url,
                                **{f"{name}_url": url for name, url in backends.urls.items()})
    with serving(create_app(settings)) as url:
        yield url


def test_my_cases_break_glass_with_a_typed_reason_and_the_supervisor_s_caseload_in_a_real_browser(served: str):
    api = Api(served)
    ala, bo, sam = api.user("caseworker"), api.user("caseworker"), api.user("supervisor")
    theirs_person, own_person = variants()[7], variants()[8]
    own = api.post("/api/intake/cases", api.bearer(ala, STAFF_PASSWORD), full_name=own_person["belarusian"],
                   country="LT")
    theirs = api.post("/api/intake/cases", api.bearer(bo, STAFF_PASSWORD), full_name=theirs_person["belarusian"],
                      country="LT", safety_notes="Only via Signal")
    case_path = f"/console/cases/{theirs['id']}"

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            asked: list[str] = []  # every address the browser asked for
            page.on("request", lambda request: asked.append(request.url))

            sign_in(page, served, ala)
            page.wait_for_url(served + "/console/cases")
            assert page.locator("h1").inner_text() == "My cases"
            listed = page.locator("main table").inner_text()
            assert own["reference"] in listed and theirs["reference"] not in listed
            shot(page, "20-my-cases")

            page.get_by_label("Search by name").fill(theirs_person["latin_passport"])
            page.get_by_role("button", name="Search", exact=True).click()
            outline = page.locator(f"#outline-{theirs['id']}")
            assert theirs["reference"] in outline.inner_text() and bo in outline.inner_text()
            assert theirs_person["belarusian"] not in page.locator("main").inner_text()
            outline.get_by_role("link", name="Open, stating why").click()

            page.wait_for_url(served + case_path + "/break-glass")
            reason_box = page.get_by_label("Why do you need to open this case?")
            assert reason_box.input_value() == ""  # never pre-filled
            main = page.locator("main").inner_text()
            assert "recorded" in main and "will see" in main and theirs_person["belarusian"] not in main
            reason_box.fill("too short")  # the browser itself holds it back (minlength), nothing is sent
            page.get_by_role("button", name="Record my reason and open the case").click()
            assert page.url == served + case_path + "/break-glass"
            assert reason_box.evaluate("box => box.validity.tooShort")
            reason_box.fill("")
            reason_box.press_sequentially(REASON)  # typed, key by key, as a person does
            shot(page, "21-break-glass")
            page.get_by_role("button", name="Record my reason and open the case").click()

            page.wait_for_url(served + case_path)
            main = page.locator("main").inner_text()
            assert theirs_person["belarusian"] in main
            assert page.locator("#break-glass-active").is_visible()
            assert REASON in page.locator("li.break-glass").first.inner_text()
            # the next step on this case is not asked again
            page.get_by_label("Notes").fill("lung clinic this week")
            page.get_by_role("button", name="Add need").click()
            page.wait_for_url(served + case_path + "#needs-h")
            assert "lung clinic this week" in page.locator("#needs-h + ul").inner_text()
            shot(page, "23-case-opened-with-a-reason")

            supervisor = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
            supervisor.on("request", lambda request: asked.append(request.url))
            sign_in(supervisor, served, sam)
            supervisor.wait_for_url(served + "/console/caseload")
            row = supervisor.locator(f"#case-{theirs['id']}")
            assert bo in row.locator(".assignees").inner_text()
            assert theirs_person["belarusian"] not in supervisor.locator("main").inner_text()
            shot(supervisor, "22-caseload")

            row.get_by_label(f"Assign to {theirs['reference']}").fill(f"nobody.here, {ala}")
            row.get_by_role("button", name="Assign").click()
            row = supervisor.locator(f"#case-{theirs['id']}")
            problem = row.locator("#assign-problem")
            assert "nobody.here" in problem.inner_text() and "Traceback" not in supervisor.content()
            shot(supervisor, "24-reassignment-refused")
            deadline = time.monotonic() + 20
            while True:  # intake learns a new caseworker from the gateway's events, a moment later
                row = supervisor.locator(f"#case-{theirs['id']}")
                row.get_by_label(f"Assign to {theirs['reference']}").fill(f"{ala}, {bo}")
                row.get_by_role("button", name="Assign").click()
                supervisor.wait_for_load_state()
                if not supervisor.locator("#assign-problem").count() or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert supervisor.locator(f"#case-{theirs['id']} .assignees").inner_text() == f"{ala}, {bo}"
            shot(supervisor, "25-caseload-reassigned")
        finally:
            browser.close()

    assert [url for url in asked if not url.startswith(served)] == []  # nothing loaded from outside
    words = [word.lower() for word in REASON.split() if len(word) > 4]
    assert not [url for url in asked if any(word in unquote(url).lower() for word in words)]
    assert not [url for url in asked if re.search(r"nobody\.here", unquote(url))]
