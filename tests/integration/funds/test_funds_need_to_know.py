"""Need-to-know in funds: a caseworker requests aid for, lists and reads the disbursements of only the cases intake
assigned to them (learned from `rehab.intake.case.assigned`); another case only with a stated reason in
`Access-Reason`, a break-glass opening left in the audit trail as `case.break_glass`. Finance works every
disbursement. The newest assignment wins."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

from kit import db, migrations
from services.funds import handlers
from services.funds.main import SPEC

pytestmark = pytest.mark.integration

REASON = "covering for Olga while she is on leave"


def refused(response) -> bool:  # noqa: ANN001
    return response.status_code == 403 and response.json()["type"].endswith("/need-to-know")


def reason_refused(response) -> bool:  # noqa: ANN001
    # SPEC §4: a reason under 10 characters is no reason: 403 need-to-know, saying how long one must be.
    return (response.status_code == 403 and response.json()["type"].endswith("/need-to-know")
            and "at least 10 characters" in response.json()["detail"])


def entries(desk, target_id: str) -> list[tuple[str, str]]:  # noqa: ANN001
    table = desk.runtime.tables.audit
    with db.transaction(desk.runtime.session_factory) as session:
        return [tuple(row) for row in session.execute(select(table.c.actor, table.c.action)
                                                      .where(table.c.target_id == target_id).order_by(table.c.seq))]


async def test_a_caseworker_works_only_the_aid_of_cases_assigned_to_them_and_finance_all(desk):
    grant = await desk.create_grant()
    case_id = desk.open_case()  # assigned to caseworker-olga
    ivan = desk.as_("caseworker", "caseworker-ivan")

    mine = await desk.requested(case_id, grant)
    listed = await desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=desk.caseworker)
    assert [d["id"] for d in listed.json()["items"]] == [mine["id"]]
    assert (await desk.client.get(f"/api/funds/disbursements/{mine['id']}", headers=desk.caseworker)).status_code == 200

    # Someone else's case: 403; a "reason" too short to be one is 422, as in intake.
    for headers, answer in ((ivan, refused), ({**ivan, "Access-Reason": "urgent"}, reason_refused)):
        assert answer(await desk.request(case_id, grant, headers=headers))
        assert answer(await desk.client.get("/api/funds/disbursements", params={"case_id": case_id},
                                            headers=headers))
        assert answer(await desk.client.get(f"/api/funds/disbursements/{mine['id']}", headers=headers))

    # A case whose assignment has not reached funds yet is no caseworker's; finance works it all the same.
    unassigned = desk.open_case(assignees=())
    assert refused(await desk.request(unassigned, grant))
    for_finance = await desk.requested(unassigned, grant, headers=desk.finance)
    finance_read = await desk.client.get(f"/api/funds/disbursements/{for_finance['id']}", headers=desk.finance)
    assert finance_read.status_code == 200
    everything = await desk.client.get("/api/funds/disbursements", headers=desk.finance)
    assert {d["id"] for d in everything.json()["items"]} == {mine["id"], for_finance["id"]}

    # None of this opened a case by break-glass.
    assert "case.break_glass" not in {row["action"] for row in desk.rows(desk.runtime.tables.audit)}


async def test_every_refused_request_about_a_case_is_audited_by_who_and_which_case_never_what_it_sent(desk, intake):
    """BACKBONE, Audit: every refused authorisation. A stolen session probing cases leaves a trail here too: who tried
    which case, as `case.access_refused` about the case; never what the refused request carried."""
    grant = await desk.create_grant()
    case_id = desk.open_case()  # assigned to caseworker-olga
    mine = await desk.requested(case_id, grant)
    ivan = desk.as_("caseworker", "caseworker-ivan")
    sent = "Zq-7731 hides at Kalinina 5"  # in the refused request: in no entry, no row

    answers = [
        await desk.request(case_id, grant, headers=ivan, purpose=sent),
        await desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=ivan),
        await desk.client.get(f"/api/funds/disbursements/{mine['id']}", headers=ivan),
    ]
    assert all(refused(answer) for answer in answers), [answer.text for answer in answers]
    intake.status = 403  # as intake answers a reason too short to say why: refused before any use case here
    short = await desk.client.get(f"/api/funds/disbursements/{mine['id']}", headers={**ivan, "Access-Reason": "urgent"})
    assert reason_refused(short), short.text
    answers.append(short)

    assert entries(desk, case_id) == [("caseworker-ivan", "case.access_refused")] * len(answers)
    assert [actor for actor, _ in entries(desk, mine["id"])] == ["caseworker-olga"]  # its request, no more
    assert "Zq-7731" not in repr(desk.rows(desk.runtime.tables.audit))


async def test_a_stated_reason_opens_another_case_by_break_glass_and_the_audit_trail_keeps_it(desk, intake):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    glass = {**desk.as_("caseworker", "caseworker-ivan"), "Access-Reason": REASON}

    requested = await desk.requested(case_id, grant, headers=glass)
    listed = await desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=glass)
    assert listed.status_code == 200 and [d["id"] for d in listed.json()["items"]] == [requested["id"]]
    read = await desk.client.get(f"/api/funds/disbursements/{requested['id']}", headers=glass)
    assert read.status_code == 200 and read.json()["payee"] is None

    assert entries(desk, case_id) == [("caseworker-ivan", "case.break_glass")] * 3
    # Each announced, who and when, for the case's timeline in intake.
    opened = [row for row in desk.rows(desk.runtime.tables.outbox) if row["subject"] == "rehab.funds.case.break_glass"]
    assert [(row["aggregate_id"], json.loads(row["envelope"])["data"]["user_id"]) for row in opened] == [
        (case_id, "caseworker-ivan")] * 3
    assert entries(desk, requested["id"]) == [("caseworker-ivan", "disbursement.request"),
                                              ("caseworker-ivan", "disbursement.read")]
    # The assignee needs no reason and leaves no such entry; the reason itself is not kept here: intake keeps it,
    # handed over before each opening with the caller's own token (finance, who opens nothing, hands none).
    own_read = await desk.client.get(f"/api/funds/disbursements/{requested['id']}", headers=desk.caseworker)
    assert own_read.status_code == 200
    assert len(entries(desk, case_id)) == 3
    for table in desk.runtime.tables.audit.metadata.sorted_tables:
        assert REASON not in repr(desk.rows(table)), table.name
    assert [(h.case_id, h.authorization, h.reason, h.opened_in) for h in intake.handed] == [
        (case_id, glass["Authorization"], REASON, "funds")] * 3
    finance_with_reason = {**desk.finance, "Access-Reason": REASON}
    assert (await desk.client.get(f"/api/funds/disbursements/{requested['id']}",
                                  headers=finance_with_reason)).status_code == 200
    assert len(intake.handed) == 3


async def test_a_case_is_not_opened_by_break_glass_when_intake_cannot_keep_the_reason(desk, intake):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    requested = await desk.requested(case_id, grant)
    glass = {**desk.as_("caseworker", "caseworker-ivan"), "Access-Reason": REASON}

    intake.status = 503  # sealed, say
    for attempt in (desk.client.get(f"/api/funds/disbursements/{requested['id']}", headers=glass),
                    desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=glass),
                    desk.request(case_id, grant, headers=glass)):
        answer = await attempt
        assert answer.status_code == 503 and answer.json()["type"].endswith("/reason-not-kept"), answer.text
        assert "purpose" not in answer.text
    assert len(intake.handed) == 3
    # Nothing was opened: no entry, no announcement, no second request.
    assert entries(desk, case_id) == []
    assert not [row for row in desk.rows(desk.runtime.tables.outbox) if row["subject"] == "rehab.funds.case.break_glass"]
    assert len((await desk.client.get("/api/funds/disbursements", headers=desk.finance)).json()["items"]) == 1


async def test_the_newest_assignment_wins_and_an_older_one_arriving_late_changes_nothing(desk):
    grant = await desk.create_grant()
    case_id = desk.open_case()
    requested = await desk.requested(case_id, grant)
    olga, ivan = desk.caseworker, desk.as_("caseworker", "caseworker-ivan")

    async def reads(headers: dict[str, str]) -> int:
        return (await desk.client.get(f"/api/funds/disbursements/{requested['id']}", headers=headers)).status_code

    reassigned_at = datetime.now(UTC)
    desk.assign(case_id, "caseworker-ivan", assigned_at=reassigned_at)
    assert (await reads(ivan), await reads(olga)) == (200, 403)
    assert (await desk.request(case_id, grant, headers=ivan)).status_code == 201

    # An assignment made before that one, delivered after it, is ignored.
    desk.assign(case_id, "caseworker-olga", assigned_at=reassigned_at - timedelta(minutes=5))
    assert (await reads(ivan), await reads(olga)) == (200, 403)

    desk.assign(case_id, "caseworker-olga", "caseworker-ivan", assigned_at=reassigned_at + timedelta(minutes=1))
    assert (await reads(ivan), await reads(olga)) == (200, 200)


async def test_a_case_not_known_here_yet_is_said_so_to_its_own_caseworker_and_a_retry_with_the_key_is_done_again(desk):
    """Intake's events about a new case are on their way: 409 case-unknown for its caseworker, not 403 need-to-know;
    not kept for the Idempotency-Key, so the same request retried once the case has come is done, once."""
    grant = await desk.create_grant()
    case_id, key = str(uuid.uuid4()), str(uuid.uuid4())

    early = await desk.request(case_id, grant, key=key)
    listed = await desk.client.get("/api/funds/disbursements", params={"case_id": case_id}, headers=desk.caseworker)
    for answer in (early, listed):
        assert answer.status_code == 409 and answer.json()["type"].endswith("/case-unknown"), answer.text

    desk.deliver(handlers.CASE_OPENED, {"case_id": case_id, "reference": "BY-2026-04243", "country": "LT",
                                        "opened_at": "2026-01-05T10:00:00Z"})
    desk.assign(case_id, "caseworker-olga")
    later = await desk.request(case_id, grant, key=key)
    assert later.status_code == 201, later.text
    again = await desk.request(case_id, grant, key=key)
    assert (again.status_code, again.json()["id"]) == (201, later.json()["id"])


def test_the_upgrade_counts_today_s_assignees_among_a_case_s_caseworkers(books):
    """The migration that began keeping everyone ever assigned (`case_workers`) starts from who is assigned now: on
    the day of the upgrade, a caseworker of a case who also holds finance is refused its aid already."""
    engine = books.runtime.engine
    cfg = migrations.config_for(SPEC.migrations_dir, engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "f7a9c3e5b1d8")  # the revision before
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO case_assignments (case_id, assigned_at) VALUES ('c-1', '2026-12-01 10:00:00')"))
        conn.execute(text("INSERT INTO case_assignees (case_id, user_id) VALUES ('c-1', 'vera'), ('c-1', 'olga')"))
    migrations.upgrade(engine, SPEC.migrations_dir)
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT case_id, user_id FROM case_workers ORDER BY user_id")).all()
    assert [tuple(row) for row in kept] == [("c-1", "olga"), ("c-1", "vera")]
