"""Funds on the bus: it learns cases from intake and cost estimates from referrals over real NATS, tolerates events
out of order, and announces every disbursement change with ids and amounts only."""

from __future__ import annotations

import json
import uuid

import nats
import nats.js.errors
import pytest
from sqlalchemy import select

from kit import db
from services.funds import handlers
from services.funds.models import CaseAssignee, CaseView, CostEstimate, Disbursement
from tests.integration.funds.conftest import CASEWORKER, assignment
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration


def completed(referral_id: str, case_id: str, cost: dict | None) -> dict:
    return {"referral_id": referral_id, "case_id": case_id, "partner_id": str(uuid.uuid4()), "category": "medical",
            "status": "completed", "cost_estimate": cost, "occurred_at": "2026-11-20T12:00:00Z"}


def case_status(desk, case_id: str) -> str | None:
    with db.transaction(desk.runtime.session_factory) as session:
        return session.execute(select(CaseView.status).where(CaseView.case_id == case_id)).scalar()


def assignees(desk, case_id: str) -> set[str]:
    with db.transaction(desk.runtime.session_factory) as session:
        return set(session.execute(select(CaseAssignee.user_id).where(CaseAssignee.case_id == case_id)).scalars())


def claims(desk) -> dict[str, str | None]:
    """Each cost estimate's referral, and the disbursement that claimed it (None: still open)."""
    with db.transaction(desk.runtime.session_factory) as session:
        return dict(session.execute(select(CostEstimate.referral_id, CostEstimate.disbursement_id)).all())


async def test_cases_and_cost_estimates_arrive_over_nats_and_aid_is_requested_from_an_estimate(desk, names):
    case_id, referral_id = str(uuid.uuid4()), str(uuid.uuid4())
    await desk.publish(handlers.CASE_OPENED, {"case_id": case_id, "reference": "BY-2026-00042", "country": "LT",
                                              "opened_at": "2026-11-01T09:00:00Z"}, aggregate=case_id)
    await desk.publish(handlers.CASE_ASSIGNED, assignment(case_id, CASEWORKER), aggregate=case_id)
    await desk.publish(handlers.REFERRAL_COMPLETED, completed(referral_id, case_id, {"amount": "420.00",
                                                                                     "currency": "EUR"}),
                       aggregate=referral_id)
    await desk.publish(handlers.REFERRAL_COMPLETED, completed(str(uuid.uuid4()), case_id, None),
                       aggregate=referral_id)  # no estimate: nothing for finance to pay
    await desk.eventually(lambda: case_status(desk, case_id) == "open")
    await desk.eventually(lambda: assignees(desk, case_id) == {CASEWORKER})

    async def open_estimates() -> list[dict]:
        response = await desk.client.get("/api/funds/cost-estimates", headers=desk.finance)
        return response.json()["items"]

    [estimate] = await desk.eventually(open_estimates)
    assert (estimate["referral_id"], estimate["amount"], estimate["currency"], estimate["case_reference"]) == (
        referral_id, "420.00", "EUR", "BY-2026-00042")

    grant = await desk.create_grant()
    one_step = await desk.client.post(
        f"/api/funds/cost-estimates/{referral_id}/request", headers={**desk.finance, "Idempotency-Key": "est-1"},
        json={"grant_id": grant["id"], "purpose": "clinic invoice", "payee": {"name": names[4], "account": "LT02"}})
    assert one_step.status_code == 201, one_step.text
    requested = one_step.json()
    assert (requested["case_id"], requested["referral_id"], requested["amount"], requested["category"]) == (
        case_id, referral_id, "420.00", "medical")
    assert await open_estimates() == []
    again = await desk.client.post(f"/api/funds/cost-estimates/{referral_id}/request",
                                   headers={**desk.finance, "Idempotency-Key": "est-2"},
                                   json={"grant_id": grant["id"], "purpose": "clinic invoice"})
    assert again.status_code == 409 and again.json()["type"].endswith("/estimate-already-requested")
    same_referral = await desk.request(case_id, grant, amount="420.00", referral_id=referral_id)
    assert same_referral.status_code == 409

    # a rejected request gives the estimate back to finance, until the case is closed
    assert (await desk.act(requested["id"], "reject")).status_code == 200
    assert [e["referral_id"] for e in await open_estimates()] == [referral_id]
    desk.close_case(case_id)
    assert await open_estimates() == []

    # what funds announced: ids, category, amount; never the payee or the purpose
    nc = await nats.connect(desk.runtime.settings.nats_url)
    try:
        js = patient_jetstream(nc)
        await desk.eventually(lambda: _count(js, "FUNDS", 2))
        sub = await js.pull_subscribe("rehab.funds.>", durable=None, stream="FUNDS")
        messages = await sub.fetch(2, timeout=5)
    finally:
        await nc.close()
    assert [m.subject for m in messages] == ["rehab.funds.disbursement.requested", "rehab.funds.disbursement.rejected"]
    envelope = json.loads(messages[0].data)
    assert envelope["subject"] == requested["id"] and messages[0].headers["Nats-Msg-Id"] == envelope["id"]
    assert set(envelope["data"]) == {"disbursement_id", "case_id", "grant_id", "category", "amount", "currency",
                                     "status", "occurred_at"}
    assert envelope["data"]["amount"] == "420.00" and envelope["data"]["status"] == "requested"
    assert names[4] not in messages[0].data.decode() and "clinic invoice" not in messages[0].data.decode()


