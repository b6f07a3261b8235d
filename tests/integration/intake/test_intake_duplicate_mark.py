"""Marking a case a duplicate is its own caseworkers' (never a visitor's by break-glass), and so is undoing it:
reopening a case marked a duplicate opens it again, pointing at nothing, back in its caseworkers' lists and the
duplicate checks, announced so that referrals and funds take it as open (the event says what it left). The case kept
is another case that exists and is neither erased nor itself a duplicate; a case others are duplicates of stays the
one kept. Each refusal is problem+json, and a refused request leaves its refusal in the audit trail."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
REASON = "Duty caseworker tonight: she is at the door and asks for help"


def _ala(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-1", username="ala")


def _bo(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-2", username="bo")


async def _create(intake: Intake, headers: dict[str, str], **body: object) -> dict:
    response = await intake.client.post(CASES, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _pair(intake: Intake) -> tuple[dict, dict]:
    """The case kept (Насця Лойка) and its twin written another way, both ala's."""
    kept = await _create(intake, _ala(intake), full_name="Насця Лойка", date_of_birth="1990-04-02")
    twin = await _create(intake, _ala(intake), full_name="Анастасия Лойко", date_of_birth="1990-04-02")
    return kept, twin


async def _audit(intake: Intake, case_id: str) -> list[tuple[str, str]]:
    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case_id},
                                       headers=intake.auditor)).json()["items"]
    return [(e["actor"], e["action"]) for e in entries]


async def _timeline(intake: Intake, case_id: str) -> list[dict]:
    answer = await intake.client.get(f"{CASES}/{case_id}/timeline", headers=_ala(intake))
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def _problem(answer, status: int, kind: str) -> None:  # noqa: ANN001
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith(f"/{kind}") and answer.json()["detail"], answer.json()


async def test_a_stated_reason_does_not_mark_a_case_a_duplicate_its_own_caseworker_does(intake: Intake):
    kept, twin = await _pair(intake)
    url = f"{CASES}/{twin['id']}/duplicate-of"
    glass = {**_bo(intake), "Access-Reason": REASON}

    _problem(await intake.client.post(url, json={"case_id": kept["id"]}, headers=glass), 403, "need-to-know")
    _problem(await intake.client.post(url, json={"case_id": kept["id"]}, headers=_bo(intake)), 403, "need-to-know")
    still = await intake.client.get(f"{CASES}/{twin['id']}", headers=_ala(intake))
    assert (still.json()["status"], still.json()["duplicate_of"]) == ("open", None)
    assert intake.events("rehab.intake.case.duplicate") == []
    assert "case.duplicate" not in [e["kind"] for e in await _timeline(intake, twin["id"])]
    assert (await intake.client.get(f"{CASES}/{twin['id']}", headers=glass)).status_code == 200  # a reason reads it

    marked = await intake.client.post(url, json={"case_id": kept["id"]}, headers=_ala(intake))
    assert marked.status_code == 200 and marked.json()["status"] == "duplicate", marked.text
    assert await _audit(intake, twin["id"]) == [
        ("caseworker-1", "case.create"), ("caseworker-2", "case.access_refused"),
        ("caseworker-2", "case.access_refused"), ("caseworker-1", "case.read"), ("caseworker-1", "timeline.read"),
        ("caseworker-2", "case.break_glass"), ("caseworker-2", "case.read"), ("caseworker-1", "case.duplicate")]


