"""Notes and tasks in a real browser (headless Debian chromium driven by Playwright, against the gateway over HTTP
in front of every service): a caseworker writes a note on a case and gives themselves a task due today; their
landing page lists it first under "Due today and overdue", linking to the case; they mark it done there and it
leaves the list. What they typed is never in an address the browser asked for. Screenshots go to
test-artifacts/console/ (40-…) for a human to look at.

Skips, saying why, where chromium or the playwright package is absent (as test_console_browser.py does)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import update

from gateway.console.router import SESSION_COOKIE
from gateway.models import RefreshToken
from kit.db import make_engine
from tests.console.test_console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Api,
    serving,
    shot,
    sign_in,
    sync_api,
)
from tests.integration.gateway.door import STAFF_PASSWORD, Backends

pytestmark = pytest.mark.integration

NOTE = "Quietvale: she moved flats, the new one is safe"
TITLE = "Quietvale: book the dentist"
LONG_NOTE = "Quietvale: asked about her brother in Minsk.\nShe is afraid to call him from her own phone."


@pytest.fixture
def gateway_served(backends: Backends, gateway_settings) -> Iterator[tuple[str, Any]]:
    """The gateway over real HTTP, as test_console_browser.py serves it, and its settings."""
    from gateway.main import create_app

    settings = gateway_settings(backends.secrets_dir, **{f"{name}_url": url for name, url in backends.urls.items()})
    with serving(create_app(settings)) as url:
        yield url, settings


@pytest.fixture
def served(gateway_served: tuple[str, Any]) -> str:
    return gateway_served[0]


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
            page.wait_for_url(served + case_path + "#notes")  # back at the notes, not at the top of the page
            assert NOTE in page.locator("#notes .notes").inner_text()

            page.get_by_label("Task", exact=True).fill(TITLE)
            assert page.get_by_label("Due", exact=True).input_value() == datetime.now(UTC).date().isoformat()
            assert page.get_by_label("For", exact=True).input_value() == ala
            page.get_by_role("button", name="Add task").click()
            page.wait_for_url(served + case_path + "#tasks")
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
            first.get_by_role("button", name="Mark done").click()
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


def test_a_note_written_past_the_idle_half_hour_comes_back_to_copy_in_a_real_browser(gateway_served):
    """The caseworker writes a note while the session lapses (its refresh token expired, as after 30 minutes idle)
    and presses "Add note": the sign-in page says nothing was saved and shows the note to copy, outside the sign-in
    form. Signed in again, they paste it and it is saved once."""
    served, settings = gateway_served
    api = Api(served)
    ala = api.user("caseworker")
    case = api.post("/api/intake/cases", api.bearer(ala, STAFF_PASSWORD), full_name="Ніна Багінская", country="LT")
    case_path = f"/console/cases/{case['id']}"

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 1000})
            page = context.new_page()
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            sign_in(page, served, ala)
            page.wait_for_url(served + "/console/cases")
            page.goto(served + case_path)
            page.get_by_label("New note").fill(LONG_NOTE)

            lapsed_at = datetime.now(UTC) - timedelta(minutes=1)
            engine = make_engine(settings.db_url)
            with engine.begin() as connection:
                connection.execute(update(RefreshToken).values(expires_at=lapsed_at))
            engine.dispose()
            context.add_cookies([{"name": SESSION_COOKIE, "value": "stale", "url": served}])
            page.get_by_role("button", name="Add note").click()

            assert page.locator("#unsaved").is_visible()
            kept = page.locator("#typed textarea")
            assert kept.input_value() == LONG_NOTE and kept.get_attribute("readonly") is not None
            assert page.locator("form #typed").count() == 0  # never sent with the sign-in form
            shot(page, "43-lapsed-note-to-copy")

            sign_in(page, served, ala)
            page.wait_for_url(served + "/console/cases")
            page.goto(served + case_path)
            page.get_by_label("New note").fill(LONG_NOTE)
            page.get_by_role("button", name="Add note").click()
            page.wait_for_url(served + case_path + "#notes")  # back at the notes, not at the top of the page
            assert page.locator("#notes .notes").inner_text().count("afraid to call him") == 1
        finally:
            browser.close()

    assert not [url for url in asked if "quietvale" in unquote(url).lower()]
