"""Duplicates across scripts and spellings, through the API: the caseworker is told, creation is not refused."""

from __future__ import annotations

import csv

import pytest

from services.intake.main import create_app
from tests.integration.intake.conftest import Intake
from tests.support.apps import running
from tests.support.shared import SHARED_DATA

pytestmark = pytest.mark.integration

DATA = SHARED_DATA


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def test_every_spelling_of_each_person_is_flagged_as_the_same_person(intake: Intake):
    """Table-driven over name-variants.csv: for each person, open a case under every spelling, one birth date per
    person; each new case names exactly the earlier cases of the same person."""
    for number, row in enumerate(_rows("name-variants.csv")):
        born = f"19{60 + number}-0{1 + number % 9}-1{number % 10}"
        earlier: list[dict] = []
        for spelling, name in row.items():
            created = await intake.create(full_name=name, date_of_birth=born)
            flagged = [d["reference"] for d in created["possible_duplicates"]]
            assert flagged == [c["reference"] for c in earlier], f"{spelling} {name!r} flagged {flagged}"
            earlier.append(created)


async def test_different_people_are_not_flagged_even_when_born_the_same_day(intake: Intake):
    for row in _rows("name-distinct.csv"):
        first = await intake.create(full_name=row["name_a"], date_of_birth="1980-10-10")
        second = await intake.create(full_name=row["name_b"], date_of_birth="1980-10-10")
        assert second["possible_duplicates"] == [], row["why"]
        assert first["possible_duplicates"] == []


async def test_same_name_another_birth_date_is_never_a_duplicate_a_missing_one_is_name_only(intake: Intake):
    first = await intake.create(full_name="Кацярына Кузняцова", date_of_birth="1991-01-01")
    other_birth = await intake.create(full_name="Ekaterina Kuznetsova", date_of_birth="1991-01-02")
    assert other_birth["possible_duplicates"] == []
    # A new case without a date of birth may be either of them: both are named, `name_only`, oldest first.
    no_birth = await intake.create(full_name="Ekaterina Kuznetsova")
    assert [(d["id"], d["confidence"]) for d in no_birth["possible_duplicates"]] == [
        (first["id"], "name_only"), (other_birth["id"], "name_only")]


async def test_other_names_and_patronymics_are_matched_too(intake: Intake):
    first = await intake.create(full_name="Вольга Лукашэвіч", other_names=["Вольга Шушкевіч"], date_of_birth="1970-05-05")
    ref = [{"id": first["id"], "reference": first["reference"], "status": "open", "assignees": ["caseworker-1"],
            "confidence": "high"}]
    assert (await intake.create(full_name="Olga Shushkevich", date_of_birth="1970-05-05"))["possible_duplicates"] == ref
    assert (await intake.create(full_name="Volha Uladzimiraŭna Lukaševič", date_of_birth="1970-05-05"))[
        "possible_duplicates"][0] == ref[0]


async def test_a_closed_case_is_still_named_an_erased_one_is_not(intake: Intake):
    closed = await intake.create(full_name="Ігар Рыбак", date_of_birth="1966-06-06")
    erased = await intake.create(full_name="Игорь Рыбак", date_of_birth="1966-06-06")
    await intake.client.post(f"/api/intake/cases/{closed['id']}/close", headers=intake.caseworker)
    await intake.client.delete(f"/api/intake/cases/{erased['id']}", headers=intake.caseworker)
    again = await intake.create(full_name="Ihar Rybak", date_of_birth="1966-06-06")
    assert again["possible_duplicates"] == [{"id": closed["id"], "reference": closed["reference"], "status": "closed",
                                             "assignees": ["caseworker-1"], "confidence": "high"}]


