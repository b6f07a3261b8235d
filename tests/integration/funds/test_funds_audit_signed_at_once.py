"""A money movement's audit entry is signed into a checkpoint on the stream AUDIT as soon as it is committed, not
within the minute (SPEC §7.5, §8). A reviewer deleted an approval's and a payment's entries from funds' database
seconds after they were made, before the next checkpoint: the chain still verified, and the next checkpoint signed
the shortened trail. Now the entries are signed within moments, and deleting them is a truncation."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest
from sqlalchemy import delete, select

from kit import checkpoints
from tests.integration.funds.conftest import Desk, eventually
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration

SOON = 5.0  # seconds: far less than the minute a checkpoint may otherwise wait (the default policy, unchanged here)


async def newest_signed(desk: Desk) -> dict[str, Any] | None:
    nc = await nats.connect(desk.runtime.settings.nats_url)
    try:
        message = await patient_jetstream(nc).get_last_msg(checkpoints.STREAM, checkpoints.subject("funds"))
        return json.loads(message.data)
    except nats.js.errors.NotFoundError:
        return None
    finally:
        await nc.close()


def head(desk: Desk) -> int:
    audit = desk.runtime.tables.audit
    with desk.runtime.engine.connect() as conn:
        return conn.execute(select(audit.c.seq).order_by(audit.c.seq.desc()).limit(1)).scalar_one()


async def signed_up_to_head(desk: Desk, *, within: float = SOON) -> int:
    seq = head(desk)

    async def covered() -> bool:
        found = await newest_signed(desk)
        return found is not None and found["seq"] >= seq

    await eventually(covered, timeout=within)
    return seq


async def test_an_approval_and_a_payment_are_signed_at_once_and_deleting_them_is_a_truncation(desk: Desk):
    assert desk.runtime.checkpoints is not None and desk.runtime.checkpoints.policy.every_seconds == 60
    grant = await desk.create_grant(amount="1000.00")
    await signed_up_to_head(desk, within=30)  # the first checkpoint, once funds is connected to NATS

    request = await desk.requested(desk.open_case(), grant, amount="100.00")
    assert (await desk.act(request["id"], "approve")).status_code == 200
    approved_at = await signed_up_to_head(desk)
    assert (await desk.pay(request["id"], key="pay-1")).status_code == 200
    paid_at = await signed_up_to_head(desk)
    assert paid_at > approved_at

    # A read is not a money movement: it waits for the minute (or 100 entries) as before.
    assert (await desk.client.get(f"/api/funds/disbursements/{request['id']}", headers=desk.finance)).status_code == 200
    assert head(desk) > paid_at and (await newest_signed(desk))["seq"] == paid_at

    audit = desk.runtime.tables.audit
    with desk.runtime.engine.begin() as conn:
        conn.execute(delete(audit).where(audit.c.seq >= approved_at))
    verdict = await desk.client.get("/api/funds/audit/verify", headers=desk.as_("auditor"))
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["ok"] is False and verdict.json()["truncated"] is True, verdict.json()
