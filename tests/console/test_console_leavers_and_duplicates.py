"""The console, in-process against the gateway and every service as a process: a supervisor's caseload tells the
cases whose caseworkers all left (disabled by an admin: intake learns it from the gateway's event) — counted at the
top, marked on their rows with their waiting tasks, the leaver's name marked, and listed alone on asking — until one
is given to someone; and a case marked a duplicate offers "Reopen" to its own caseworkers (never to a visitor by
break-glass, who is not offered the mark either)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from gateway.console import i18n
from tests.console.test_console_caseload import REASON, assigned, open_case, person, state_reason
from tests.console.test_console_pages import eventually_ok, submit
from tests.console.world import csrf_of, variants
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

EN = {key: str(escape(text)) for key, text in i18n.MESSAGES["en"].items()}


def _row(page: str, case_id: str) -> str:
    return page.split(f'id="case-{case_id}"', 1)[1].split("</tr>", 1)[0]


async def test_the_caseload_tells_a_case_whose_caseworkers_left_until_a_supervisor_gives_it_to_someone(door: Door):
    sam = await person(door, "supervisor")
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    left_alone = await open_case(door, bo, variants()[10]["belarusian"])
    worked = await open_case(door, ala, variants()[11]["belarusian"])
    task = await door.client.post(f"/api/intake/cases/{left_alone['id']}/tasks", headers=bo.api,
                                  json={"title": "Find a flat", "due_on": datetime.now(UTC).date().isoformat()})
    assert task.status_code == 201, task.text
    users = (await door.client.get("/api/admin/users", headers=await door.admin())).json()["items"]
    (bo_id,) = [u["id"] for u in users if u["username"] == bo.username]
    disabled = await door.client.post(f"/api/admin/users/{bo_id}/disable", headers=await door.admin())
    assert disabled.status_code == 200, disabled.text

    async def caseload_marks_it():  # noqa: ANN202  (once intake has the gateway's `user.disabled`)
        page = await sam.visitor.get("/console/caseload")
        marked = 'id="unattended-notice"' in page.text and 'class="unattended"' in page.text
        return page if marked else page.__class__(409)

    caseload = await eventually_ok(caseload_marks_it)
    assert caseload.status_code == 200 and 'id="unattended-notice"' in caseload.text
    assert i18n.counter("en")("caseload_unattended_n", 1).split(":")[0] in caseload.text
    row = _row(caseload.text, left_alone["id"])
    assert 'class="unattended"' in row and EN["caseload_unattended"] in row and "1 open task waiting" in row
    assert f'{bo.username} <small>({EN["assignee_inactive"]})</small>' in row  # the leaver, marked, still holds it
    other = _row(caseload.text, worked["id"])
    assert EN["caseload_unattended"] not in other and EN["assignee_inactive"] not in other

    only = await sam.visitor.get("/console/caseload", params={"unattended": "1"})
    assert left_alone["reference"] in only.text and worked["reference"] not in only.text
    assert 'id="unattended-filter" aria-current="page"' in only.text and 'id="unattended-notice"' not in only.text
    assert EN["caseload_unattended_explained"] in only.text

    # Given to ala beside bo (who keeps it, should he come back): the waiting task is hers; nothing is unattended.
    action = f"/console/caseload/{left_alone['id']}/assignees"
    given = await assigned(lambda: sam.visitor.post(action, data={
        "csrf": csrf_of(only.text), "usernames": f"{bo.username}, {ala.username}", "unattended": "1"}))
    assert given.status_code == 303, given.text
    assert given.headers["location"] == f"/console/caseload?unattended=1&given={left_alone['id']}"
    after = await sam.visitor.get("/console/caseload")
    assert 'id="unattended-notice"' not in after.text and EN["caseload_unattended"] not in after.text
    tasks = await door.client.get(f"/api/intake/cases/{left_alone['id']}/tasks", headers=ala.api)
    assert [(t["title"], t["assignee"]) for t in tasks.json()["items"]] == [("Find a flat", ala.username)]


async def test_a_duplicate_offers_reopen_to_its_own_caseworker_and_neither_reopen_nor_the_mark_to_a_visitor(
        door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    kept = await open_case(door, ala, variants()[5]["belarusian"])
    twin = await open_case(door, ala, variants()[5]["russian"])
    page = f"/console/cases/{twin['id']}"
    assert 'id="mark-duplicate"' in (await ala.visitor.get(page)).text

    assert (await state_reason(bo.visitor, twin["id"], REASON)).status_code == 303
    visited = await bo.visitor.get(page)
    assert visited.status_code == 200 and twin["reference"] in visited.text
    assert 'id="mark-duplicate"' not in visited.text  # a stated reason opens a case; it does not retire it

    marked = await submit(ala.visitor, page, f"{page}/duplicate-of", {"reference": kept["reference"],
                                                                       "confirmed": kept["reference"]})
    assert marked.status_code == 303, marked.text
    shown = (await ala.visitor.get(page)).text
    assert 'id="reopen"' in shown and EN["reopen_duplicate_case"] in shown and EN["reopen_duplicate_help"] in shown
    assert 'id="reopen"' not in (await bo.visitor.get(page)).text

    reopened = await submit(ala.visitor, page, f"{page}/reopen", {})
    assert reopened.status_code == 303 and reopened.headers["location"].startswith(page)
    shown = (await ala.visitor.get(page)).text
    assert re.search(r'<span class="status">[^<]*</span>', shown).group(0) == (
        f'<span class="status">{EN["case_status_open"]}</span>')
    assert 'id="duplicate-of"' not in shown and 'id="mark-duplicate"' in shown and 'id="reopen"' not in shown
    assert EN["timeline.case.duplicate_undone"] in shown
    listed = (await ala.visitor.get("/console/cases")).text
    assert twin["reference"] in listed  # back in her list



async def test_a_duplicates_timeline_names_the_case_kept_its_consent_was_narrowed_with(door: Door):
    ala = await person(door, "caseworker")
    kept = await open_case(door, ala, variants()[6]["belarusian"])
    twin = await open_case(door, ala, variants()[6]["russian"])
    for case in (kept, twin):
        agreed = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
            "categories": ["medical"], "share_contact": True, "share_health": True, "method": "written"})
        assert agreed.status_code == 200, agreed.text
    marked = await door.client.post(f"/api/intake/cases/{twin['id']}/duplicate-of", headers=ala.api,
                                    json={"case_id": kept["id"]})
    assert marked.status_code == 200, marked.text

    withdrawn = await submit(ala.visitor, f"/console/cases/{kept['id']}", f"/console/cases/{kept['id']}/consent",
                             {"withdraw": "yes", "method": "verbal"})
    assert withdrawn.status_code == 303, withdrawn.text
    timeline = (await ala.visitor.get(f"/console/cases/{twin['id']}")).text
    timeline = timeline[timeline.index('id="timeline"'):]
    assert EN["consent_narrowed_with"] in timeline
    assert f'<a href="/console/cases/{kept["id"]}">{kept["reference"]}</a>' in timeline

def test_the_new_words_are_there_in_every_staff_language():
    words = ("reopen_duplicate_case", "reopen_duplicate_help", "timeline.case.duplicate_undone",
             "timeline.case.duplicate_kept_undone", "timeline.tasks.handed_on", "audit.tasks.hand_on",
             "caseload_unattended_show", "caseload_unattended_filter", "caseload_unattended_explained",
             "caseload_unattended", "assignee_inactive", "consent_withdraw_only", "consent_narrowed_with")
    for language in i18n.STAFF_LANGUAGES:
        assert all(i18n.MESSAGES[language].get(word, "").strip() for word in words), language
        tn = i18n.counter(language)
        for counted in ("caseload_unattended_n", "caseload_unattended_more_n", "caseload_waiting_tasks_n"):
            assert all(str(n) in tn(counted, n) for n in (1, 3, 5, 21)), (language, counted)
    assert i18n.counter("ru")("caseload_waiting_tasks_n", 3) == "3 открытые задачи ждут"
    assert i18n.counter("be")("caseload_unattended_n", 5).startswith("5 спраў засталося")
