"""The programme report's page (issue #20) for coordinators and finance, against the real reports service fed by
the other services' events: a period chosen with a POST form (nothing chosen goes in a URL), charts drawn on the
server as SVG images with a title and a description, tables with every heading and month in the visitor's
language, small numbers as «<5», the CSV as an attachment; a first month after the last one said in words beside
the fields; other roles refused. In-process gateway in front of every service as a process."""

from __future__ import annotations

import asyncio
import html
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.console import i18n
from gateway.console.programme import month_name
from tests.console.test_console_pages import signed_in
from tests.console.world import backends_publishing_months_under_way, csrf_of
from tests.integration.gateway.door import Backends, Door

pytestmark = pytest.mark.integration

PROGRAMME = "/console/programme"


def this_month() -> str:
    """The month the reports service counts in (UTC), read when asked: the suite may cross a month's end."""
    return datetime.now(UTC).strftime("%Y-%m")


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    yield from backends_publishing_months_under_way(tmp_path_factory)


def said(page: str, key: str, language: str) -> bool:
    return i18n.MESSAGES[language][key] in html.unescape(page)


async def open_cases(door: Door, count: int) -> list[dict]:
    caseworker = await door.staff("caseworker")
    cases = []
    for n in range(count):
        made = await door.client.post("/api/intake/cases", headers=caseworker, json={
            "full_name": f"Programme Person {uuid.uuid4().hex[:6]}", "country": "LT"})
        assert made.status_code == 201, made.text
        cases.append(made.json())
        if n < 2:  # two needs: fewer than five, so withheld
            need = await door.client.post(f"/api/intake/cases/{made.json()['id']}/needs", headers=caseworker,
                                          json={"category": "legal", "urgency": "high"})
            assert need.status_code == 201, need.text
    return cases


async def reported(door: Door, headers: dict[str, str], opened: int) -> dict:
    """The report once the reports service has applied the cases opened here."""
    deadline = time.monotonic() + 30
    while True:
        answer = await door.client.get("/api/reports/programme", headers=headers,
                                       params={"from": this_month(), "to": this_month()})
        if answer.status_code == 200:
            cases = answer.json()["cases"]["cells"][this_month()]["opened"]
            if isinstance(cases, int) and cases >= opened:
                return answer.json()
        assert time.monotonic() < deadline, answer.text
        await asyncio.sleep(0.2)


async def test_a_coordinator_reads_the_programme_in_their_language_with_charts_and_small_numbers_withheld(door: Door):
    await open_cases(door, 6)
    coordinator, _ = await signed_in(door, "coordinator")
    await reported(door, await door.staff("coordinator"), 6)
    for language in i18n.STAFF_LANGUAGES:
        await coordinator.get(f"/console/language/{language}")
        page = await coordinator.get(PROGRAMME)
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        for key in ("programme_title", "programme_cases", "programme_needs", "programme_referrals", "programme_aid",
                    "programme_small_numbers", "programme_funnel", "category_legal"):
            assert said(page.text, key, language), (language, key)
        assert month_name(this_month(), language) in text
        # The charts: images with their title and description, drawn here (no script, nothing fetched).
        charts = re.findall(r'<svg class="chart[^"]*" id="([a-z-]+)"[^>]*role="img"', page.text)
        assert {"cases-chart", "referrals-chart", "funnel"} <= set(charts), charts
        assert f'<title id="cases-chart-title">{i18n.MESSAGES[language]["programme_cases_chart"]}</title>' in text
        # Two needs this month: withheld, in the table and in its totals.
        needs = text[text.index('id="needs"'):text.index("</table>", text.index('id="needs"'))]
        assert "<5" in needs and "≥" in needs
        assert "Programme Person" not in text

    # The period is chosen with a POST; a first month after the last is said beside the fields.
    page = await coordinator.get(PROGRAMME)
    earlier = (datetime.now(UTC).date().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    backwards = await coordinator.post(PROGRAMME, data={"csrf": csrf_of(page.text), "from": this_month(),
                                                        "to": earlier})
    assert backwards.status_code == 200 and said(backwards.text, "programme_bad_period", language)
    assert 'id="from" name="from" aria-invalid="true" aria-describedby="problem"' in backwards.text
    assert '<form method="get"' not in page.text.lower()

    chosen = await coordinator.post(PROGRAMME, data={"csrf": csrf_of(page.text), "from": this_month(),
                                                     "to": this_month()})
    assert chosen.status_code == 200
    assert html.unescape(chosen.text).count(month_name(this_month(), language)) >= 2  # the period and the table's row
    # (A month under way is unpublished by default, and the page says why: tests/unit/gateway/
    # test_console_programme_aid.py; here the reports service publishes it.)
    assert 'id="months-pending"' not in chosen.text and 'id="aid-pending"' not in chosen.text

    csv = await coordinator.post(PROGRAMME + "/csv", data={"csrf": csrf_of(page.text), "from": this_month(),
                                                          "to": this_month()})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"].startswith("attachment;")
    assert csv.content.startswith("\ufeff".encode())  # UTF-8 said to the spreadsheet it is opened in
    assert "Programme Person" not in csv.text and "<5" in csv.text


async def test_finance_reads_it_too_and_other_roles_are_refused(door: Door):
    finance, _ = await signed_in(door, "finance")
    page = await finance.get(PROGRAMME)
    assert page.status_code == 200 and 'href="/console/programme"' in page.text
    for role in ("caseworker", "supervisor", "admin"):
        visitor, _ = await signed_in(door, role)
        assert (await visitor.get(PROGRAMME)).status_code == 403, role
        assert 'href="/console/programme"' not in (await visitor.get("/", follow_redirects=True)).text, role
