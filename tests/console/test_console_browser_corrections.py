"""Removing a document added to the wrong case, in a real browser (headless Debian chromium driven by Playwright,
against the gateway over HTTP in front of every service): the caseworker opens "Remove this document…" beside it,
chooses why, confirms, and comes back to the documents, where a line says who removed it, when and why; the file can
no longer be downloaded. Nothing of it is in an address the browser asked for. Screenshots go to
test-artifacts/console/ (44-…).

Skips, saying why, where chromium or the playwright package is absent (as test_console_browser.py does)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.console.test_console_browser import CHROMIUM, CHROMIUM_ARGS, Api, shot, sign_in, sync_api
from tests.console.test_console_browser_notes_tasks import gateway_served, served  # noqa: F401 (fixtures)
from tests.integration.gateway.door import STAFF_PASSWORD

pytestmark = pytest.mark.integration

SCAN = "Quietvale-passport-of-someone-else.txt"


def test_a_document_added_to_the_wrong_case_is_removed_from_the_case_page_in_a_real_browser(served: str):  # noqa: F811
    api = Api(served)
    ala = api.user("caseworker")
    token = api.bearer(ala, STAFF_PASSWORD)
    case = api.post("/api/intake/cases", token, full_name="Тацяна Лукашэвіч", country="LT")
    uploaded = api.http.post(f"/api/intake/cases/{case['id']}/documents", headers=token, data={"kind": "identity"},
                             files={"file": (SCAN, b"passport of another person", "text/plain")})
    assert uploaded.status_code == 201, uploaded.text
    case_path = f"/console/cases/{case['id']}"

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            sign_in(page, served, ala)
            page.wait_for_url(served + "/console/cases")
            page.goto(served + case_path)
            row = page.locator(f"#document-{uploaded.json()['id']}")
            assert SCAN in row.inner_text()

            row.get_by_text("Remove this document").click()  # the disclosure opens, without script
            reason = row.get_by_label("Why it is removed")
            assert reason.is_visible()
            row.get_by_role("button", name="Yes, remove the document").click()
            assert page.url == served + case_path  # no reason chosen: the browser asks for one, nothing is sent
            reason.select_option(label="added to the wrong case")
            shot(page, "44-document-remove-confirm")
            row.get_by_role("button", name="Yes, remove the document").click()
            page.wait_for_url(served + case_path + "#documents-h")

            row = page.locator(f"#document-{uploaded.json()['id']}")
            said = row.inner_text()
            assert SCAN not in said and f"Removed by {ala}" in said and "added to the wrong case" in said
            assert row.get_by_role("link").count() == 0  # nothing left to download
            assert "Document removed" in page.locator("ol.timeline").inner_text()
            shot(page, "45-document-removed")
        finally:
            browser.close()

    assert [url for url in asked if not url.startswith(served)] == []  # nothing loaded from outside
    assert not [url for url in asked if "quietvale" in unquote(url).lower()]
