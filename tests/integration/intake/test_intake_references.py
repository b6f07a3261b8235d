"""Human references `BY-YYYY-NNNNN`: consecutive, and never shared, however many caseworkers open cases at once."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from kit import db
from services.intake import cases
from services.intake.domain import Caller
from services.intake.models import CaseCreate
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration


async def test_concurrent_creates_never_share_a_reference(intake: Intake):
    """Many threads, each with its own session and connection, open cases at the same moment. The routes run on
    one event loop and would serialise; threads reach the database together, as several processes would."""
    runtime = intake.runtime
    vault = runtime.extras["vault"]
    start = threading.Barrier(8)

    def open_many(worker: int) -> list[str]:
        start.wait()
        references = []
        for i in range(6):
            with db.transaction(runtime.session_factory) as session:  # as another process would: its own commit
                caller = Caller(user_id=f"cw-{worker}", username=f"cw-{worker}", roles=frozenset({"caseworker"}))
                case = cases.open_case(session=session, vault=vault, audit=runtime.audit, caller=caller,
                                       case_in=CaseCreate(full_name=f"Person {worker} {i}"))
                references.append(case.reference)
        return references

    with ThreadPoolExecutor(max_workers=8) as pool:
        references = [ref for refs in pool.map(open_many, range(8)) for ref in refs]
    year = datetime.now(UTC).year
    assert all(re.fullmatch(rf"BY-{year}-\d{{5}}", ref) for ref in references)
    assert len(set(references)) == len(references) == 48
    assert sorted(int(ref[-5:]) for ref in references) == list(range(1, 49))  # no gaps either
    # the audit trail took every one of those writers in order
    with db.transaction(runtime.session_factory) as session:
        assert runtime.audit.verify(session)["ok"]


async def test_references_continue_through_the_api(intake: Intake):
    first = await intake.create()
    second = await intake.create()
    assert int(second["reference"][-5:]) == int(first["reference"][-5:]) + 1
