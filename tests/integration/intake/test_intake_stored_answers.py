"""Stored idempotent answers and request fingerprints (SPEC §4 DELETE /cases/{id}, §7 item 6): an erasure deletes
every answer kept about the case, found by the case id stored beside it, whatever key sealed it; expired keys are
purged on a schedule.

A replay after the erasure finds no stored answer: like a key past its retention, the request is treated as new (it
opens a new case from the body the client sent again) and never brings back the erased case or anything of it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from kit.crypto import Keyring, add_key_to_file
from kit import migrations
from kit.db import is_sqlite, make_engine
from services.intake import manage
from services.intake.config import IntakeSettings
from services.intake.main import SPEC, create_app
from services.intake.models import kit_tables
from tests.integration.intake.conftest import Intake, eventually
from tests.support.apps import bearer, running

pytestmark = pytest.mark.integration

ANSWERS = kit_tables.idempotency
NAME = "Гражына Вішнеўская-Кірык"


def _rotate(settings: IntakeSettings) -> None:
    """`rehab keys rotate`, as the CLI runs it: a KEK added, then intake's part, configured by the environment only."""
    add_key_to_file(settings.kek_path)
    env = {"REHAB_STATE_DIR": str(settings.state_dir), "REHAB_SECRETS_DIR": str(settings.secrets_dir),
           "REHAB_INTAKE_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(manage.app, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output


def _stored(engine) -> list[dict]:  # noqa: ANN001
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(ANSWERS)).mappings()]


def _database_files(settings: IntakeSettings) -> list[Path]:
    database = Path(make_url(settings.database_url).database)
    return [p for p in database.parent.glob(database.name + "*") if p.is_file()]


async def test_an_erasure_after_a_key_rotation_and_a_restart_deletes_the_stored_answer(intake_settings, token_issuer):
    body = {"full_name": NAME, "date_of_birth": "1984-03-02", "safety_notes": "Lives with her sister"}
    headers = {**bearer(token_issuer, "caseworker", sub="caseworker-1"), "Idempotency-Key": "open-before-rotation"}
    app = create_app(intake_settings)
    async with running(app) as client:
        created = await client.post("/api/intake/cases", json=body, headers=headers)
        assert created.status_code == 201, created.text
        created = created.json()
        [row] = _stored(app.state.runtime.engine)
        sealed_answer = row["body"]
    old_kid = Keyring.from_file(intake_settings.kek_path).active

    _rotate(intake_settings)
    assert Keyring.from_file(intake_settings.kek_path).active != old_kid

    app = create_app(intake_settings)  # a restart: every key the service derives now comes from the new KEK
    async with running(app) as client:
        engine = app.state.runtime.engine
        erased = await client.delete(f"/api/intake/cases/{created['id']}", headers=headers)
        assert erased.status_code == 200, erased.text
        # Deleted, not sealed again: no row about the case, nor any other, is left.
        assert _stored(engine) == []
        if is_sqlite(engine):  # nor in any page of the database or its write-ahead log
            for path in _database_files(intake_settings):
                raw = path.read_bytes()
                assert sealed_answer not in raw and NAME.encode() not in raw, path.name

        replay = await client.post("/api/intake/cases", json=body, headers=headers)
        assert replay.status_code == 201, replay.text
        # Not the stored answer: a new case opened from the body sent again, nothing of the erased one.
        assert "idempotent-replayed" not in replay.headers
        assert replay.json()["id"] != created["id"] and replay.json()["reference"] != created["reference"]
        assert created["id"] not in replay.text and created["reference"] not in replay.text
        assert [row["subject_id"] for row in _stored(engine)] == [replay.json()["id"]]
        again = await client.get(f"/api/intake/cases/{created['id']}", headers=headers)
        assert again.json() == {"id": created["id"], "reference": created["reference"], "status": "erased"}


