"""Intake's case API as a caseworker uses it: open, list, search, read, change with If-Match, needs, consent,
close, erase; roles; what lists may show."""

from __future__ import annotations

import pytest

from kit import migrations
from services.intake.main import SPEC
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

FULL_CASE = {
    "full_name": "Сяргей Марозаў",
    "other_names": ["Сергей Морозов"],
    "date_of_birth": "1979-04-12",
    "contact": {"phone": "+370 611 22334", "telegram": "@marozau", "signal": None, "email": "s.m@example.org"},
    "country": "lt",
    "city": "Vilnius",
    "languages": ["be", "ru"],
    "release_date": "2025-09-11",
    "facility": "Penal colony No. 3",
    "articles": ["342", "361-1"],
    "safety_notes": "Do not call before noon.",
}


async def test_open_read_and_list_a_case(intake: Intake):
    created = await intake.create(**FULL_CASE)
    assert created["status"] == "open" and created["country"] == "LT"
    assert created["reference"].startswith("BY-") and len(created["reference"]) == len("BY-2026-00001")
    assert created["possible_duplicates"] == [] and created["assignees"] == ["caseworker-1"]  # the creator
    assert {k: created[k] for k in FULL_CASE if k != "country"} == {k: v for k, v in FULL_CASE.items() if k != "country"}

    read = await intake.read(created["id"])
    assert read.status_code == 200
    assert read.headers["etag"].startswith('"')
    assert read.json() == {k: v for k, v in created.items() if k != "possible_duplicates"}

    listed = await intake.client.get("/api/intake/cases", headers=intake.caseworker)
    assert listed.status_code == 200
    assert listed.json() == {"items": [{**{k: created[k] for k in ("id", "reference", "status", "country", "opened_at",
                                                                   "assignees")},
                                        "unattended": False, "inactive_assignees": [], "waiting_tasks": 0}],
                             "next_cursor": None}

    missing = await intake.read("00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_bodies_are_checked_and_never_echoed(intake: Intake):
    cases = "/api/intake/cases"
    for body in ({}, {"full_name": ""}, {"full_name": "A", "nickname": "secret-nick"}, {"full_name": "A", "country": "LTU"},
                 {"full_name": "A", "date_of_birth": "2999-01-01"}, {"full_name": "A", "contact": {"fax": "1"}}):
        refused = await intake.client.post(cases, json=body, headers=intake.caseworker)
        assert refused.status_code == 422, body
        assert "secret-nick" not in refused.text


@pytest.mark.parametrize("roles", [(), ("admin",), ("finance",), ("auditor",)])
async def test_only_caseworkers_reach_cases(intake: Intake, roles):
    case = await intake.create()
    headers = intake.as_(*roles) if roles else {}
    expected = 401 if not roles else 403
    for method, path, body in (("POST", "/api/intake/cases", {"full_name": "A"}), ("GET", "/api/intake/cases", None),
                               ("GET", f"/api/intake/cases/{case['id']}", None),
                               ("GET", f"/api/intake/cases/{case['id']}/needs", None),
                               ("GET", f"/api/intake/cases/{case['id']}/timeline", None),
                               ("DELETE", f"/api/intake/cases/{case['id']}", None)):
        response = await intake.client.request(method, path, json=body, headers=headers)
        assert response.status_code == expected, (method, path)
    assert (await intake.read(case["id"])).json()["status"] == "open"  # nothing was erased


async def test_update_needs_the_current_etag(intake: Intake):
    case = await intake.create(**FULL_CASE)
    path = f"/api/intake/cases/{case['id']}"
    etag = (await intake.read(case["id"])).headers["etag"]

    without = await intake.client.patch(path, json={"city": "Warsaw"}, headers=intake.caseworker)
    assert without.status_code == 428
    blind = await intake.client.patch(path, json={"city": "Warsaw"}, headers={**intake.caseworker, "If-Match": "*"})
    assert blind.status_code == 428 and "not `*`" in blind.json()["detail"]  # any version is no version seen

    changed = await intake.client.patch(path, json={"city": "Warsaw", "contact": None, "articles": None},
                                        headers={**intake.caseworker, "If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["city"] == "Warsaw" and changed.json()["contact"] is None and changed.json()["articles"] == []
    assert changed.json()["full_name"] == FULL_CASE["full_name"]  # absent fields stay
    new_etag = changed.headers["etag"]
    assert new_etag != etag

    stale = await intake.client.patch(path, json={"city": "Riga"}, headers={**intake.caseworker, "If-Match": etag})
    assert stale.status_code == 412
    assert (await intake.read(case["id"])).json()["city"] == "Warsaw"
    assert (await intake.read(case["id"])).headers["etag"] == new_etag

    no_name = await intake.client.patch(path, json={"full_name": None}, headers={**intake.caseworker, "If-Match": new_etag})
    assert no_name.status_code == 422
    # a release date before the stored birth date (1979-04-12), or a birth date after the stored release: refused as
    # about the release date, of a kind of its own, and nothing changed
    for change in ({"release_date": "1970-01-01"}, {"date_of_birth": "2025-10-01"}):
        backwards = await intake.client.patch(path, json=change, headers={**intake.caseworker, "If-Match": new_etag})
        assert backwards.status_code == 422, backwards.text
        assert [(e["loc"], e["type"]) for e in backwards.json()["errors"]] == [
            (["body", "release_date"], "release_before_birth")]
    assert (await intake.read(case["id"])).headers["etag"] == new_etag

    # The same values again, or nothing: no new version (a colleague's ETag stays good), no "updated" step.
    for same in ({}, {"city": "Warsaw", "articles": []}, {"contact": None}):
        again = await intake.client.patch(path, json=same, headers={**intake.caseworker, "If-Match": new_etag})
        assert again.status_code == 200 and again.headers["etag"] == new_etag and again.json()["city"] == "Warsaw"
    timeline = (await intake.client.get(f"{path}/timeline", headers=intake.caseworker)).json()["items"]
    assert [entry["kind"] for entry in timeline].count("case.updated") == 1


async def test_a_renamed_case_is_found_by_its_new_name_only(intake: Intake):
    case = await intake.create(full_name="Ігар Рыбак", date_of_birth="1990-02-03")
    etag = (await intake.read(case["id"])).headers["etag"]
    renamed = await intake.client.patch(f"/api/intake/cases/{case['id']}", json={"full_name": "Ігар Лапіцкі"},
                                        headers={**intake.caseworker, "If-Match": etag})
    assert renamed.status_code == 200

    async def found(q: str) -> list[str]:
        response = await intake.client.post("/api/intake/cases/search", json={"q": q}, headers=intake.caseworker)
        return [item["id"] for item in response.json()["items"]]

    assert await found("Lapitski Ihar") == [case["id"]]
    assert await found("Rybak") == []
    again = await intake.create(full_name="Igor Lapitsky", date_of_birth="1990-02-03")
    assert again["possible_duplicates"] == [{"id": case["id"], "reference": case["reference"], "status": "open",
                                             "assignees": ["caseworker-1"], "confidence": "high"}]


async def test_search_finds_names_in_any_script_through_the_index(intake: Intake):
    zhuk = await intake.create(full_name="Марыя Жук", other_names=["Maria Zhuk-Kavaleva"])
    await intake.create(full_name="Аляксей Пятровіч")
    await intake.create(full_name="Марына Жук")

    async def found(q: str) -> set[str]:
        response = await intake.client.post("/api/intake/cases/search", json={"q": q}, headers=intake.caseworker)
        assert response.status_code == 200
        return {item["reference"] for item in response.json()["items"]}

    assert await found("maryja žuk") == {zhuk["reference"]}
    assert await found("МАРИЯ") == {zhuk["reference"]}
    assert await found("kavaleva") == {zhuk["reference"]}  # other names are searched too
    assert len(await found("Zhuk")) == 2
    assert await found("Alexei Petrovich") != set() and await found("Марыя Пятровіч") == set()
    assert (await intake.client.post("/api/intake/cases/search", json={"q": "--"},
                                      headers=intake.caseworker)).status_code == 422


async def test_pages_follow_the_cursor_without_gaps_or_repeats(intake: Intake):
    opened = [await intake.create(full_name=f"Person {word}") for word in ("Ala", "Bela", "Cina", "Dara", "Ewa")]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await intake.client.get("/api/intake/cases", params=params, headers=intake.caseworker)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [case["id"] for case in reversed(opened)]  # newest first
    bad = await intake.client.get("/api/intake/cases", params={"cursor": "bm9wZQ"}, headers=intake.caseworker)
    assert bad.status_code == 400


async def test_needs_consent_and_their_history(intake: Intake):
    case = await intake.create()
    path = f"/api/intake/cases/{case['id']}"
    need = await intake.client.post(f"{path}/needs", json={"category": "medical", "urgency": "high", "notes": "Dentist"},
                                    headers=intake.caseworker)
    assert need.status_code == 201 and need.json()["notes"] == "Dentist"
    assert (await intake.client.post(f"{path}/needs", json={"category": "spa", "urgency": "high"},
                                     headers=intake.caseworker)).status_code == 422
    needs = (await intake.client.get(f"{path}/needs", headers=intake.caseworker)).json()
    assert [(n["category"], n["urgency"], n["notes"]) for n in needs["items"]] == [("medical", "high", "Dentist")]

    empty = (await intake.client.get(f"{path}/consent", headers=intake.caseworker)).json()
    assert empty == {"case_id": case["id"], "case_status": "open", "current": None, "history": []}
    given = {"categories": ["medical", "legal", "medical"], "share_contact": True, "share_health": False, "method": "written",
             "expires_on": "2099-01-01"}
    keyed = {**intake.caseworker, "Idempotency-Key": "consent-once"}
    first = await intake.client.put(f"{path}/consent", json=given, headers=keyed)
    assert first.status_code == 200 and first.json()["categories"] == ["legal", "medical"]
    # sent again with its key (an answer lost on the way back): the same answer, recorded once (an outside review
    # found each retry a new version in the history and the timeline)
    retried = await intake.client.put(f"{path}/consent", json=given, headers=keyed)
    assert retried.status_code == 200 and retried.json() == first.json()
    timeline = (await intake.client.get(f"{path}/timeline", headers=intake.caseworker)).json()["items"]
    assert [e["kind"] for e in timeline].count("consent.changed") == 1, timeline
    withdrawn = await intake.client.put(f"{path}/consent", json={**given, "categories": [], "method": "verbal"},
                                        headers={**intake.as_("caseworker", sub="caseworker-2"),
                                                 "Access-Reason": "Covering for caseworker-1 on leave"})
    assert withdrawn.status_code == 200
    view = (await intake.client.get(f"{path}/consent", headers=intake.caseworker)).json()
    assert view["current"]["categories"] == [] and view["current"]["recorded_by"] == "caseworker-2"
    assert [(h["categories"], h["method"], h["recorded_by"]) for h in view["history"]] == [
        (["legal", "medical"], "written", "caseworker-1"), ([], "verbal", "caseworker-2")]
    expired = await intake.client.put(f"{path}/consent", json={**given, "expires_on": "2001-01-01"}, headers=intake.caseworker)
    assert expired.status_code == 422


async def test_a_closed_case_reads_but_does_not_change(intake: Intake):
    case = await intake.create()
    path = f"/api/intake/cases/{case['id']}"
    etag = (await intake.read(case["id"])).headers["etag"]
    closed = await intake.client.post(f"{path}/close", headers=intake.caseworker)
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closed_at"]
    assert "full_name" not in closed.json()
    again = await intake.client.post(f"{path}/close", headers=intake.caseworker)
    assert again.status_code == 200 and again.json()["closed_at"] == closed.json()["closed_at"]

    assert (await intake.read(case["id"])).json()["full_name"] == "Марыя Жук"
    current = (await intake.read(case["id"])).headers["etag"]
    assert current != etag
    refused = [
        await intake.client.patch(path, json={"city": "Riga"}, headers={**intake.caseworker, "If-Match": current}),
        await intake.client.post(f"{path}/needs", json={"category": "legal", "urgency": "low"}, headers=intake.caseworker),
        # a first consent: wider than none (a withdrawal it takes: test_intake_consent_of_the_person.py)
        await intake.client.put(f"{path}/consent", json={"categories": ["legal"], "share_contact": False,
                                                         "share_health": False, "method": "verbal"},
                                headers=intake.caseworker),
    ]
    assert [r.status_code for r in refused] == [409, 409, 409]
    assert all(r.json()["type"].endswith("case-closed") for r in refused)


async def test_an_erased_case_keeps_only_reference_and_status(intake: Intake):
    case = await intake.create(**FULL_CASE)
    path = f"/api/intake/cases/{case['id']}"
    await intake.client.post(f"{path}/needs", json={"category": "legal", "urgency": "low", "notes": "x"}, headers=intake.caseworker)
    erased = await intake.client.delete(path, headers=intake.caseworker)
    assert erased.status_code == 200
    assert erased.json() == {"id": case["id"], "reference": case["reference"], "status": "erased"}
    assert (await intake.read(case["id"])).json() == erased.json()
    assert (await intake.client.delete(path, headers=intake.caseworker)).json() == erased.json()

    listed = (await intake.client.get("/api/intake/cases", headers=intake.caseworker)).json()["items"]
    assert listed == [{"id": case["id"], "reference": case["reference"], "status": "erased", "country": None,
                       "opened_at": case["opened_at"], "assignees": ["caseworker-1"],
                       "unattended": False, "inactive_assignees": [], "waiting_tasks": 0}]
    assert (await intake.client.post("/api/intake/cases/search", json={"q": "Marozau"},
                                      headers=intake.caseworker)).json()["items"] == []
    assert (await intake.client.get(f"{path}/needs", headers=intake.caseworker)).json()["items"] == []
    assert (await intake.client.get(f"{path}/timeline", headers=intake.caseworker)).json()["items"] == []
    writes = [
        await intake.client.post(f"{path}/close", headers=intake.caseworker),
        await intake.client.post(f"{path}/needs", json={"category": "legal", "urgency": "low"}, headers=intake.caseworker),
        await intake.client.patch(path, json={"city": "Riga"}, headers={**intake.caseworker, "If-Match": '"any"'}),
    ]
    assert [w.status_code for w in writes] == [409, 409, 409]
    twin = await intake.create(**FULL_CASE)
    assert twin["possible_duplicates"] == []  # the erased case's index entries are gone


async def test_a_retried_create_with_an_idempotency_key_opens_one_case(intake: Intake):
    headers = {**intake.caseworker, "Idempotency-Key": "create-once"}
    first = await intake.client.post("/api/intake/cases", json={"full_name": "Ян Жук"}, headers=headers)
    second = await intake.client.post("/api/intake/cases", json={"full_name": "Ян Жук"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["idempotent-replayed"] == "true"
    other = await intake.client.post("/api/intake/cases", json={"full_name": "Ян Жук!"}, headers=headers)
    assert other.status_code == 422
    listed = (await intake.client.get("/api/intake/cases", headers=intake.caseworker)).json()["items"]
    assert len(listed) == 1


async def test_a_value_corrected_after_a_keyed_create_is_not_given_back_by_a_replay_of_it(intake: Intake):
    """The wrong phone typed at registration and corrected: a replay of the POST that opened the case (same key,
    same body, within the answers' retention) answers what the case now says, never the value taken out."""
    headers = {**intake.caseworker, "Idempotency-Key": "create-then-correct"}
    body = {"full_name": "Алесь Карповіч", "contact": {"phone": "+375295550199"}, "city": "Mahilioŭ"}
    created = await intake.client.post("/api/intake/cases", json=body, headers=headers)
    case_id = created.json()["id"]
    etag = (await intake.read(case_id)).headers["etag"]
    corrected = await intake.client.patch(f"/api/intake/cases/{case_id}", json={"contact": {"signal": "@karpovich"}},
                                          headers={**intake.caseworker, "If-Match": etag})
    assert corrected.status_code == 200, corrected.text

    replayed = await intake.client.post("/api/intake/cases", json=body, headers=headers)

    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["contact"]["signal"] == "@karpovich" and "5550199" not in replayed.text
    assert replayed.json()["city"] == "Mahilioŭ" and replayed.json()["id"] == case_id  # the rest as it was


async def test_a_create_answers_with_the_new_case_s_etag_and_location_with_or_without_an_idempotency_key(
        intake: Intake):
    plain = await intake.client.post("/api/intake/cases", json={"full_name": "Ян Жук"}, headers=intake.caseworker)
    keyed_headers = {**intake.caseworker, "Idempotency-Key": "create-with-headers"}
    keyed = await intake.client.post("/api/intake/cases", json={"full_name": "Янка Жук"}, headers=keyed_headers)
    replayed = await intake.client.post("/api/intake/cases", json={"full_name": "Янка Жук"}, headers=keyed_headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    for created in (plain, keyed, replayed):
        assert created.status_code == 201
        case_id = created.json()["id"]
        assert created.headers["location"] == f"/api/intake/cases/{case_id}"
        read = await intake.read(case_id)
        assert created.headers["etag"] == read.headers["etag"]  # the version just created: If-Match works with it


async def test_the_schema_matches_the_migrations(intake: Intake):
    migrations.check(intake.engine, SPEC.migrations_dir)  # raises on any difference
    paths = (await intake.client.get("/openapi.json")).json()["paths"]
    assert {"/api/intake/cases", "/api/intake/cases/duplicates", "/api/intake/cases/{case_id}",
            "/api/intake/cases/{case_id}/needs",
            "/api/intake/cases/{case_id}/consent", "/api/intake/cases/{case_id}/timeline",
            "/api/intake/cases/{case_id}/close", "/api/intake/cases/{case_id}/reopen",
            "/api/intake/cases/{case_id}/duplicate-of", "/api/intake/cases/{case_id}/needs/{need_id}",
            "/api/intake/cases/{case_id}/assignees", "/api/intake/audit",
            "/api/intake/audit/verify"} <= set(paths)
    audit_parameters = [p["name"] for p in paths["/api/intake/audit"]["get"]["parameters"]]
    assert audit_parameters == ["target_id", "limit", "cursor", "action", "order"]
    doc = (await intake.client.get("/asyncapi.json")).json()
    assert {c["address"] for c in doc["channels"].values()} == {
        "rehab.intake.case.opened", "rehab.intake.case.closed", "rehab.intake.case.reopened",
        "rehab.intake.case.duplicate", "rehab.intake.case.erased", "rehab.intake.case.assigned",
        "rehab.intake.needs.assessed", "rehab.intake.needs.moved", "rehab.intake.consent.changed",
        "rehab.erasures.case"}  # the erasure ledger (kit.erasures), through the same outbox
