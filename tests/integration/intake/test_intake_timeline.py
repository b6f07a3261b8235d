"""The case timeline: intake's own steps and what referrals and funds report through NATS, in time order; events
for unknown or erased cases are skipped without blocking the others; a redelivered event counts once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select

from kit.events import Envelope
from services.intake.models import kit_tables
from tests.integration.intake.conftest import Intake, eventually
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration


def _referral(kind: str, case_id: str, referral_id: str, at: datetime, **extra) -> Envelope:
    return Envelope.new(source="/rehab/referrals", type=f"rehab.referrals.referral.{kind}", subject=referral_id, data={
        "referral_id": referral_id, "case_id": case_id, "partner_id": "p-1", "category": "medical",
        "status": {"sent": "sent", "accepted": "accepted", "cancelled": "cancelled"}[kind], "cost_estimate": None,
        "occurred_at": at.isoformat(), **extra})


def _disbursement(kind: str, case_id: str, disbursement_id: str, at: datetime) -> Envelope:
    return Envelope.new(source="/rehab/funds", type=f"rehab.funds.disbursement.{kind}", subject=disbursement_id, data={
        "disbursement_id": disbursement_id, "case_id": case_id, "grant_id": "g-1", "category": "medical",
        "amount": "300.00", "currency": "EUR", "status": kind, "occurred_at": at.isoformat()})


class Producer:
    """Publishes as the referrals and funds services would: envelope JSON, Nats-Msg-Id = event id."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> Producer:
        self.nc = await nats.connect(self.url)
        self.js = patient_jetstream(self.nc)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.nc.close()

    async def publish(self, event: Envelope, *, msg_id: str | None = None) -> None:
        async def sent() -> bool:
            try:  # the stream exists once intake's consumer has provisioned it
                await self.js.publish(event.type, event.to_bytes(), headers={"Nats-Msg-Id": msg_id or event.id})
                return True
            except Exception:
                return False

        await eventually(sent)


def _applied(intake: Intake, consumer: str) -> int:
    inbox = kit_tables.inbox
    with intake.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(inbox).where(inbox.c.consumer == consumer)).scalar()


async def _timeline(intake: Intake, case_id: str) -> list[dict]:
    response = await intake.client.get(f"/api/intake/cases/{case_id}/timeline", headers=intake.caseworker)
    assert response.status_code == 200
    return response.json()["items"]


async def test_the_timeline_tells_the_whole_story_in_order(intake: Intake, nats_url):
    case = await intake.create()
    path = f"/api/intake/cases/{case['id']}"
    await intake.client.post(f"{path}/needs", json={"category": "medical", "urgency": "high", "notes": "Teeth"},
                             headers=intake.caseworker)
    await intake.client.put(f"{path}/consent", json={"categories": ["medical"], "share_contact": False,
                                                     "share_health": True, "method": "verbal"}, headers=intake.caseworker)
    referral_id, disbursement_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)  # after the consent, before the close: the other services' steps happen in between
    accepted = _referral("accepted", case["id"], referral_id, now + timedelta(milliseconds=2))
    async with Producer(nats_url) as producer:
        await producer.publish(_referral("sent", str(uuid.uuid4()), str(uuid.uuid4()), now))  # a case intake never had
        # Out of order: "accepted" arrives before "sent"; the timeline orders by when things happened.
        await producer.publish(accepted)
        await producer.publish(_referral("sent", case["id"], referral_id, now + timedelta(milliseconds=1)))
        await producer.publish(accepted, msg_id=f"again-{uuid.uuid4()}")  # redelivered past the duplicate window
        await producer.publish(_disbursement("approved", case["id"], disbursement_id, now + timedelta(milliseconds=3)))
        await producer.publish(_disbursement("paid", case["id"], disbursement_id, now + timedelta(milliseconds=4)))
    await eventually(lambda: _applied(intake, "intake-referrals") == 3 and _applied(intake, "intake-funds") == 2)
    await intake.client.post(f"{path}/close", headers=intake.caseworker)

    story = await _timeline(intake, case["id"])
    assert [(e["source"], e["kind"]) for e in story] == [
        ("intake", "case.opened"), ("intake", "needs.assessed"), ("intake", "consent.changed"),
        ("referrals", "referral.sent"), ("referrals", "referral.accepted"),
        ("funds", "disbursement.approved"), ("funds", "disbursement.paid"), ("intake", "case.closed")]
    assert story[6]["details"] == {"disbursement_id": disbursement_id, "grant_id": "g-1", "category": "medical",
                                   "amount": "300.00", "currency": "EUR", "status": "paid"}
    assert story[4]["details"]["referral_id"] == referral_id and story[4]["details"]["partner_id"] == "p-1"
    assert "Teeth" not in str(story)  # need notes stay sealed in the needs table
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kit_tables.dead_letters)).scalar() == 0

    first, second = (await intake.client.get(f"{path}/timeline", params={"limit": 5}, headers=intake.caseworker)).json(), None
    second = (await intake.client.get(f"{path}/timeline", params={"limit": 5, "cursor": first["next_cursor"]},
                                      headers=intake.caseworker)).json()
    assert [e["id"] for e in first["items"] + second["items"]] == [e["id"] for e in story]


