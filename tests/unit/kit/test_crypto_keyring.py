"""kit.crypto's one keyring: re-read when its file changes, KEKs added and retired; and the table helpers every
service's `keys rotate|status` runs over its WRAPPED_KEYS (SQLite file, real keys)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from kit.crypto import (
    DecryptionError,
    Keyring,
    WrappedKey,
    WrappedKeyColumns,
    add_key_to_file,
    count_by_kek,
    remove_key_from_file,
    rewrap_table,
)
from kit.progress import Progress
from kit.secrets import KEK_FILE, ensure_secrets


@pytest.fixture
def kek_path(tmp_path: Path) -> Path:
    ensure_secrets(tmp_path / "secrets")
    return tmp_path / "secrets" / "intake" / KEK_FILE


def test_the_keyring_follows_its_file_without_a_restart(kek_path: Path) -> None:
    ring = Keyring.from_file(kek_path)
    first = ring.active
    data_key, wrapped = ring.new_wrapped_data_key()
    assert wrapped.kid == first and ring.unwrap(wrapped) == data_key

    second = add_key_to_file(kek_path)  # another process: `rehab keys rotate`
    assert ring.active == second and ring.kids == [second, first]
    rewrapped = ring.rewrap(wrapped)
    assert rewrapped.kid == second and ring.unwrap(rewrapped) == ring.unwrap(wrapped) == data_key
    assert ring.derived_keys("idempotency")[0] == ring.derive("idempotency", second)

    with pytest.raises(ValueError, match="active"):
        remove_key_from_file(kek_path, second)
    remove_key_from_file(kek_path, first)  # `rehab keys retire`
    assert ring.kids == [second]
    with pytest.raises(DecryptionError):
        ring.unwrap(wrapped)
    assert ring.unwrap(rewrapped) == data_key


def test_rewrap_table_rewraps_only_other_keks_in_batches_and_leaves_what_does_not_unwrap(kek_path: Path,
                                                                                        tmp_path: Path) -> None:
    metadata = MetaData()
    table = Table("things", metadata, Column("id", Integer, primary_key=True), Column("kid", String(20)),
                  Column("wrapped", LargeBinary))
    engine = create_engine(f"sqlite:///{tmp_path / 'things.db'}")
    metadata.create_all(engine)
    ring = Keyring.from_file(kek_path)
    first = ring.active
    keys = {}
    with engine.begin() as conn:
        for i in range(7):
            data_key, wrapped = ring.new_wrapped_data_key()
            keys[i] = data_key
            conn.execute(insert(table).values(id=i, kid=wrapped.kid, wrapped=wrapped.blob))
        conn.execute(insert(table).values(id=7, kid=None, wrapped=None))  # a destroyed key
        conn.execute(insert(table).values(id=8, kid=first, wrapped=b"\x00" * 60))  # one that does not unwrap
    spec = WrappedKeyColumns(table)
    assert count_by_kek(engine, spec) == {first: 8}

    second = add_key_to_file(kek_path)
    unreadable: list[tuple] = []
    with Progress("keys rotate", unit="data keys", enabled=False) as progress:
        done = rewrap_table(sessionmaker(engine, class_=Session), spec, ring, batch=3, progress=progress,
                            unreadable=unreadable)
    assert done == 7 and unreadable == [(8,)] and progress.done == 8
    assert count_by_kek(engine, table) == {second: 7, first: 1}
    with engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(select(table))}
    for i, data_key in keys.items():
        assert rows[i].kid == second
        assert ring.unwrap(WrappedKey(rows[i].kid, rows[i].wrapped)) == data_key
    assert rows[7].kid is None
    assert rewrap_table(sessionmaker(engine, class_=Session), spec, ring, unreadable=[]) == 0
