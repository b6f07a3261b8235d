"""Intake's reopening of a case marked a duplicate, over the real bus: the event says what the case left
(`reopened_from`), referrals moves its copy back from that status only, so the case takes referrals again, while a
reopening of an earlier close that comes late (redelivered after the mark) leaves the duplicate as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.referrals.test_referrals_reopen_duplicate import PACKET, _duplicate, _status

pytestmark = pytest.mark.integration


async def _reopen(desk, case_id: str, reopened_from: str):
    return await desk.intake_event("rehab.intake.case.reopened", case_id, {
        "case_id": case_id, "reopened_at": datetime.now(UTC).isoformat(), "reopened_from": reopened_from})


async def test_a_duplicate_reopened_takes_referrals_again_and_a_late_reopening_of_its_close_does_not(desk):
    medical = await desk.add_partner("medical")
    case_id = await desk.open_case(categories=["medical"])
    kept = await desk.open_case(categories=["medical"])
    await desk.close_case(case_id)
    of_the_close = await _reopen(desk, case_id, "closed")
    await _duplicate(desk, case_id, kept)
    assert _status(desk, case_id) == "duplicate"

    await desk.intake_event("rehab.intake.case.reopened", case_id, {}, envelope=of_the_close,
                            msg_id="redelivered-" + of_the_close.id)
    assert _status(desk, case_id) == "duplicate"  # the reopening of the close, late: not the mark's undoing

    await _reopen(desk, case_id, "duplicate")
    assert _status(desk, case_id) == "open"
    assert (await desk.refer(case_id, medical, "medical", PACKET)).status_code == 201

    gone = await desk.open_case(categories=["medical"])
    await desk.erase_case(gone)
    await _reopen(desk, gone, "duplicate")  # an erased case is brought back by nothing
    assert _status(desk, gone) in (None, "erased")
