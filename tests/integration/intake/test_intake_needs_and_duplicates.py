"""Issue #17 items 4–6 through the API: needs that move, reopening and marking a duplicate (with their events), and
duplicates with their confidence. Who may mark a duplicate, and undoing the mark: test_intake_duplicate_mark.py."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration
CASES = "/api/intake/cases"


async def _timeline(intake: Intake, case_id: str) -> list[dict]:
    answer = await intake.client.get(f"{CASES}/{case_id}/timeline", headers=intake.caseworker)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


async def test_a_need_moves_forward_only_and_each_move_is_on_the_timeline(intake: Intake):
    case = await intake.create()
    need = (await intake.client.post(f"{CASES}/{case['id']}/needs", json={"category": "medical", "urgency": "high"},
                                     headers=intake.caseworker)).json()
    assert need["status"] == "open"
    url = f"{CASES}/{case['id']}/needs/{need['id']}"
    moved = await intake.client.patch(url, json={"status": "in_progress"}, headers=intake.caseworker)
    assert moved.status_code == 200 and moved.json()["status"] == "in_progress"
    assert moved.json()["status_changed_by"] and moved.json()["status_changed_at"]
    back = await intake.client.patch(url, json={"status": "open"}, headers=intake.caseworker)
    assert back.status_code == 409 and back.headers["content-type"].startswith("application/problem+json")
    met = await intake.client.patch(url, json={"status": "met"}, headers=intake.caseworker)
    assert met.json()["status"] == "met"
    after = await intake.client.patch(url, json={"status": "dropped"}, headers=intake.caseworker)
    assert after.status_code == 409 and "met" in after.json()["detail"]
    assert (await intake.client.patch(url, json={"status": "done"}, headers=intake.caseworker)).status_code == 422
    other = (await intake.client.post(f"{CASES}/{case['id']}/needs", json={"category": "legal", "urgency": "low"},
                                      headers=intake.caseworker)).json()
    dropped = await intake.client.patch(f"{CASES}/{case['id']}/needs/{other['id']}", json={"status": "dropped"},
                                        headers=intake.caseworker)
    assert dropped.json()["status"] == "dropped"  # open → dropped directly
    listed = (await intake.client.get(f"{CASES}/{case['id']}/needs", headers=intake.caseworker)).json()["items"]
    assert [n["status"] for n in listed] == ["met", "dropped"]
    moves = [e["details"] for e in await _timeline(intake, case["id"]) if e["kind"] == "needs.status_changed"]
    assert [(m["from"], m["to"]) for m in moves] == [("open", "in_progress"), ("in_progress", "met"),
                                                      ("open", "dropped")]
    assert all(m["by"] for m in moves)
    # Each move is announced (reports counts needs met and dropped): ids, category, urgency and status only, in the
    # unit of work of the move; a refused move announces nothing.
    announced = [e for e in intake.events("rehab.intake.needs.moved") if e["case_id"] == case["id"]]
    assert [(e["need_id"], e["status"]) for e in announced] == [
        (need["id"], "in_progress"), (need["id"], "met"), (other["id"], "dropped")]
    assert all(set(e) == {"case_id", "need_id", "category", "urgency", "status", "moved_at"} for e in announced)
    missing = await intake.client.patch(f"{CASES}/{case['id']}/needs/00000000-0000-0000-0000-000000000000",
                                        json={"status": "met"}, headers=intake.caseworker)
    assert missing.status_code == 404


async def test_a_closed_case_reopens_and_only_a_closed_one(intake: Intake):
    case = await intake.create()
    assert (await intake.client.post(f"{CASES}/{case['id']}/reopen", headers=intake.caseworker)).status_code == 409
    await intake.client.post(f"{CASES}/{case['id']}/close", headers=intake.caseworker)
    reopened = await intake.client.post(f"{CASES}/{case['id']}/reopen", headers=intake.caseworker)
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    steps = (await _timeline(intake, case["id"]))[-2:]
    assert [e["kind"] for e in steps] == ["case.closed", "case.reopened"]
    assert all(e["details"]["by"] for e in steps)  # who closed it, and who reopened it (outside review)
    consented = await intake.client.put(f"{CASES}/{case['id']}/consent", headers=intake.caseworker, json={
        "categories": ["medical"], "share_contact": False, "share_health": False, "method": "verbal"})
    assert consented.status_code == 200, consented.text
    assert (await _timeline(intake, case["id"]))[-1]["details"]["by"] == steps[0]["details"]["by"]
    assert [e["case_id"] for e in intake.events("rehab.intake.case.reopened")] == [case["id"]]
    audit = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                     headers=intake.auditor)).json()["items"]
    assert "case.reopen" in {entry["action"] for entry in audit}


async def test_a_duplicate_points_at_the_kept_case_and_leaves_the_caseload(intake: Intake):
    kept = await intake.create(full_name="Насця Лойка", date_of_birth="1990-04-02")
    twin = await intake.create(full_name="Анастасия Лойко", date_of_birth="1990-04-02")
    url = f"{CASES}/{twin['id']}/duplicate-of"
    assert (await intake.client.post(url, json={"case_id": twin["id"]}, headers=intake.caseworker)).status_code == 409
    unknown = await intake.client.post(url, json={"case_id": "00000000-0000-0000-0000-000000000000"},
                                       headers=intake.caseworker)
    assert unknown.status_code == 409
    marked = await intake.client.post(url, json={"case_id": kept["id"]}, headers=intake.caseworker)
    assert marked.status_code == 200, marked.text
    assert (marked.json()["status"], marked.json()["duplicate_of"]) == ("duplicate", kept["id"])
    assert marked.json()["duplicate_of_reference"] == kept["reference"]  # what a person reads
    listed = (await intake.client.get(CASES, headers=intake.caseworker)).json()["items"]
    assert twin["id"] not in {c["id"] for c in listed} and kept["id"] in {c["id"] for c in listed}
    only = (await intake.client.get(CASES, params={"status": "duplicate"}, headers=intake.caseworker)).json()["items"]
    assert [c["id"] for c in only] == [twin["id"]]
    assert (await intake.client.post(f"{CASES}/{twin['id']}/needs", json={"category": "legal", "urgency": "low"},
                                     headers=intake.caseworker)).status_code == 409
    assert intake.events("rehab.intake.case.duplicate") == [
        {"case_id": twin["id"], "kept_case_id": kept["id"], "marked_at": intake.events(
            "rehab.intake.case.duplicate")[0]["marked_at"]}]
    assert "case.duplicate" in [e["kind"] for e in await _timeline(intake, twin["id"])]
    assert "case.duplicate_kept" in [e["kind"] for e in await _timeline(intake, kept["id"])]
    erased = await intake.create(full_name="Ігар Рыбак")
    await intake.client.delete(f"{CASES}/{erased['id']}", headers=intake.caseworker)
    third = await intake.create(full_name="Ігар Рыбак")
    assert (await intake.client.post(f"{CASES}/{third['id']}/duplicate-of", json={"case_id": erased["id"]},
                                     headers=intake.caseworker)).status_code == 409


async def test_duplicates_carry_their_confidence(intake: Intake):
    first = await intake.create(full_name="Насця Лойка", date_of_birth="1990-04-02")
    same_day = await intake.create(full_name="Анастасия Лойко", date_of_birth="1990-04-02")
    assert [(d["id"], d["confidence"]) for d in same_day["possible_duplicates"]] == [(first["id"], "high")]
    no_birth = await intake.create(full_name="Nasta Loika")
    assert {(d["id"], d["confidence"]) for d in no_birth["possible_duplicates"]} == {
        (first["id"], "name_only"), (same_day["id"], "name_only")}
    other_day = await intake.client.post(f"{CASES}/duplicates", json={"full_name": "Анастасия Лойко",
                                                                       "date_of_birth": "1990-04-03"},
                                         headers=intake.caseworker)
    # never one whose known birth date differs; the one without a birth date is name_only
    assert [(d["id"], d["confidence"]) for d in other_day.json()["possible_duplicates"]] == [
        (no_birth["id"], "name_only")]
    found = await intake.client.post(f"{CASES}/search", json={"q": "Настя Лойко"}, headers=intake.caseworker)
    assert {c["id"] for c in found.json()["items"]} == {first["id"], same_day["id"], no_birth["id"]}
