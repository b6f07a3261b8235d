"""Correcting a case's record in the console, and forms sent twice: on the case page a note or a document added in
error is removed by the case's own caseworkers (a reason chosen, asked once more), leaving a tombstone that says who,
when and why; an open task is edited (on the version the page showed) or cancelled, and the landing page follows.
Every form that adds, sends or removes something carries an Idempotency-Key made when it was drawn: sent twice (a
double click, a reload of a failed answer), it acts once — a note, a task, a need, a document, and a referral, which
sends a person's data to a partner."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from gateway.console import i18n
from tests.console.test_console_caseload import Caseworker, open_case, person, state_reason
from tests.console.test_console_pages import eventually_ok
from tests.console.world import add_partner, csrf_of
from tests.integration.gateway.door import Door

pytestmark = pytest.mark.integration

EN = {key: str(escape(text)) for key, text in i18n.MESSAGES["en"].items()}
WRONG_PERSON = "Piatro V. hides at the Brest flat"


def _day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


def form_of(page: str, action: str) -> str:
    """The form posting to `action`, as the page draws it."""
    start = page.index(f'action="{action}"')
    return page[start:page.index("</form>", start)]


def key_of(page: str, action: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', form_of(page, action)).group(1)


async def _listed(door: Door, who: Caseworker, case_id: str, what: str) -> list[dict]:
    answer = await door.client.get(f"/api/intake/cases/{case_id}/{what}", headers=who.api, params={"limit": 100})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_each_form_of_the_case_page_sent_twice_adds_once(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, "Ганна Сянькевіч")
    path = f"/console/cases/{case['id']}"
    page = (await ala.visitor.get(path)).text
    csrf = csrf_of(page)
    sent = {
        "notes": {"text": "Phoned; she is safe."},
        "tasks": {"title": "Book the doctor", "due_on": _day(2), "assignee": ala.username},
        "needs": {"category": "medical", "urgency": "high", "notes": "asthma"},
    }
    for what, form in sent.items():
        key = key_of(page, f"{path}/{what}")
        for _ in range(2):  # a double click, or the page's answer reloaded
            posted = await ala.visitor.post(f"{path}/{what}", data={"csrf": csrf, "idempotency_key": key, **form})
            assert posted.status_code == 303, posted.text
        assert len(await _listed(door, ala, case["id"], what)) == 1, what
    # Each form draws a key of its own, and a new one on every page.
    keys = {key_of(page, f"{path}/{what}") for what in (*sent, "documents")}
    assert len(keys) == 4 and key_of((await ala.visitor.get(path)).text, f"{path}/notes") not in keys

    key = key_of(page, f"{path}/documents")
    for _ in range(2):
        upload = await ala.visitor.post(f"{path}/documents", data={"csrf": csrf, "kind": "release",
                                                                   "idempotency_key": key},
                                        files={"file": ("release.txt", b"release order", "text/plain")})
        assert upload.status_code == 303, upload.text
    assert len(await _listed(door, ala, case["id"], "documents")) == 1

    # Refused, the form comes back under a new key (the old one holds the refusal); what was typed is kept.
    key = key_of(page, f"{path}/notes")
    refused = await ala.visitor.post(f"{path}/notes", data={"csrf": csrf, "idempotency_key": "k-" + key,
                                                            "text": "x" * 10_001})
    assert refused.status_code == 422 and key_of(refused.text, f"{path}/notes") != "k-" + key

    # A key changed into what no header carries or the API takes (a tampered page) is still a note added, once.
    for tampered in (" spaced ", "k" * 201, "ключ"):
        posted = await ala.visitor.post(f"{path}/notes", data={"csrf": csrf, "idempotency_key": tampered,
                                                               "text": f"Key {len(tampered)}"})
        assert posted.status_code == 303, (tampered, posted.status_code)
    assert len(await _listed(door, ala, case["id"], "notes")) == 4


async def test_the_referral_form_sent_twice_refers_once(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, "Зміцер Бандарэнка", country="LT")
    clinic = await add_partner(door)
    given = await door.client.put(f"/api/intake/cases/{case['id']}/consent", headers=ala.api, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "written"})
    assert given.status_code == 200, given.text
    path = f"/console/cases/{case['id']}"
    form = await ala.visitor.post(f"{path}/refer/partners", data={
        "csrf": csrf_of((await ala.visitor.get(f"{path}/refer")).text), "category": "medical", "country": "LT"})
    key = key_of(form.text, f"{path}/refer")
    # Finding partners again keeps the key once something was typed into the packet.
    again = await ala.visitor.post(f"{path}/refer/partners", data={
        "csrf": csrf_of(form.text), "category": "medical", "country": "LT", "display_name": "K.",
        "idempotency_key": key})
    assert key_of(again.text, f"{path}/refer") == key

    data = {"csrf": csrf_of(form.text), "idempotency_key": key, "category": "medical", "partner_id": clinic["id"],
            "display_name": "K.", "packet_language": "be", "note": "needs a lung specialist"}
    first = await eventually_ok(lambda: ala.visitor.post(f"{path}/refer", data=data))
    second = await ala.visitor.post(f"{path}/refer", data=data)
    assert first.status_code == second.status_code == 303, second.text
    referrals = await door.client.get("/api/referrals/referrals", headers=ala.api, params={"case_id": case["id"]})
    assert len(referrals.json()["items"]) == 1
    # the caseworker's copy names the packet's language, as the partner's does
    sent = await ala.visitor.get(f"{path}/referrals/{referrals.json()['items'][0]['id']}")
    assert sent.status_code == 200 and "<dd>Belarusian</dd>" in sent.text


async def test_a_note_and_a_document_added_in_error_are_removed_from_the_case_page(door: Door):
    ala = await person(door, "caseworker")
    case = await open_case(door, ala, "Ганна Сянькевіч")
    path = f"/console/cases/{case['id']}"
    note = (await door.client.post(f"/api/intake/cases/{case['id']}/notes", headers=ala.api,
                                   json={"text": WRONG_PERSON})).json()
    scan = (await door.client.post(f"/api/intake/cases/{case['id']}/documents", headers=ala.api,
                                   files={"file": ("passport-of-someone.txt", b"passport", "text/plain")},
                                   data={"kind": "identity"})).json()
    page = (await ala.visitor.get(path)).text
    remove_note, remove_document = f"{path}/notes/{note['id']}/remove", f"{path}/documents/{scan['id']}/remove"
    for action in (remove_note, remove_document):
        drawn = form_of(page, action)
        assert f'<label for="note-{note["id"]}-remove-reason">' in page
        assert 'name="reason" required' in drawn and EN["removal_reason_wrong_case"] in drawn
    assert EN["note_remove_said"] in page and EN["document_remove_yes"] in page

    # No reason chosen: said beside the field, the disclosure open, nothing removed.
    csrf = csrf_of(page)
    unsaid = await ala.visitor.post(remove_note, data={"csrf": csrf, "idempotency_key": key_of(page, remove_note)})
    assert unsaid.status_code == 422
    assert f'id="note-{note["id"]}-remove-reason-error"' in unsaid.text
    assert re.search(rf'<details class="confirm" id="note-{note["id"]}-remove" open>', unsaid.text)
    assert str(escape(WRONG_PERSON)) in unsaid.text

    key = key_of(page, remove_note)
    for _ in range(2):
        removed = await ala.visitor.post(remove_note, data={"csrf": csrf, "idempotency_key": key,
                                                            "reason": "wrong_case"})
        assert removed.status_code == 303 and removed.headers["location"] == f"{path}#notes"
    removed = await ala.visitor.post(remove_document, data={"csrf": csrf, "reason": "wrong_case",
                                                            "idempotency_key": key_of(page, remove_document)})
    assert removed.status_code == 303 and removed.headers["location"] == f"{path}#documents-h"

    page = (await ala.visitor.get(path)).text
    assert WRONG_PERSON not in html.unescape(page) and "passport-of-someone" not in page
    assert remove_note not in page and remove_document not in page
    said = i18n.MESSAGES["en"]["note_removed"].split("{by}")[0]
    assert f'<li id="note-{note["id"]}" class="removed">' in page and str(escape(said)) in page
    assert EN["removal_reason_wrong_case"] in page and ala.username in page
    assert f'<tr id="document-{scan["id"]}" class="removed">' in page
    assert f'{path}/documents/{scan["id"]}"' not in page  # no download link left
    assert EN["timeline.note.removed"] in page and EN["timeline.document.removed"] in page
    assert (await ala.visitor.get(f"{path}/documents/{scan['id']}")).status_code == 303  # back to the case page


async def test_a_visitor_who_stated_a_reason_is_not_offered_corrections_and_is_refused_them(door: Door):
    ala, ben = await person(door, "caseworker"), await person(door, "caseworker")
    case = await open_case(door, ala, "Ганна Сянькевіч")
    path = f"/console/cases/{case['id']}"
    note = (await door.client.post(f"/api/intake/cases/{case['id']}/notes", headers=ala.api,
                                   json={"text": WRONG_PERSON})).json()
    assert (await state_reason(ben.visitor, case["id"], "She called the hotline; Ala is away")).status_code == 303
    page = (await ben.visitor.get(path)).text
    assert str(escape(WRONG_PERSON)) in page and f"/notes/{note['id']}/remove" not in page
    refused = await ben.visitor.post(f"{path}/notes/{note['id']}/remove",
                                     data={"csrf": csrf_of(page), "reason": "wrong_case"})
    assert refused.status_code == 403 and EN["problem_correct_holders_only"] in refused.text
    assert (await _listed(door, ala, case["id"], "notes"))[0]["text"] == WRONG_PERSON


async def test_an_open_task_is_edited_and_cancelled_and_the_landing_page_follows(door: Door):
    ala, ben = await person(door, "caseworker"), await person(door, "caseworker")
    case = await open_case(door, ala, "Ганна Сянькевіч")
    path = f"/console/cases/{case['id']}"
    # Until the gateway's event about his new account reaches intake, he is no caseworker it knows.
    added = await eventually_ok(lambda: door.client.post(f"/api/intake/cases/{case['id']}/assignees", headers=ala.api,
                                                         json={"username": ben.username}))
    assert added.status_code == 200, added.text
    task = (await door.client.post(f"/api/intake/cases/{case['id']}/tasks", headers=ala.api,
                                   json={"title": "Wrong title", "due_on": _day(30)})).json()
    page = (await ala.visitor.get(path)).text
    edit, cancel = f"{path}/tasks/{task['id']}/edit", f"{path}/tasks/{task['id']}/cancel"
    drawn = form_of(page, edit)
    assert f'<label for="task-{task["id"]}-title">' in drawn and 'value="Wrong title"' in drawn
    etag = re.search(r'name="etag" value="([^"]+)"', drawn).group(1)

    typed = {"csrf": csrf_of(page), "etag": html.unescape(etag), "title": "Call the lawyer", "due_on": _day(),
             "assignee": ala.username}
    for _ in range(2):  # sent twice: the second finds the task already as typed
        saved = await ala.visitor.post(edit, data=typed)
        assert saved.status_code == 303 and saved.headers["location"] == f"{path}#tasks"
    landing = (await ala.visitor.get("/console/cases")).text
    due = landing[landing.index('id="due-tasks"'):]
    assert "Call the lawyer" in due and "Wrong title" not in landing

    # Changed meanwhile by someone else: the form comes back with what was typed, saying so.
    stale = await ala.visitor.post(edit, data={**typed, "title": "Another title"})
    assert stale.status_code == 412 and EN["task_changed_meanwhile"] in stale.text
    assert re.search(rf'<details class="edit-task" id="task-{task["id"]}-edit" open>', stale.text)
    assert 'value="Another title"' in form_of(stale.text, edit)

    # Given to the colleague: it leaves her list and comes into his.
    fresh = (await ala.visitor.get(path)).text
    etag = html.unescape(re.search(r'name="etag" value="([^"]+)"', form_of(fresh, edit)).group(1))
    handed = await ala.visitor.post(edit, data={**typed, "etag": etag, "assignee": ben.username})
    assert handed.status_code == 303
    assert "Call the lawyer" not in (await ala.visitor.get("/console/cases")).text
    assert "Call the lawyer" in (await ben.visitor.get("/console/cases")).text

    fresh = (await ala.visitor.get(path)).text
    key = key_of(fresh, cancel)
    for _ in range(2):
        cancelled = await ala.visitor.post(cancel, data={"csrf": csrf_of(fresh), "idempotency_key": key})
        assert cancelled.status_code == 303, cancelled.text
    fresh = (await ala.visitor.get(path)).text
    assert EN["task_cancelled"] in fresh and edit not in fresh and cancel not in fresh
    assert EN["timeline.task.changed"] in fresh and EN["timeline.task.cancelled"] in fresh
    assert "Call the lawyer" not in (await ben.visitor.get("/console/cases")).text
