"""Consent decides what reaches a partner: refused referrals, packets destroyed when consent no longer covers
them, erasure; and the case projection fed by intake's events, in any order and any number of times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text, update

from services.referrals.models import KnownCase, Referral
from tests.integration.referrals.desk import DURABLE, people

pytestmark = pytest.mark.integration

PERSON = people()[1]
FULL_PACKET = {"display_name": PERSON["belarusian"], "language": "be", "note": "prefers mornings",
               "contact": "Signal +370 600 00001", "health_summary": "post-detention insomnia"}
BARE_PACKET = {"display_name": PERSON["latin_passport"]}
CONTACT_ONLY = {"display_name": PERSON["latin_passport"], "contact": "Telegram @someone"}
HEALTH_ONLY = {"display_name": PERSON["latin_passport"], "health_summary": "needs a cardiologist"}


def today():
    """Read when a test asks, not when the module is collected: the suite runs for an hour and may cross midnight."""
    return datetime.now(UTC).date()


async def test_consent_rules_decide_whether_a_referral_may_be_sent(desk):
    medical = await desk.add_partner("medical")
    legal = await desk.add_partner("legal")
    closed_doors = await desk.add_partner("medical", active=False)

    open_all = await desk.open_case(categories=["medical", "legal"], expires_on=today())  # valid through today
    closed = await desk.open_case(categories=["medical"])
    await desk.close_case(closed)
    erased = await desk.open_case(categories=["medical"])
    await desk.erase_case(erased)
    no_consent = await desk.open_case()
    withdrawn = await desk.open_case(categories=["medical"])
    await desk.consent(withdrawn, [])
    expired = await desk.open_case(categories=["medical"], expires_on=today() - timedelta(days=1))
    legal_only = await desk.open_case(categories=["legal"])
    no_contact = await desk.open_case(categories=["medical"], share_contact=False)
    no_health = await desk.open_case(categories=["medical"], share_health=False)
    unknown = str(uuid.uuid4())
    unknown_partner = str(uuid.uuid4())

    # A case referrals has not heard of is said to be unknown (409), with a reason or without: not "not yours".
    assert (await desk.refer(unknown, medical, "medical", BARE_PACKET)).json()["type"].endswith("/case-unknown")
    glass = {**desk.caseworker(), "Access-Reason": "checking a case intake has just opened"}
    unknown_case = await desk.refer(unknown, medical, "medical", BARE_PACKET, headers=glass)
    assert (unknown_case.status_code, unknown_case.json()["type"].rsplit("/", 1)[1]) == (409, "case-unknown")

    rules = [
        # (case, partner, need category, packet, status, problem kind)
        (closed, medical, "medical", BARE_PACKET, 409, "case-closed"),
        (erased, medical, "medical", BARE_PACKET, 409, "case-erased"),
        (no_consent, medical, "medical", BARE_PACKET, 409, "consent-missing"),
        (withdrawn, medical, "medical", BARE_PACKET, 409, "consent-missing"),
        (expired, medical, "medical", BARE_PACKET, 409, "consent-expired"),
        (legal_only, medical, "medical", BARE_PACKET, 409, "consent-category"),
        (no_contact, medical, "medical", CONTACT_ONLY, 409, "consent-contact"),
        (no_health, medical, "medical", HEALTH_ONLY, 409, "consent-health"),
        (open_all, closed_doors, "medical", BARE_PACKET, 409, "partner-inactive"),
        (open_all, unknown_partner, "medical", BARE_PACKET, 404, "partner-unknown"),
        (open_all, medical, "legal", BARE_PACKET, 409, "category-mismatch"),
        # what consent allows goes through
        (no_contact, medical, "medical", HEALTH_ONLY, 201, None),
        (no_health, medical, "medical", CONTACT_ONLY, 201, None),
        (open_all, medical, "medical", FULL_PACKET, 201, None),
        (open_all, legal, "legal", BARE_PACKET, 201, None),
    ]
    for case_id, partner_id, category, packet, status, kind in rules:
        response = await desk.refer(case_id, partner_id, category, packet)
        where = (kind, response.text)
        assert response.status_code == status, where
        if kind:
            assert response.headers["content-type"] == "application/problem+json", where
            problem = response.json()
            assert problem["type"].endswith(f"/{kind}") and problem["detail"], where
            assert PERSON["belarusian"] not in response.text and PERSON["latin_passport"] not in response.text
        else:
            assert response.json()["status"] == "sent" and response.json()["packet_available"] is True

    listed = (await desk.client.get("/api/referrals/referrals?limit=200", headers=desk.caseworker())).json()["items"]
    assert sorted((r["case_id"], r["need_category"]) for r in listed) == sorted(
        [(no_contact, "medical"), (no_health, "medical"), (open_all, "medical"), (open_all, "legal")])
    sent = await desk.published()
    assert [e.type for e in sent] == ["rehab.referrals.referral.sent"] * 4  # a refusal publishes nothing


async def test_withdrawn_or_narrowed_consent_hides_the_packet_at_once(desk):
    medical = await desk.add_partner("medical")
    psych = await desk.add_partner("psychological")
    case = await desk.open_case(categories=["medical", "psychological"])
    full = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    psych_bare = await desk.sent_referral(case, psych, category="psychological", packet=BARE_PACKET)
    medical_bare = await desk.sent_referral(case, medical, packet=BARE_PACKET)
    assert (await desk.partner_step(medical, full, "accept")).status_code == 200

    async def partner_sees(partner_id: str, referral_id: str) -> dict | None:
        response = await desk.client.get(f"/api/partner/referrals/{referral_id}", headers=desk.partner(partner_id))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["packet_available"] is (body["packet"] is not None)
        return body["packet"]

    assert (await partner_sees(medical, full))["health_summary"] == FULL_PACKET["health_summary"]

    # No more health data for partners: the packet holding a health summary goes, the others stay.
    await desk.consent(case, ["medical", "psychological"], share_health=False)
    assert await partner_sees(medical, full) is None
    assert (await partner_sees(medical, medical_bare))["display_name"] == PERSON["latin_passport"]
    assert (await partner_sees(psych, psych_bare))["display_name"] == PERSON["latin_passport"]

    # No more medical partners.
    await desk.consent(case, ["psychological"], share_health=False)
    assert await partner_sees(medical, medical_bare) is None
    assert (await partner_sees(psych, psych_bare))["display_name"] == PERSON["latin_passport"]

    # Withdrawn altogether.
    await desk.consent(case, [])
    assert await partner_sees(psych, psych_bare) is None

    # Consent given again does not bring a destroyed packet back: its key is gone.
    await desk.consent(case, ["medical", "psychological"])
    assert await partner_sees(medical, full) is None

    detail = (await desk.client.get(f"/api/referrals/referrals/{full}", headers=desk.caseworker())).json()
    assert detail["packet"] is None and detail["packet_withdrawn"] == "consent-health"
    assert detail["status"] == "accepted"  # the referral itself goes on
    listed = (await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=desk.caseworker())).json()
    assert {r["id"]: r["packet_withdrawn"] for r in listed["items"]} == {
        full: "consent-health", medical_bare: "consent-category", psych_bare: "consent-missing"}
    with desk.session() as session:
        for referral in session.exec(select(Referral).where(Referral.case_id == case)).scalars():
            assert (referral.packet, referral.packet_key, referral.packet_kid) == (None, None, None)
    assert ("system", "referral.packet.destroy") in await desk.audit_trail(full)


async def test_a_cancelled_referral_leaves_the_partner_nothing_of_the_person(desk):
    """Sent to the wrong partner and cancelled at once: the partner must not keep the name, contact and health
    summary of a referral no longer addressed to it, nor the thread, whose messages speak of the person (a
    reviewer read the caseworker's message after the cancel); its caseworkers keep the thread."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    wrong = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    written = await desk.client.post(f"/api/referrals/referrals/{wrong}/messages", headers=desk.caseworker(),
                                     json={"text": "She prefers mornings"})
    assert written.status_code == 201, written.text

    cancelled = await desk.client.post(f"/api/referrals/referrals/{wrong}/cancel", headers=desk.caseworker())

    assert cancelled.status_code == 200 and cancelled.json()["packet_available"] is False
    seen = (await desk.client.get(f"/api/partner/referrals/{wrong}", headers=desk.partner(medical))).json()
    assert (seen["status"], seen["packet"], seen["packet_available"]) == ("cancelled", None, False)
    detail = (await desk.client.get(f"/api/referrals/referrals/{wrong}", headers=desk.caseworker())).json()
    assert detail["packet_withdrawn"] == "referral-cancelled"
    thread = await desk.client.get(f"/api/partner/referrals/{wrong}/messages", headers=desk.partner(medical))
    assert thread.status_code == 200 and thread.json()["items"] == []
    kept = await desk.client.get(f"/api/referrals/referrals/{wrong}/messages", headers=desk.caseworker())
    assert [m["text"] for m in kept.json()["items"]] == ["She prefers mornings"]
    inbox = await desk.client.get("/api/partner/referrals", headers=desk.partner(medical))
    assert PERSON["belarusian"] not in inbox.text and FULL_PACKET["contact"] not in inbox.text
    with desk.session() as session:
        assert session.get(Referral, wrong).packet is None
    assert ("system", "referral.packet.destroy") in await desk.audit_trail(wrong)


