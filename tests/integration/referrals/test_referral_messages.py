"""Messages on a referral (issue #18, SPEC §4): a case's caseworkers and the referral's partner write to each other,
sealed under the packet's key and gone with it; a completed referral takes messages for 30 days, a cancelled or
declined one none (its thread no longer the partner's); the event carries ids only; unread counts per referral for
each side, the partner's only where it may read the thread. Through the service's API, on a real NATS and a real
database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy import text as sql

from services.referrals import lifecycle
from services.referrals.models import KnownCase, MessageMark, ReferralMessage
from tests.conftest import EXTERNAL_PG
from tests.integration.referrals.desk import CASEWORKER, people
from tests.integration.referrals.test_referrals_no_clear_text import files_holding, forms, rows_holding
from tests.support.apps import bearer

pytestmark = pytest.mark.integration

PERSON = people()[5]
PACKET = {"display_name": PERSON["belarusian"], "language": "be", "contact": "Signal +370 600 00002"}
REASON = "covering for Olga while she is on leave"
MESSAGE_FIELDS = {"id", "from", "at", "text"}
EVENT_FIELDS = {"referral_id", "partner_id", "from", "message_id", "occurred_at"}


def messages_path(referral_id: str, *, partner: bool = False) -> str:
    return f"/api/{'partner' if partner else 'referrals'}/referrals/{referral_id}/messages"


async def write(desk, referral_id: str, text: str, headers: dict[str, str], *, partner: bool = False):
    return await desk.client.post(messages_path(referral_id, partner=partner), json={"text": text}, headers=headers)


async def thread(desk, referral_id: str, headers: dict[str, str], *, partner: bool = False, query: str = "") -> dict:
    response = await desk.client.get(messages_path(referral_id, partner=partner) + query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def problem(response) -> tuple[int, str]:  # noqa: ANN001
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.status_code, response.json()["type"].rsplit("/", 1)[1]


def stored_messages(desk, referral_id: str) -> int:
    with desk.session() as session:
        return session.execute(select(func.count()).select_from(ReferralMessage).where(
            ReferralMessage.referral_id == referral_id)).scalar_one()


async def staff_unread(desk, case_id: str, headers: dict[str, str] | None = None) -> dict[str, int]:
    listed = await desk.client.get(f"/api/referrals/referrals?case_id={case_id}", headers=headers or desk.caseworker())
    assert listed.status_code == 200, listed.text
    return {r["id"]: r["unread_messages"] for r in listed.json()["items"]}


async def partner_unread(desk, partner_id: str) -> dict[str, int]:
    inbox = (await desk.client.get("/api/partner/referrals?limit=200", headers=desk.partner(partner_id))).json()
    return {r["id"]: r["unread_messages"] for r in inbox["items"]}


async def test_both_sides_write_and_read_the_thread_oldest_first(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    client_id = f"client-{partner[:8]}"
    partner_staff = bearer(desk.issuer, "partner_staff", sub="nurse-at-clinic", partner_id=partner)

    first = await write(desk, referral, "  Can you see her on Tuesday?  ", desk.caseworker())
    assert first.status_code == 201, first.text
    assert set(first.json()) == MESSAGE_FIELDS
    assert (first.json()["from"], first.json()["text"]) == ("caseworker", "Can you see her on Tuesday?")  # stripped
    second = await write(desk, referral, "Tuesday at 10 works.", desk.partner(partner), partner=True)
    third = await write(desk, referral, "She will bring the discharge papers.", partner_staff, partner=True)
    fourth = await write(desk, referral, "Thank you.", desk.caseworker())
    assert [r.status_code for r in (second, third, fourth)] == [201, 201, 201]
    written = [first.json(), second.json(), third.json(), fourth.json()]

    expected = [(m["id"], m["from"], m["text"]) for m in written]
    assert [m["from"] for m in written] == ["caseworker", "partner", "partner", "caseworker"]
    for headers, partner_side in ((desk.caseworker(), False), (desk.partner(partner), True), (partner_staff, True)):
        page = await thread(desk, referral, headers, partner=partner_side)
        assert page["next_cursor"] is None
        assert [(m["id"], m["from"], m["text"]) for m in page["items"]] == expected
        assert all(set(m) == MESSAGE_FIELDS for m in page["items"])
        # Who wrote it is not shown: not the caseworker's user id, not the partner's client.
        assert CASEWORKER not in str(page) and client_id not in str(page) and "nurse-at-clinic" not in str(page)

    # Paginated like every list, oldest first.
    seen, cursor = [], None
    while True:
        page = await thread(desk, referral, desk.partner(partner), partner=True,
                            query="?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["id"] for m in written]

    # What is not a message: empty once trimmed, nothing a reader would see (zero-width spaces and a joiner reach the
    # other side as an empty bubble), too long, unknown fields.
    for body in ({"text": "   "}, {"text": "\u200b\u200b\u2060 \u00ad"}, {"text": "x" * 10_001},
                 {"text": "hi", "from": "partner"}, {}):
        for headers, partner_side in ((desk.caseworker(), False), (desk.partner(partner), True)):
            response = await desk.client.post(messages_path(referral, partner=partner_side), json=body,
                                              headers=headers)
            assert response.status_code == 422, (body, response.text)
    assert (await write(desk, referral, "y" * 10_000, desk.caseworker())).status_code == 201

    # Who wrote each is kept (for the audit trail), and every write and read is audited.
    with desk.session() as session:
        authors = dict(session.execute(select(ReferralMessage.id, ReferralMessage.author)).all())
    assert [authors[m["id"]] for m in written] == [CASEWORKER, client_id, "nurse-at-clinic", CASEWORKER]
    trail = await desk.audit_trail(referral)
    assert trail.count((CASEWORKER, "referral.message.write")) == 3
    assert trail.count((client_id, "partner.referral.message.write")) == 1
    assert trail.count(("nurse-at-clinic", "partner.referral.message.write")) == 1
    assert (CASEWORKER, "referral.message.read") in trail
    assert (client_id, "partner.referral.message.read") in trail


async def test_the_text_is_never_in_clear_and_the_event_carries_ids_only(tmp_path, desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    secrets = {"staff": f"Q9mStaffMsgMarker: {PERSON['belarusian']} asks for a female doctor",
               "partner": "Q9mPartnerMsgMarker: her blood pressure was 180/110 today"}
    needles = [needle for text in secrets.values() for needle in forms(text)]

    before = {e.id for e in await desk.published()}
    assert (await write(desk, referral, secrets["staff"], desk.caseworker())).status_code == 201
    assert (await write(desk, referral, secrets["partner"], desk.partner(partner), partner=True)).status_code == 201
    assert {m["text"] for m in (await thread(desk, referral, desk.caseworker()))["items"]} == set(secrets.values())

    assert not rows_holding(desk, needles)
    assert not files_holding(tmp_path, needles)  # the database, its -wal, the NATS store

    events = [e for e in await desk.published() if e.id not in before]
    assert [(e.type, e.subject, e.data["from"]) for e in events] == [
        ("rehab.referrals.referral.message", referral, "caseworker"),
        ("rehab.referrals.referral.message", referral, "partner")]
    for event in events:
        assert set(event.data) == EVENT_FIELDS
        assert (event.data["referral_id"], event.data["partner_id"]) == (referral, partner)
        assert not [needle for needle in needles if needle in event.to_bytes()]
        assert case not in event.to_bytes().decode()  # not even the case id
    with desk.session() as session:
        assert sorted(session.execute(select(ReferralMessage.id)).scalars()) == sorted(
            e.data["message_id"] for e in events)


async def test_another_partner_gets_404_and_a_caseworker_not_assigned_gets_need_to_know(desk):
    ours = await desk.add_partner("medical")
    theirs = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, ours, packet=PACKET)
    assert (await write(desk, referral, "first", desk.partner(ours), partner=True)).status_code == 201

    # Another partner: the same 404 as for a referral that does not exist, on both verbs; the attempts are audited.
    unknown = str(uuid.uuid4())
    for target in (referral, unknown):
        wrote = await write(desk, target, "is this ours?", desk.partner(theirs), partner=True)
        read = await desk.client.get(messages_path(target, partner=True), headers=desk.partner(theirs))
        assert problem(wrote) == problem(read) == (404, "referral-not-found")
        assert wrote.json() == read.json()
    assert (await desk.audit_trail(referral)).count((f"client-{theirs[:8]}", "partner.referral.denied")) == 2
    # Staff routes are not the partner's, nor partner routes staff's.
    assert (await desk.client.get(messages_path(referral), headers=desk.partner(ours))).status_code == 403
    assert (await desk.client.get(messages_path(referral, partner=True),
                                  headers=desk.caseworker())).status_code == 403

    # A caseworker the case is not assigned to: need-to-know, a reason too short is no reason; a stated one opens it.
    other = desk.caseworker("caseworker-2")
    for headers, expected in ((other, (403, "need-to-know")),
                              ({**other, "Access-Reason": "urgent"}, (403, "need-to-know"))):
        assert problem(await write(desk, referral, "hello", headers)) == expected
        assert problem(await desk.client.get(messages_path(referral), headers=headers)) == expected
    assert (await write(desk, unknown, "hello", desk.caseworker())).status_code == 404
    glass = {**other, "Access-Reason": REASON}
    assert (await write(desk, referral, "covering this week", glass)).status_code == 201
    assert len((await thread(desk, referral, glass))["items"]) == 2
    assert (await desk.audit_trail(case)).count(("caseworker-2", "case.break_glass")) == 2
    # Nothing else was written by the refusals.
    assert stored_messages(desk, referral) == 2


@pytest.mark.parametrize("destroyed_by", ["consent-withdrawn", "consent-narrowed", "consent-expired", "case-erased"])
async def test_the_messages_go_with_the_packet_at_once(tmp_path, desk, destroyed_by):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    untouched_case = await desk.open_case(categories=["medical"])
    untouched = await desk.sent_referral(untouched_case, partner, packet=PACKET)
    for target in (referral, untouched):
        assert (await write(desk, target, "Q9mShredMarker from staff", desk.caseworker())).status_code == 201
        assert (await write(desk, target, "Q9mShredMarker from the clinic", desk.partner(partner),
                            partner=True)).status_code == 201
    assert (await staff_unread(desk, case))[referral] == 1
    await thread(desk, referral, desk.partner(partner), partner=True)  # the partner's mark exists too
    with desk.session() as session:
        sealed = list(session.execute(select(ReferralMessage.text).where(
            ReferralMessage.referral_id == referral)).scalars())
    assert len(sealed) == 2

    if destroyed_by == "consent-withdrawn":
        await desk.consent(case, [])
    elif destroyed_by == "consent-narrowed":
        await desk.consent(case, ["medical"], share_contact=False)  # the packet holds a contact
    elif destroyed_by == "consent-expired":  # found on the next read, before the watch comes by
        with desk.session() as session:
            session.execute(update(KnownCase).where(KnownCase.case_id == case).values(
                consent_expires_on=datetime.now(UTC).date() - timedelta(days=1)))
            session.commit()
    else:
        await desk.erase_case(case)

    # At once, for both sides: an empty thread (the referral's answer says the packet is gone), not an error.
    assert await thread(desk, referral, desk.partner(partner), partner=True) == {"items": [], "next_cursor": None}
    assert await thread(desk, referral, desk.caseworker()) == {"items": [], "next_cursor": None}
    seen = (await desk.client.get(f"/api/partner/referrals/{referral}", headers=desk.partner(partner))).json()
    assert (seen["packet_available"], seen["unread_messages"]) == (False, 0)
    assert (await staff_unread(desk, case))[referral] == 0
    # Gone from the database, with both sides' marks, and their sealed bytes from its files.
    assert stored_messages(desk, referral) == 0
    with desk.session() as session:
        assert not session.execute(select(MessageMark).where(MessageMark.referral_id == referral)).all()
    if not EXTERNAL_PG:  # on PostgreSQL old row versions last until VACUUM: the KEK is the wall there
        await desk.acknowledged()  # an event's traces leave the disk before its ack, a moment after its COMMIT
        assert not files_holding(tmp_path, sealed)
    # No new message on either side, with a reason a person can read.
    for response in (await write(desk, referral, "still there?", desk.caseworker()),
                     await write(desk, referral, "still there?", desk.partner(partner), partner=True)):
        assert problem(response) == (409, "packet-withdrawn")
        assert "consent" in response.json()["detail"]
    assert stored_messages(desk, referral) == 0

    # Another case's thread is untouched.
    assert len((await thread(desk, untouched, desk.caseworker()))["items"]) == 2


async def test_a_completed_referral_takes_messages_for_30_days_then_is_read_only_and_a_cancelled_or_declined_one_none(
        desk, monkeypatch):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    closed = {}
    for state, steps in {"completed": [("accept", None), ("start", None), ("complete", {"outcome": "stable"})],
                         "declined": [("decline", {"reason": "no place"})], "cancelled": []}.items():
        referral = await desk.sent_referral(case, partner, packet=PACKET)
        if state != "completed":
            assert (await write(desk, referral, "she can come on Monday", desk.caseworker())).status_code == 201
        for step, body in steps:
            assert (await desk.partner_step(partner, referral, step, body)).status_code == 200
        if state == "cancelled":
            cancel = await desk.client.post(f"/api/referrals/referrals/{referral}/cancel", headers=desk.caseworker())
            assert cancel.status_code == 200
        closed[state] = referral
    still_open = await desk.sent_referral(case, partner, packet=PACKET)
    assert (await desk.partner_step(partner, still_open, "accept")).status_code == 200

    def days_later(days: int) -> None:
        monkeypatch.setattr(lifecycle, "clock", lambda: lifecycle.system_clock() + timedelta(days=days))

    # Cancelled by the caseworkers, or declined by the partner: no longer the partner's, the thread is the
    # caseworkers' alone now. The partner reads nothing of it, and neither side writes, at once and later.
    for days in (0, 31):
        days_later(days)
        for state in ("cancelled", "declined"):
            withdrawn = closed[state]
            for response in (await write(desk, withdrawn, "still there?", desk.caseworker()),
                             await write(desk, withdrawn, "still there?", desk.partner(partner), partner=True)):
                assert problem(response) == (409, f"referral-{state}")
                assert state in response.json()["detail"]
            assert (await thread(desk, withdrawn, desk.partner(partner), partner=True))["items"] == []
            assert [m["text"] for m in (await thread(desk, withdrawn, desk.caseworker()))["items"]] == [
                "she can come on Monday"]
    completed = closed["completed"]

    days_later(29)  # within 30 days of closing: both sides still write
    assert (await write(desk, completed, "one more question", desk.caseworker())).status_code == 201
    assert (await write(desk, completed, "an answer", desk.partner(partner), partner=True)).status_code == 201

    days_later(31)
    for response in (await write(desk, completed, "too late?", desk.caseworker()),
                     await write(desk, completed, "too late?", desk.partner(partner), partner=True)):
        assert problem(response) == (409, "referral-closed")
        detail = response.json()["detail"]
        assert "completed" in detail and "30 days" in detail and "can still be read" in detail
    # The thread stays readable on both sides.
    assert len((await thread(desk, completed, desk.caseworker()))["items"]) == 2
    assert len((await thread(desk, completed, desk.partner(partner), partner=True))["items"]) == 2
    # A referral still under way takes messages whatever its age.
    assert (await write(desk, still_open, "how is it going?", desk.caseworker())).status_code == 201


@pytest.mark.parametrize("withdrawn_by", ["cancel", "decline"])
async def test_a_thread_hidden_from_the_partner_counts_nothing_unread_for_it(desk, withdrawn_by):
    """A reviewer's find: a cancelled referral still showed the partner `unread_messages: 1` while its thread read
    empty. What is counted is what the partner may read."""
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    withdrawn = await desk.sent_referral(case, partner, packet=PACKET)
    kept = await desk.sent_referral(case, partner, packet=PACKET)
    for referral in (withdrawn, kept):
        assert (await write(desk, referral, "Can you see her on Tuesday?", desk.caseworker())).status_code == 201
    assert await partner_unread(desk, partner) == {withdrawn: 1, kept: 1}

    if withdrawn_by == "cancel":
        response = await desk.client.post(f"/api/referrals/referrals/{withdrawn}/cancel", headers=desk.caseworker())
    else:
        response = await desk.partner_step(partner, withdrawn, "decline", {"reason": "no place"})
    assert response.status_code == 200, response.text

    seen = (await desk.client.get(f"/api/partner/referrals/{withdrawn}", headers=desk.partner(partner))).json()
    assert (seen["unread_messages"], seen["packet_available"]) == (0, False)
    assert await partner_unread(desk, partner) == {withdrawn: 0, kept: 1}
    status = "cancelled" if withdrawn_by == "cancel" else "declined"
    listed = (await desk.client.get(f"/api/partner/referrals?status={status}", headers=desk.partner(partner))).json()
    assert [(r["id"], r["unread_messages"]) for r in listed["items"]] == [(withdrawn, 0)]
    assert await thread(desk, withdrawn, desk.partner(partner), partner=True) == {"items": [], "next_cursor": None}
    # The message is still there for the caseworkers, and the referral still answers the partner.
    assert stored_messages(desk, withdrawn) == 1
    assert (await desk.client.get(f"/api/partner/referrals/{kept}", headers=desk.partner(partner))).json()[
        "unread_messages"] == 1


async def test_unread_counts_rise_with_the_other_sides_messages_and_clear_when_read(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"], assignees=(CASEWORKER, "caseworker-3"))
    first = await desk.sent_referral(case, partner, packet=PACKET)
    second = await desk.sent_referral(case, partner, packet=PACKET)
    assert await staff_unread(desk, case) == {first: 0, second: 0}

    for text in ("We can take her on Monday.", "Please confirm."):
        assert (await write(desk, first, text, desk.partner(partner), partner=True)).status_code == 201
    assert (await write(desk, second, "Which language does she prefer?", desk.partner(partner),
                        partner=True)).status_code == 201
    assert await staff_unread(desk, case) == {first: 2, second: 1}
    mine = (await desk.client.get("/api/referrals/referrals", headers=desk.caseworker())).json()["items"]
    assert {r["id"]: r["unread_messages"] for r in mine} == {first: 2, second: 1}  # across the caller's cases
    detail = (await desk.client.get(f"/api/referrals/referrals/{first}", headers=desk.caseworker())).json()
    assert detail["unread_messages"] == 2
    assert await partner_unread(desk, partner) == {first: 0, second: 0}  # its own messages are not news to it

    # A break-glass read is not the case's caseworkers having read it.
    glass = {**desk.caseworker("caseworker-2"), "Access-Reason": REASON}
    assert len((await thread(desk, first, glass))["items"]) == 2
    assert await staff_unread(desk, case) == {first: 2, second: 1}

    # An assignee reads: what was shown is read, a page at a time; writing back is news for the partner.
    assert len((await thread(desk, first, desk.caseworker(), query="?limit=1"))["items"]) == 1
    assert await staff_unread(desk, case) == {first: 1, second: 1}
    assert len((await thread(desk, first, desk.caseworker()))["items"]) == 2
    assert (await write(desk, first, "Confirmed, Monday.", desk.caseworker())).status_code == 201
    assert await staff_unread(desk, case) == {first: 0, second: 1}  # one's own side's messages do not count
    # Reading an earlier page again moves nothing back.
    assert len((await thread(desk, first, desk.caseworker(), query="?limit=1"))["items"]) == 1
    assert await staff_unread(desk, case) == {first: 0, second: 1}

    # The case's assignees share one mark: the other assignee's read clears it for both.
    assert len((await thread(desk, second, desk.caseworker("caseworker-3")))["items"]) == 1
    assert await staff_unread(desk, case) == {first: 0, second: 0}
    assert await staff_unread(desk, case, desk.caseworker("caseworker-3")) == {first: 0, second: 0}

    # The partner's side: the caseworker's answer is unread until the partner reads the thread.
    assert await partner_unread(desk, partner) == {first: 1, second: 0}
    seen = (await desk.client.get(f"/api/partner/referrals/{first}", headers=desk.partner(partner))).json()
    assert seen["unread_messages"] == 1
    await thread(desk, first, desk.partner(partner), partner=True)
    assert await partner_unread(desk, partner) == {first: 0, second: 0}
    # A new partner message counts again.
    assert (await write(desk, first, "See you Monday.", desk.partner(partner), partner=True)).status_code == 201
    assert await staff_unread(desk, case) == {first: 1, second: 0}


async def test_a_retried_message_with_its_key_is_written_once_and_its_stored_answer_goes_with_the_packet(desk):
    partner = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    for headers, partner_side in (({**desk.caseworker(), "Idempotency-Key": "m-1"}, False),
                                  ({**desk.partner(partner), "Idempotency-Key": "m-1"}, True)):
        first = await write(desk, referral, "Tuesday at 10?", headers, partner=partner_side)
        again = await write(desk, referral, "Tuesday at 10?", headers, partner=partner_side)
        assert first.status_code == again.status_code == 201 and again.json() == first.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
        other = await write(desk, referral, "Wednesday?", headers, partner=partner_side)
        assert other.status_code == 422  # another text under the same key
    assert stored_messages(desk, referral) == 2

    def stored_answers() -> int:
        with desk.session() as session:
            return session.execute(sql("SELECT count(*) FROM idempotency_keys WHERE subject_id = :id"),
                                   {"id": referral}).scalar_one()

    assert stored_answers() == 2  # each repeats its message's text (sealed): they go when the packet does
    await desk.consent(case, [])
    await thread(desk, referral, desk.caseworker())  # consent is read from intake's event: wait for the shred
    assert stored_messages(desk, referral) == 0 and stored_answers() == 0


async def test_a_partners_step_retried_with_its_key_acts_once_and_another_partner_is_still_404(desk):
    partner = await desk.add_partner("medical")
    stranger = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, partner, packet=PACKET)
    keyed = {**desk.partner(partner), "Idempotency-Key": "accept-1"}
    first = await desk.client.post(f"/api/partner/referrals/{referral}/accept", headers=keyed)
    again = await desk.client.post(f"/api/partner/referrals/{referral}/accept", headers=keyed)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    unkeyed = await desk.client.post(f"/api/partner/referrals/{referral}/accept", headers=desk.partner(partner))
    assert unkeyed.status_code == 409  # without a key, a second accept is the state machine's to refuse
    refused = await desk.client.post(f"/api/partner/referrals/{referral}/start",
                                     headers={**desk.partner(stranger), "Idempotency-Key": "k"})
    assert refused.status_code == 404
    assert (f"client-{stranger[:8]}", "partner.referral.denied") in await desk.audit_trail(referral)
