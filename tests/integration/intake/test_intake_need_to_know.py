"""Need-to-know (SPEC §4, §7.8): a caseworker opens only the cases assigned to them; another one only with a stated
reason (`Access-Reason`), which is audited and shown, decrypted, on the case's timeline to its assignees while the
database holds it sealed; lists show one's own cases, a supervisor the caseload without personal data; a search
finds every case but shows another's only in outline; assignees change through `PUT /cases/{id}/assignees`, to
enabled caseworkers of the staff directory the gateway's events keep; every assignment is announced."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select

from kit.events import Envelope
from services.intake.models import (
    BreakGlassOpening,
    IntakeTable,
    StaffMember,
    kit_tables,
)
from tests.integration.intake.conftest import Intake, eventually
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration

REASON = "Client at the door, Zq-7731 says it is urgent"
CASES = "/api/intake/cases"
OUTLINE = {"id", "reference", "status", "assignees"}


def _ala(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-1", username="ala")


def _bo(intake: Intake) -> dict[str, str]:
    return intake.as_("caseworker", sub="caseworker-2", username="bo")


def _supervisor(intake: Intake) -> dict[str, str]:
    return intake.as_("supervisor", sub="supervisor-1", username="sam")


async def _create(intake: Intake, headers: dict[str, str], **body: object) -> dict:
    body.setdefault("full_name", "Марыя Жук")
    response = await intake.client.post(CASES, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _directory(intake: Intake) -> None:
    await intake.staff("caseworker-1", "ala")
    await intake.staff("caseworker-2", "bo")
    await intake.staff("caseworker-3", "cy", enabled=False)
    await intake.staff("finance-1", "di", "finance")
    await intake.staff("supervisor-1", "sam", "supervisor")


async def test_a_caseworker_opens_their_own_case_and_not_another_s(intake: Intake):
    case = await _create(intake, _ala(intake), safety_notes="Only via Signal")
    assert case["assignees"] == ["ala"]  # the creator, by the token's username
    path = f"{CASES}/{case['id']}"
    read = await intake.client.get(path, headers=_ala(intake))
    assert read.status_code == 200 and read.json()["assignees"] == ["ala"] and read.json()["full_name"] == "Марыя Жук"

    bo = _bo(intake)
    refused = [
        await intake.client.get(path, headers=bo),
        await intake.client.patch(path, json={"city": "Riga"}, headers={**bo, "If-Match": read.headers["etag"]}),
        await intake.client.post(f"{path}/needs", json={"category": "legal", "urgency": "low"}, headers=bo),
        await intake.client.get(f"{path}/needs", headers=bo),
        await intake.client.put(f"{path}/consent", json={"categories": [], "share_contact": False,
                                                         "share_health": False, "method": "verbal"}, headers=bo),
        await intake.client.get(f"{path}/consent", headers=bo),
        await intake.client.get(f"{path}/timeline", headers=bo),
        await intake.client.post(f"{path}/close", headers=bo),
        await intake.client.delete(path, headers=bo),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(r.headers["content-type"] == "application/problem+json" and r.json()["type"].endswith("/need-to-know")
               for r in refused)
    assert not any("Марыя" in r.text or "Signal" in r.text for r in refused)
    after = await intake.client.get(path, headers=_ala(intake))
    assert after.json()["status"] == "open" and after.json()["city"] is None  # nothing was changed
    assert after.headers["etag"] == read.headers["etag"]


async def test_a_stated_reason_opens_another_s_case_and_leaves_its_trace(intake: Intake):
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"
    opened = await intake.client.get(path, headers={**_bo(intake), "Access-Reason": REASON})
    assert opened.status_code == 200 and opened.json()["full_name"] == "Марыя Жук"
    assert opened.json()["assignees"] == ["ala"]  # opening it does not assign it

    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("case.create", "caseworker-1"), ("case.break_glass", "caseworker-2"), ("case.read", "caseworker-2")]
    assert REASON not in json.dumps(entries)

    timeline = await intake.client.get(f"{path}/timeline", headers=_ala(intake))  # an assignee sees who, when, why
    assert timeline.status_code == 200
    glass = [e for e in timeline.json()["items"] if e["kind"] == "case.break_glass"]
    assert len(glass) == 1 and glass[0]["source"] == "intake"
    assert glass[0]["details"] == {"by": "bo", "reason": REASON}
    assert datetime.fromisoformat(glass[0]["at"]) >= datetime.fromisoformat(case["opened_at"])

    # Sealed under the case's key: in no row, and (SQLite) in no byte of the database or its write-ahead log.
    rows = b""
    with intake.engine.connect() as conn:
        for table in IntakeTable.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                rows += b"\x1f".join(v if isinstance(v, bytes) else str(v).encode() for v in row) + b"\n"
    assert case["id"].encode() in rows and b"Zq-7731" not in rows
    if intake.engine.url.get_backend_name() == "sqlite":
        database = Path(intake.engine.url.database)
        files = [p for p in (database, Path(f"{database}-wal")) if p.exists()]
        assert files and any(case["id"].encode() in p.read_bytes() for p in files)  # the scan sees the data
        assert not any(b"Zq-7731" in p.read_bytes() or "Zq-7731".encode("utf-16-le") in p.read_bytes() for p in files)


async def test_one_opening_covers_the_next_minutes_on_the_timeline_and_every_request_in_the_audit_trail(
        intake: Intake):
    case = await _create(intake, _ala(intake))
    path, glass = f"{CASES}/{case['id']}", {**_bo(intake), "Access-Reason": REASON}
    for route in ("", "/needs", "/consent", ""):  # a page of the console asks several things
        assert (await intake.client.get(path + route, headers=glass)).status_code == 200

    async def openings() -> list[dict]:  # as an assignee reads them
        items = (await intake.client.get(f"{path}/timeline", headers=_ala(intake))).json()["items"]
        return [e["details"] for e in items if e["kind"] == "case.break_glass"]

    assert await openings() == [{"by": "bo", "reason": REASON}]
    audited = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [e["action"] for e in audited].count("case.break_glass") == 4

    with intake.engine.begin() as conn:  # the opening's minutes pass
        conn.execute(BreakGlassOpening.__table__.update().values(at=datetime.now(UTC) - timedelta(minutes=16)))
    later = "Back again: the client called about the flat"
    assert (await intake.client.get(path, headers={**_bo(intake), "Access-Reason": later})).status_code == 200
    assert await openings() == [{"by": "bo", "reason": REASON}, {"by": "bo", "reason": later}]


async def test_a_reason_in_belarusian_is_kept_as_written(intake: Intake):
    case = await _create(intake, _ala(intake))
    reason = "Кліент прыйшоў у офіс, тэрмінова"
    utf8 = reason.encode("utf-8")  # what a client sends: the header's UTF-8 bytes (read as Latin-1 by Starlette)
    opened = await intake.client.get(f"{CASES}/{case['id']}", headers={**_bo(intake), "Access-Reason": utf8})
    assert opened.status_code == 200
    items = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=_ala(intake))).json()["items"]
    assert [e["details"]["reason"] for e in items if e["kind"] == "case.break_glass"] == [reason]


async def test_a_reason_too_short_is_refused_and_leaves_nothing_but_the_refusal(intake: Intake):
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"
    for reason in ("because", "   x y z   ", "123456789", "x         y"):
        short = await intake.client.get(path, headers={**_bo(intake), "Access-Reason": reason})
        assert short.status_code == 403 and short.json()["type"].endswith("/need-to-know"), reason  # SPEC §4
        assert "at least 10 characters" in short.json()["detail"]
    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("caseworker-1", "case.create")] + [("caseworker-2", "case.access_refused")] * 4  # no opening
    items = (await intake.client.get(f"{path}/timeline", headers=_ala(intake))).json()["items"]
    assert [e["kind"] for e in items] == ["case.opened"]


async def test_every_refused_request_about_a_case_is_audited_by_who_and_which_case_never_what_it_sent(
        intake: Intake):
    """BACKBONE, Audit: every refused authorisation. A stolen session probing cases leaves a trail: who tried which
    case and when (the request id), as `case.access_refused`; never what the refused request carried."""
    await _directory(intake)
    ala, bo = _ala(intake), _bo(intake)
    case = await _create(intake, ala, safety_notes="Only via Signal")
    path = f"{CASES}/{case['id']}"
    task = await intake.client.post(f"{path}/tasks", json={"title": "Visit the flat", "due_on": date.today().isoformat()},
                                    headers=ala)
    document = await intake.client.post(f"{path}/documents", files={"file": ("release.txt", b"Release papers",
                                                                             "text/plain")},
                                        data={"kind": "release"}, headers=ala)
    assert task.status_code == 201 and document.status_code == 201, (task.text, document.text)

    sent = "Zq-7731 hides at Kalinina 5"  # what bo's refused requests carry: in no entry, no row
    refused = [
        await intake.client.get(path, headers=bo),
        *[await intake.client.get(f"{path}/{part}", headers=bo)
          for part in ("needs", "consent", "timeline", "documents", "notes", "tasks")],
        await intake.client.get(f"/api/intake/documents/{document.json()['id']}/content", headers=bo),
        await intake.client.post(f"/api/intake/tasks/{task.json()['id']}/done", headers=bo),
        await intake.client.put(f"{path}/assignees", json={"usernames": ["bo"]}, headers=bo),
        await intake.client.post(f"{path}/assignees", json={"username": "bo"}, headers=bo),
        await intake.client.post(f"{path}/notes", json={"text": sent}, headers={**bo, "X-Request-ID": "probe-12"}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all(r.json()["type"].endswith("/need-to-know") for r in refused)

    page = await intake.client.get("/api/intake/audit", params={"target_id": case["id"], "limit": 500},
                                   headers=intake.auditor)
    entries = page.json()["items"]
    refusals = [e for e in entries if e["action"] == "case.access_refused"]
    assert [(e["actor"], e["target_id"]) for e in refusals] == [("caseworker-2", case["id"])] * len(refused)
    assert refusals[-1]["request_id"] == "probe-12" and all(e["at"] for e in refusals)
    assert not [e for e in entries if e["actor"] == "caseworker-2" and e["action"] != "case.access_refused"]
    assert "Zq-7731" not in page.text and "Signal" not in page.text
    with intake.engine.connect() as conn:
        assert "Zq-7731" not in repr(conn.execute(select(kit_tables.audit)).all())
    assert (await intake.client.get("/api/intake/audit/verify", headers=intake.auditor)).json()["first_bad"] is None
    assert (await intake.client.get(path, headers=ala)).json()["assignees"] == ["ala"]  # nothing changed


async def test_a_stated_reason_does_not_erase_a_case_its_own_caseworker_does(intake: Intake):
    """Erasure cannot be undone: the person's record goes for everyone, and the reasons stated for opening it go with
    it (sealed under the key erasure destroys). Break-glass opens a case to read it or help; it does not erase it."""
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"
    glass = {**_bo(intake), "Access-Reason": REASON}
    erased = await intake.client.delete(path, headers=glass)
    assert erased.status_code == 403 and erased.json()["type"].endswith("/need-to-know"), erased.text
    assert "Марыя" not in erased.text

    kept = await intake.client.get(path, headers=_ala(intake))
    assert kept.status_code == 200 and kept.json()["status"] == "open" and kept.json()["full_name"] == "Марыя Жук"
    assert (await intake.client.get(path, headers=glass)).status_code == 200  # the reason still opens it to read
    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("caseworker-1", "case.create"), ("caseworker-2", "case.access_refused"), ("caseworker-1", "case.read"),
        ("caseworker-2", "case.break_glass"), ("caseworker-2", "case.read")]

    done = await intake.client.delete(path, headers=_ala(intake))  # its own caseworker, with or without a reason
    assert done.status_code == 200 and done.json()["status"] == "erased", done.text


async def test_a_caseworker_lists_only_their_own_cases(intake: Intake):
    mine = [await _create(intake, _ala(intake), full_name=f"Ян Жук {n}") for n in range(3)]
    theirs = await _create(intake, _bo(intake), full_name="Алег Рыбак")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await intake.client.get(CASES, params=params, headers=_ala(intake))).json()
        seen += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    assert [c["id"] for c in seen] == [c["id"] for c in reversed(mine)]
    assert all(c["assignees"] == ["ala"] and set(c) == {"id", "reference", "status", "country", "opened_at",
                                                        "assignees", "unattended", "inactive_assignees",
                                                        "waiting_tasks"} for c in seen)
    listed = (await intake.client.get(CASES, headers=_bo(intake))).json()["items"]
    assert [c["id"] for c in listed] == [theirs["id"]]
    closed = (await intake.client.get(CASES, params={"status": "closed"}, headers=_ala(intake))).json()["items"]
    assert closed == []
    refused = await intake.client.get(CASES, params={"assigned": "any"}, headers=_ala(intake))
    assert refused.status_code == 403


async def test_a_supervisor_sees_the_caseload_but_no_person(intake: Intake):
    first = await _create(intake, _ala(intake), country="LT")
    second = await _create(intake, _bo(intake), full_name="Алег Рыбак")
    caseload = await intake.client.get(CASES, params={"assigned": "any"}, headers=_supervisor(intake))
    assert caseload.status_code == 200
    assert [(c["id"], c["reference"], c["status"], c["assignees"]) for c in caseload.json()["items"]] == [
        (second["id"], second["reference"], "open", ["bo"]), (first["id"], first["reference"], "open", ["ala"])]
    assert "Марыя" not in caseload.text and "Рыбак" not in caseload.text
    assert (await intake.client.get(CASES, headers=_supervisor(intake))).json()["items"] == []  # none their own

    supervisor = _supervisor(intake)
    for method, path in (("GET", f"{CASES}/{first['id']}"), ("GET", f"{CASES}/{first['id']}/timeline"),
                         ("POST", f"{CASES}/search"), ("POST", f"{CASES}/duplicates")):
        body = {"q": "Жук"} if path.endswith("search") else {"full_name": "Марыя Жук"} if "dup" in path else None
        for headers in (supervisor, {**supervisor, "Access-Reason": REASON}):
            response = await intake.client.request(method, path, json=body, headers=headers)
            assert response.status_code == 403 and "Марыя" not in response.text, (method, path)
    both = intake.as_("caseworker", "supervisor", sub="caseworker-1", username="ala")  # also her caseworker
    assert (await intake.client.get(f"{CASES}/{first['id']}", headers=both)).status_code == 200
    assert (await intake.client.get(f"{CASES}/{second['id']}", headers=both)).status_code == 403


async def test_a_search_finds_another_s_case_only_in_outline(intake: Intake):
    theirs = await _create(intake, _ala(intake), full_name="Марыя Жук", date_of_birth="1985-03-04", country="PL")
    mine = await _create(intake, _bo(intake), full_name="Maria Zhuk", date_of_birth="1985-03-04", country="LT")
    assert mine["possible_duplicates"] == [{"id": theirs["id"], "reference": theirs["reference"], "status": "open",
                                            "assignees": ["ala"], "confidence": "high"}]
    found = await intake.client.post(f"{CASES}/search", json={"q": "Zhuk"}, headers=_bo(intake))
    assert found.status_code == 200
    items = found.json()["items"]
    assert [i["id"] for i in items] == [mine["id"], theirs["id"]]
    assert items[0] == {k: mine[k] for k in ("id", "reference", "status", "country", "opened_at", "assignees")}
    assert items[1] == {"id": theirs["id"], "reference": theirs["reference"], "status": "open", "assignees": ["ala"]}
    checked = await intake.client.post(f"{CASES}/duplicates", json={"full_name": "Мария Жук",
                                                                    "date_of_birth": "1985-03-04"},
                                       headers=intake.as_("caseworker", sub="caseworker-9", username="ed"))
    assert [(d["id"], d["assignees"]) for d in checked.json()["possible_duplicates"]] == [
        (theirs["id"], ["ala"]), (mine["id"], ["bo"])]


async def test_assignees_change_to_enabled_caseworkers_by_an_assignee_or_a_supervisor(intake: Intake):
    await _directory(intake)
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"
    assert (await intake.client.get(path, headers=_bo(intake))).status_code == 403

    given = await intake.client.put(f"{path}/assignees", json={"usernames": ["bo", "ala", "BO"]}, headers=_ala(intake))
    assert given.status_code == 200, given.text
    assert given.json()["assignees"] == ["bo", "ala"] and given.json()["id"] == case["id"]
    assert "full_name" not in given.json()
    read = await intake.client.get(path, headers=_bo(intake))  # bo's case now: no reason needed
    assert read.status_code == 200 and read.json()["assignees"] == ["bo", "ala"]
    assert [c["id"] for c in (await intake.client.get(CASES, headers=_bo(intake))).json()["items"]] == [case["id"]]

    for usernames in (["nobody"], ["bo", "cy"], ["di"], ["sam"]):  # unknown, disabled, not caseworkers
        refused = await intake.client.put(f"{path}/assignees", json={"usernames": usernames}, headers=_bo(intake))
        assert refused.status_code == 422 and refused.json()["type"].endswith("/not-an-enabled-caseworker"), usernames
    for body in ({"usernames": []}, {}, {"usernames": ["bo"], "extra": 1}):
        assert (await intake.client.put(f"{path}/assignees", json=body, headers=_bo(intake))).status_code == 422

    outsider = intake.as_("caseworker", sub="caseworker-9", username="ed")
    for headers in (outsider, {**outsider, "Access-Reason": REASON}):  # a reason opens a case, it does not take it
        refused = await intake.client.put(f"{path}/assignees", json={"usernames": ["ed"]}, headers=headers)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/need-to-know")
    assert (await intake.client.put(f"{path}/assignees", json={"usernames": ["bo"]},
                                    headers=intake.as_("finance", sub="finance-1"))).status_code == 403

    handed = await intake.client.put(f"{path}/assignees", json={"usernames": ["ala"]}, headers=_supervisor(intake))
    assert handed.status_code == 200 and handed.json()["assignees"] == ["ala"]
    assert (await intake.client.get(path, headers=_bo(intake))).status_code == 403  # bo no longer holds it
    same = await intake.client.put(f"{path}/assignees", json={"usernames": ["ala"]}, headers=_ala(intake))
    assert same.status_code == 200 and same.json()["assignees"] == ["ala"]  # nothing to change

    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [(e["action"], e["actor"]) for e in entries if e["action"] == "case.assign"] == [
        ("case.assign", "caseworker-1"), ("case.assign", "supervisor-1")]
    steps = (await intake.client.get(f"{path}/timeline", headers=_ala(intake))).json()["items"]
    assert [(e["kind"], e["details"]) for e in steps if e["kind"] == "case.assigned"] == [
        ("case.assigned", {"assignees": ["bo", "ala"]}), ("case.assigned", {"assignees": ["ala"]})]
    missing = await intake.client.put(f"{CASES}/{uuid.uuid4()}/assignees", json={"usernames": ["ala"]},
                                      headers=_supervisor(intake))
    assert missing.status_code == 404


async def test_a_caseworker_adds_a_colleague_to_a_case_they_hold(intake: Intake):
    await _directory(intake)
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}/assignees"
    assert (await intake.client.post(path, json={"username": "bo"}, headers=_bo(intake))).status_code == 403

    added = await intake.client.post(path, json={"username": " BO "}, headers=_ala(intake))
    again = await intake.client.post(path, json={"username": "bo"}, headers=_ala(intake))
    disabled = await intake.client.post(path, json={"username": "cy"}, headers=_bo(intake))
    empty = await intake.client.post(path, json={"username": ""}, headers=_bo(intake))

    assert added.status_code == 200 and added.json()["assignees"] == ["ala", "bo"]  # after those who hold it
    assert again.status_code == 200 and again.json()["assignees"] == ["ala", "bo"]  # nothing changes
    assert disabled.status_code == 422 and disabled.json()["type"].endswith("/not-an-enabled-caseworker")
    assert empty.status_code == 422
    assert (await intake.client.get(f"{CASES}/{case['id']}", headers=_bo(intake))).status_code == 200
    steps = (await intake.client.get(f"{CASES}/{case['id']}/timeline", headers=_bo(intake))).json()["items"]
    assert [e["details"] for e in steps if e["kind"] == "case.assigned"] == [{"assignees": ["ala", "bo"]}]


async def test_the_open_tasks_of_a_caseworker_who_no_longer_holds_the_case_go_to_the_first_who_does(
        intake: Intake):
    await _directory(intake)
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"
    assert (await intake.client.put(f"{path}/assignees", json={"usernames": ["ala", "bo"]},
                                    headers=_ala(intake))).status_code == 200
    today = datetime.now(UTC).date().isoformat()

    async def task(title: str, assignee: str) -> str:
        made = await intake.client.post(f"{path}/tasks", json={"title": title, "due_on": today, "assignee": assignee},
                                        headers=_ala(intake))
        assert made.status_code == 201, made.text
        return made.json()["id"]

    await task("Call the clinic", "ala")
    await task("Find a flat", "bo")
    finished = await task("Copy the passport", "bo")
    assert (await intake.client.post(f"/api/intake/tasks/{finished}/done", headers=_bo(intake))).status_code == 200

    async def titles(headers: dict[str, str]) -> list[str]:
        listed = await intake.client.get("/api/intake/tasks", params={"status": "open"}, headers=headers)
        return sorted(t["title"] for t in listed.json()["items"])

    assert await titles(_bo(intake)) == ["Find a flat"]
    handed = await intake.client.put(f"{path}/assignees", json={"usernames": ["ala"]}, headers=_supervisor(intake))
    assert handed.status_code == 200
    # bo's open task is now ala's, on her list and on the case page; the one bo finished stays his
    assert await titles(_ala(intake)) == ["Call the clinic", "Find a flat"]
    on_case = {t["title"]: (t["assignee"], t["status"]) for t in
               (await intake.client.get(f"{path}/tasks", headers=_ala(intake))).json()["items"]}
    assert on_case == {"Call the clinic": ("ala", "open"), "Find a flat": ("ala", "open"),
                       "Copy the passport": ("bo", "done")}
    given_to_bo = await intake.client.put(f"{path}/assignees", json={"usernames": ["bo"]}, headers=_supervisor(intake))
    assert given_to_bo.status_code == 200 and await titles(_bo(intake)) == ["Call the clinic", "Find a flat"]
    steps = (await intake.client.get(f"{path}/timeline", headers=_bo(intake))).json()["items"]
    assert [e["details"] for e in steps if e["kind"] == "case.assigned"] == [
        {"assignees": ["ala", "bo"]}, {"assignees": ["ala"], "tasks_handed_on": 1, "tasks_handed_to": "ala"},
        {"assignees": ["bo"], "tasks_handed_on": 2, "tasks_handed_to": "bo"}]


async def test_a_supervisor_sees_whom_a_case_can_be_given_to_and_how_many_open_cases_each_holds(intake: Intake):
    await _directory(intake)
    await intake.staff("caseworker-4", "ada")  # in the directory, no case yet
    first, closed = await _create(intake, _ala(intake)), await _create(intake, _ala(intake))
    shared = await _create(intake, _bo(intake))
    assert (await intake.client.post(f"{CASES}/{closed['id']}/close", headers=_ala(intake))).status_code == 200
    given = await intake.client.put(f"{CASES}/{shared['id']}/assignees", json={"usernames": ["bo", "ala"]},
                                    headers=_bo(intake))
    assert given.status_code == 200 and first["id"]

    listed = await intake.client.get("/api/intake/caseworkers", headers=_supervisor(intake))
    by_caseworker = await intake.client.get("/api/intake/caseworkers", headers=_bo(intake))

    assert listed.status_code == 200, listed.text
    # A to Z; cy is disabled, di and sam are no caseworkers; a closed case is no load
    assert listed.json() == {"items": [{"username": "ada", "open_cases": 0}, {"username": "ala", "open_cases": 2},
                                       {"username": "bo", "open_cases": 1}], "next_cursor": None}
    assert by_caseworker.json() == listed.json()  # an assignee hands a case on too
    first_page = (await intake.client.get("/api/intake/caseworkers", params={"limit": 2},
                                          headers=_supervisor(intake))).json()
    rest = (await intake.client.get("/api/intake/caseworkers", params={"cursor": first_page["next_cursor"]},
                                    headers=_supervisor(intake))).json()
    assert first_page["items"] + rest["items"] == listed.json()["items"] and rest["next_cursor"] is None
    for wrong in ({"limit": 0}, {"cursor": "not-one-of-ours"}):
        refused = await intake.client.get("/api/intake/caseworkers", params=wrong, headers=_supervisor(intake))
        assert refused.status_code in (400, 422) and refused.headers["content-type"] == "application/problem+json"
    for role in ("finance", "auditor", "admin", "coordinator"):
        assert (await intake.client.get("/api/intake/caseworkers",
                                        headers=intake.as_(role, sub=f"{role}-1"))).status_code == 403


async def test_a_supervisor_who_is_a_caseworker_too_does_not_assign_themselves_a_case(intake: Intake):
    await _directory(intake)
    await intake.staff("supervisor-2", "vic", "supervisor", "caseworker")
    vic = intake.as_("supervisor", "caseworker", sub="supervisor-2", username="vic")
    case = await _create(intake, _ala(intake))
    path = f"{CASES}/{case['id']}"

    for usernames in (["ala", "vic"], ["vic"], ["VIC"]):  # else vic would read the case as its assignee, no reason
        refused = await intake.client.put(f"{path}/assignees", json={"usernames": usernames}, headers=vic)
        assert refused.status_code == 403 and refused.json()["type"].endswith("/self-assignment"), usernames
    assert (await intake.client.get(path, headers=_ala(intake))).json()["assignees"] == ["ala"]
    assert (await intake.client.get(path, headers=vic)).status_code == 403  # still not theirs to read

    given = await intake.client.put(f"{path}/assignees", json={"usernames": ["bo"]}, headers=vic)
    assert given.status_code == 200 and given.json()["assignees"] == ["bo"]  # anyone else, as any supervisor
    added = await intake.client.put(f"{path}/assignees", json={"usernames": ["bo", "vic"]}, headers=_supervisor(intake))
    assert added.status_code == 200 and added.json()["assignees"] == ["bo", "vic"]  # another supervisor adds them
    assert (await intake.client.get(path, headers=vic)).status_code == 200
    kept = await intake.client.put(f"{path}/assignees", json={"usernames": ["vic", "ala"]}, headers=vic)
    assert kept.status_code == 200 and kept.json()["assignees"] == ["vic", "ala"]  # one who holds it stays

    entries = (await intake.client.get("/api/intake/audit", params={"target_id": case["id"]},
                                       headers=intake.auditor)).json()["items"]
    assert [e["actor"] for e in entries if e["action"] == "case.assign"] == [
        "supervisor-2", "supervisor-1", "supervisor-2"]  # the refused ones changed nothing


def conn_rows(intake: Intake, subject: str) -> list:
    outbox = kit_tables.outbox
    with intake.engine.connect() as conn:
        return conn.execute(select(outbox.c.envelope).where(outbox.c.subject == subject)).all()


async def test_every_assignment_is_announced_on_the_outbox(intake: Intake):
    await _directory(intake)
    case = await _create(intake, _ala(intake))
    await intake.client.put(f"{CASES}/{case['id']}/assignees", json={"usernames": ["bo", "ala"]}, headers=_ala(intake))
    outbox = kit_tables.outbox
    with intake.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.aggregate_id, outbox.c.envelope)
                            .where(outbox.c.subject == "rehab.intake.case.assigned").order_by(outbox.c.seq)).all()
    assert [row.aggregate_id for row in rows] == [case["id"]]  # the reassignment; the first rode on case.opened
    announced = [Envelope.from_bytes(row.envelope.encode()) for row in rows]
    (opened,) = [Envelope.from_bytes(row.envelope.encode()) for row in conn_rows(intake, "rehab.intake.case.opened")]
    assert opened.data["assignees"] == ["caseworker-1"]
    assert [e.data["assignees"] for e in announced] == [["caseworker-2", "caseworker-1"]]
    assert all(set(e.data) == {"case_id", "assignees", "assigned_at"} and e.subject == case["id"] for e in announced)
    assert datetime.fromisoformat(announced[0].data["assigned_at"]) > datetime.fromisoformat(case["opened_at"])
    assert not any("ala" in json.dumps(e.data) or "bo" in e.data["assignees"] for e in [opened, *announced])  # ids


async def test_the_staff_directory_follows_the_gateway_s_events(intake: Intake, nats_url):
    user_id = str(uuid.uuid4())
    now = datetime.now(UTC)

    def user(kind: str, at: datetime, roles: list[str]) -> Envelope:
        return Envelope.new(source="/rehab/gateway", type=f"rehab.gateway.user.{kind}", subject=user_id, data={
            "user_id": user_id, "username": "fia", "roles": roles, "partner_id": None, "occurred_at": at.isoformat()})

    nc = await nats.connect(nats_url)
    js = patient_jetstream(nc)

    async def publish(event: Envelope) -> None:
        async def sent() -> bool:
            try:  # the stream exists once intake's consumer has provisioned it
                await js.publish(event.type, event.to_bytes(), headers={"Nats-Msg-Id": event.id})
                return True
            except Exception:
                return False

        await eventually(sent)

    def applied() -> int:
        inbox = kit_tables.inbox
        with intake.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(inbox)
                                .where(inbox.c.consumer == "intake-gateway")).scalar_one()

    try:
        await publish(user("created", now, ["caseworker"]))
        await publish(user("roles_changed", now - timedelta(minutes=1), ["finance"]))  # older: ignored
        await eventually(lambda: applied() == 2)
        case = await _create(intake, _ala(intake))
        given = await intake.client.put(f"{CASES}/{case['id']}/assignees", json={"usernames": ["ala", "fia"]},
                                        headers=_ala(intake))
        assert given.status_code == 422  # "ala" is not in the directory: no event named her
        await intake.staff("caseworker-1", "ala")
        given = await intake.client.put(f"{CASES}/{case['id']}/assignees", json={"usernames": ["ala", "fia"]},
                                        headers=_ala(intake))
        assert given.status_code == 200 and given.json()["assignees"] == ["ala", "fia"]

        await publish(user("disabled", now + timedelta(minutes=1), ["caseworker"]))
        await eventually(lambda: applied() == 3)
        refused = await intake.client.put(f"{CASES}/{case['id']}/assignees", json={"usernames": ["fia"]},
                                          headers=_ala(intake))
        assert refused.status_code == 422
    finally:
        await nc.close()
    with intake.engine.connect() as conn:
        row = conn.execute(select(StaffMember).where(StaffMember.user_id == user_id)).one()
    assert (row.username, row.roles, row.enabled) == ("fia", ["caseworker"], False)
