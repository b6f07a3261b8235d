"""Notes and tasks on a case (SPEC §4): written, listed and marked done by its caseworkers only, sealed under the
case's key, on its timeline without their words, and gone with the case when it is erased."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kit.db import is_sqlite
from services.intake import names
from services.intake.models import Note, Task, kit_tables
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

NEEDLE_NOTE = "Qxv-needle-note: hides at the Zvyazda flat"
NEEDLE_TITLE = "Qxv-needle-task: call the Zvyazda lawyer"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def _day(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


async def _case_of(intake: Intake, *, sub: str = "caseworker-1", username: str = "anna") -> tuple[dict, dict]:
    await intake.staff(sub, username)
    who = intake.as_("caseworker", sub=sub, username=username)
    created = await intake.client.post("/api/intake/cases", json={"full_name": "Алеся Бондар"}, headers=who)
    assert created.status_code == 201, created.text
    return created.json(), who


async def test_notes_are_written_listed_newest_first_and_on_the_timeline_without_their_text(intake: Intake):
    case, anna = await _case_of(intake)
    path = f"/api/intake/cases/{case['id']}/notes"
    first = await intake.client.post(path, json={"text": "Phoned; she is safe."}, headers=anna)
    assert first.status_code == 201, first.text
    assert first.json()["author"] == "anna" and first.json()["text"] == "Phoned; she is safe."
    assert set(first.json()) == {"id", "author", "at", "text", "removed_at", "removed_by", "removal_reason"}
    assert first.json()["removed_at"] is None
    for number in range(3):
        assert (await intake.client.post(path, json={"text": f"note {number}"}, headers=anna)).status_code == 201

    page = (await intake.client.get(path, params={"limit": 2}, headers=anna)).json()
    assert [n["text"] for n in page["items"]] == ["note 2", "note 1"] and page["next_cursor"]
    rest = (await intake.client.get(path, params={"limit": 2, "cursor": page["next_cursor"]}, headers=anna)).json()
    assert [n["text"] for n in rest["items"]] == ["note 0", "Phoned; she is safe."] and rest["next_cursor"] is None

    with intake.engine.connect() as conn:
        sealed = conn.execute(select(Note.__table__.c.text_sealed)).scalars().all()
    assert len(sealed) == 4 and all(b"she is safe" not in blob for blob in sealed)

    timeline = (await intake.client.get(f"/api/intake/cases/{case['id']}/timeline", headers=anna)).json()["items"]
    added = [e for e in timeline if e["kind"] == "note.added"]
    assert len(added) == 4 and added[0]["details"]["by"] == "anna"
    assert "safe" not in str(timeline) and "note 1" not in str(timeline)

    with intake.engine.connect() as conn:
        audit = conn.execute(select(kit_tables.audit.c.action)).scalars().all()
    assert "notes.add" in audit and "notes.read" in audit


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u2060\u00ad", "x" * 10_001])
async def test_a_note_is_one_to_ten_thousand_characters_a_reader_sees(intake: Intake, text: str):
    case, anna = await _case_of(intake)
    answer = await intake.client.post(f"/api/intake/cases/{case['id']}/notes", json={"text": text}, headers=anna)
    assert answer.status_code == 422
    blank = await intake.client.post(f"/api/intake/cases/{case['id']}/tasks", headers=anna,
                                     json={"title": text, "due_on": _today()})
    assert blank.status_code == 422, blank.text
    longest = await intake.client.post(f"/api/intake/cases/{case['id']}/notes", json={"text": "x" * 10_000},
                                       headers=anna)
    assert longest.status_code == 201


async def test_notes_and_tasks_follow_need_to_know(intake: Intake):
    case, anna = await _case_of(intake)
    await intake.staff("caseworker-2", "boris")
    boris = intake.as_("caseworker", sub="caseworker-2", username="boris")
    task = (await intake.client.post(f"/api/intake/cases/{case['id']}/tasks",
                                     json={"title": "Visit", "due_on": _today()}, headers=anna)).json()
    for method, path, body in (("POST", "/notes", {"text": "mine"}), ("GET", "/notes", None),
                               ("POST", "/tasks", {"title": "t", "due_on": _today()}), ("GET", "/tasks", None)):
        refused = await intake.client.request(method, f"/api/intake/cases/{case['id']}{path}", json=body,
                                              headers=boris)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/need-to-know"), (method, path)
    done = await intake.client.post(f"/api/intake/tasks/{task['id']}/done", headers=boris)
    assert done.status_code == 403 and done.json()["type"].endswith("/need-to-know")
    # A stated reason opens the case to read its notes (recorded), not to work its tasks.
    reason = {**boris, "Access-Reason": "Duty night: she called the hotline"}
    assert (await intake.client.get(f"/api/intake/cases/{case['id']}/notes", headers=reason)).status_code == 200
    assert (await intake.client.post(f"/api/intake/tasks/{task['id']}/done", headers=reason)).status_code == 403
    assert (await intake.client.get("/api/intake/tasks", headers=boris)).json()["items"] == []
    supervisor = intake.as_("supervisor", sub="sup-1", username="sue")
    assert (await intake.client.get(f"/api/intake/cases/{case['id']}/notes", headers=supervisor)).status_code == 403
    assert (await intake.client.get("/api/intake/tasks", headers=supervisor)).status_code == 403
    assert (await intake.client.post("/api/intake/tasks/no-such-task/done", headers=anna)).status_code == 404


async def test_tasks_are_given_to_an_assignee_listed_soonest_first_and_done_once(intake: Intake):
    case, anna = await _case_of(intake)
    other, _ = await _case_of(intake)
    await intake.staff("caseworker-2", "boris")
    boris = intake.as_("caseworker", sub="caseworker-2", username="boris")
    tasks = f"/api/intake/cases/{case['id']}/tasks"

    created = await intake.client.post(tasks, json={"title": "Book the doctor", "due_on": _day(3)}, headers=anna)
    assert created.status_code == 201, created.text
    assert created.json() == {"id": created.json()["id"], "case_id": case["id"], "title": "Book the doctor",
                              "due_on": _day(3), "assignee": "anna", "status": "open",
                              "etag": created.json()["etag"]}
    # Only one of the case's caseworkers can be given a task; boris is not one yet.
    refused = await intake.client.post(tasks, json={"title": "x", "due_on": _today(), "assignee": "boris"},
                                       headers=anna)
    assert refused.status_code == 422 and refused.json()["type"].endswith("/not-an-assignee")
    assigned = await intake.client.put(f"/api/intake/cases/{case['id']}/assignees",
                                       json={"usernames": ["anna", "boris"]}, headers=anna)
    assert assigned.status_code == 200, assigned.text
    for_boris = await intake.client.post(tasks, json={"title": "Boris's", "due_on": _today(), "assignee": "Boris"},
                                         headers=anna)
    assert for_boris.status_code == 201 and for_boris.json()["assignee"] == "boris"
    for body in ({"title": "", "due_on": _today()}, {"title": "x" * 301, "due_on": _today()},
                 {"title": "x", "due_on": "not a date"}, {"title": "x"}, {"title": "x", "due_on": _today(), "z": 1}):
        assert (await intake.client.post(tasks, json=body, headers=anna)).status_code == 422, body

    overdue = await intake.client.post(tasks, json={"title": "Overdue call", "due_on": _day(-2)}, headers=anna)
    today = await intake.client.post(tasks, json={"title": "Today's form", "due_on": _today()}, headers=anna)
    elsewhere = await intake.client.post(f"/api/intake/cases/{other['id']}/tasks",
                                         json={"title": "Other case", "due_on": _day(-1)}, headers=anna)
    assert overdue.status_code == today.status_code == elsewhere.status_code == 201

    mine = (await intake.client.get("/api/intake/tasks", headers=anna)).json()["items"]
    assert [t["title"] for t in mine] == ["Overdue call", "Other case", "Today's form", "Book the doctor"]
    assert mine[0]["reference"] == case["reference"] and mine[1]["case_id"] == other["id"]
    due = (await intake.client.get("/api/intake/tasks", params={"status": "open", "due_before": _day(1)},
                                   headers=anna)).json()["items"]
    assert [t["title"] for t in due] == ["Overdue call", "Other case", "Today's form"]
    first = (await intake.client.get("/api/intake/tasks", params={"limit": 2}, headers=anna)).json()
    second = (await intake.client.get("/api/intake/tasks", params={"limit": 2, "cursor": first["next_cursor"]},
                                      headers=anna)).json()
    assert [t["title"] for t in first["items"] + second["items"]] == [t["title"] for t in mine]
    assert second["next_cursor"] is None
    assert [t["title"] for t in (await intake.client.get("/api/intake/tasks", headers=boris)).json()["items"]] == [
        "Boris's"]

    done = await intake.client.post(f"/api/intake/tasks/{overdue.json()['id']}/done", headers=boris)
    assert done.status_code == 200 and done.json()["status"] == "done" and done.json()["title"] == "Overdue call"
    assert done.json()["etag"] != overdue.json()["etag"]  # another state, another ETag
    async def reads() -> int:
        trail = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"], "limit": 200},
                                         headers=intake.auditor)).json()["items"]
        return [e["action"] for e in trail].count("tasks.read")

    before = await reads()
    again = await intake.client.post(f"/api/intake/tasks/{overdue.json()['id']}/done", headers=anna)
    assert again.status_code == 200 and again.json() == done.json()
    assert await reads() == before + 1  # done again changes nothing, but its answer reads the title: audited
    mine = (await intake.client.get("/api/intake/tasks", headers=anna)).json()["items"]
    assert "Overdue call" not in [t["title"] for t in mine]
    finished = (await intake.client.get("/api/intake/tasks", params={"status": "done"}, headers=anna)).json()["items"]
    assert [t["title"] for t in finished] == ["Overdue call"]
    of_case = (await intake.client.get(tasks, headers=boris)).json()["items"]
    titles = [t["title"] for t in of_case]  # two are due today: between them the id decides
    assert titles[0] == "Overdue call" and set(titles[1:3]) == {"Boris's", "Today's form"} and titles[3] == "Book the doctor"

    timeline = (await intake.client.get(f"/api/intake/cases/{case['id']}/timeline", headers=anna)).json()["items"]
    kinds = [e["kind"] for e in timeline]
    assert kinds.count("task.added") == 4 and kinds.count("task.done") == 1  # done twice: one step
    assert "Overdue" not in str(timeline) and "doctor" not in str(timeline)

    # Taken off the case, boris no longer sees its titles among his tasks.
    await intake.client.put(f"/api/intake/cases/{case['id']}/assignees", json={"usernames": ["anna"]}, headers=anna)
    assert (await intake.client.get("/api/intake/tasks", headers=boris)).json()["items"] == []


async def test_a_closed_case_takes_no_new_notes_or_tasks(intake: Intake):
    case, anna = await _case_of(intake)
    assert (await intake.client.post(f"/api/intake/cases/{case['id']}/close", headers=anna)).status_code == 200
    note = await intake.client.post(f"/api/intake/cases/{case['id']}/notes", json={"text": "late"}, headers=anna)
    task = await intake.client.post(f"/api/intake/cases/{case['id']}/tasks", json={"title": "t", "due_on": _today()},
                                    headers=anna)
    assert note.status_code == task.status_code == 409


async def test_erasure_takes_the_notes_and_tasks_with_it(intake: Intake, tmp_path):
    case, anna = await _case_of(intake)
    kept, _ = await _case_of(intake)
    assert (await intake.client.post(f"/api/intake/cases/{case['id']}/notes", json={"text": NEEDLE_NOTE},
                                     headers=anna)).status_code == 201
    task = await intake.client.post(f"/api/intake/cases/{case['id']}/tasks",
                                    json={"title": NEEDLE_TITLE, "due_on": _today()}, headers=anna)
    assert task.status_code == 201
    assert (await intake.client.post(f"/api/intake/cases/{kept['id']}/notes", json={"text": "kept"},
                                     headers=anna)).status_code == 201
    with intake.engine.connect() as conn:
        sealed = [conn.execute(select(Note.__table__.c.text_sealed).where(Note.__table__.c.case_id == case["id"]))
                  .scalar_one(),
                  conn.execute(select(Task.__table__.c.title_sealed)).scalar_one()]

    assert (await intake.client.delete(f"/api/intake/cases/{case['id']}", headers=anna)).status_code == 200
    assert names.word_keys.cache_info().currsize == 0  # no name word of the person stays remembered in the process

    with intake.engine.connect() as conn:
        for table in (Note.__table__, Task.__table__):
            assert conn.execute(select(func.count()).select_from(table)
                                .where(table.c.case_id == case["id"])).scalar() == 0, table.name
        assert conn.execute(select(func.count()).select_from(Note.__table__)).scalar() == 1  # the other case's
    assert (await intake.client.get("/api/intake/tasks", headers=anna)).json()["items"] == []
    assert (await intake.client.post(f"/api/intake/tasks/{task.json()['id']}/done", headers=anna)).status_code == 404
    erased_notes = await intake.client.get(f"/api/intake/cases/{case['id']}/notes", headers=anna)
    assert erased_notes.status_code == 200 and erased_notes.json()["items"] == []

    if is_sqlite(intake.engine):
        # Nothing of the note or the title is left on the disk: not the words, not their ciphertexts, in any file
        # under the test's folder (the database, its -wal and -shm, the NATS store).
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.name.endswith(".db") for p in files)
        for path in files:
            raw = path.read_bytes()
            for needle in (NEEDLE_NOTE, NEEDLE_TITLE, "Qxv-needle"):
                assert needle.encode() not in raw, path
            for blob in sealed:
                assert blob not in raw, path
