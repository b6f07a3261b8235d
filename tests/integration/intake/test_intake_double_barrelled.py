"""The duplicate check and a double-barrelled surname, through the API: the same given name with one part of the
surname, born the same day, is flagged `high` (without a birth date on either side, `name_only`), whichever side
holds the hyphen and in whichever script; a shared given name alone is never flagged. Cases indexed before this
(the whole written name only) are marked for `rehab names reindex`, which gives them the terms of each part."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select
from typer.testing import CliRunner

from kit import migrations
from services.intake import manage, names
from services.intake.main import SPEC
from services.intake.models import NameIndexPending
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

CASES = "/api/intake/cases"
BORN = "1983-07-07"
BEFORE = "5c0d7e2a9b41"  # the revision before double-barrelled names had a term per part


async def _flagged(intake: Intake, full_name: str, date_of_birth: str | None = BORN) -> dict[str, str]:
    """Each case the check names, with its confidence."""
    checked = await intake.client.post(f"{CASES}/duplicates", json={"full_name": full_name,
                                                                    "date_of_birth": date_of_birth},
                                       headers=intake.caseworker)
    assert checked.status_code == 200, checked.text
    return {d["id"]: d["confidence"] for d in checked.json()["possible_duplicates"]}


async def test_one_part_of_a_double_barrelled_surname_with_the_same_birth_date_is_flagged_high(intake: Intake):
    volha = await intake.create(full_name="Вольга Мікалаеўна Сідарэнка-Баранава", date_of_birth=BORN)
    for written in ("Вольга Сідарэнка", "Ольга Николаевна Баранова", "Volha Sidarenka", "Olga Baranova"):
        assert await _flagged(intake, written) == {volha["id"]: "high"}, written
    for words in ("Вольга Сідарэнка", "Ольга Баранова"):  # the search found her already, word by word
        found = await intake.client.post(f"{CASES}/search", json={"q": words}, headers=intake.caseworker)
        assert [c["id"] for c in found.json()["items"]] == [volha["id"]], words
    assert await _flagged(intake, "Вольга Сідарэнка", None) == {volha["id"]: "name_only"}
    assert await _flagged(intake, "Вольга Сідарэнка", "1983-07-08") == {}  # another birthday: another person
    for other in ("Вольга Жук", "Вольга", "Ганна Сідарэнка", "Вольга Мікалаеўна"):
        assert await _flagged(intake, other) == {}, other  # a given name (or a surname) alone flags nobody


async def test_the_double_barrelled_name_may_be_the_new_one_and_is_told_at_creation(intake: Intake):
    zmitser = await intake.create(full_name="Зміцер Лукашэвіч")
    assert await _flagged(intake, "Зміцер Лукашэвіч-Новік", None) == {zmitser["id"]: "name_only"}
    again = await intake.create(full_name="Dzmitry Lukashevich-Novik", date_of_birth="1979-02-14")
    assert [(d["id"], d["confidence"]) for d in again["possible_duplicates"]] == [(zmitser["id"], "name_only")]
    novik = await intake.create(full_name="Зміцер Новік", date_of_birth="1979-02-14")
    assert [(d["id"], d["confidence"]) for d in novik["possible_duplicates"]] == [(again["id"], "high")]


async def test_cases_indexed_before_are_marked_for_reindexing_and_found_by_one_part_after_it(
        intake: Intake, monkeypatch: pytest.MonkeyPatch):
    # A case indexed as before this change: its whole written names only.
    def whole_names_only(name: str) -> set[str]:
        return names._whole_name_keys(names.word_alternatives(name))

    with monkeypatch.context() as before:
        before.setattr(names, "name_keys", whole_names_only)
        older = await intake.create(full_name="Вольга Мікалаеўна Сідарэнка-Баранава", date_of_birth=BORN)
    assert await _flagged(intake, "Вольга Сідарэнка") == {}  # what the outside review found
    assert await _flagged(intake, "Вольга Сідарэнка-Баранава") == {older["id"]: "high"}  # the whole name still

    cfg = migrations.config_for(SPEC.migrations_dir, intake.engine.url.render_as_string(hide_password=False))
    with intake.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, BEFORE)
        command.upgrade(cfg, "head")  # as an upgrade does, on a database that holds cases
    with intake.engine.connect() as conn:
        assert conn.execute(select(NameIndexPending.part)).scalars().all() == ["double-barrelled"]

    result = CliRunner().invoke(manage.app, ["names", "reindex"], env={
        "REHAB_STATE_DIR": str(intake.settings.state_dir), "REHAB_SECRETS_DIR": str(intake.settings.secrets_dir),
        "REHAB_INTAKE_DATABASE_URL": intake.settings.database_url})
    assert result.exit_code == 0, result.output
    assert "cases re-indexed: 1" in result.output
    with intake.engine.connect() as conn:
        assert conn.execute(select(NameIndexPending.part)).scalars().all() == []
    assert await _flagged(intake, "Вольга Сідарэнка") == {older["id"]: "high"}
    assert await _flagged(intake, "Ольга Николаевна Баранова") == {older["id"]: "high"}
