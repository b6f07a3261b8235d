"""SPEC §4: an Idempotency-Key is honoured on every POST that sends one — a retried note, need, task or move of a
case acts once and answers the first answer again; the same key with another body is 422."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text

from services.intake.models import Need, Note, Task
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration


async def _case(intake: Intake) -> tuple[str, dict]:
    await intake.staff("caseworker-1", "anna")
    anna = intake.as_("caseworker", sub="caseworker-1", username="anna")
    created = await intake.client.post("/api/intake/cases", json={"full_name": "Зміцер Лойка"}, headers=anna)
    assert created.status_code == 201, created.text
    return created.json()["id"], anna


def _rows(intake: Intake, table, case_id: str) -> int:  # noqa: ANN001
    with intake.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)
                            .where(table.__table__.c.case_id == case_id)).scalar()


@pytest.mark.parametrize(("path", "body", "table"), [
    ("notes", {"text": "called him back, all well"}, Note),
    ("needs", {"category": "medical", "urgency": "high"}, Need),
    ("tasks", {"title": "call back", "due_on": datetime.now(UTC).date().isoformat()}, Task),
])
async def test_a_retried_post_with_its_key_acts_once(intake: Intake, path: str, body: dict, table):  # noqa: ANN001
    case_id, anna = await _case(intake)
    keyed = {**anna, "Idempotency-Key": f"retry-{path}"}
    first = await intake.client.post(f"/api/intake/cases/{case_id}/{path}", json=body, headers=keyed)
    again = await intake.client.post(f"/api/intake/cases/{case_id}/{path}", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    assert _rows(intake, table, case_id) == 1

    other = await intake.client.post(f"/api/intake/cases/{case_id}/{path}", json={**body, "extra": 1}, headers=keyed)
    assert other.status_code == 422  # another body under the same key: refused, whatever it holds
    unkeyed = await intake.client.post(f"/api/intake/cases/{case_id}/{path}", json=body, headers=anna)
    assert unkeyed.status_code == 201 and _rows(intake, table, case_id) == 2  # without a key, each POST acts


async def test_a_retried_close_answers_as_the_first_did_and_a_later_reopen_is_its_own(intake: Intake):
    case_id, anna = await _case(intake)
    keyed = {**anna, "Idempotency-Key": "close-once"}
    first = await intake.client.post(f"/api/intake/cases/{case_id}/close", headers=keyed)
    assert first.status_code == 200 and first.json()["status"] == "closed"
    assert (await intake.client.post(f"/api/intake/cases/{case_id}/reopen", headers=anna)).status_code == 200
    replayed = await intake.client.post(f"/api/intake/cases/{case_id}/close", headers=keyed)
    assert replayed.json() == first.json() and replayed.headers.get("Idempotent-Replayed") == "true"
    case = await intake.client.get(f"/api/intake/cases/{case_id}", headers=anna)
    assert case.json()["status"] == "open"  # the retry closed nothing: it only answered again


async def test_erasure_deletes_the_stored_answer_holding_a_note(intake: Intake):
    case_id, anna = await _case(intake)
    keyed = {**anna, "Idempotency-Key": "note-then-erase"}
    assert (await intake.client.post(f"/api/intake/cases/{case_id}/notes", json={"text": "sealed words"},
                                     headers=keyed)).status_code == 201
    with intake.engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE subject_id = :id"), {"id": case_id})
        assert stored.scalar() == 1
    assert (await intake.client.delete(f"/api/intake/cases/{case_id}", headers=anna)).status_code == 200
    with intake.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM idempotency_keys WHERE subject_id = :id"), {"id": case_id})
        assert left.scalar() == 0


async def test_a_stored_answer_given_again_is_a_read_in_the_audit_trail(intake: Intake):
    """A replayed answer holds what the first did (a new case's personal details): it leaves an entry like any read
    (SPEC §7.5), by whom and about which case, even from a caseworker no longer assigned (a reviewer's find)."""
    await intake.staff("caseworker-1", "anna")
    anna = intake.as_("caseworker", sub="caseworker-1", username="anna")
    keyed = {**anna, "Idempotency-Key": "create-once"}
    body = {"full_name": "Зміцер Лойка", "contact": {"phone": "+375 29 111 22 33"}}
    first = await intake.client.post("/api/intake/cases", json=body, headers=keyed)
    again = await intake.client.post("/api/intake/cases", json=body, headers=keyed)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()

    trail = await intake.client.get("/api/intake/audit", params={"target_id": first.json()["id"]},
                                    headers=intake.auditor)
    entries = [(e["actor"], e["action"]) for e in trail.json()["items"]]
    assert ("caseworker-1", "request.replayed") in entries, entries