async def test_a_request_about_an_erased_case_leaves_no_stored_answer_nor_fingerprint(intake: Intake):
    """An outside review's find: after an erasure, a retry of a note's POST with its old key was refused 409, and its
    refusal was stored for 48 h beside the erased case's id with a keyed fingerprint of the note's text — something
    to confirm a guess about the erased person with. Nothing is stored; a retry is refused again."""
    case = await intake.create(full_name=NAME)
    erased = await intake.client.delete(f"/api/intake/cases/{case['id']}", headers=intake.caseworker)
    assert erased.status_code == 200, erased.text
    assert _stored(intake.engine) == []

    keyed = {**intake.caseworker, "Idempotency-Key": "note-after-erasure"}
    for _ in range(2):
        refused = await intake.client.post(f"/api/intake/cases/{case['id']}/notes", headers=keyed,
                                           json={"text": f"{NAME} moved to her sister's in Hrodna"})
        assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (409, "case-erased")
        assert "idempotent-replayed" not in refused.headers
        assert _stored(intake.engine) == []


async def test_the_stored_fingerprint_is_keyed_not_a_hash_of_the_request(intake: Intake):
    body = {"full_name": NAME, "date_of_birth": "1984-03-02"}
    headers = {**intake.caseworker, "Idempotency-Key": "fingerprinted"}
    response = await intake.client.post("/api/intake/cases", json=body, headers=headers)
    assert response.status_code == 201
    [row] = _stored(intake.engine)
    # Anyone holding a list of released prisoners could compute this one offline and compare.
    sent = response.request
    plain = hashlib.sha256(b"POST " + sent.url.path.encode() + b"\n" + sent.content).hexdigest()
    assert row["fingerprint"] != plain
    assert row["key"] != "fingerprinted" and row["key"].startswith("h:")  # the key as sent is not kept either
    assert len(row["fingerprint"]) == 64 and plain.encode() not in b"".join(
        str(v).encode() for r in _stored(intake.engine) for v in r.values())


async def test_expired_keys_are_purged_on_a_schedule(intake_settings, token_issuer):
    settings = intake_settings.model_copy(update={"idempotency_purge_interval_seconds": 0.2})
    app = create_app(settings)
    async with running(app) as client:
        runtime = app.state.runtime
        assert runtime.idempotency.retention == timedelta(hours=48)  # the default
        now = datetime.now(UTC)
        with runtime.engine.begin() as conn:
            conn.execute(insert(ANSWERS), [
                {"principal": "caseworker-1", "key": "old", "fingerprint": "0" * 64, "state": "done",
                 "status_code": 201, "body": b"x", "created_at": now - timedelta(hours=49)},
                {"principal": "caseworker-1", "key": "recent", "fingerprint": "1" * 64, "state": "done",
                 "status_code": 201, "body": b"x", "created_at": now - timedelta(hours=47)},
            ])
        # No request comes in: the service's own schedule deletes what is past its retention, and only that.
        await eventually(lambda: [r["key"] for r in _stored(runtime.engine)] == ["recent"], timeout=10)
        assert (await client.get("/healthz")).status_code == 200


def test_the_upgrade_deletes_the_answers_stored_with_plain_hashes(database_url_factory):
    engine = make_engine(database_url_factory("intake"))
    try:
        config = migrations.config_for(SPEC.migrations_dir, engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:  # the schema just before this change
            config.attributes["connection"] = conn
            command.upgrade(config, "03288c403fd9-1")
            conn.execute(text("INSERT INTO idempotency_keys (principal, key, fingerprint, state, status_code, body, "
                              "created_at) VALUES ('caseworker-1', 'k', :fp, 'done', 201, :body, :at)"),
                         {"fp": hashlib.sha256(b"POST /api/intake/cases\n{}").hexdigest(), "body": b"sealed",
                          "at": datetime.now(UTC)})
        migrations.upgrade(engine, SPEC.migrations_dir)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(ANSWERS)).scalar() == 0
    finally:
        engine.dispose()
