"""When intake erases a case, funds deletes every idempotent answer it stored about that case — requests (whose
fingerprints were computed over the payee), refusals, approvals and payments — and keeps those of other cases.
A replay of the erased case's request is then a new request, refused because the case is erased."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from kit import db


pytestmark = pytest.mark.integration


SENT = ("request-1", "refused-1", "approve-1", "pay-1", "approve-again", "other-1")


def _stored_keys(desk) -> set[str]:  # noqa: ANN001
    """The keys sent (of SENT) whose rows are stored: each row is named by a keyed HMAC of its caller and key."""
    table, idempotency = desk.runtime.tables.idempotency, desk.runtime.idempotency
    with db.transaction(desk.runtime.session_factory) as session:
        rows = session.execute(select(table.c.principal, table.c.key)).all()
    found = {sent for sent in SENT for row in rows if idempotency._row_key(row.principal, sent) == row.key}
    assert len(found) == len(rows), "a row named by none of the keys sent"
    return found


async def test_the_erased_case_event_deletes_the_stored_answers_about_the_case(desk, names):
    grant = await desk.create_grant()
    case, other = desk.open_case(), desk.open_case()
    payee = {"name": names[0], "account": "LT60 1010 0123 4567 8901"}

    requested = await desk.requested(case, grant, key="request-1", payee=payee)
    unknown_grant = await desk.request(case, {"id": str(uuid.uuid4()), "currency": "EUR"}, key="refused-1",
                                       payee=payee)
    assert unknown_grant.status_code == 409, unknown_grant.text  # stored, and about the case
    approve = await desk.client.post(f"/api/funds/disbursements/{requested['id']}/approve",
                                     headers={**desk.finance_b, "Idempotency-Key": "approve-1"})
    assert approve.status_code == 200, approve.text
    assert (await desk.pay(requested["id"], key="pay-1")).status_code == 200
    twice = await desk.client.post(f"/api/funds/disbursements/{requested['id']}/approve",
                                   headers={**desk.finance_b, "Idempotency-Key": "approve-again"})
    assert twice.status_code == 409, twice.text  # a refusal about the case's disbursement
    kept = await desk.requested(other, grant, key="other-1", payee=payee)
    assert _stored_keys(desk) == {"request-1", "refused-1", "approve-1", "pay-1", "approve-again", "other-1"}

    desk.erase_case(case)
    assert _stored_keys(desk) == {"other-1"}

    replay = await desk.request(case, grant, key="request-1", payee=payee)
    assert replay.status_code == 409 and "idempotent-replayed" not in replay.headers
    still = await desk.request(other, grant, key="other-1", payee=payee)
    assert still.json() == kept and still.headers.get("Idempotent-Replayed") == "true"
