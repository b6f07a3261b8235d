"""The case page's needs, reopening and duplicates (issue #17): each need shows its status with a button per move it
may make, a closed case has "Reopen", and a case is marked a duplicate of the one kept by its reference, typed into a
POST form (never a URL)."""

from __future__ import annotations

import html
import re

import pytest

from tests.console.test_console_pages import door, signed_in, submit  # noqa: F401  (the fixture, used by name)
from tests.console.world import csrf_of, variants
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration


async def _new_case(visitor, full_name: str) -> tuple[str, str]:
    created = await submit(visitor, "/console/cases/new", "/console/cases", {"full_name": full_name, "country": "LT"})
    case_id = re.search(r'/console/cases/([0-9a-f-]{36})"', created.text).group(1)
    reference = re.search(r"<h1>(BY-\d{4}-\d{5})", (await visitor.get(f"/console/cases/{case_id}")).text).group(1)
    return case_id, reference


async def test_needs_move_a_closed_case_reopens_and_a_duplicate_points_at_the_kept_case(door: Door):  # noqa: F811
    visitor, _ = await signed_in(door, "caseworker")
    case_id, _ = await _new_case(visitor, variants()[3]["belarusian"])
    kept_id, kept_reference = await _new_case(visitor, variants()[4]["belarusian"])
    page = f"/console/cases/{case_id}"

    assert (await submit(visitor, page, f"{page}/needs", {"category": "housing", "urgency": "high"})).status_code == 303
    shown = (await visitor.get(page)).text
    need_id = re.search(rf'action="{page}/needs/([0-9a-f-]{{36}})/status"', shown).group(1)
    start = '<button type="submit" name="status" value="in_progress">Start work<span class="sr-only">: Housing</span>'
    assert start + "</button>" in shown  # the need it moves, named for a screen reader
    # dropping (for good) asks first: a disclosure naming the need, whose own form sends it
    assert '<button type="submit" name="status" value="dropped"' not in shown
    assert f'<details class="confirm" id="drop-{need_id}">' in shown and "Drop the need: Housing…" in shown
    assert "Yes, drop this need" in shown
    moved = await submit(visitor, page, f"{page}/needs/{need_id}/status", {"status": "in_progress"})
    assert moved.status_code == 303 and moved.headers["location"] == f"{page}#needs-h"  # back where the button was
    shown = (await visitor.get(page)).text
    assert "in progress" in shown and 'value="in_progress"' not in shown and 'value="met"' in shown
    backwards = await submit(visitor, page, f"{page}/needs/{need_id}/status", {"status": "open"})
    assert backwards.status_code == 409 and 'role="alert"' in backwards.text  # intake refuses; the page says why

    closed = await submit(visitor, page, f"{page}/close", {})
    assert closed.status_code == 303
    shown = (await visitor.get(page)).text
    assert "Reopen the case" in shown and f'action="{page}/needs/{need_id}/status"' not in shown
    assert (await submit(visitor, page, f"{page}/reopen", {})).status_code == 303
    assert "Reopen the case" not in (await visitor.get(page)).text

    unknown = await submit(visitor, page, f"{page}/duplicate-of", {"reference": "BY-1999-00001"})
    assert unknown.status_code == 409 and "No case with this reference" in unknown.text
    # A mistyped reference would retire the wrong case: asked once more, naming both, and nothing done yet
    asked = await submit(visitor, page, f"{page}/duplicate-of", {"reference": kept_reference.lower()})
    assert asked.status_code == 200 and 'id="duplicate-asked"' in asked.text and 'role="alert"' in asked.text
    assert f'name="confirmed" value="{kept_reference}"' in asked.text and kept_reference in html.unescape(asked.text)
    assert 'id="mark-duplicate"' in (await visitor.get(page)).text  # not marked yet
    marked = await submit(visitor, page, f"{page}/duplicate-of", {"reference": kept_reference.lower(),
                                                                   "confirmed": kept_reference})
    assert marked.status_code == 303 and "?" not in marked.headers["location"]
    shown = (await visitor.get(page)).text
    assert f'href="/console/cases/{kept_id}">{kept_reference}</a>' in shown  # the kept case by its reference
    assert 'id="mark-duplicate"' not in shown and "Close the case" not in shown
    listed = (await visitor.get("/console/cases")).text
    assert kept_reference in listed and case_id not in listed  # out of the caseload: the kept case is worked on


async def test_a_duplicate_mark_sent_from_the_page_of_a_case_erased_meanwhile_is_refused_in_words(door: Door):  # noqa: F811
    visitor, _ = await signed_in(door, "caseworker")
    case_id, _ = await _new_case(visitor, variants()[5]["belarusian"])
    _, kept_reference = await _new_case(visitor, variants()[6]["belarusian"])
    page = f"/console/cases/{case_id}"
    left_open = (await visitor.get(page)).text  # the page stays open in one tab; the case is erased in another
    assert (await submit(visitor, f"{page}/erase", f"{page}/erase", {})).status_code == 303

    for reference in (kept_reference, "BY-1999-00001"):
        sent = await visitor.post(f"{page}/duplicate-of", data={"csrf": csrf_of(left_open), "reference": reference,
                                                                "confirmed": reference},
                                  headers={"Accept": "text/html"})
        assert sent.status_code == 409 and sent.headers["content-type"].startswith("text/html"), sent.text
        assert 'role="alert"' in sent.text and variants()[5]["belarusian"] not in sent.text


async def test_the_new_words_are_there_in_every_language():
    from gateway.console import i18n
    words = ("need_in_progress", "reopen_case", "mark_duplicate", "no_case_with_reference", "status_duplicate",
             "need_drop_ask", "need_drop_said", "need_drop_yes", "duplicate_match_high", "duplicate_match_name_only",
             "mark_duplicate_said", "mark_duplicate_yes")
    for language in i18n.STAFF_LANGUAGES:
        assert all(i18n.MESSAGES[language].get(word) for word in words), language
