"""Notes and tasks in a real browser (headless Debian chromium driven by Playwright, against the gateway over HTTP
in front of every service): a caseworker writes a note on a case and gives themselves a task due today; their
landing page lists it first under "Due today and overdue", linking to the case; they mark it done there and it
leaves the list. What they typed is never in an address the browser asked for. Screenshots go to
test-artifacts/console/ (40-…) for a human to look at.

Skips, saying why, where chromium or the playwright package is absent (as test_console_browser.py does)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, Api, serving, shot, sign_in, sync_api
from tests.integration.gateway.door import STAFF_PASSWORD, Backends

pytestmark = pytest.mark.integration

NOTE = "Quietvale: she moved flats, the new one is safe"
TITLE = "Quietvale: book the dentist"


@pytest.fixture
def served(backends: Backends, gateway_settings) -> Iterator[str]:
    """The gateway over real HTTP, as test_console_browser.py serves it."""
    from gateway.main import create_app

    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    with serving(create_app(settings)) as url:
        yield url


def test_a_note_and_a_task_due_today_then_done_from_the_landing_page_in_a_real_browser(served: str):
    api = Api(served)
    ala = api.user("caseworker")
    case = api.post("/api/intake/cases", api.bearer(ala, STAFF_PASSWORD), full_name="Тацяна Лукашэвіч", country="LT")
    case_path = f"/console/cases/{case['id']}"

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            sign_in(page, served, ala)
            page.wait_for_url(served + "/console/cases")
            assert page.locator("#due-tasks").count() == 0  # nothing due yet
            page.get_by_role("link", name=case["reference"]).click()
            page.wait_for_url(served + case_path)

            page.get_by_label("New note").fill(NOTE)
            page.get_by_role("button", name="Add note").click()
            page.wait_for_url(served + case_path)
            assert NOTE in page.locator("#notes .notes").inner_text()

            page.get_by_label("Task", exact=True).fill(TITLE)
            assert page.get_by_label("Due", exact=True).input_value() == datetime.now(UTC).date().isoformat()
            assert page.get_by_label("For", exact=True).input_value() == ala
            page.get_by_role("button", name="Add task").click()
            page.wait_for_url(served + case_path)
            assert TITLE in page.locator("#tasks table").inner_text()
            timeline = page.locator("ol.timeline").inner_text()
            assert "Note added" in timeline and "Task added" in timeline and "Quietvale" not in timeline
            shot(page, "40-case-notes-and-tasks")

            page.goto(served + "/")  # home: a caseworker lands on "My cases", what is due first
            page.wait_for_url(served + "/console/cases")
            due = page.locator("#due-tasks")
            assert due.is_visible() and "Due today and overdue" in due.inner_text()
            first = due.locator("li").first
            assert TITLE in first.inner_text() and case["reference"] in first.inner_text()
            assert page.locator("#due-tasks").evaluate(
                "section => section.compareDocumentPosition(document.querySelector('main table')) & 4") == 4
            shot(page, "41-due-today-first")
            first.get_by_role("button", name="Done").click()
            page.wait_for_url(served + "/console/cases")
            assert page.locator("#due-tasks").count() == 0

            page.goto(served + case_path)
            assert "done" in page.locator("#tasks table").inner_text()
            assert "Task done" in page.locator("ol.timeline").inner_text()
            shot(page, "42-task-done")
        finally:
            browser.close()

    assert [url for url in asked if not url.startswith(served)] == []  # nothing loaded from outside
    assert not [url for url in asked if "quietvale" in unquote(url).lower()]
