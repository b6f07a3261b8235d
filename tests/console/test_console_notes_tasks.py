"""Notes and tasks in the staff console (SPEC §4), in-process against the gateway and every service as a process: the
case page writes notes (newest first) and tasks (due date, overdue marked, "done"), each form posted with its CSRF
token and answered by a redirect to the case (nothing typed in any address); the caseworker's landing page lists
what is due today and overdue first, each linking to its case; the timeline says a note or task was added, never
its words; another caseworker's case takes nothing without a stated reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from gateway.console import i18n
from tests.console.test_console_caseload import open_case, person
from tests.console.world import csrf_of
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

EN = {key: str(escape(text)) for key, text in i18n.MESSAGES["en"].items()}
NOTE = "Met her at the station; the new phone works"
TITLE = "Ask the lawyer about the appeal"



def _day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


async def test_the_case_page_adds_notes_and_tasks_and_the_landing_page_lists_what_is_due(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, "Ганна Сянькевіч")
    page_path = f"/console/cases/{case['id']}"
    page = await ala.visitor.get(page_path)
    assert page.status_code == 200 and EN["case_notes"] in page.text and EN["no_tasks"] in page.text
    assert 'name="text"' in page.text and 'name="title"' in page.text and f"<option selected>{ala.username}" in page.text

    csrf = csrf_of(page.text)
    for text in ("first note", NOTE):
        added = await ala.visitor.post(f"{page_path}/notes", data={"csrf": csrf, "text": text})
        assert added.status_code == 303 and added.headers["location"] == f"{page_path}#notes"  # PRG, nothing typed
    task = await ala.visitor.post(f"{page_path}/tasks", data={"csrf": csrf, "title": TITLE, "due_on": _day(),
                                                              "assignee": ala.username})
    assert task.status_code == 303 and task.headers["location"] == f"{page_path}#tasks"  # where the form was
    late = await ala.visitor.post(f"{page_path}/tasks", data={"csrf": csrf, "title": "Late form", "due_on": _day(-3),
                                                              "assignee": ala.username})
    later = await ala.visitor.post(f"{page_path}/tasks", data={"csrf": csrf, "title": "Next month",
                                                               "due_on": _day(30), "assignee": ala.username})
    soon = await ala.visitor.post(f"{page_path}/tasks", data={"csrf": csrf, "title": "Bring the lease",
                                                              "due_on": _day(3), "assignee": ala.username})
    assert late.status_code == later.status_code == soon.status_code == 303

    page = (await ala.visitor.get(page_path)).text
    assert page.index(str(escape(NOTE))) < page.index("first note")  # newest first
    assert page.index("Late form") < page.index(str(escape(TITLE))) < page.index("Next month")  # soonest first
    assert EN["task_overdue"] in page and 'class="overdue"' in page
    assert EN["timeline.note.added"] in page and EN["timeline.task.added"] in page

    # An empty note and a title too long are refused in words; nothing is saved.
    empty = await ala.visitor.post(f"{page_path}/notes", data={"csrf": csrf, "text": "  "})
    assert empty.status_code == 422 and 'role="alert"' in empty.text
    long = await ala.visitor.post(f"{page_path}/tasks", data={"csrf": csrf, "title": "x" * 301, "due_on": _day()})
    assert long.status_code == 422

    # The landing page: due today and overdue first, soonest first, each linking to its case; not next month's.
    landing = (await ala.visitor.get("/console/cases")).text
    assert EN["due_today_overdue"] in landing
    due = landing[landing.index('id="due-tasks"'):landing.index(EN["my_cases_explained"])]
    assert due.index("Late form") < due.index(str(escape(TITLE))) and "Next month" not in due
    assert f'href="/console/cases/{case["id"]}"' in due and case["reference"] in due
    # and, apart, what comes in the next seven days: the week planned, not only the day
    coming = landing[landing.index('id="coming-tasks"'):landing.index(EN["my_cases_explained"])]
    assert EN["tasks_coming_week"] in coming and "Bring the lease" in coming and "Next month" not in coming
    assert "Bring the lease" not in due.split('id="coming-tasks"')[0] and str(escape(TITLE)) not in coming

    # Done from the landing page: back to it, the task gone from what is due and shown done on the case.
    task_id = re.findall(r'id="due-([0-9a-f-]{36})"', due)[1]  # the second one listed: today's
    done = await ala.visitor.post(f"/console/tasks/{task_id}/done",
                                  data={"csrf": csrf_of(landing), "case_id": case["id"]})
    assert done.status_code == 303 and done.headers["location"] == "/console/cases"
    landing = (await ala.visitor.get("/console/cases")).text
    assert str(escape(TITLE)) not in landing and "Late form" in landing
    page = (await ala.visitor.get(page_path)).text
    assert EN["task_done"] in page and EN["timeline.task.done"] in page

    # Done from the case page: back to the case.
    late_id = re.findall(r'id="task-([0-9a-f-]{36})"', page)[0]
    done = await ala.visitor.post(f"/console/tasks/{late_id}/done",
                                  data={"csrf": csrf_of(page), "case_id": case["id"], "from": "case"})
    assert done.status_code == 303 and done.headers["location"] == f"{page_path}#tasks"
    assert 'id="due-tasks"' not in (await ala.visitor.get("/console/cases")).text  # nothing due any more


async def test_another_caseworker_s_case_takes_no_note_or_task_without_a_reason(door: Door):
    ala, bo = await person(door, "caseworker"), await person(door, "caseworker")
    case = await open_case(door, ala, "Вольга Карповіч")
    made = await door.client.post(f"/api/intake/cases/{case['id']}/tasks", headers=ala.api,
                                  json={"title": "Hers", "due_on": _day()})
    assert made.status_code == 201, made.text
    own = (await bo.visitor.get("/console/cases")).text
    csrf = csrf_of(own)
    refused = await bo.visitor.post(f"/console/cases/{case['id']}/notes", data={"csrf": csrf, "text": "not mine"})
    # not saved, and given back to copy only (the page that asks for a reason: nothing of the case on it)
    assert refused.status_code == 403 and "not mine" not in refused.text.split('id="typed"')[0]
    assert "not mine" in refused.text.split('id="typed"')[-1]
    assert 'name="text"' not in refused.text.split('id="typed"')[-1]  # given back to copy, never as a form's field
    done = await bo.visitor.post(f"/console/tasks/{made.json()['id']}/done", data={"csrf": csrf})
    assert done.status_code == 403 and "Hers" not in done.text
    no_csrf = await ala.visitor.post(f"/console/cases/{case['id']}/notes", data={"text": "forged"})
    assert no_csrf.status_code == 403
    notes = await door.client.get(f"/api/intake/cases/{case['id']}/notes", headers=ala.api)
    assert notes.json()["items"] == []


def test_every_word_of_notes_and_tasks_is_in_each_language():
    ours = {key for key in i18n.MESSAGES["en"] if key.startswith(("timeline.note", "timeline.task"))} | {
        "case_notes", "no_notes", "new_note", "add_note", "case_tasks", "no_tasks", "task_title", "task_due",
        "task_assignee", "add_task", "mark_done", "task_done", "task_open", "task_overdue", "task_today",
        "due_today_overdue", "tasks_coming_week"}
    for language in i18n.STAFF_LANGUAGES:
        assert ours <= set(i18n.MESSAGES[language]), language
        assert all(i18n.MESSAGES[language][key].strip() for key in ours), language
    assert not [key for key in ours if i18n.MESSAGES["be"][key] == i18n.MESSAGES["ru"][key] == i18n.MESSAGES["en"][key]]
