"""Intake's reopened and duplicate cases over the real bus: a reopened case takes referrals again, a case marked a
duplicate takes none (the kept case is the one to refer from), and only a closed case is moved back by a reopening."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from services.referrals.models import KnownCase
from tests.integration.referrals.desk import people

pytestmark = pytest.mark.integration

PACKET = {"display_name": people()[2]["latin_passport"], "language": "be"}


def _status(desk, case_id: str) -> str | None:
    with desk.session() as session:
        return session.execute(select(KnownCase.status).where(KnownCase.case_id == case_id)).scalar()


async def _reopen(desk, case_id: str):
    return await desk.intake_event("rehab.intake.case.reopened", case_id,
                                   {"case_id": case_id, "reopened_at": datetime.now(UTC).isoformat()})


async def _duplicate(desk, case_id: str, kept_case_id: str):
    return await desk.intake_event("rehab.intake.case.duplicate", case_id, {
        "case_id": case_id, "kept_case_id": kept_case_id, "marked_at": datetime.now(UTC).isoformat()})


async def test_a_reopened_case_takes_referrals_again_and_a_duplicate_takes_none(desk):
    medical = await desk.add_partner("medical")
    case_id = await desk.open_case(categories=["medical"])
    kept = await desk.open_case(categories=["medical"])

    await desk.close_case(case_id)
    refused = await desk.refer(case_id, medical, "medical", PACKET)
    assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (409, "case-closed")

    reopened = await _reopen(desk, case_id)
    assert _status(desk, case_id) == "open"
    assert (await desk.refer(case_id, medical, "medical", PACKET)).status_code == 201

    await _duplicate(desk, case_id, kept)
    assert _status(desk, case_id) == "duplicate"
    refused = await desk.refer(case_id, medical, "medical", PACKET)
    assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (409, "case-duplicate")
    assert (await desk.refer(kept, medical, "medical", PACKET)).status_code == 201

    # The reopening again (a redelivery under a new message id), or a late closing: a duplicate stays a duplicate.
    await desk.intake_event("rehab.intake.case.reopened", case_id, {}, envelope=reopened,
                            msg_id="redelivered-" + reopened.id)
    await desk.close_case(case_id)
    await _reopen(desk, case_id)
    assert _status(desk, case_id) == "duplicate"

    # An erased case is not brought back by a reopening either.
    gone = await desk.open_case(categories=["medical"])
    await desk.erase_case(gone)
    await _reopen(desk, gone)
    assert _status(desk, gone) in (None, "erased")


async def test_an_open_case_is_not_changed_by_a_reopening(desk):
    case_id = await desk.open_case(categories=["medical"])
    await _reopen(desk, case_id)
    assert _status(desk, case_id) == "open"