async def test_its_own_caseworker_undoes_the_mark_by_reopening_and_the_case_is_as_any_reopened_case(intake: Intake):
    kept, twin = await _pair(intake)
    path = f"{CASES}/{twin['id']}"
    assert (await intake.client.post(f"{path}/close", headers=_ala(intake))).status_code == 200  # closed, then marked
    assert (await intake.client.post(f"{path}/duplicate-of", json={"case_id": kept["id"]},
                                     headers=_ala(intake))).status_code == 200
    cannot = await intake.client.post(f"{path}/notes", json={"text": "Called her"}, headers=_ala(intake))
    _problem(cannot, 409, "case-duplicate")

    glass = {**_bo(intake), "Access-Reason": REASON}
    _problem(await intake.client.post(f"{path}/reopen", headers=glass), 403, "need-to-know")  # not a visitor's

    reopened = await intake.client.post(f"{path}/reopen", headers=_ala(intake))
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert (body["status"], body["duplicate_of"], body["duplicate_of_reference"], body["closed_at"]) == (
        "open", None, None, None)
    assert [c["id"] for c in (await intake.client.get(CASES, headers=_ala(intake))).json()["items"]] == [
        twin["id"], kept["id"]]  # back in her list
    again = await intake.client.post(f"{CASES}/duplicates", json={"full_name": "Nasta Loika",
                                                                  "date_of_birth": "1990-04-02"}, headers=_ala(intake))
    assert {d["id"] for d in again.json()["possible_duplicates"]} == {kept["id"], twin["id"]}  # and in the checks
    assert (await intake.client.post(f"{path}/notes", json={"text": "Called her"},
                                     headers=_ala(intake))).status_code == 201  # takes changes again

    undone = [e for e in await _timeline(intake, twin["id"]) if e["kind"] == "case.duplicate_undone"]
    assert [e["details"] for e in undone] == [{"by": "ala", "kept_case_id": kept["id"],
                                               "kept_reference": kept["reference"]}]
    on_kept = [e["details"] for e in await _timeline(intake, kept["id"]) if e["kind"] == "case.duplicate_kept_undone"]
    assert on_kept == [{"by": "ala", "duplicate_case_id": twin["id"], "duplicate_reference": twin["reference"]}]
    assert [(e["case_id"], e["reopened_from"]) for e in intake.events("rehab.intake.case.reopened")] == [
        (twin["id"], "duplicate")]
    assert ("caseworker-1", "case.reopen") in await _audit(intake, twin["id"])
    assert ("caseworker-2", "case.access_refused") in await _audit(intake, twin["id"])

    # As any reopened case: it closes and reopens again (from `closed`), and can be marked a duplicate once more.
    assert (await intake.client.post(f"{path}/close", headers=_ala(intake))).status_code == 200
    assert (await intake.client.post(f"{path}/reopen", headers=glass)).status_code == 200  # a closed case: a reason
    assert [e["reopened_from"] for e in intake.events("rehab.intake.case.reopened")] == ["duplicate", "closed"]
    remarked = await intake.client.post(f"{path}/duplicate-of", json={"case_id": kept["id"]}, headers=_ala(intake))
    assert remarked.status_code == 200 and remarked.json()["duplicate_of"] == kept["id"]
    _problem(await intake.client.post(f"{CASES}/{kept['id']}/reopen", headers=_ala(intake)), 409, "case-not-closed")


async def test_the_case_kept_is_another_existing_case_neither_erased_nor_a_duplicate(intake: Intake):
    kept, twin = await _pair(intake)
    third = await _create(intake, _ala(intake), full_name="Nastassia Loika", date_of_birth="1990-04-02")
    theirs = await _create(intake, _bo(intake), full_name="Настасся Лойка")
    gone = await _create(intake, _ala(intake), full_name="Ігар Рыбак")
    assert (await intake.client.delete(f"{CASES}/{gone['id']}", headers=_ala(intake))).status_code == 200

    def mark(case: dict, kept_id: str, headers: dict[str, str] | None = None):  # noqa: ANN202
        return intake.client.post(f"{CASES}/{case['id']}/duplicate-of", json={"case_id": kept_id},
                                  headers=headers or _ala(intake))

    _problem(await mark(twin, twin["id"]), 409, "duplicate-of-itself")
    _problem(await mark(twin, "00000000-0000-0000-0000-000000000000"), 409, "kept-case-not-found")
    assert (await mark(twin, "BY-2026-00001")).status_code == 422  # a reference is not a case's id
    _problem(await mark(twin, gone["id"]), 409, "kept-case-erased")
    assert (await mark(twin, kept["id"])).status_code == 200
    _problem(await mark(third, twin["id"]), 409, "kept-case-duplicate")  # name the case kept, not a duplicate of it
    _problem(await mark(kept, third["id"]), 409, "case-is-kept")  # the twin points at it: it stays the one kept
    _problem(await mark(twin, third["id"]), 409, "case-duplicate")  # already a duplicate
    missing = await intake.client.post(f"{CASES}/00000000-0000-0000-0000-000000000000/duplicate-of",
                                       json={"case_id": kept["id"]}, headers=_ala(intake))
    _problem(missing, 404, "case-not-found")
    assert (await mark(third, theirs["id"])).status_code == 200  # the kept case is named, not read: bo's will do

    # Once the twin is reopened, nothing points at the kept case any more: it may become a duplicate itself.
    assert (await intake.client.post(f"{CASES}/{twin['id']}/reopen", headers=_ala(intake))).status_code == 200
    assert (await mark(kept, twin["id"])).status_code == 200
