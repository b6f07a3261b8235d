"""Funds takes intake's reopening of a case marked a duplicate as the move back it is (`reopened_from`), and a
reopening of an earlier close arriving after the mark as nothing: its copy of the case follows what intake did."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from kit.events import Envelope
from services.funds import handlers, projections
from tests.unit.funds.test_funds_projections import case, session  # noqa: F401 (the fixture, used by name)


def _reopened(case_id: str, **more: str) -> Envelope:
    return Envelope.new(source="/rehab/intake", type=handlers.CASE_REOPENED, subject=case_id, data={
        "case_id": case_id, "reopened_at": datetime.now(UTC).isoformat(), **more})


def test_a_duplicate_reopened_is_open_again_and_a_late_reopening_of_its_close_changes_nothing(session):  # noqa: F811
    projections.advance_case(session=session, case_id="c1", status="open", reference="BY-1")
    projections.advance_case(session=session, case_id="c1", status="closed")
    projections.advance_case(session=session, case_id="c1", status="duplicate")

    handlers.case_reopened(session, _reopened("c1"))  # no `reopened_from`: an older event, of a close
    assert case(session, "c1") == ("duplicate", "BY-1")
    handlers.case_reopened(session, _reopened("c1", reopened_from="closed"))
    assert case(session, "c1") == ("duplicate", "BY-1")
    handlers.case_reopened(session, _reopened("c1", reopened_from="duplicate"))
    assert case(session, "c1") == ("open", "BY-1")

    erased = str(uuid.uuid4())
    projections.advance_case(session=session, case_id=erased, status="erased")
    handlers.case_reopened(session, _reopened(erased, reopened_from="duplicate"))
    assert case(session, erased)[0] == "erased"
