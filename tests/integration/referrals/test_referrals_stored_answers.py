"""When intake erases a case, referrals deletes every idempotent answer it stored about that case (a sent referral,
a refusal) together with its request fingerprint, which was computed over the packet; answers about other cases
stay. A replay of the erased case's send is then a new request, refused because the case is erased."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.integration.referrals.desk import people

pytestmark = pytest.mark.integration

PERSON = people()[2]
PACKET = {"display_name": PERSON["belarusian"], "language": "be", "note": "prefers mornings",
          "contact": "Signal +370 600 00002"}


def _stored_keys(desk) -> set[str]:  # noqa: ANN001
    table = desk.runtime.tables.idempotency
    with desk.session() as session:
        return set(session.execute(select(table.c.key)).scalars())


async def test_the_erased_case_event_deletes_the_stored_answers_about_the_case(desk):
    medical = await desk.add_partner("medical")
    legal = await desk.add_partner("legal")
    case = await desk.open_case(categories=["medical"])
    other = await desk.open_case(categories=["medical"])
    caseworker = desk.caseworker()

    sent = await desk.refer(case, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "send-1"})
    assert sent.status_code == 201, sent.text
    refused = await desk.refer(case, legal, category="medical", packet=PACKET,
                               headers={**caseworker, "Idempotency-Key": "refused-1"})
    assert refused.status_code == 409, refused.text  # a refusal is stored too, and it is about the case
    kept = await desk.refer(other, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "other-1"})
    assert kept.status_code == 201, kept.text
    assert _stored_keys(desk) == {"send-1", "refused-1", "other-1"}

    await desk.erase_case(case)
    assert _stored_keys(desk) == {"other-1"}

    replay = await desk.refer(case, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "send-1"})
    assert replay.status_code == 409 and replay.json()["type"].endswith("/case-erased")
    assert "idempotent-replayed" not in replay.headers
    still = await desk.refer(other, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "other-1"})
    assert still.json() == kept.json() and still.headers.get("Idempotent-Replayed") == "true"