async def test_a_declined_referral_leaves_the_partner_nothing_of_the_person_while_a_completed_one_keeps_it(desk):
    """A reviewer's find: a partner kept the name, contact and health summary of a referral it had declined, with no
    time limit. Having refused the person it has no remaining need for them: a decline takes the packet back as a
    cancel does, and the thread with it (read empty by the partner, nothing unread, no new message from either
    side), while the caseworkers keep the thread and the partner's reason. A completed referral keeps both: the
    partner may follow up."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    refused = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    done = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    for referral in (refused, done):
        written = await desk.client.post(f"/api/referrals/referrals/{referral}/messages", headers=desk.caseworker(),
                                         json={"text": "She prefers mornings"})
        assert written.status_code == 201, written.text
    for step, body in (("accept", None), ("start", None), ("complete", {"outcome": "seen twice"})):
        assert (await desk.partner_step(medical, done, step, body)).status_code == 200

    declined = await desk.partner_step(medical, refused, "decline", {"reason": "no cardiologist until May"})

    assert declined.status_code == 200 and declined.json()["packet_available"] is False
    seen = (await desk.client.get(f"/api/partner/referrals/{refused}", headers=desk.partner(medical))).json()
    assert (seen["status"], seen["packet"], seen["packet_available"]) == ("declined", None, False)
    assert seen["unread_messages"] == 0
    thread = await desk.client.get(f"/api/partner/referrals/{refused}/messages", headers=desk.partner(medical))
    assert thread.status_code == 200 and thread.json()["items"] == []
    inbox = await desk.client.get("/api/partner/referrals?status=declined", headers=desk.partner(medical))
    assert [r["id"] for r in inbox.json()["items"]] == [refused]
    assert PERSON["belarusian"] not in inbox.text and FULL_PACKET["contact"] not in inbox.text
    assert FULL_PACKET["health_summary"] not in inbox.text
    # The caseworkers keep the thread and the partner's reason; the packet's contents are gone, its key kept.
    detail = (await desk.client.get(f"/api/referrals/referrals/{refused}", headers=desk.caseworker())).json()
    assert (detail["packet"], detail["packet_available"], detail["packet_withdrawn"]) == (
        None, False, "referral-declined")
    assert detail["decline_reason"] == "no cardiologist until May"
    kept = await desk.client.get(f"/api/referrals/referrals/{refused}/messages", headers=desk.caseworker())
    assert [m["text"] for m in kept.json()["items"]] == ["She prefers mornings"]
    with desk.session() as session:
        stored = session.get(Referral, refused)
        assert stored.packet is None and stored.packet_key is not None
    assert ("system", "referral.packet.destroy") in await desk.audit_trail(refused)
    # Nobody writes to a thread the partner can no longer read.
    for path, headers in ((f"/api/referrals/referrals/{refused}/messages", desk.caseworker()),
                          (f"/api/partner/referrals/{refused}/messages", desk.partner(medical))):
        written = await desk.client.post(path, headers=headers, json={"text": "still there?"})
        assert written.status_code == 409 and written.json()["type"].endswith("/referral-declined")

    # Completed: the partner still sees the packet and the thread.
    seen = (await desk.client.get(f"/api/partner/referrals/{done}", headers=desk.partner(medical))).json()
    assert seen["status"] == "completed" and seen["packet"]["health_summary"] == FULL_PACKET["health_summary"]
    assert seen["unread_messages"] == 1
    thread = await desk.client.get(f"/api/partner/referrals/{done}/messages", headers=desk.partner(medical))
    assert [m["text"] for m in thread.json()["items"]] == ["She prefers mornings"]


async def test_a_referral_declined_while_declining_kept_the_packet_gives_it_up_when_read_and_on_the_watch(desk):
    """Referrals declined before a decline took the packet back still hold it: the partner's next read deletes it,
    and the watch deletes the rest."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    read_first = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    left_alone = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    with desk.session() as session:  # declined as the service used to decline: the packet left in place
        session.execute(update(Referral).where(Referral.id.in_([read_first, left_alone])).values(status="declined"))
        session.commit()

    seen = (await desk.client.get(f"/api/partner/referrals/{read_first}", headers=desk.partner(medical))).json()
    assert (seen["packet"], seen["packet_available"]) == (None, False)
    with desk.session() as session:
        assert session.get(Referral, read_first).packet is None
        assert session.get(Referral, read_first).packet_withdrawn == "referral-declined"
        assert session.get(Referral, left_alone).packet is not None

    assert await desk.watch() == 1
    with desk.session() as session:
        swept = session.get(Referral, left_alone)
        assert swept.packet is None and swept.packet_withdrawn == "referral-declined"
        assert swept.packet_key is not None  # the caseworkers' thread stays readable
    assert await desk.watch() == 0


