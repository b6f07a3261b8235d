"""A unit of work that fails after writing an audit entry leaves no trace in the chain, and the chain still
verifies: on PostgreSQL the rolled-back entry has used a sequence number, which is a gap and not a tampering."""

from __future__ import annotations

import pytest

from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration


async def test_an_entry_rolled_back_with_its_unit_leaves_the_chain_intact(intake: Intake):
    case = await intake.create()
    trail = intake.runtime.audit

    def audited_then_failed(session) -> None:
        trail.record(session, actor="caseworker-1", action="case.read", target_id=case["id"])
        raise RuntimeError("the use case failed after auditing")

    with pytest.raises(RuntimeError):
        await intake.runtime.uow.run(audited_then_failed)
    await intake.read(case["id"])

    verdict = (await intake.client.get("/api/intake/audit/verify", headers=intake.auditor)).json()
    assert verdict["ok"] is True and verdict["first_bad"] is None, verdict
    assert verdict["entries"] == 2  # case.create and the read after the failure