async def _count(js, stream: str, wanted: int) -> bool:
    try:
        return (await js.stream_info(stream)).state.messages >= wanted
    except nats.js.errors.NotFoundError:
        return False


async def test_events_out_of_order_never_reopen_a_case_and_still_link_an_estimate(desk):
    case_id = str(uuid.uuid4())
    desk.deliver(handlers.CASE_CLOSED, {"case_id": case_id, "closed_at": "2026-11-02T09:00:00Z"})
    desk.deliver(handlers.CASE_OPENED, {"case_id": case_id, "reference": "BY-2026-00077", "country": None,
                                        "opened_at": "2026-11-01T09:00:00Z"})
    assert case_status(desk, case_id) == "closed"
    desk.deliver(handlers.CASE_ERASED, {"case_id": case_id, "erased_at": "2026-11-03T09:00:00Z"})
    desk.deliver(handlers.CASE_CLOSED, {"case_id": case_id, "closed_at": "2026-11-02T09:00:00Z"})
    assert case_status(desk, case_id) == "erased"

    # aid requested for a referral before its completion (with the estimate) reaches funds
    open_case, referral_id = desk.open_case(), str(uuid.uuid4())
    grant = await desk.create_grant()
    await desk.requested(open_case, grant, amount="80.00", referral_id=referral_id)
    desk.deliver(handlers.REFERRAL_COMPLETED, completed(referral_id, open_case, {"amount": "80.00", "currency": "EUR"}))
    assert (await desk.client.get("/api/funds/cost-estimates", headers=desk.finance)).json()["items"] == []

    # an estimate that is not money funds can pay is skipped, not retried for ever
    desk.deliver(handlers.REFERRAL_COMPLETED, completed(str(uuid.uuid4()), open_case, {"amount": "80",
                                                                                      "currency": "EUR"}))
    assert len(desk.rows(CostEstimate)) == 1


