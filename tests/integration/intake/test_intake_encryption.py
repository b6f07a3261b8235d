"""Personal data at rest: ciphertexts bound to their case, field and row; erasure destroys the case's key so that
nothing of the person can be read again, not even with the key-encryption key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from kit.crypto import DecryptionError, Keyring, WrappedKey, aad, open_sealed
from kit.db import is_sqlite
from services.intake.models import Case, CaseKey, CaseNameTerm, Need, TimelineEntry, kit_tables
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration

CASES = Case.__table__
KEYS = CaseKey.__table__


def _row(intake: Intake, table, case_id: str) -> dict:  # noqa: ANN001
    with intake.engine.connect() as conn:
        key_column = table.c.id if "id" in table.c else table.c.case_id
        return dict(conn.execute(select(table).where(key_column == case_id)).mappings().one())


def _set(intake: Intake, table, case_id: str, **values) -> None:  # noqa: ANN001
    key_column = table.c.id if "id" in table.c else table.c.case_id
    with intake.engine.begin() as conn:
        assert conn.execute(update(table).where(key_column == case_id).values(**values)).rowcount == 1


async def test_a_ciphertext_copied_onto_another_case_does_not_decrypt(intake: Intake):
    alice = await intake.create(full_name="Аляксандра Жук", safety_notes="Moves every two weeks")
    bob = await intake.create(full_name="Вольга Мельнік")
    stolen = _row(intake, CASES, alice["id"])["full_name_sealed"]

    _set(intake, CASES, bob["id"], full_name_sealed=stolen)
    refused = await intake.read(bob["id"])
    assert refused.status_code == 500 and refused.json()["type"].endswith("undecryptable")
    assert "Жук" not in refused.text and "Аляксандра" not in refused.text

    # Even with Alice's data key moved along, the associated data names Alice's row: it still does not open.
    _set(intake, KEYS, bob["id"], **{k: v for k, v in _row(intake, KEYS, alice["id"]).items() if k in ("kid", "wrapped")})
    assert (await intake.read(bob["id"])).status_code == 500

    # Nor does a ciphertext moved to another field of its own case.
    _set(intake, CASES, alice["id"], city_sealed=_row(intake, CASES, alice["id"])["safety_notes_sealed"])
    assert (await intake.read(alice["id"])).status_code == 500

    # The refusal comes from the ciphertext itself: under its own case id it opens, under Bob's it does not.
    keyring = Keyring.from_file(intake.settings.kek_path)
    alice_key = _row(intake, KEYS, alice["id"])
    data_key = keyring.unwrap(WrappedKey(alice_key["kid"], alice_key["wrapped"]))
    assert b"Zhuk" not in stolen
    assert open_sealed(data_key, stolen, aad("cases", "full_name_sealed", alice["id"])).decode().startswith('"Аляксандра')
    with pytest.raises(DecryptionError):
        open_sealed(data_key, stolen, aad("cases", "full_name_sealed", bob["id"]))


async def test_after_erasure_the_old_ciphertexts_cannot_be_read_even_with_the_kek(intake: Intake):
    case = await intake.create(full_name="Наталля Мельнік", date_of_birth="1988-08-08",
                               contact={"phone": "+48 500 600 700"}, safety_notes="Lives with her sister")
    need = await intake.client.post(f"/api/intake/cases/{case['id']}/needs",
                                    json={"category": "psychological", "urgency": "medium", "notes": "Night terrors"},
                                    headers=intake.caseworker)
    assert need.status_code == 201
    before = _row(intake, CASES, case["id"])
    old_key = _row(intake, KEYS, case["id"])
    with intake.engine.connect() as conn:
        old_note = conn.execute(select(Need.__table__.c.notes_sealed)).scalar_one()
    ciphertexts = {column: blob for column, blob in before.items() if column.endswith("_sealed")}
    keyring = Keyring.from_file(intake.settings.kek_path)
    data_key = keyring.unwrap(WrappedKey(old_key["kid"], old_key["wrapped"]))
    assert open_sealed(data_key, ciphertexts["contact_sealed"], aad("cases", "contact_sealed", case["id"]))

    assert (await intake.client.delete(f"/api/intake/cases/{case['id']}", headers=intake.caseworker)).status_code == 200

    after = _row(intake, CASES, case["id"])
    assert all(after[column] is None for column in ciphertexts) and after["status"] == "erased"
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(KEYS).where(KEYS.c.case_id == case["id"])).scalar() == 0
        for table in (CaseNameTerm.__table__, Need.__table__, TimelineEntry.__table__):
            assert conn.execute(select(func.count()).select_from(table).where(table.c.case_id == case["id"])).scalar() == 0
        remaining_keys = conn.execute(select(KEYS.c.kid, KEYS.c.wrapped)).all()
    # Whoever holds the KEK and every wrapped key left in the database still cannot open the old ciphertexts.
    for kid, wrapped in remaining_keys:
        other_key = keyring.unwrap(WrappedKey(kid, wrapped))
        for column, blob in ciphertexts.items():
            with pytest.raises(DecryptionError):
                open_sealed(other_key, blob, aad("cases", column, case["id"]))

    if is_sqlite(intake.engine):
        # And the wrapped key is gone from the disk too: rows are deleted with secure_delete and the WAL is
        # truncated, so no page image of the database or its log still holds it.
        database = Path(make_url(intake.settings.database_url).database)
        files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
        assert database in files
        for path in files:
            raw = path.read_bytes()
            assert old_key["wrapped"] not in raw, path.name
            assert old_note not in raw and ciphertexts["full_name_sealed"] not in raw, path.name


async def test_erasure_also_deletes_the_stored_answer_of_an_idempotent_create(intake: Intake):
    headers = {**intake.caseworker, "Idempotency-Key": "open-case-1"}
    body = {"full_name": "Юлія Навуменка", "safety_notes": "Uses a second phone"}
    created = (await intake.client.post("/api/intake/cases", json=body, headers=headers)).json()
    with intake.engine.connect() as conn:
        assert conn.execute(select(kit_tables.idempotency.c.subject_id)).scalars().all() == [created["id"]]
    assert (await intake.client.delete(f"/api/intake/cases/{created['id']}", headers=intake.caseworker)).status_code == 200
    with intake.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kit_tables.idempotency)).scalar() == 0

    # The stored answer is gone: like a key past its retention, the same request is a new one and opens a new
    # case; nothing of the erased one comes back.
    replay = await intake.client.post("/api/intake/cases", json=body, headers=headers)
    assert replay.status_code == 201 and "idempotent-replayed" not in replay.headers
    assert replay.json()["id"] != created["id"] and created["reference"] not in replay.text