async def test_events_after_erasure_are_not_kept(intake: Intake, nats_url):
    case = await intake.create()
    await intake.client.delete(f"/api/intake/cases/{case['id']}", headers=intake.caseworker)
    async with Producer(nats_url) as producer:
        await producer.publish(_referral("cancelled", case["id"], str(uuid.uuid4()), datetime.now(UTC)))
    await eventually(lambda: _applied(intake, "intake-referrals") == 1)
    assert await _timeline(intake, case["id"]) == []


def _opened_elsewhere(source: str, case_id: str, user_id: str, at: datetime) -> Envelope:
    return Envelope.new(source=f"/rehab/{source}", type=f"rehab.{source}.case.break_glass", subject=case_id,
                        data={"case_id": case_id, "user_id": user_id, "occurred_at": at.isoformat()})


async def test_a_break_glass_opening_in_referrals_or_funds_is_on_the_timeline_once_and_a_reason_here_still_counts(
        intake: Intake, nats_url):
    await intake.staff("caseworker-2", "bo")
    case = await intake.create()
    now = datetime.now(UTC)
    async with Producer(nats_url) as producer:
        # One after the other: the two streams' consumers are not ordered with each other.
        await producer.publish(_opened_elsewhere("referrals", case["id"], "caseworker-2", now))
        await eventually(lambda: _applied(intake, "intake-referrals") == 1)
        await producer.publish(_opened_elsewhere("funds", case["id"], "caseworker-2", now + timedelta(minutes=1)))
        await eventually(lambda: _applied(intake, "intake-funds") == 1)

    glass = [e for e in await _timeline(intake, case["id"]) if e["kind"] == "case.break_glass"]
    assert [(e["source"], e["details"]) for e in glass] == [("referrals", {"by": "bo", "reason": None})]

    # Opened in intake afterwards, with a reason: that reason is kept and shown, whatever came from elsewhere.
    bo = {**intake.as_("caseworker", sub="caseworker-2", username="bo"), "Access-Reason": "Covering for Ala today"}
    assert (await intake.client.get(f"/api/intake/cases/{case['id']}", headers=bo)).status_code == 200
    glass = [e for e in await _timeline(intake, case["id"]) if e["kind"] == "case.break_glass"]
    assert [(e["source"], e["details"]["reason"]) for e in glass] == [
        ("referrals", None), ("intake", "Covering for Ala today")]