async def test_aid_for_one_case_cannot_claim_the_cost_estimate_of_another_case_s_referral(desk):
    mine, theirs = desk.open_case(), desk.open_case(assignees=("caseworker-other",))
    my_referral, their_referral = str(uuid.uuid4()), str(uuid.uuid4())
    for referral_id, case_id in ((my_referral, mine), (their_referral, theirs)):
        estimate = {"amount": "80.00", "currency": "EUR"}
        desk.deliver(handlers.REFERRAL_COMPLETED, completed(referral_id, case_id, estimate))
    grant = await desk.create_grant()

    async def open_estimates() -> set[str]:
        response = await desk.client.get("/api/funds/cost-estimates", headers=desk.finance)
        return {e["referral_id"] for e in response.json()["items"]}

    crossed = await desk.request(mine, grant, amount="80.00", referral_id=their_referral)
    assert crossed.status_code == 422 and crossed.json()["type"].endswith("/estimate-of-another-case"), crossed.text
    assert await open_estimates() == {my_referral, their_referral}  # the other case's estimate is still finance's
    assert desk.rows(Disbursement) == []  # and no request was left behind, backed by nothing
    assert claims(desk) == {my_referral: None, their_referral: None}

    own = await desk.requested(mine, grant, amount="80.00", referral_id=my_referral)  # its own referral: claimed
    assert await open_estimates() == {their_referral}
    assert claims(desk) == {my_referral: own["id"], their_referral: None}


async def test_an_estimate_arriving_after_aid_for_another_case_named_its_referral_is_left_open(desk):
    mine, theirs = desk.open_case(), desk.open_case(assignees=("caseworker-other",))
    their_referral = str(uuid.uuid4())
    grant = await desk.create_grant()
    await desk.requested(mine, grant, amount="80.00", referral_id=their_referral)  # no estimate known yet: accepted

    desk.deliver(handlers.REFERRAL_COMPLETED, completed(their_referral, theirs, {"amount": "80.00", "currency": "EUR"}))

    assert claims(desk) == {their_referral: None}  # the other case's aid request does not take it
    listed = await desk.client.get("/api/funds/cost-estimates", headers=desk.finance)
    assert [e["referral_id"] for e in listed.json()["items"]] == [their_referral]


async def test_a_reopened_case_over_nats_takes_aid_again_and_a_duplicate_takes_none(desk):
    case_id, kept = str(uuid.uuid4()), str(uuid.uuid4())
    for opened in (case_id, kept):
        await desk.publish(handlers.CASE_OPENED, {"case_id": opened, "reference": "BY-2026-00311", "country": "LT",
                                                  "opened_at": "2026-11-01T09:00:00Z"}, aggregate=opened)
        await desk.publish(handlers.CASE_ASSIGNED, assignment(opened, CASEWORKER), aggregate=opened)
    await desk.publish(handlers.CASE_CLOSED, {"case_id": case_id, "closed_at": "2026-11-02T09:00:00Z"},
                       aggregate=case_id)
    await desk.eventually(lambda: case_status(desk, case_id) == "closed")
    await desk.publish(handlers.CASE_REOPENED, {"case_id": case_id, "reopened_at": "2026-11-03T09:00:00Z"},
                       aggregate=case_id)
    await desk.eventually(lambda: case_status(desk, case_id) == "open")

    grant = await desk.create_grant()
    reopened_aid = await desk.requested(case_id, grant, amount="50.00")
    pending = await desk.requested(case_id, grant, amount="60.00")
    approved = await desk.act(reopened_aid["id"], "approve", headers=desk.finance_b)
    assert approved.status_code == 200, approved.text

    await desk.publish(handlers.CASE_DUPLICATE, {"case_id": case_id, "kept_case_id": kept,
                                                 "marked_at": "2026-11-04T09:00:00Z"}, aggregate=case_id)
    await desk.eventually(lambda: case_status(desk, case_id) == "duplicate")
    for refused in (await desk.act(pending["id"], "approve", headers=desk.finance_b),
                    await desk.request(case_id, grant, amount="70.00")):
        assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (409, "case-duplicate")

    # A reopening (or a closing) after the marking moves nothing back: only a closed case reopens.
    await desk.publish(handlers.CASE_REOPENED, {"case_id": case_id, "reopened_at": "2026-11-05T09:00:00Z"},
                       aggregate=case_id)
    await desk.publish(handlers.CASE_CLOSED, {"case_id": kept, "closed_at": "2026-11-05T09:00:00Z"}, aggregate=kept)
    await desk.eventually(lambda: case_status(desk, kept) == "closed")  # published after: applied after
    assert case_status(desk, case_id) == "duplicate"
