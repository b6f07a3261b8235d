"""Need-to-know in referrals: a caseworker sends, lists, reads and cancels referrals only of the cases intake assigned
to them (learned from `rehab.intake.case.assigned` on the INTAKE stream); another case only with a stated reason in
`Access-Reason`, a break-glass opening left in the audit trail as `case.break_glass`. The newest assignment wins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.integration.referrals.desk import people

pytestmark = pytest.mark.integration

PERSON = people()[3]
PACKET = {"display_name": PERSON["belarusian"], "language": "be", "note": "prefers mornings"}
REASON = "covering for Olga while she is on leave"


def refused(response) -> bool:  # noqa: ANN001
    return response.status_code == 403 and response.json()["type"].endswith("/need-to-know")


def reason_refused(response) -> bool:  # noqa: ANN001
    # SPEC §4: a reason under 10 characters is no reason: 403 need-to-know, saying how long one must be.
    return (response.status_code == 403 and response.json()["type"].endswith("/need-to-know")
            and "at least 10 characters" in response.json()["detail"])


async def test_a_caseworker_acts_only_on_the_referrals_of_cases_assigned_to_them(desk):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])  # assigned to caseworker-1
    mine, other = desk.caseworker(), desk.caseworker("caseworker-2")

    referral = await desk.sent_referral(case, medical, packet=PACKET, headers=mine)
    listed = await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=mine)
    assert [r["id"] for r in listed.json()["items"]] == [referral]
    not_an_id = await desk.client.get("/api/referrals/referrals?case_id=BY-2026-00001", headers=mine)
    assert not_an_id.status_code == 422 and "case_id" in not_an_id.text  # a reference is not a case id
    assert (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=mine)).status_code == 200

    # Someone else's case: every route about it is 403; a "reason" too short to be one is 422, as in intake.
    for headers, answer in ((other, refused), ({**other, "Access-Reason": "urgent"}, reason_refused),
                            ({**other, "Access-Reason": "         x"}, reason_refused)):
        assert answer(await desk.refer(case, medical, packet=PACKET, headers=headers))
        assert answer(await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=headers))
        assert answer(await desk.client.get(f"/api/referrals/referrals/{referral}", headers=headers))
        assert answer(await desk.client.post(f"/api/referrals/referrals/{referral}/cancel", headers=headers))
    # Without a case, each caseworker lists the referrals of their own cases only.
    assert (await desk.client.get("/api/referrals/referrals", headers=other)).json()["items"] == []
    assert [r["id"] for r in (await desk.client.get("/api/referrals/referrals", headers=mine)).json()["items"]] == [
        referral]

    # A case whose assignment has not reached referrals yet is nobody's: not known yet (intake's case always has a
    # caseworker), for its own caseworker to try again, not a refusal that invites a break-glass.
    unassigned = await desk.open_case(categories=["medical"], assignees=())
    early = await desk.refer(unassigned, medical, packet=PACKET, headers=mine)
    assert early.status_code == 409 and early.json()["type"].endswith("/case-unknown"), early.text

    # Nothing the refusals touched changed, and none of them opened a case in the audit trail.
    detail = (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=mine)).json()
    assert detail["status"] == "sent"
    assert ("caseworker-2", "case.break_glass") not in await desk.audit_trail()


async def test_every_refused_request_about_a_case_is_audited_by_who_and_which_case_never_what_it_sent(desk, intake):
    """BACKBONE, Audit: every refused authorisation. A stolen session probing cases leaves a trail here too: who tried
    which case, as `case.access_refused` about the case; never what the refused request carried."""
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, medical, packet=PACKET)
    other = desk.caseworker("caseworker-2")
    sent = "Zq-7731 hides at Kalinina 5"  # in the refused requests: in no entry, no row

    answers = [
        await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=other),
        await desk.client.get(f"/api/referrals/referrals/{referral}", headers=other),
        await desk.client.get(f"/api/referrals/referrals/{referral}/messages", headers=other),
        await desk.client.post(f"/api/referrals/referrals/{referral}/messages", json={"text": sent}, headers=other),
        await desk.refer(case, medical, packet={**PACKET, "note": sent}, headers=other),
        await desk.client.post(f"/api/referrals/referrals/{referral}/cancel", headers=other),
    ]
    assert all(refused(answer) for answer in answers), [answer.text for answer in answers]
    intake.status = 403  # as intake answers a reason too short to say why: refused before any use case here
    short = await desk.client.get(f"/api/referrals/referrals/{referral}", headers={**other, "Access-Reason": "urgent"})
    assert reason_refused(short), short.text
    answers.append(short)

    assert await desk.audit_trail(case) == [("caseworker-2", "case.access_refused")] * len(answers)
    assert [actor for actor, _ in await desk.audit_trail(referral)] == ["caseworker-1"]  # its sending, no more
    auditor = desk.staff("auditor")
    page = await desk.client.get(f"/api/referrals/audit?limit=500&target_id={case}", headers=auditor)
    assert "Zq-7731" not in page.text
    with desk.session() as session:
        assert "Zq-7731" not in repr(session.execute(select(desk.runtime.tables.audit)).all())


async def test_a_stated_reason_opens_another_case_by_break_glass_and_the_audit_trail_keeps_it(desk, intake):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, medical, packet=PACKET)
    glass = {**desk.caseworker("caseworker-2"), "Access-Reason": REASON}

    listed = await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=glass)
    assert listed.status_code == 200 and [r["id"] for r in listed.json()["items"]] == [referral]
    read = await desk.client.get(f"/api/referrals/referrals/{referral}", headers=glass)
    assert read.status_code == 200 and read.json()["packet"]["display_name"] == PERSON["belarusian"]
    sent = await desk.refer(case, medical, packet=PACKET, headers=glass)
    assert sent.status_code == 201, sent.text
    cancelled = await desk.client.post(f"/api/referrals/referrals/{sent.json()['id']}/cancel", headers=glass)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    # Each opening is an entry about the case, by whoever opened it; the assignee's own work leaves none.
    assert (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=desk.caseworker())).status_code == 200
    assert await desk.audit_trail(case) == [("caseworker-2", "case.break_glass")] * 4
    assert ("caseworker-2", "referral.create") in await desk.audit_trail(sent.json()["id"])
    # And each is announced, who and when, for the case's timeline in intake (which shows one per quarter hour).
    opened = [e for e in await desk.published() if e.type == "rehab.referrals.case.break_glass"]
    assert [(e.data["case_id"], e.data["user_id"], set(e.data)) for e in opened] == [
        (case, "caseworker-2", {"case_id", "user_id", "occurred_at"})] * 4
    # The reason itself is not kept here: intake keeps it, encrypted with the case, handed over before each opening
    # with the caller's own token.
    with desk.session() as session:
        for table in desk.runtime.tables.audit.metadata.sorted_tables:
            assert REASON not in repr(session.execute(select(table)).all()), table.name
    assert [(h.case_id, h.authorization, h.reason, h.opened_in) for h in intake.handed] == [
        (case, glass["Authorization"], REASON, "referrals")] * 4


async def test_a_case_is_not_opened_by_break_glass_when_intake_cannot_keep_the_reason(desk, intake):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, medical, packet=PACKET)
    glass = {**desk.caseworker("caseworker-2"), "Access-Reason": "Збіраю звесткі для калегі".encode()}  # Belarusian, UTF-8

    intake.status = 503  # sealed, say
    for attempt in (desk.client.get(f"/api/referrals/referrals/{referral}", headers=glass),
                    desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=glass),
                    desk.client.get(f"/api/referrals/referrals/{referral}/messages", headers=glass),
                    desk.refer(case, medical, packet=PACKET, headers=glass)):
        answer = await attempt
        assert answer.status_code == 503 and answer.json()["type"].endswith("/reason-not-kept"), answer.text
        assert PERSON["belarusian"] not in answer.text
    assert [h.reason for h in intake.handed] == ["Збіраю звесткі для калегі"] * 4  # as written, bytes passed on
    intake.status = 404  # not intake's "no such case" (a wrong REHAB_INTAKE_URL, say): no reason kept, no opening
    answer = await desk.client.get(f"/api/referrals/referrals/{referral}", headers=glass)
    assert answer.status_code == 503 and answer.json()["type"].endswith("/reason-not-kept"), answer.text
    # Nothing was opened: no entry, no announcement, no referral sent.
    assert ("caseworker-2", "case.break_glass") not in await desk.audit_trail(case)
    assert not [e for e in await desk.published() if e.type == "rehab.referrals.case.break_glass"]
    mine = await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=desk.caseworker())
    assert [r["id"] for r in mine.json()["items"]] == [referral]


async def test_the_newest_assignment_wins_and_an_older_one_arriving_late_changes_nothing(desk):
    medical = await desk.add_partner("medical")
    case = await desk.open_case(categories=["medical"])
    referral = await desk.sent_referral(case, medical, packet=PACKET)
    first, second = desk.caseworker(), desk.caseworker("caseworker-2")

    async def reads(headers: dict[str, str]) -> int:
        return (await desk.client.get(f"/api/referrals/referrals/{referral}", headers=headers)).status_code

    reassigned_at = datetime.now(UTC)
    await desk.assign(case, "caseworker-2", assigned_at=reassigned_at)
    assert (await reads(second), await reads(first)) == (200, 403)
    assert [r["id"] for r in (await desk.client.get("/api/referrals/referrals", headers=second)).json()["items"]] == [
        referral]

    # An assignment made before that one, delivered after it (a redelivery, a lagging replica), is ignored.
    await desk.assign(case, "caseworker-1", assigned_at=reassigned_at - timedelta(minutes=5))
    assert (await reads(second), await reads(first)) == (200, 403)

    await desk.assign(case, "caseworker-1", "caseworker-2", assigned_at=reassigned_at + timedelta(minutes=1))
    assert (await reads(second), await reads(first)) == (200, 200)


async def test_a_case_not_known_here_yet_is_said_so_to_its_own_caseworker_and_a_retry_with_the_key_is_done_again(desk):
    """Intake's events about a new case are on their way (NATS away a moment): its caseworker is told the case is not
    known yet (409 case-unknown), not that it is not theirs (403 need-to-know, which invites a break-glass on their
    own case); the answer is not kept for the Idempotency-Key, so the same request retried once the case has come is
    done."""
    medical = await desk.add_partner("medical")
    case = str(uuid.uuid4())
    mine = {**desk.caseworker(), "Idempotency-Key": str(uuid.uuid4())}

    early = await desk.refer(case, medical, packet=PACKET, headers=mine)
    listed = await desk.client.get(f"/api/referrals/referrals?case_id={case}", headers=desk.caseworker())
    for answer in (early, listed):
        assert answer.status_code == 409 and answer.json()["type"].endswith("/case-unknown"), answer.text

    # Its consent comes first (as intake's word at once does, NATS holding the rest): the case is known here now,
    # but not its caseworkers. Still "not known yet", never a stored 403 (a reviewer's find).
    await desk.consent(case, ["medical"])
    still = await desk.refer(case, medical, packet=PACKET, headers=mine)
    assert still.status_code == 409 and still.json()["type"].endswith("/case-unknown"), still.text

    await desk.intake_event("rehab.intake.case.opened", case, {
        "case_id": case, "reference": "BY-2026-04242", "country": "LT", "opened_at": datetime.now(UTC).isoformat()})
    await desk.assign(case, "caseworker-1")
    later = await desk.refer(case, medical, packet=PACKET, headers=mine)
    assert later.status_code == 201, later.text
    again = await desk.refer(case, medical, packet=PACKET, headers=mine)
    assert (again.status_code, again.json()["id"]) == (201, later.json()["id"])  # now kept: done once


async def test_a_case_id_as_typed_never_reaches_intake_unless_it_is_one(desk, intake):
    """The case id of a list's query is the caller's text: what is not a UUID (a path to another route of intake's,
    say) is refused here and never handed on."""
    glass = {**desk.caseworker("caseworker-2"), "Access-Reason": REASON}
    typed = "../../audit/verify?x="
    answer = await desk.client.get("/api/referrals/referrals", params={"case_id": typed}, headers=glass)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert intake.handed == []