async def test_a_reason_stated_in_referrals_or_funds_is_kept_here_sealed_and_shown_with_where(intake: Intake, nats_url):
    """What referrals and funds hand over (kit.need_to_know.ReasonKeeper): the opening, with its reason, on the
    timeline once per quarter hour; nothing for an assignee; refused without a reason, or for a case not here. The
    announcement that follows from the bus adds nothing."""
    await intake.staff("caseworker-2", "bo")
    case = await intake.create()
    openings = f"/api/intake/cases/{case['id']}/openings"
    reason = "Проверяю выплату по просьбе коллеги"
    bo = intake.as_("caseworker", sub="caseworker-2", username="bo")

    refused = await intake.client.post(openings, json={"opened_in": "referrals"}, headers=bo)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/need-to-know")
    bo = {**bo, "Access-Reason": reason.encode()}
    for opened_in in ("referrals", "funds"):
        kept = await intake.client.post(openings, json={"opened_in": opened_in}, headers=bo)
        assert kept.status_code == 204, kept.text
    wrong = await intake.client.post(openings, json={"opened_in": "gateway"}, headers=bo)
    assert wrong.status_code == 422
    assert (await intake.client.post(f"/api/intake/cases/{uuid.uuid4()}/openings", json={"opened_in": "funds"},
                                     headers=bo)).status_code == 404
    own = await intake.client.post(openings, json={"opened_in": "funds"},
                                   headers={**intake.caseworker, "Access-Reason": reason.encode()})
    assert own.status_code == 204
    async with Producer(nats_url) as producer:
        await producer.publish(_opened_elsewhere("referrals", case["id"], "caseworker-2", datetime.now(UTC)))
        await eventually(lambda: _applied(intake, "intake-referrals") == 1)

    glass = [e for e in await _timeline(intake, case["id"]) if e["kind"] == "case.break_glass"]
    assert [(e["source"], e["details"]) for e in glass] == [("referrals", {"by": "bo", "reason": reason})]
    # Another reason within the quarter hour, here: a line of its own, never hidden behind the first.
    other = "Читаю всё дело целиком"
    assert (await intake.client.get(f"/api/intake/cases/{case['id']}",
                                    headers={**bo, "Access-Reason": other.encode()})).status_code == 200
    glass = [e for e in await _timeline(intake, case["id"]) if e["kind"] == "case.break_glass"]
    assert [(e["source"], e["details"]["reason"]) for e in glass] == [("referrals", reason), ("intake", other)]
    with intake.engine.connect() as conn:  # sealed: the reason is nowhere in the database in clear
        for table in kit_tables.audit.metadata.sorted_tables:
            dump = repr(conn.execute(select(table)).all())
            assert reason not in dump and other not in dump, table.name


async def test_intake_publishes_its_events_with_the_contract_payloads(intake: Intake, nats_url):
    case = await intake.create(full_name="Дзмітрый Гурыновіч", country="LT")
    path = f"/api/intake/cases/{case['id']}"
    need = (await intake.client.post(f"{path}/needs", json={"category": "legal", "urgency": "critical", "notes": "Court"},
                                     headers=intake.caseworker)).json()
    await intake.client.put(f"{path}/consent", json={"categories": ["legal"], "share_contact": True, "share_health": False,
                                                     "method": "written", "expires_on": "2099-12-31"}, headers=intake.caseworker)
    await intake.client.post(f"{path}/close", headers=intake.caseworker)
    await intake.client.delete(f"{path}", headers=intake.caseworker)

    nc = await nats.connect(nats_url)
    js = patient_jetstream(nc)
    await eventually(lambda: _count(js, 5))
    messages = [Envelope.from_bytes((await js.get_msg("INTAKE", seq)).data) for seq in range(1, 6)]
    await nc.close()
    assert [m.type.removeprefix("rehab.intake.") for m in messages] == [
        "case.opened", "needs.assessed", "consent.changed", "case.closed", "case.erased"]
    assert all(m.subject == case["id"] and m.source == "/rehab/intake" for m in messages)
    opened, assessed, consent, closed, erased = (m.data for m in messages)
    assert opened == {"case_id": case["id"], "reference": case["reference"], "country": "LT",
                      "opened_at": opened["opened_at"], "assignees": ["caseworker-1"]}  # its creator
    assert assessed == {"case_id": case["id"], "need_id": need["id"], "category": "legal", "urgency": "critical"}
    assert consent == {"case_id": case["id"], "categories": ["legal"], "share_contact": True, "share_health": False,
                       "expires_on": "2099-12-31", "recorded_at": consent["recorded_at"]}
    assert set(closed) == {"case_id", "closed_at"} and set(erased) == {"case_id", "erased_at"}


async def _count(js, expected: int) -> bool:  # noqa: ANN001
    try:
        return (await js.stream_info("INTAKE")).state.messages >= expected
    except Exception:
        return False