async def test_an_expired_consent_hides_the_packet_when_read_and_on_the_watch(desk):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"], expires_on=today() + timedelta(days=1))
    read_first = await desk.sent_referral(case, medical, packet=BARE_PACKET)
    left_alone = await desk.sent_referral(case, medical, packet=BARE_PACKET)

    # Two days pass (the watch runs every minute by default; here the test calls it): the consent ran out yesterday.
    with desk.session() as session:
        session.execute(update(KnownCase).where(KnownCase.case_id == case).values(
            consent_expires_on=today() - timedelta(days=1)))
        session.commit()

    seen = (await desk.client.get(f"/api/partner/referrals/{read_first}", headers=desk.partner(medical))).json()
    assert seen["packet"] is None and seen["packet_available"] is False
    with desk.session() as session:
        assert session.get(Referral, read_first).packet_key is None
        assert session.get(Referral, left_alone).packet_key is not None

    assert await desk.watch() == 1
    with desk.session() as session:
        swept = session.get(Referral, left_alone)
        assert swept.packet_key is None and swept.packet_withdrawn == "consent-expired"
    assert await desk.watch() == 0
    refused = await desk.refer(case, medical, packet=BARE_PACKET)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/consent-expired")


async def test_erasure_forgets_the_person_and_ends_open_referrals_while_closing_ends_nothing(desk):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    states = {}
    for target in ("sent", "accepted", "in_progress", "completed", "declined"):
        referral = await desk.sent_referral(case, medical, packet=FULL_PACKET)
        steps = {"accepted": ["accept"], "in_progress": ["accept", "start"],
                 "completed": ["accept", "start", "complete"], "declined": ["decline"]}.get(target, [])
        for step in steps:
            body = {"complete": {"outcome": "seen twice, stable"}, "decline": {"reason": "no cardiologist"}}.get(step)
            assert (await desk.partner_step(medical, referral, step, body)).status_code == 200
        states[referral] = target

    other = await desk.open_case(categories=["medical"])
    kept = await desk.sent_referral(other, medical, packet=FULL_PACKET)
    await desk.close_case(other)

    before = {e.id for e in await desk.published()}
    await desk.erase_case(case)

    for referral, was in states.items():
        detail = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).json()
        assert detail["packet"] is None and detail["packet_withdrawn"] == "case-erased"
        assert detail["decline_reason"] is None and detail["outcome"] is None
        expected = "cancelled" if was in ("sent", "accepted", "in_progress") else was
        assert detail["status"] == expected, (was, detail["status"])
        seen = (await desk.client.get(f"/api/partner/referrals/{referral}", headers=desk.partner(medical))).json()
        assert seen["packet"] is None and seen["status"] == expected
    with desk.session() as session:
        for referral in session.exec(select(Referral).where(Referral.case_id == case)).scalars():
            assert not any((referral.packet, referral.packet_key, referral.reply_key, referral.outcome,
                            referral.decline_reason))
        assert session.get(KnownCase, case).consent_categories == []

    cancelled = [e for e in await desk.published() if e.id not in before]
    assert sorted(e.data["referral_id"] for e in cancelled) == sorted(
        r for r, was in states.items() if was in ("sent", "accepted", "in_progress"))
    assert {(e.type, e.data["status"], e.data["case_id"]) for e in cancelled} == {
        ("rehab.referrals.referral.cancelled", "cancelled", case)}

    refused = await desk.refer(case, medical, packet=BARE_PACKET)
    assert refused.status_code == 409 and refused.json()["type"].endswith("/case-erased")
    await desk.consent(case, ["medical"])  # a consent event after erasure changes nothing
    refused = await desk.refer(case, medical, packet=BARE_PACKET)
    assert refused.json()["type"].endswith("/case-erased")

    # Closing a case refuses new referrals but takes nothing from the ones under way.
    seen = (await desk.client.get(f"/api/partner/referrals/{kept}", headers=desk.partner(medical))).json()
    assert seen["packet"]["display_name"] == PERSON["belarusian"] and seen["status"] == "sent"
    refused = await desk.refer(other, medical, packet=BARE_PACKET)
    assert refused.json()["type"].endswith("/case-closed")