async def test_checking_before_saving_names_what_saving_would_and_stores_nothing(intake: Intake):
    """The console asks before it saves: the check names the same cases creation would, opens no case, and leaves
    an audit entry of who checked, never the name."""
    person = _rows("name-variants.csv")[0]
    spellings = list(person.values())
    first = await intake.create(full_name=spellings[0], date_of_birth="1979-03-03")
    listed_before = (await intake.client.get("/api/intake/cases", headers=intake.caseworker)).json()["items"]

    async def check(**body) -> dict:
        answer = await intake.client.post("/api/intake/cases/duplicates", json=body, headers=intake.caseworker)
        assert answer.status_code == 200, answer.text
        return answer.json()

    same = await check(full_name=spellings[-1], date_of_birth="1979-03-03")
    by_other_name = await check(full_name="Someone Else", other_names=[spellings[1]], date_of_birth="1979-03-03")
    another_birthday = await check(full_name=spellings[-1], date_of_birth="1979-03-04")
    no_birthday = await check(full_name=spellings[-1])
    # SPEC §4: "the same body" as creation: a client checks, then creates with one payload.
    whole_case = {"full_name": spellings[-1], "date_of_birth": "1979-03-03", "contact": {"phone": "+48 600 100 200"},
                  "country": "PL", "city": "Białystok", "languages": ["be", "ru"], "release_date": "2024-05-01",
                  "facility": "IK-15", "safety_notes": "Calls only after 18:00."}
    as_sent_to_create = await check(**whole_case)
    created = await intake.create(**whole_case)
    listed_after = (await intake.client.get("/api/intake/cases", headers=intake.caseworker)).json()["items"]
    audit = await intake.client.get("/api/intake/audit", headers=intake.auditor)

    expected = [{"id": first["id"], "reference": first["reference"], "status": "open", "assignees": ["caseworker-1"],
                 "confidence": "high"}]
    assert same == by_other_name == as_sent_to_create == {"possible_duplicates": expected}
    assert another_birthday == {"possible_duplicates": []}
    assert no_birthday == {"possible_duplicates": [{**expected[0], "confidence": "name_only"}]}
    assert created["possible_duplicates"] == expected  # the check and the save agree
    assert len(listed_after) == len(listed_before) + 1  # five checks opened nothing; the save opened one
    checks = [e for e in audit.json()["items"] if e["action"] == "case.duplicate-check"]
    # Each check that named the case is in the case's own trail (checks aimed at one case show there), the save's
    # answer too; the one that named none, without a target.
    assert sorted(e["target_id"] or "" for e in checks) == ["", *[first["id"]] * 5]
    assert spellings[-1] not in audit.text


async def test_a_caseworker_s_duplicate_checks_are_budgeted_so_a_calendar_is_not_searched(intake_settings,
                                                                                          token_issuer):
    """`high` answers only for the same date of birth: one name tried with date after date told another
    caseworker's case's birth date (a decade in minutes at the API's rate). A check and a save per registration fit
    the budget; a search of the calendar does not, by checks or by cases opened and erased, and each hit is in the
    case's trail."""
    app = create_app(intake_settings.model_copy(update={"duplicate_check_rate_limit": "3/hour"}))
    async with running(app) as client:
        intake = Intake(client, app, intake_settings, token_issuer)
        held = await intake.create(full_name="Siarhei Kavalenka", date_of_birth="1984-03-17")
        other = intake.as_("caseworker", sub="caseworker-2")
        path = "/api/intake/cases/duplicates"
        mine = [await client.post(path, json={"full_name": "Siarhei Kavalenka"}, headers=intake.caseworker)
                for _ in range(5)]  # the names of the caller's own case alone: nothing to guess, nothing spent
        assert [m.status_code for m in mine] == [200] * 5 and mine[0].json()["possible_duplicates"][0]["id"] == held["id"]
        tries = [await client.post(path, json={"full_name": "Siarhei Kavalenka", "date_of_birth": f"1984-03-{day}"},
                                   headers=other) for day in (14, 15)]
        # Opening a case answers the same list: a case opened with a guessed date, then erased, is a check too.
        opened, refused = [await client.post("/api/intake/cases", headers=other, json={
            "full_name": "Siarhei Kavalenka", "date_of_birth": f"1984-03-{day}"}) for day in (17, 18)]
        assert [t.status_code for t in (*tries, opened, refused)] == [200, 200, 201, 429]
        assert opened.json()["possible_duplicates"][0]["id"] == held["id"]
        assert refused.headers["content-type"] == "application/problem+json" and int(refused.headers["retry-after"]) > 0
        assert "duplicate checks" in refused.json()["detail"]
        theirs = (await client.get("/api/intake/cases", headers=other)).json()["items"]
        assert [case["id"] for case in theirs] == [opened.json()["id"]]  # the refused one opened nothing
        new_names = [await client.post("/api/intake/cases", headers=other, json={"full_name": f"Nowy Chalavek {n}"})
                     for n in range(3)]  # someone nobody holds yet: registered as ever, budget spent or not
        assert [n.status_code for n in new_names] == [201] * 3
        trail = (await client.get("/api/intake/audit", params={"target_id": held["id"]}, headers=intake.auditor))
        named = [(e["actor"], e["action"]) for e in trail.json()["items"] if e["action"] == "case.duplicate-check"]
        assert named.count(("caseworker-2", "case.duplicate-check")) == 1  # the hit, by whoever aimed it


async def test_the_check_is_for_caseworkers_and_refuses_what_is_not_a_name(intake: Intake):
    path = "/api/intake/cases/duplicates"
    as_auditor = await intake.client.post(path, json={"full_name": "Янка Купала"}, headers=intake.auditor)
    unknown_field = await intake.client.post(path, json={"full_name": "Янка Купала", "phone": "1"},
                                             headers=intake.caseworker)
    no_name = await intake.client.post(path, json={"date_of_birth": "1980-01-01"}, headers=intake.caseworker)
    born_tomorrow = await intake.client.post(path, json={"full_name": "Янка", "date_of_birth": "2999-01-01"},
                                             headers=intake.caseworker)

    assert as_auditor.status_code == 403
    for refused in (unknown_field, no_name, born_tomorrow):
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
