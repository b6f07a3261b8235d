"""Correcting a case's record: a note or a document added in error is removed for good by one of the case's own
caseworkers, with a reason, leaving a tombstone (who, when, why) in its list and on the timeline; a task is changed
(title, due date, assignee, on the version its ETag names) or cancelled instead of being marked done to make it go.
What was removed is gone from the database, the disk (SQLite) and the stored Idempotency-Key answers too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from kit.db import is_sqlite
from services.intake.models import Document, DocumentChunk, Note, Task, kit_tables
from tests.integration.intake.conftest import Intake
from tests.integration.intake.test_intake_documents import download, upload

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
NEEDLE = "Qzw-wrong-person: Piatro Vasilevich at the Brest flat"
WRONG = {"reason": "wrong_case"}


def _day(offset: int = 0) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


async def _case_of(intake: Intake, *, sub: str = "caseworker-1", username: str = "anna") -> tuple[dict, dict]:
    await intake.staff(sub, username)
    who = intake.as_("caseworker", sub=sub, username=username)
    created = await intake.client.post(CASES, json={"full_name": "Алеся Бондар"}, headers=who)
    assert created.status_code == 201, created.text
    return created.json(), who


async def _actions(intake: Intake, case_id: str) -> list[str]:
    trail = await intake.client.get("/api/intake/audit", params={"target_id": case_id, "limit": 200},
                                    headers=intake.auditor)
    return [entry["action"] for entry in trail.json()["items"]]


def _state_files(intake: Intake) -> list:
    return [p for p in intake.settings.state_dir.parent.rglob("*") if p.is_file()]


# ---- notes ------------------------------------------------------------------------------------------------------

async def test_a_note_written_in_error_is_removed_for_good_and_leaves_a_tombstone(intake: Intake):
    case, anna = await _case_of(intake)
    notes = f"{CASES}/{case['id']}/notes"
    keyed = {**anna, "Idempotency-Key": "note-once"}
    written = await intake.client.post(notes, json={"text": NEEDLE}, headers=keyed)
    kept = await intake.client.post(notes, json={"text": "Phoned; she is safe."}, headers=anna)
    assert written.status_code == kept.status_code == 201
    note_id = written.json()["id"]
    with intake.engine.connect() as conn:
        sealed = conn.execute(select(Note.text_sealed).where(Note.id == note_id)).scalar_one()

    removed = await intake.client.post(f"{notes}/{note_id}/remove", json=WRONG, headers=anna)
    assert removed.status_code == 200, removed.text
    tombstone = removed.json()
    assert tombstone["text"] is None and tombstone["removed_by"] == "anna"
    assert tombstone["removal_reason"] == "wrong_case" and tombstone["removed_at"]
    assert tombstone["author"] == "anna" and tombstone["at"] == written.json()["at"]

    listed = (await intake.client.get(notes, headers=anna)).json()["items"]
    assert [n["text"] for n in listed] == ["Phoned; she is safe.", None]
    assert listed[1] == tombstone
    with intake.engine.connect() as conn:
        assert conn.execute(select(Note.text_sealed).where(Note.id == note_id)).scalar_one() is None

    # Removing it again changes nothing and answers the same; the timeline and the trail say it once, never the words.
    again = await intake.client.post(f"{notes}/{note_id}/remove", json={"reason": "mistake"}, headers=anna)
    assert again.status_code == 200 and again.json() == tombstone
    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=anna)).json()["items"]
    [step] = [e for e in timeline if e["kind"] == "note.removed"]
    assert step["details"] == {"note_id": note_id, "by": "anna", "reason": "wrong_case"}
    assert "Piatro" not in str(timeline)
    assert (await _actions(intake, case["id"])).count("note.removed") == 1

    # The stored answer to the POST that wrote it no longer holds the text: a replay answers the tombstone, and adds
    # nothing (the note is not written again).
    replayed = await intake.client.post(notes, json={"text": NEEDLE}, headers=keyed)
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == note_id and replayed.json()["text"] is None
    assert replayed.json()["removal_reason"] == "wrong_case"
    assert len((await intake.client.get(notes, headers=anna)).json()["items"]) == 2

    if is_sqlite(intake.engine):  # overwritten where it lay (secure_delete), and the write-ahead log truncated
        for path in _state_files(intake):
            raw = path.read_bytes()
            assert NEEDLE.encode() not in raw and sealed[:48] not in raw, path.name


async def test_removing_a_note_is_for_the_case_s_own_caseworkers_with_a_reason(intake: Intake):
    case, anna = await _case_of(intake)
    other, _ = await _case_of(intake)
    await intake.staff("caseworker-2", "boris")
    boris = intake.as_("caseworker", sub="caseworker-2", username="boris")
    note = (await intake.client.post(f"{CASES}/{case['id']}/notes", json={"text": NEEDLE}, headers=anna)).json()
    path = f"{CASES}/{case['id']}/notes/{note['id']}/remove"

    # A stated reason opens the case to read it; it does not make boris someone who corrects its record.
    stated = {**boris, "Access-Reason": "she called the hotline, anna is away"}
    for headers in (boris, stated):
        refused = await intake.client.post(path, json=WRONG, headers=headers)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/need-to-know")
    assert "case.access_refused" in await _actions(intake, case["id"])
    for body in ({}, {"reason": "because"}, {"reason": "wrong_case", "why": "x"}):
        assert (await intake.client.post(path, json=body, headers=anna)).status_code == 422, body
    # A note of another case, or none: 404.
    assert (await intake.client.post(f"{CASES}/{other['id']}/notes/{note['id']}/remove", json=WRONG,
                                     headers=anna)).status_code == 404
    assert (await intake.client.post(f"{CASES}/{case['id']}/notes/{'0' * 36}/remove", json=WRONG,
                                     headers=anna)).status_code == 404
    listed = (await intake.client.get(f"{CASES}/{case['id']}/notes", headers=anna)).json()["items"]
    assert listed[0]["text"] == NEEDLE

    # A closed case's record is corrected too.
    assert (await intake.client.post(f"{CASES}/{case['id']}/close", headers=anna)).status_code == 200
    assert (await intake.client.post(path, json=WRONG, headers=anna)).status_code == 200


async def test_a_removal_sent_twice_with_its_key_removes_once(intake: Intake):
    case, anna = await _case_of(intake)
    note = (await intake.client.post(f"{CASES}/{case['id']}/notes", json={"text": NEEDLE}, headers=anna)).json()
    path = f"{CASES}/{case['id']}/notes/{note['id']}/remove"
    keyed = {**anna, "Idempotency-Key": "remove-once"}
    first = await intake.client.post(path, json=WRONG, headers=keyed)
    again = await intake.client.post(path, json=WRONG, headers=keyed)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await intake.client.post(path, json={"reason": "duplicate"}, headers=keyed)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")


# ---- documents --------------------------------------------------------------------------------------------------

async def test_a_document_added_to_the_wrong_case_is_removed_for_good(intake: Intake):
    case, anna = await _case_of(intake)
    keyed = {**anna, "Idempotency-Key": "upload-wrong"}
    content = f"passport of {NEEDLE}\n".encode() * 30_000  # several pieces
    added = await upload(intake, case["id"], f"{NEEDLE}.txt", content, headers=keyed)
    kept = await upload(intake, case["id"], "release.txt", b"release order", kind="release", headers=anna)
    assert added.status_code == kept.status_code == 201, added.text
    document_id = added.json()["id"]
    with intake.engine.connect() as conn:
        sealed = [row.data_sealed for row in conn.execute(
            select(DocumentChunk.data_sealed).where(DocumentChunk.document_id == document_id))]
    assert len(sealed) > 2

    path = f"{CASES}/{case['id']}/documents/{document_id}/remove"
    removed = await intake.client.post(path, json=WRONG, headers=anna)
    assert removed.status_code == 200, removed.text
    tombstone = removed.json()
    assert tombstone["filename"] is None and tombstone["sha256"] is None and tombstone["size"] == 0
    assert tombstone["kind"] == "identity" and tombstone["created_by"] == "anna"
    assert tombstone["removed_by"] == "anna" and tombstone["removal_reason"] == "wrong_case"

    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DocumentChunk).where(
            DocumentChunk.document_id == document_id)).scalar_one() == 0
        row = conn.execute(select(Document.filename_sealed, Document.sha256_sealed).where(
            Document.id == document_id)).one()
        assert row.filename_sealed is None and row.sha256_sealed is None
    gone = await download(intake, document_id, headers=anna)
    assert gone.status_code == 404 and gone.json()["type"].endswith("/document-removed")
    assert (await download(intake, kept.json()["id"], headers=anna)).content == b"release order"
    listed = (await intake.client.get(f"{CASES}/{case['id']}/documents", headers=anna)).json()["items"]
    assert [d["filename"] for d in listed] == [None, "release.txt"] and listed[0] == tombstone

    again = await intake.client.post(path, json={"reason": "duplicate"}, headers=anna)
    assert again.status_code == 200 and again.json() == tombstone
    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=anna)).json()["items"]
    [step] = [e for e in timeline if e["kind"] == "document.removed"]
    assert step["details"] == {"document_id": document_id, "kind": "identity", "by": "anna", "reason": "wrong_case"}
    assert (await _actions(intake, case["id"])).count("document.removed") == 1

    # The upload's stored answer held the file's name and hash: a replay now answers the tombstone, adds nothing.
    replayed = await upload(intake, case["id"], f"{NEEDLE}.txt", content, headers=keyed)
    assert replayed.status_code == 201 and replayed.json() == tombstone
    assert NEEDLE not in replayed.text

    if is_sqlite(intake.engine):
        for path_on_disk in _state_files(intake):
            raw = path_on_disk.read_bytes()
            assert NEEDLE.encode() not in raw, path_on_disk.name
            assert not any(blob[:64] in raw for blob in sealed), path_on_disk.name


async def test_a_document_is_removed_only_by_the_case_s_caseworkers(intake: Intake):
    case, anna = await _case_of(intake)
    await intake.staff("caseworker-2", "boris")
    boris = {**intake.as_("caseworker", sub="caseworker-2", username="boris"),
             "Access-Reason": "she called the hotline, anna is away"}
    added = await upload(intake, case["id"], "scan.txt", b"scan", headers=anna)
    path = f"{CASES}/{case['id']}/documents/{added.json()['id']}/remove"
    refused = await intake.client.post(path, json=WRONG, headers=boris)
    assert refused.status_code == 403
    assert (await intake.client.post(path, json={"reason": "?"}, headers=anna)).status_code == 422
    assert (await download(intake, added.json()["id"], headers=anna)).content == b"scan"


# ---- tasks ------------------------------------------------------------------------------------------------------

async def test_a_task_is_changed_on_the_version_its_etag_names(intake: Intake):
    case, anna = await _case_of(intake)
    await intake.staff("caseworker-2", "boris")
    await intake.staff("caseworker-3", "vera")
    boris = intake.as_("caseworker", sub="caseworker-2", username="boris")
    keyed = {**anna, "Idempotency-Key": "task-once"}
    created = await intake.client.post(f"{CASES}/{case['id']}/tasks", json={"title": NEEDLE, "due_on": _day(3)},
                                       headers=keyed)
    assert created.status_code == 201
    task = created.json()
    path = f"/api/intake/tasks/{task['id']}"

    change = {"title": "Call the lawyer", "due_on": _day(5)}
    assert (await intake.client.patch(path, json=change, headers=anna)).status_code == 428
    assert (await intake.client.patch(path, json=change, headers={**anna, "If-Match": "*"})).status_code == 428
    for body in ({}, {"title": None}, {"title": ""}, {"due_on": "soon"}, {"status": "done"}):
        assert (await intake.client.patch(path, json=body, headers={**anna, "If-Match": task["etag"]})
                ).status_code == 422, body
    not_on_case = await intake.client.patch(path, json={"assignee": "vera"}, headers={**anna, "If-Match": task["etag"]})
    assert not_on_case.status_code == 422 and not_on_case.json()["type"].endswith("/not-an-assignee")

    changed = await intake.client.patch(path, json=change, headers={**anna, "If-Match": task["etag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Call the lawyer" and changed.json()["due_on"] == _day(5)
    assert changed.headers["etag"] == changed.json()["etag"] != task["etag"]
    stale = await intake.client.patch(path, json={"title": "Another"}, headers={**anna, "If-Match": task["etag"]})
    assert stale.status_code == 412

    # Given to a colleague who holds the case: it leaves anna's list and comes into his.
    await intake.client.put(f"{CASES}/{case['id']}/assignees", json={"usernames": ["anna", "boris"]}, headers=anna)
    handed = await intake.client.patch(path, json={"assignee": "Boris"},
                                       headers={**anna, "If-Match": changed.json()["etag"]})
    assert handed.status_code == 200 and handed.json()["assignee"] == "boris"
    assert (await intake.client.get("/api/intake/tasks", headers=anna)).json()["items"] == []
    [his] = (await intake.client.get("/api/intake/tasks", headers=boris)).json()["items"]
    assert his["title"] == "Call the lawyer" and his["due_on"] == _day(5) and his["etag"] == handed.json()["etag"]

    # Only one who holds the case; a stated reason does not make a visitor one.
    await intake.staff("caseworker-4", "galina")
    galina = {**intake.as_("caseworker", sub="caseworker-4", username="galina"),
              "Access-Reason": "she called the hotline, anna is away", "If-Match": handed.json()["etag"]}
    assert (await intake.client.patch(path, json={"title": "x"}, headers=galina)).status_code == 403

    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=anna)).json()["items"]
    steps = [e["details"] for e in timeline if e["kind"] == "task.changed"]
    assert steps[0] == {"task_id": task["id"], "fields": ["due_on", "title"], "due_on": _day(5), "by": "anna"}
    assert steps[1]["assignee"] == "boris" and "lawyer" not in str(timeline) and "Piatro" not in str(timeline)
    assert (await _actions(intake, case["id"])).count("tasks.change") == 2

    # The old title is not kept in the stored answer of the POST that gave the task.
    replayed = await intake.client.post(f"{CASES}/{case['id']}/tasks", json={"title": NEEDLE, "due_on": _day(3)},
                                        headers=keyed)
    assert replayed.status_code == 201 and replayed.json()["title"] == "Call the lawyer"
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Task)).scalar_one() == 1


async def test_a_cancelled_task_is_neither_open_nor_done(intake: Intake):
    case, anna = await _case_of(intake)
    tasks = f"{CASES}/{case['id']}/tasks"
    wrong = (await intake.client.post(tasks, json={"title": "Wrong date", "due_on": _day(1)}, headers=anna)).json()
    finished = (await intake.client.post(tasks, json={"title": "Done one", "due_on": _day(2)}, headers=anna)).json()
    assert (await intake.client.post(f"/api/intake/tasks/{finished['id']}/done", headers=anna)).status_code == 200

    cancelled = await intake.client.post(f"/api/intake/tasks/{wrong['id']}/cancel", headers=anna)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["etag"] != wrong["etag"]
    again = await intake.client.post(f"/api/intake/tasks/{wrong['id']}/cancel", headers=anna)
    assert again.status_code == 200 and again.json() == cancelled.json()

    assert (await intake.client.get("/api/intake/tasks", headers=anna)).json()["items"] == []
    listed = (await intake.client.get("/api/intake/tasks", params={"status": "cancelled"}, headers=anna)).json()
    assert [t["title"] for t in listed["items"]] == ["Wrong date"]
    of_case = (await intake.client.get(tasks, headers=anna)).json()["items"]
    assert [t["status"] for t in of_case] == ["cancelled", "done"]

    # Neither done after, nor changed; a done task is not cancelled either.
    for refused in (await intake.client.post(f"/api/intake/tasks/{wrong['id']}/done", headers=anna),
                    await intake.client.patch(f"/api/intake/tasks/{wrong['id']}", json={"title": "x"},
                                              headers={**anna, "If-Match": cancelled.json()["etag"]}),
                    await intake.client.post(f"/api/intake/tasks/{finished['id']}/cancel", headers=anna)):
        assert refused.status_code == 409 and refused.json()["type"].endswith("/task-not-open")

    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=anna)).json()["items"]
    assert [e["kind"] for e in timeline].count("task.cancelled") == 1
    assert (await _actions(intake, case["id"])).count("tasks.cancel") == 1


async def test_erasure_takes_the_tombstones_with_the_case(intake: Intake):
    case, anna = await _case_of(intake)
    note = (await intake.client.post(f"{CASES}/{case['id']}/notes", json={"text": NEEDLE}, headers=anna)).json()
    added = await upload(intake, case["id"], "scan.txt", b"scan", headers=anna)
    await intake.client.post(f"{CASES}/{case['id']}/notes/{note['id']}/remove", json=WRONG, headers=anna)
    await intake.client.post(f"{CASES}/{case['id']}/documents/{added.json()['id']}/remove", json=WRONG, headers=anna)
    assert (await intake.client.delete(f"{CASES}/{case['id']}", headers=anna)).status_code == 200
    with intake.engine.connect() as conn:
        for table in (Note, Document):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(kit_tables.idempotency)).scalar_one() == 0


async def test_a_task_sent_again_with_the_same_values_changes_nothing(intake: Intake):
    case, anna = await _case_of(intake)
    task = (await intake.client.post(f"{CASES}/{case['id']}/tasks", json={"title": "Book", "due_on": _day(3)},
                                     headers=anna)).json()
    path = f"/api/intake/tasks/{task['id']}"
    form = {"title": "Book", "due_on": _day(4), "assignee": "anna"}  # the whole form, one field edited
    changed = await intake.client.patch(path, json=form, headers={**anna, "If-Match": task["etag"]})
    same = await intake.client.patch(path, json=form, headers={**anna, "If-Match": changed.json()["etag"]})
    assert changed.status_code == same.status_code == 200 and same.json() == changed.json()
    timeline = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=anna)).json()["items"]
    assert [e["details"]["fields"] for e in timeline if e["kind"] == "task.changed"] == [["due_on"]]