async def test_erasure_forgets_what_each_packet_held_keeping_bare_ids_and_states(desk):
    """A reviewer's find: after erasure the referrals kept `packet_has_contact` / `packet_has_health`, which tie the
    fact that a named clinic was given the person's contact or a health summary to the case; so did the reason a
    packet went when consent stopped covering its health summary (`consent-health`)."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    health = await desk.sent_referral(case, medical, packet=HEALTH_ONLY)
    states = {health: "sent"}
    for target, steps in (("sent", []), ("declined", ["decline"]), ("completed", ["accept", "start", "complete"])):
        referral = await desk.sent_referral(case, medical, packet=CONTACT_ONLY)
        for step in steps:
            body = {"complete": {"outcome": "seen twice"}, "decline": {"reason": "no place"}}.get(step)
            assert (await desk.partner_step(medical, referral, step, body)).status_code == 200
        states[referral] = target
    await desk.consent(case, ["medical"], share_contact=True, share_health=False)  # the health summary goes
    other = await desk.open_case(categories=["medical"])
    untouched = await desk.sent_referral(other, medical, packet=FULL_PACKET)
    with desk.session() as session:
        assert session.get(Referral, health).packet_withdrawn == "consent-health"
        assert session.get(Referral, health).packet_has_health is True
        assert all(session.get(Referral, r).packet_has_contact for r, was in states.items() if r != health)

    await desk.erase_case(case)

    with desk.session() as session:
        for referral in session.exec(select(Referral).where(Referral.case_id == case)).scalars():
            assert (referral.packet_has_contact, referral.packet_has_health) == (False, False), referral.id
            assert referral.packet_withdrawn == "case-erased", referral.id
        kept = {r.id: r.status for r in session.exec(select(Referral).where(Referral.case_id == case)).scalars()}
        # Bare ids and states stay: open ones were cancelled by the erasure, finished ones are as they were.
        assert kept == {r: "cancelled" if was == "sent" else was for r, was in states.items()}
        other_row = session.get(Referral, untouched)
        assert (other_row.packet_has_contact, other_row.packet_has_health) == (True, True)
    detail = (await desk.client.get(f"/api/referrals/referrals/{health}", headers=desk.caseworker())).json()
    assert detail["packet_withdrawn"] == "case-erased" and detail["packet"] is None


async def test_a_redelivered_intake_event_changes_nothing_and_order_does_not_matter(desk):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    granted = await desk.consent(case, ["medical"])
    referral = await desk.sent_referral(case, medical, packet=FULL_PACKET)
    withdrawn = await desk.consent(case, [])
    closed = await desk.close_case(case)
    opened_again_later = {"case_id": case, "reference": "BY-2026-00001", "country": "LT",
                          "opened_at": datetime.now(UTC).isoformat()}
    opened = await desk.intake_event("rehab.intake.case.opened", case, opened_again_later)
    await desk.acknowledged()
    before = snapshot(desk)
    assert before["cases"][0][1] == "closed"  # a late `opened` does not reopen a closed case

    suppressed = duplicates_suppressed()
    for envelope in (granted, withdrawn, closed, opened):
        # Within the stream's duplicate window the same Nats-Msg-Id is dropped by JetStream itself...
        ack = await desk.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
        assert ack.duplicate
        # ...and after it (a new message id, the same event) the consumer's inbox recognises the event.
        await desk.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": f"replay-{envelope.id}"})
    await desk.acknowledged()
    assert duplicates_suppressed() - suppressed == 4
    assert snapshot(desk) == before  # projection, referrals, inbox, outbox and audit trail: all unchanged
    seen = (await desk.client.get(f"/api/partner/referrals/{referral}", headers=desk.partner(medical))).json()
    assert seen["packet"] is None

    # Out of order: consent before `opened`, and an older consent arriving after a newer one.
    late = str(uuid.uuid4())
    newer = datetime.now(UTC)
    await desk.consent(late, ["medical"], share_health=False, recorded_at=newer)
    await desk.consent(late, ["medical", "legal"], recorded_at=newer - timedelta(minutes=5))
    await desk.intake_event("rehab.intake.case.opened", late, {**opened_again_later, "case_id": late})
    await desk.assign(late, "caseworker-1")
    with desk.session() as session:
        known = session.get(KnownCase, late)
        assert (known.status, known.consent_categories, known.share_health) == ("open", ["medical"], False)
    assert (await desk.refer(late, medical, packet=BARE_PACKET)).status_code == 201


def duplicates_suppressed() -> float:
    return REGISTRY.get_sample_value("rehab_events_duplicates_suppressed_total",
                                     {"service": "referrals", "consumer": DURABLE}) or 0.0


def snapshot(desk) -> dict[str, list]:
    with desk.session() as session:
        return {table: [tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))]
                for table in ("cases", "referrals", "inbox", "outbox", "audit_log")}

