"""Search by name as the index now serves it: driven by a pair of words or by one word, newest first from the index,
with the same answers as "every word of the query is a word of one of the case's names"; and an upgraded database,
whose older cases have no pair terms yet, until `rehab names reindex` gives them theirs."""

from __future__ import annotations

import base64
import json
import re
from contextlib import asynccontextmanager

import pytest
from alembic import command
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from kit import migrations
from services.intake import manage
from services.intake.main import SPEC, create_app
from services.intake.models import CaseNameTerm, NameIndexPending
from services.intake.protection import MANY_WORDS, MAX_PAIRED_WORDS, PAIR_TERM
from tests.integration.intake.conftest import Intake
from tests.support.apps import running

pytestmark = pytest.mark.integration

BEFORE_SEARCH_INDEX = "83c5cdeb03de"  # the revision before pair terms and opened_at in case_name_terms


async def found(intake: Intake, q: str, **params: object) -> list[str]:
    """Every case a search finds, following its cursor to the end; newest first."""
    seen: list[str] = []
    cursor = None
    while True:
        search = {"q": q, **params, **({"cursor": cursor} if cursor else {})}
        response = await intake.client.post("/api/intake/cases/search", json=search, headers=intake.caseworker)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            return seen


async def test_a_name_in_the_url_is_refused_with_a_problem_that_says_search_is_a_post(intake: Intake):
    """`GET /cases?q=` once searched. Ignoring `q` now would answer every case and let a client go on putting names
    in URLs (browser history, proxy logs); refusing it tells that client at once."""
    case = await intake.create(full_name="Сяргей Марозаў")

    for query in ({"q": "Marozau"}, {"q": ""}, {"q": "Marozau", "limit": 5, "status": "open"}):
        refused = await intake.client.get("/api/intake/cases", params=query, headers=intake.caseworker)
        assert refused.status_code == 400, (query, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"].endswith("/search-is-post-only") and "POST /api/intake/cases/search" in problem["detail"]
        assert "Marozau" not in refused.text
    listed = await intake.client.get("/api/intake/cases", headers=intake.caseworker)  # the list itself still works
    assert listed.status_code == 200 and [item["id"] for item in listed.json()["items"]] == [case["id"]]
    assert await found(intake, "Marozau") == [case["id"]]


async def test_a_search_body_with_an_unknown_field_or_without_a_name_is_refused(intake: Intake):
    await intake.create(full_name="Сяргей Марозаў")

    async def search(body: object) -> int:
        answer = await intake.client.post("/api/intake/cases/search", json=body, headers=intake.caseworker)
        assert answer.status_code == 200 or answer.headers["content-type"] == "application/problem+json"
        return answer.status_code

    assert await search({"q": "Marozau", "name": "Marozau"}) == 422  # unknown field
    assert await search({"full_name": "Marozau"}) == 422  # no q
    assert await search({}) == 422
    assert await search({"q": ""}) == 422 and await search({"q": "   "}) == 422  # never "every case"
    assert await search({"q": "x" * 201}) == 422
    assert await search({"q": "Marozau", "limit": 0}) == 422 and await search({"q": "Marozau", "limit": 201}) == 422
    assert await search({"q": "Marozau", "status": "lost"}) == 422
    assert await search({"q": "Marozau", "cursor": "not a cursor"}) == 400
    assert await search({"q": "Marozau", "limit": 200, "status": "open"}) == 200
    refused = await intake.client.post("/api/intake/cases/search", json={"q": "Marozau"},
                                       headers=intake.as_("auditor", sub="auditor-1"))
    assert refused.status_code == 403  # caseworkers only, as the list


async def test_a_search_cursor_holds_a_position_never_the_name(intake: Intake):
    for _ in range(3):
        await intake.create(full_name="Сяргей Марозаў")
    page = await intake.client.post("/api/intake/cases/search", json={"q": "Марозаў", "limit": 1},
                                    headers=intake.caseworker)
    cursor = page.json()["next_cursor"]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()

    assert cursor and "Марозаў" not in decoded and "maroz" not in decoded.lower()
    scope, opened_at, case_id = json.loads(decoded)  # the search it belongs to, and the position (kit.pagination)
    assert re.fullmatch(r"search:[0-9a-f]{12}", scope), decoded  # a digest of the keyed terms, never the name
    assert re.fullmatch(r"[0-9T:.+-]+", opened_at) and re.fullmatch(r"[0-9a-f-]{36}", case_id), decoded


async def test_a_full_name_search_needs_every_word_from_any_of_the_names(intake: Intake):
    both = await intake.create(full_name="Сяргей Марозаў")
    across = await intake.create(full_name="Сяргей Ткач", other_names=["Марозаў"])  # the words in two names
    await intake.create(full_name="Сяргей Рыбак")
    oleg = await intake.create(full_name="Алег Марозаў")
    three = await intake.create(full_name="Сяргей Уладзіміравіч Марозаў")

    assert await found(intake, "Siarhei Marozau") == [three["id"], across["id"], both["id"]]
    assert await found(intake, "Марозаў Сяргей Ткач") == [across["id"]]
    assert await found(intake, "Sergei Vladimirovich Morozov") == [three["id"]]
    assert await found(intake, "Алег Рыбак") == []
    assert await found(intake, "Сяргей Марозаў Рыбак") == []
    # Two spellings of one word are one word: every case holding it.
    assert await found(intake, "Марозаў marozau") == [three["id"], oleg["id"], across["id"], both["id"]]


async def test_a_case_with_more_name_words_than_pairs_are_kept_for_is_found_all_the_same(intake: Intake):
    words = ["Марозаў", "Жук", "Рыбак", "Лапіцкі", "Кавалёва", "Сцяпан", "Ткач", "Новік", "Бондар", "Карп", "Шпак",
             "Грыб", "Рудак", "Лобач"][:MAX_PAIRED_WORDS + 1]
    wide = await intake.create(full_name=" ".join(words[:3]), other_names=[" ".join(words[3:8]), " ".join(words[8:])])
    plain = await intake.create(full_name="Рыбак Шпак")
    with intake.engine.connect() as conn:
        pairs = conn.execute(select(CaseNameTerm.term).where(CaseNameTerm.case_id == wide["id"],
                                                             CaseNameTerm.kind == PAIR_TERM)).scalars().all()
    assert pairs == [MANY_WORDS]
    assert await found(intake, "Rybak Shpak") == [plain["id"], wide["id"]]
    first, last = words[0], words[-1]  # the first name's first word and the last other name's last word
    assert await found(intake, f"{first} {last}") == [wide["id"]]
    assert await found(intake, f"{last} Жук Рыбак {first}") == [wide["id"]]
    assert await found(intake, f"{first} {last} Марыя") == []
    assert await found(intake, last) == [wide["id"]]


async def test_the_cursor_of_a_search_gives_every_match_once_newest_first(intake: Intake):
    zhuks = [await intake.create(full_name=f"{given} Жук") for given in
             ("Марыя", "Ігар", "Ян", "Алена", "Павел", "Марыя", "Вольга")]
    await intake.create(full_name="Марыя Рыбак")
    newest_first = [case["id"] for case in reversed(zhuks)]
    for limit in (1, 2, 3, 50):
        assert await found(intake, "Жук", limit=limit) == newest_first
        assert await found(intake, "Марыя Жук", limit=limit) == [zhuks[5]["id"], zhuks[0]["id"]]
    closed = await intake.client.post(f"/api/intake/cases/{zhuks[3]['id']}/close", headers=intake.caseworker)
    assert closed.status_code == 200
    assert await found(intake, "Жук", status="closed", limit=1) == [zhuks[3]["id"]]
    assert await found(intake, "Жук", status="open", limit=2) == [i for i in newest_first if i != zhuks[3]["id"]]


async def test_a_list_by_status_follows_its_cursor_without_gaps_or_repeats(intake: Intake):
    cases = [await intake.create(full_name=f"Ян Жук {word}") for word in ("Ала", "Бела", "Ціна", "Дара", "Эва")]
    for case in cases[1::2]:
        await intake.client.post(f"/api/intake/cases/{case['id']}/close", headers=intake.caseworker)
    seen, cursor = [], None
    while True:
        params = {"limit": 1, "status": "open", **({"cursor": cursor} if cursor else {})}
        page = (await intake.client.get("/api/intake/cases", params=params, headers=intake.caseworker)).json()
        seen += [item["id"] for item in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [case["id"] for case in reversed(cases[::2])]


@asynccontextmanager
async def _intake_again(intake: Intake):
    """A second intake process on the same database and keys, as after a restart."""
    app = create_app(intake.settings)
    async with running(app) as client:
        yield Intake(client, app, intake.settings, intake.issuer)


async def test_an_upgraded_database_finds_its_older_cases_before_and_after_reindexing(intake: Intake):
    # Cases indexed as the revision before this one did (word and name-and-birth terms only, no opened_at).
    older = [await intake.create(full_name=name, other_names=others, date_of_birth="1980-05-06")
             for name, others in (("Сяргей Марозаў", []), ("Сяргей Ткач", ["Марозаў"]), ("Алег Марозаў", []))]
    cfg = migrations.config_for(SPEC.migrations_dir, intake.engine.url.render_as_string(hide_password=False))
    with intake.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE_SEARCH_INDEX)
    with intake.engine.connect() as conn:
        assert "opened_at" not in {column["name"] for column in inspect(conn).get_columns("case_name_terms")}

    async with _intake_again(intake) as upgraded:  # starting migrates to the newest revision
        with upgraded.engine.connect() as conn:
            # This revision's pair rows, the later name-only terms and given-name groups (5c0d7e2a9b41), and the
            # parts of double-barrelled names (b3e8d1f4a6c2).
            assert sorted(conn.execute(select(NameIndexPending.part)).scalars()) == [
                "double-barrelled", "given-names", "name", PAIR_TERM]
            assert conn.execute(select(func.count()).select_from(CaseNameTerm)
                                .where(CaseNameTerm.kind == PAIR_TERM)).scalar_one() == 0
        newer = await upgraded.create(full_name="Siarhei Marozau", date_of_birth="1980-05-06")
        assert {d["id"] for d in newer["possible_duplicates"]} == {older[0]["id"]}  # duplicates still found
        expected = [newer["id"], older[1]["id"], older[0]["id"]]
        for limit in (1, 50):
            assert await found(upgraded, "Сяргей Марозаў", limit=limit) == expected
            assert await found(upgraded, "Marozau", limit=limit) == [newer["id"], *[c["id"] for c in reversed(older)]]

        result = CliRunner().invoke(manage.app, ["names", "reindex", "--batch-size", "2"], env={
            "REHAB_STATE_DIR": str(intake.settings.state_dir), "REHAB_SECRETS_DIR": str(intake.settings.secrets_dir),
            "REHAB_INTAKE_DATABASE_URL": intake.settings.database_url})
        assert result.exit_code == 0, result.output
        assert "cases re-indexed: 4" in result.output
        with upgraded.engine.connect() as conn:
            assert conn.execute(select(NameIndexPending.part)).scalars().all() == []
            with_pairs = conn.execute(select(func.count(CaseNameTerm.case_id.distinct()))
                                      .where(CaseNameTerm.kind == PAIR_TERM)).scalar_one()
        assert with_pairs == 4
        for limit in (1, 50):
            assert await found(upgraded, "Сяргей Марозаў", limit=limit) == expected
            assert await found(upgraded, "Алег Марозаў", limit=limit) == [older[2]["id"]]


async def test_a_search_cursor_pages_its_own_search_and_no_other(intake: Intake):
    """An outside review's find: a cursor given to another list gave a page of that list, silently."""
    for name in ("Сяргей Марозаў", "Сяргей Марозаў", "Алесь Марозаў", "Алесь Марозаў"):
        await intake.create(full_name=name)
    first = await intake.client.post("/api/intake/cases/search", json={"q": "Сяргей", "limit": 1},
                                     headers=intake.caseworker)
    cursor = first.json()["next_cursor"]
    same = await intake.client.post("/api/intake/cases/search", json={"q": "Сяргей", "limit": 1, "cursor": cursor},
                                    headers=intake.caseworker)
    other = await intake.client.post("/api/intake/cases/search", json={"q": "Алесь", "limit": 1, "cursor": cursor},
                                     headers=intake.caseworker)
    listed = await intake.client.get("/api/intake/cases", params={"cursor": cursor}, headers=intake.caseworker)
    assert same.status_code == 200 and len(same.json()["items"]) == 1
    assert other.status_code == listed.status_code == 400 and other.json()["type"].endswith("/invalid-cursor")


async def test_names_tried_against_cases_others_hold_show_in_those_cases_and_run_out(intake_settings, token_issuer):
    """A search shows every case it finds (SPEC), a case someone else holds in outline: a list of names tried one by
    one would tell who is a client here. Each case so shown has the search in its own trail, and the caller's searches
    that show such cases have a budget; searches of one's own cases, or finding nothing, cost nothing."""
    app = create_app(intake_settings.model_copy(update={"search_rate_limit": "2/hour"}))
    async with running(app) as client:
        intake = Intake(client, app, intake_settings, token_issuer)
        held = await intake.create(full_name="Mikalai Statkevich")
        stranger = intake.as_("caseworker", sub="caseworker-7")
        path = "/api/intake/cases/search"
        own = [await client.post(path, json={"q": "Statkevich"}, headers=intake.caseworker) for _ in range(3)]
        nobody = [await client.post(path, json={"q": f"Nichoga Niama {n}"}, headers=stranger) for n in range(3)]
        tried = [await client.post(path, json={"q": "Статкевіч"}, headers=stranger) for _ in range(3)]

        assert [answer.status_code for answer in (*own, *nobody)] == [200] * 6
        assert [answer.status_code for answer in tried] == [200, 200, 429]
        assert tried[0].json()["items"] == [{"id": held["id"], "reference": held["reference"], "status": "open",
                                             "assignees": ["caseworker-1"]}]
        refused = tried[2]
        assert refused.headers["content-type"] == "application/problem+json" and int(refused.headers["retry-after"]) > 0
        assert "Statkevich" not in refused.text and "Статкевіч" not in refused.text
        trail = (await client.get("/api/intake/audit", params={"target_id": held["id"]}, headers=intake.auditor))
        searches = [e["actor"] for e in trail.json()["items"] if e["action"] == "case.search"]
        assert searches == ["caseworker-7"] * 3  # the refused search too: it found the case
        everything = (await client.get("/api/intake/audit", params={"limit": 200}, headers=intake.auditor)).json()
        untargeted = [e["actor"] for e in everything["items"] if e["action"] == "case.search" and not e["target_id"]]
        assert sorted(untargeted) == ["caseworker-1"] * 3 + ["caseworker-7"] * 3  # who searched, not for whom
