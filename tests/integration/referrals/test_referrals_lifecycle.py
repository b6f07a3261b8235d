"""A referral's lifecycle through the API: every (state, action) pair, the events each step publishes, what the
partner reports back, overdue referrals, and a retried send that does not send twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from services.funds import money as funds_money
from services.referrals.lifecycle import now_utc
from services.referrals.models import Referral
from tests.integration.referrals.desk import people

pytestmark = pytest.mark.integration

PERSON = people()[2]
PACKET = {"display_name": PERSON["russian"], "language": "ru", "health_summary": "hypertension"}

STATES = ("sent", "accepted", "in_progress", "completed", "declined", "cancelled")
ACTIONS = ("accept", "decline", "start", "complete", "cancel")
PATH_TO = {"sent": [], "accepted": ["accept"], "in_progress": ["accept", "start"],
           "completed": ["accept", "start", "complete"], "declined": ["decline"], "cancelled": ["cancel"]}
LEGAL = {("sent", "accept"): "accepted", ("sent", "decline"): "declined", ("sent", "cancel"): "cancelled",
         ("accepted", "start"): "in_progress", ("accepted", "cancel"): "cancelled",
         ("in_progress", "complete"): "completed", ("in_progress", "cancel"): "cancelled"}
EVENT = {"sent": "sent", "accepted": "accepted", "declined": "declined", "in_progress": "started",
         "completed": "completed", "cancelled": "cancelled"}
BODY = {"decline": {"reason": "no free places"},
        "complete": {"outcome": "treated", "cost_estimate": {"amount": "120.00", "currency": "EUR"}}}
CONTRACT_KEYS = {"referral_id", "case_id", "partner_id", "category", "status", "cost_estimate", "occurred_at"}


async def test_every_state_and_action_and_the_event_of_every_step(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])

    async def act(referral_id: str, action: str):
        if action == "cancel":
            return await desk.client.post(f"/api/referrals/referrals/{referral_id}/cancel", headers=desk.caseworker())
        return await desk.partner_step(partner, referral_id, action, BODY.get(action))

    expected_events: dict[str, list[str]] = {}
    for state in STATES:
        for action in ACTIONS:
            referral = await desk.sent_referral(case, partner, packet=PACKET)
            for step in PATH_TO[state]:
                assert (await act(referral, step)).status_code == 200
            response = await act(referral, action)
            where = (state, action, response.text)
            if (state, action) in LEGAL:
                assert response.status_code == 200, where
                assert response.json()["status"] == LEGAL[(state, action)], where
                path = ["sent", *_states_along(PATH_TO[state]), LEGAL[(state, action)]]
            else:
                assert response.status_code == 409, where
                assert response.json()["type"].endswith("/referral-transition"), where
                path = ["sent", *_states_along(PATH_TO[state])]
            detail = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).json()
            assert detail["status"] == path[-1], where
            expected_events[referral] = path

    published = await desk.published()
    seen: dict[str, list[str]] = {}
    for envelope in published:
        data = envelope.data
        assert set(data) == CONTRACT_KEYS, data
        assert envelope.type == f"rehab.referrals.referral.{EVENT[data['status']]}"
        assert envelope.subject == data["referral_id"] and envelope.source == "/rehab/referrals"
        assert (data["case_id"], data["partner_id"], data["category"]) == (case, partner, "medical")
        expected_cost = BODY["complete"]["cost_estimate"] if data["status"] == "completed" else None
        assert data["cost_estimate"] == expected_cost
        seen.setdefault(data["referral_id"], []).append(data["status"])
    assert seen == expected_events  # one event per step, in order, and none for a refused step

    # Every step is in the audit trail, by whoever took it; the caseworker's reads too.
    completed = next(r for r, path in expected_events.items() if path == ["sent", "accepted", "in_progress", "completed"])
    client_id = f"client-{partner[:8]}"
    assert await desk.audit_trail(completed) == [
        ("caseworker-1", "referral.create"), (client_id, "partner.referral.accept"),
        (client_id, "partner.referral.start"), (client_id, "partner.referral.complete"),
        ("caseworker-1", "referral.read")]


def _states_along(steps: list[str]) -> list[str]:
    state, states = "sent", []
    for step in steps:
        state = LEGAL[(state, step)]
        states.append(state)
    return states


async def test_the_partner_reports_back_and_the_caseworker_reads_it(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    declined = await desk.sent_referral(case, partner, packet=PACKET)
    completed = await desk.sent_referral(case, partner, packet=PACKET)

    for body in (None, {}, {"reason": "  "}, {"reason": "full", "extra": 1}):
        response = await desk.partner_step(partner, declined, "decline", body)
        assert response.status_code == 422, body
    assert (await desk.partner_step(partner, declined, "decline", {"reason": "no free places until May"})).status_code == 200

    for step in ("accept", "start"):
        assert (await desk.partner_step(partner, completed, step)).status_code == 200
    for cost in ({"amount": 120.00, "currency": "EUR"}, {"amount": "120", "currency": "EUR"},
                 {"amount": "120.5", "currency": "EUR"}, {"amount": "120.00", "currency": "euro"},
                 {"amount": "1200.00", "currency": "JPY"}, {"amount": "-5.00", "currency": "EUR"}):
        response = await desk.partner_step(partner, completed, "complete", {"outcome": "done", "cost_estimate": cost})
        assert response.status_code == 422, cost
    assert (await desk.partner_step(partner, completed, "complete", {"cost_estimate": None})).status_code == 422
    done = await desk.partner_step(partner, completed, "complete",
                                   {"outcome": "three sessions, stable", "cost_estimate": {"amount": "15000",
                                                                                          "currency": "JPY"}})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert "case_id" not in done.json() and "packet" not in done.json()

    read = (await desk.client.get(f"/api/referrals/referrals/{declined}", headers=desk.caseworker())).json()
    assert read["status"] == "declined" and read["decline_reason"] == "no free places until May"
    # A decline takes the packet back, as a cancel does (test_referrals_consent); the partner's reason stays.
    assert read["packet"] is None and read["packet_withdrawn"] == "referral-declined"
    read = (await desk.client.get(f"/api/referrals/referrals/{completed}", headers=desk.caseworker())).json()
    assert read["packet"]["display_name"] == PERSON["russian"]  # a completed one keeps it: the partner may follow up
    read = (await desk.client.get(f"/api/referrals/referrals/{completed}", headers=desk.caseworker())).json()
    assert read["outcome"] == "three sessions, stable"
    assert read["cost_estimate"] == {"amount": "15000", "currency": "JPY"}
    with desk.session() as session:
        stored = session.get(Referral, completed)
        assert (stored.cost_minor, stored.cost_currency) == (15000, "JPY")
        assert stored.outcome is not None and b"three sessions" not in stored.outcome

    missing = await desk.client.get("/api/referrals/referrals/00000000-0000-4000-8000-000000000000",
                                    headers=desk.caseworker())
    assert missing.status_code == 404
    cancel_missing = await desk.client.post("/api/referrals/referrals/nope/cancel", headers=desk.caseworker())
    assert cancel_missing.status_code == 404


async def test_a_cost_estimate_funds_could_not_pay_is_refused_in_words_and_never_shown(desk):
    # Funds pays a completed referral's estimate from the event: one it cannot take as money would be shown to staff
    # here and dropped there, so it is refused when the partner sends it.
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    for step in ("accept", "start"):
        assert (await desk.partner_step(partner, referral, step)).status_code == 200
    for cost, words in (({"amount": "120.00", "currency": "EUR\n"}, "one funds pays in"),
                        ({"amount": "120.00", "currency": "ABC"}, "one funds pays in"),
                        ({"amount": "120.00\n", "currency": "EUR"}, "exactly 2 digits after the point"),
                        ({"amount": "0.00", "currency": "EUR"}, "greater than zero"),
                        ({"amount": "1000000000000.00", "currency": "EUR"}, "at most 12 digits before the decimal point")):
        response = await desk.partner_step(partner, referral, "complete", {"outcome": "done", "cost_estimate": cost})
        assert response.status_code == 422, (cost, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].startswith("cost_estimate: ") and words in response.json()["detail"], cost
    read = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).json()
    assert read["status"] == "in_progress" and read["cost_estimate"] is None

    done = await desk.partner_step(partner, referral, "complete",
                                   {"outcome": "done", "cost_estimate": {"amount": "120.00", "currency": "EUR"}})
    assert done.status_code == 200, done.text
    completed = [e.data for e in await desk.published() if e.data["status"] == "completed"]
    assert [data["cost_estimate"] for data in completed] == [{"amount": "120.00", "currency": "EUR"}]
    estimate = completed[0]["cost_estimate"]
    assert funds_money.parse_amount(estimate["amount"], estimate["currency"]) == 12000  # as funds' handler reads it


async def test_referrals_nobody_answered_are_flagged_overdue_and_counted(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    waiting_long = await desk.sent_referral(case, partner, packet=PACKET)
    answered_late = await desk.sent_referral(case, partner, packet=PACKET)
    fresh = await desk.sent_referral(case, partner, packet=PACKET)
    assert (await desk.partner_step(partner, answered_late, "accept")).status_code == 200
    with desk.session() as session:  # four days pass for two of them (the threshold is 72 hours by default)
        session.execute(update(Referral).where(Referral.id.in_([waiting_long, answered_late])).values(
            created_at=now_utc() - timedelta(hours=96)))
        session.commit()

    listed = (await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=desk.caseworker())).json()
    assert {r["id"]: r["overdue"] for r in listed["items"]} == {waiting_long: True, answered_late: False, fresh: False}
    assert REGISTRY.get_sample_value("rehab_referrals_overdue") == 1
    only_late = (await desk.client.get("/api/referrals/referrals?overdue=true", headers=desk.caseworker())).json()
    assert [r["id"] for r in only_late["items"]] == [waiting_long]
    not_late = (await desk.client.get("/api/referrals/referrals?overdue=false&status=sent",
                                      headers=desk.caseworker())).json()
    assert [r["id"] for r in not_late["items"]] == [fresh]

    assert (await desk.partner_step(partner, waiting_long, "accept")).status_code == 200
    await desk.watch()  # what the background watch does every minute
    assert REGISTRY.get_sample_value("rehab_referrals_overdue") == 0

    page = (await desk.client.get("/api/referrals/referrals?limit=2", headers=desk.caseworker())).json()
    rest = (await desk.client.get(f"/api/referrals/referrals?limit=2&cursor={page['next_cursor']}",
                                  headers=desk.caseworker())).json()
    # Newest first; the two sent at the same moment in id order, across the page boundary.
    assert [r["id"] for r in page["items"] + rest["items"]] == [fresh, *sorted([answered_late, waiting_long], reverse=True)]
    assert rest["next_cursor"] is None
    for forged in ("garbage", "WyIyMDI2LTExLTIzVDEyOjAwOjAwIiwgIngiXQ"):  # the second: a time without its zone
        response = await desk.client.get(f"/api/referrals/referrals?cursor={forged}", headers=desk.caseworker())
        assert response.status_code == 400, forged


async def test_a_retried_send_with_the_same_idempotency_key_sends_once(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    key = {"Idempotency-Key": "send-once-1", **desk.caseworker()}
    first = await desk.refer(case, partner, packet=PACKET, headers=key)
    again = await desk.refer(case, partner, packet=PACKET, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers.get("Idempotent-Replayed") == "true"
    other_body = await desk.refer(case, partner, packet={"display_name": PERSON["latin_passport"]}, headers=key)
    assert other_body.status_code == 422
    listed = (await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=desk.caseworker())).json()
    assert [r["id"] for r in listed["items"]] == [first.json()["id"]]
    with desk.session() as session:
        outbox = desk.runtime.tables.outbox
        assert [row.subject for row in session.execute(outbox.select())] == ["rehab.referrals.referral.sent"]
