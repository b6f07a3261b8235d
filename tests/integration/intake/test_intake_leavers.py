"""A caseworker who leaves (their account disabled, or no longer a caseworker) keeps the cases they held, and nobody
loses track of them: their open tasks on a case go to a colleague who holds it too; a case nobody able to work it
holds is marked for supervisors in the caseload (`unattended`, the leaver's name marked, its waiting tasks counted,
`?unattended=true` to list only those) until it is given to someone; enabled again, the leaver finds every case as
they left it. The gateway's staff events may come twice or out of order: what is done follows the directory as it
stands, so nothing moves twice or back, and every case whose tasks moved is on its timeline and in the audit
trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import nats
import pytest
from sqlalchemy import func, select

from kit.events import Envelope
from services.intake import handlers
from services.intake.models import kit_tables
from tests.integration.intake.conftest import Intake, eventually
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
STAFF = {"caseworker-1": "ala", "caseworker-2": "bo", "caseworker-3": "cy"}
T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)


def _as(intake: Intake, user_id: str) -> dict[str, str]:
    return intake.as_("caseworker", sub=user_id, username=STAFF[user_id])


def _supervisor(intake: Intake) -> dict[str, str]:
    return intake.as_("supervisor", sub="supervisor-1", username="sam")


def _staff_event(kind: str, user_id: str, at: datetime, roles: tuple[str, ...] = ("caseworker",)) -> Envelope:
    return Envelope.new(source="/rehab/gateway", type=f"rehab.gateway.user.{kind}", subject=user_id, data={
        "user_id": user_id, "username": STAFF.get(user_id, user_id), "roles": list(roles), "partner_id": None,
        "occurred_at": at.isoformat()})


async def _apply(intake: Intake, event: Envelope) -> None:
    """The event as intake's consumer applies it (inside a unit of work, with intake's audit trail)."""
    await intake.runtime.uow.run(lambda session: handlers.staff_changed(session, event, audit=intake.runtime.audit))


async def _directory(intake: Intake) -> None:
    for user_id in STAFF:
        await _apply(intake, _staff_event("created", user_id, T0))


async def _case(intake: Intake, *holders: str) -> dict:
    """A case opened by the first of `holders` and given to all of them (user ids)."""
    created = await intake.client.post(CASES, json={"full_name": "Марыя Жук"}, headers=_as(intake, holders[0]))
    assert created.status_code == 201, created.text
    if len(holders) > 1:
        given = await intake.client.put(f"{CASES}/{created.json()['id']}/assignees",
                                        json={"usernames": [STAFF[h] for h in holders]}, headers=_supervisor(intake))
        assert given.status_code == 200, given.text
    return created.json()


async def _task(intake: Intake, case: dict, title: str, assignee: str, *, done: bool = False) -> None:
    made = await intake.client.post(f"{CASES}/{case['id']}/tasks", json={
        "title": title, "due_on": datetime.now(UTC).date().isoformat(), "assignee": STAFF[assignee]},
        headers=_as(intake, assignee))
    assert made.status_code == 201, made.text
    if done:
        finished = await intake.client.post(f"/api/intake/tasks/{made.json()['id']}/done",
                                            headers=_as(intake, assignee))
        assert finished.status_code == 200, finished.text


async def _tasks(intake: Intake, case: dict, reader: str) -> dict[str, tuple[str, str]]:
    listed = await intake.client.get(f"{CASES}/{case['id']}/tasks", headers=_as(intake, reader))
    assert listed.status_code == 200, listed.text
    return {t["title"]: (t["assignee"], t["status"]) for t in listed.json()["items"]}


async def _caseload(intake: Intake, **params: object) -> dict[str, dict]:
    listed = await intake.client.get(CASES, params={"assigned": "any", **params}, headers=_supervisor(intake))
    assert listed.status_code == 200, listed.text
    return {c["id"]: c for c in listed.json()["items"]}


async def _handed_on(intake: Intake, case: dict, reader: str) -> list[dict]:
    timeline = await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=_as(intake, reader))
    return [e["details"] for e in timeline.json()["items"] if e["kind"] == "tasks.handed_on"]


async def _audited(intake: Intake, case: dict) -> list[tuple[str, str]]:
    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    return [(e["actor"], e["action"]) for e in entries if e["action"] == "tasks.hand_on"]


async def test_a_leaver_s_open_tasks_go_to_the_colleague_who_holds_the_case_and_they_keep_holding_it(intake: Intake):
    await _directory(intake)
    shared = await _case(intake, "caseworker-1", "caseworker-2")
    await _task(intake, shared, "Call the clinic", "caseworker-1")
    await _task(intake, shared, "Find a flat", "caseworker-2")
    await _task(intake, shared, "Book the lawyer", "caseworker-2")
    await _task(intake, shared, "Copy the passport", "caseworker-2", done=True)

    await _apply(intake, _staff_event("disabled", "caseworker-2", T0 + timedelta(days=1)))

    assert await _tasks(intake, shared, "caseworker-1") == {
        "Call the clinic": ("ala", "open"), "Find a flat": ("ala", "open"), "Book the lawyer": ("ala", "open"),
        "Copy the passport": ("bo", "done")}  # what bo did stays his
    mine = await intake.client.get("/api/intake/tasks", params={"status": "open"}, headers=_as(intake, "caseworker-1"))
    assert sorted(t["title"] for t in mine.json()["items"]) == ["Book the lawyer", "Call the clinic", "Find a flat"]
    assert await _handed_on(intake, shared, "caseworker-1") == [{"tasks_handed_on": 2, "tasks_handed_to": "ala"}]
    assert await _audited(intake, shared) == [("system:staff-directory", "tasks.hand_on")]
    row = (await _caseload(intake))[shared["id"]]
    assert (row["assignees"], row["inactive_assignees"], row["unattended"], row["waiting_tasks"]) == (
        ["ala", "bo"], ["bo"], False, 0)  # bo still holds it, marked; ala works it

    # A colleague is added beside the leaver without taking him off (he would find his case again if he came back).
    added = await intake.client.post(f"{CASES}/{shared['id']}/assignees", json={"username": "cy"},
                                     headers=_as(intake, "caseworker-1"))
    assert added.status_code == 200 and added.json()["assignees"] == ["ala", "bo", "cy"], added.text


async def test_a_case_only_leavers_hold_is_unattended_for_supervisors_until_it_is_given_to_someone(intake: Intake):
    await _directory(intake)
    alone = await _case(intake, "caseworker-2")
    both_left = await _case(intake, "caseworker-2", "caseworker-3")
    worked = await _case(intake, "caseworker-1")
    await _task(intake, alone, "Find a flat", "caseworker-2")
    await _task(intake, alone, "Book the lawyer", "caseworker-2")
    await _task(intake, both_left, "Call the clinic", "caseworker-3")

    await _apply(intake, _staff_event("disabled", "caseworker-2", T0 + timedelta(days=1)))
    # cy stays enabled but is no longer a caseworker: no more able to work a case than one disabled.
    await _apply(intake, _staff_event("roles_changed", "caseworker-3", T0 + timedelta(days=1), roles=("finance",)))

    caseload = await _caseload(intake)
    assert {case_id: (c["unattended"], c["inactive_assignees"], c["waiting_tasks"])
            for case_id, c in caseload.items()} == {
        alone["id"]: (True, ["bo"], 2), both_left["id"]: (True, ["bo", "cy"], 1), worked["id"]: (False, [], 0)}
    only = await intake.client.get(CASES, params={"assigned": "any", "unattended": "true"},
                                   headers=_supervisor(intake))
    assert [c["id"] for c in only.json()["items"]] == [both_left["id"], alone["id"]]  # newest first
    assert set(await _caseload(intake, unattended="true", status="closed")) == set()
    first = await intake.client.get(CASES, params={"assigned": "any", "unattended": "true", "limit": 1},
                                    headers=_supervisor(intake))
    # someone else leaves between the two pages: the next page's cursor is still this list's (a review's find)
    await _apply(intake, _staff_event("created", "caseworker-8", T0))
    await _apply(intake, _staff_event("disabled", "caseworker-8", T0 + timedelta(days=1)))
    following = await intake.client.get(CASES, params={"assigned": "any", "unattended": "true", "limit": 1,
                                                       "cursor": first.json()["next_cursor"]},
                                        headers=_supervisor(intake))
    assert [c["id"] for c in first.json()["items"] + following.json()["items"]] == [both_left["id"], alone["id"]]

    # Nobody who can work it may be left holding it alone; given to ala, the waiting tasks go to her.
    refused = await intake.client.put(f"{CASES}/{alone['id']}/assignees", json={"usernames": ["bo"]},
                                      headers=_supervisor(intake))
    assert refused.status_code == 422 and refused.json()["usernames"] == ["bo"], refused.text
    given = await intake.client.put(f"{CASES}/{alone['id']}/assignees", json={"usernames": ["bo", "ala"]},
                                    headers=_supervisor(intake))
    assert given.status_code == 200 and given.json()["assignees"] == ["bo", "ala"], given.text
    assert await _tasks(intake, alone, "caseworker-1") == {"Find a flat": ("ala", "open"),
                                                           "Book the lawyer": ("ala", "open")}
    steps = await intake.client.get(f"{CASES}/{alone['id']}/timeline", headers=_as(intake, "caseworker-1"))
    assert [e["details"] for e in steps.json()["items"] if e["kind"] == "case.assigned"] == [
        {"assignees": ["bo", "ala"], "tasks_handed_on": 2, "tasks_handed_to": "ala"}]
    assert [c["id"] for c in (await _caseload(intake, unattended="true")).values()] == [both_left["id"]]


async def test_enabled_again_a_leaver_finds_their_cases_and_takes_the_tasks_left_waiting(intake: Intake):
    await _directory(intake)
    alone = await _case(intake, "caseworker-2")
    shared = await _case(intake, "caseworker-2", "caseworker-1")
    await _task(intake, alone, "Find a flat", "caseworker-2")
    await _task(intake, shared, "Book the lawyer", "caseworker-2")

    await _apply(intake, _staff_event("disabled", "caseworker-2", T0 + timedelta(days=1)))
    assert (await _caseload(intake))[alone["id"]]["unattended"] is True
    await _apply(intake, _staff_event("enabled", "caseworker-2", T0 + timedelta(days=2)))

    caseload = await _caseload(intake)
    assert {c["id"]: (c["assignees"], c["inactive_assignees"], c["unattended"]) for c in caseload.values()} == {
        alone["id"]: (["bo"], [], False), shared["id"]: (["bo", "ala"], [], False)}
    bo_sees = await intake.client.get(CASES, headers=_as(intake, "caseworker-2"))
    assert {c["id"] for c in bo_sees.json()["items"]} == {alone["id"], shared["id"]}  # nothing lost
    assert await _tasks(intake, alone, "caseworker-2") == {"Find a flat": ("bo", "open")}  # waited for him
    assert await _tasks(intake, shared, "caseworker-2") == {"Book the lawyer": ("ala", "open")}  # ala has it now

    # The tasks a leaver left on a case nobody else could work go to a holder who comes back.
    await _task(intake, alone, "Call the clinic", "caseworker-2")
    given = await intake.client.put(f"{CASES}/{alone['id']}/assignees", json={"usernames": ["bo", "cy"]},
                                    headers=_supervisor(intake))
    assert given.status_code == 200
    await _apply(intake, _staff_event("disabled", "caseworker-3", T0 + timedelta(days=3)))
    await _apply(intake, _staff_event("disabled", "caseworker-2", T0 + timedelta(days=3)))  # nobody left: they wait
    assert (await _caseload(intake))[alone["id"]]["waiting_tasks"] == 2
    await _apply(intake, _staff_event("enabled", "caseworker-3", T0 + timedelta(days=4)))
    assert await _tasks(intake, alone, "caseworker-3") == {"Find a flat": ("cy", "open"),
                                                           "Call the clinic": ("cy", "open")}


async def test_a_staff_event_twice_or_late_moves_nothing_more_and_nothing_back(intake: Intake):
    await _directory(intake)
    shared = await _case(intake, "caseworker-1", "caseworker-2")
    await _task(intake, shared, "Find a flat", "caseworker-2")
    disabled = _staff_event("disabled", "caseworker-2", T0 + timedelta(days=2))

    await _apply(intake, disabled)
    await _apply(intake, disabled)  # a redelivery the inbox did not stop (replayed under a new id, say)
    await _apply(intake, _staff_event("enabled", "caseworker-2", T0 + timedelta(days=1)))  # older: ignored
    await _apply(intake, _staff_event("roles_changed", "caseworker-2", T0 + timedelta(days=3)))  # says nothing of it

    assert await _tasks(intake, shared, "caseworker-1") == {"Find a flat": ("ala", "open")}
    assert await _handed_on(intake, shared, "caseworker-1") == [{"tasks_handed_on": 1, "tasks_handed_to": "ala"}]
    assert await _audited(intake, shared) == [("system:staff-directory", "tasks.hand_on")]
    assert (await _caseload(intake))[shared["id"]]["inactive_assignees"] == ["bo"]

    # An old `disabled` arriving after a newer `enabled` leaves the account enabled and its tasks where they are.
    await _apply(intake, _staff_event("enabled", "caseworker-2", T0 + timedelta(days=5)))
    await _task(intake, shared, "Book the lawyer", "caseworker-2")
    await _apply(intake, _staff_event("disabled", "caseworker-2", T0 + timedelta(days=4)))
    assert await _tasks(intake, shared, "caseworker-2") == {"Find a flat": ("ala", "open"),
                                                            "Book the lawyer": ("bo", "open")}
    assert (await _caseload(intake))[shared["id"]]["inactive_assignees"] == []


async def test_a_disabling_over_the_bus_hands_the_tasks_on_and_is_audited(intake: Intake, nats_url):
    await _directory(intake)
    shared = await _case(intake, "caseworker-1", "caseworker-2")
    await _task(intake, shared, "Find a flat", "caseworker-2")
    event = _staff_event("disabled", "caseworker-2", datetime.now(UTC))

    nc = await nats.connect(nats_url)
    js = patient_jetstream(nc)

    async def published() -> bool:
        try:  # the stream exists once intake's consumer has provisioned it
            await js.publish(event.type, event.to_bytes(), headers={"Nats-Msg-Id": event.id})
            return True
        except Exception:
            return False

    def applied() -> bool:
        inbox = kit_tables.inbox
        with intake.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(inbox).where(
                inbox.c.consumer == "intake-gateway", inbox.c.event_id == event.id)).scalar_one() == 1

    try:
        await eventually(published)
        await eventually(applied)
    finally:
        await nc.close()
    assert await _tasks(intake, shared, "caseworker-1") == {"Find a flat": ("ala", "open")}
    assert await _audited(intake, shared) == [("system:staff-directory", "tasks.hand_on")]


async def test_a_case_held_by_nobody_the_directory_knows_is_never_taken_for_unattended(intake: Intake):
    """Until the gateway's events name someone, they are taken to be at work: a late event never makes every case
    look abandoned (nor moves a task)."""
    created = await intake.client.post(CASES, json={"full_name": "Марыя Жук"},
                                       headers=intake.as_("caseworker", sub=str(uuid.uuid4()), username="newcomer"))
    row = (await _caseload(intake))[created.json()["id"]]
    assert (row["unattended"], row["inactive_assignees"]) == (False, [])
    assert await _caseload(intake, unattended="true") == {}
