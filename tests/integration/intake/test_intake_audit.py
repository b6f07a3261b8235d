"""The audit trail: every read of personal data and every change leaves an entry (who, what, when, request id,
never the data); auditors list and verify it; any edit of a stored entry breaks verification."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from services.intake.models import kit_tables
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration
AUDIT = kit_tables.audit


async def test_reads_and_changes_are_audited_with_who_and_the_request_id(intake: Intake):
    case = await intake.create(full_name="Святлана Шушкевіч", safety_notes="Only via Signal")
    path = f"/api/intake/cases/{case['id']}"
    reader = intake.as_("caseworker", sub="reader-9")
    read = await intake.client.get(path, headers={**reader, "X-Request-ID": "req-read-1",
                                                  "Access-Reason": "Duty caseworker tonight, client called"})
    assert read.status_code == 200  # not assigned to reader-9: a break-glass reading, with its reason
    await intake.client.post("/api/intake/cases/search", json={"q": "Shushkevich"}, headers=intake.caseworker)
    await intake.client.get(f"{path}/needs", headers=intake.caseworker)

    entries = await intake.client.get("/api/intake/audit", params={"target_id": case["id"]}, headers=intake.auditor)
    assert entries.status_code == 200
    items = entries.json()["items"]
    assert [e["action"] for e in items] == ["case.create", "case.break_glass", "case.read", "needs.read"]
    assert items[1]["actor"] == "reader-9"
    read_entry = items[2]
    assert read_entry["actor"] == "reader-9" and read_entry["request_id"] == "req-read-1" and read_entry["at"]
    assert "Шушкевіч" not in entries.text and "Signal" not in entries.text
    assert {e["target_label"] for e in items} == {case["reference"]}  # the case as people name it, for the auditor
    searches = (await intake.client.get("/api/intake/audit", headers=intake.auditor)).json()["items"]
    assert [e["target_id"] for e in searches if e["action"] == "case.search"] == [None]  # who searched, not for whom
    assert [e["target_label"] for e in searches if e["action"] == "case.search"] == [None]

    refused = await intake.client.get("/api/intake/audit", headers=intake.caseworker)
    assert refused.status_code == 403
    assert (await intake.client.get("/api/intake/audit/verify", headers=intake.caseworker)).status_code == 403


async def test_editing_any_stored_audit_row_makes_verify_fail(intake: Intake):
    case = await intake.create()
    await intake.read(case["id"])
    etag = (await intake.read(case["id"])).headers["etag"]
    await intake.client.patch(f"/api/intake/cases/{case['id']}", json={"city": "Riga"},
                              headers={**intake.caseworker, "If-Match": etag})
    await intake.client.post(f"/api/intake/cases/{case['id']}/close", headers=intake.caseworker)

    async def verify() -> dict:
        response = await intake.client.get("/api/intake/audit/verify", headers=intake.auditor)
        assert response.status_code == 200
        return response.json()

    verdict = await verify()
    assert {k: verdict[k] for k in ("ok", "entries", "first_bad", "truncated")} == {
        "ok": True, "entries": 5, "first_bad": None, "truncated": False}
    assert verdict["checkpoint_status"] in ("none", "matches")  # kit.checkpoints: nothing signed is missing
    with intake.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).mappings()]

    edits = {
        "actor": lambda r: "someone-else",
        "action": lambda r: "case.close" if r["action"] != "case.close" else "case.read",
        "target_id": lambda r: "00000000-0000-0000-0000-000000000000",
        "request_id": lambda r: "forged",
        "at": lambda r: r["at"] - timedelta(seconds=1),
    }
    for row in rows:
        for column, forge in edits.items():
            with intake.engine.begin() as conn:
                conn.execute(update(AUDIT).where(AUDIT.c.seq == row["seq"]).values({column: forge(row)}))
            result = await verify()
            assert result["ok"] is False and result["first_bad"] == row["id"], (row["action"], column)
            with intake.engine.begin() as conn:
                conn.execute(update(AUDIT).where(AUDIT.c.seq == row["seq"]).values({column: row[column]}))
            assert (await verify())["ok"] is True

    # Deleting an entry, or re-inserting it elsewhere, breaks the chain at the entry after it.
    middle = rows[2]
    with intake.engine.begin() as conn:
        conn.execute(delete(AUDIT).where(AUDIT.c.seq == middle["seq"]))
    assert (await verify())["first_bad"] == rows[3]["id"]
    with intake.engine.begin() as conn:
        conn.execute(insert(AUDIT).values({**middle, "seq": rows[-1]["seq"] + 10}))
    assert (await verify())["ok"] is False
