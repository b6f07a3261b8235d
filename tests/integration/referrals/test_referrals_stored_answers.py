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


def _stored_keys(desk, sent: tuple[str, ...] = ("send-1", "refused-1", "other-1")) -> set[str]:  # noqa: ANN001
    """The keys of `sent` whose rows are stored: each row is named by a keyed HMAC of its caller and key."""
    table, idempotency = desk.runtime.tables.idempotency, desk.runtime.idempotency
    with desk.session() as session:
        rows = session.execute(select(table.c.principal, table.c.key)).all()
    return {key for key in sent for row in rows if idempotency._row_key(row.principal, key) == row.key}


def _row_count(desk) -> int:  # noqa: ANN001
    with desk.session() as session:
        return len(session.execute(select(desk.runtime.tables.idempotency.c.key)).all())


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
    assert _stored_keys(desk) == {"send-1", "refused-1", "other-1"} and _row_count(desk) == 3

    await desk.erase_case(case)
    assert _stored_keys(desk) == {"other-1"}

    replay = await desk.refer(case, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "send-1"})
    assert replay.status_code == 409 and replay.json()["type"].endswith("/case-erased")
    assert "idempotent-replayed" not in replay.headers
    still = await desk.refer(other, medical, packet=PACKET, headers={**caseworker, "Idempotency-Key": "other-1"})
    assert still.json() == kept.json() and still.headers.get("Idempotent-Replayed") == "true"


async def test_a_partner_s_steps_are_stored_under_the_referral_and_go_with_the_case_even_after_its_packet(desk):
    """A reviewer's find: a partner's decline, stored without a subject, outlived the erasure, and its fingerprint
    confirmed a guessed reason. Stored under the referral now: deleted with the packet, and with the case whatever
    became of the packet before (here the consent was withdrawn first, and the partner answered after)."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    declined = await desk.sent_referral(case, medical, packet=PACKET)
    accepted = await desk.sent_referral(case, medical, packet=PACKET)
    await desk.consent(case, [])  # the packets go; the referrals are still the partner's to answer
    partner = desk.partner(medical)
    steps = [(declined, "decline", {"reason": "we cannot see Ганна before March"}, "decline-1"),
             (accepted, "accept", None, "accept-1")]
    for referral, action, body, key in steps:
        answer = await desk.client.post(f"/api/partner/referrals/{referral}/{action}", json=body,
                                        headers={**partner, "Idempotency-Key": key})
        assert answer.status_code == 200, answer.text
    assert _stored_keys(desk, ("decline-1", "accept-1")) == {"decline-1", "accept-1"}

    await desk.erase_case(case)
    assert _stored_keys(desk, ("decline-1", "accept-1")) == set()
