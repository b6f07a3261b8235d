"""Field encryption: AES-256-GCM with a data key per record, wrapped by a key-encryption key kept outside the
database; and keyed blind indexes for finding records without decrypting them.

A data key is wrapped with the KEK whose id is stored beside it, so `rehab keys rotate` can re-wrap every data key
of every service (`rewrap_table` over each service's `WRAPPED_KEYS`) with a new KEK while the system runs, and
`rehab keys retire` can then drop the old KEK once `count_by_kek` finds nothing under it. Associated data binds each ciphertext to its table, column and row, so a
ciphertext copied to another row or field does not decrypt. Destroying a record's wrapped data key makes every
ciphertext under it unrecoverable (crypto-shredding), even for someone who holds the KEK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, Table, func, select, tuple_, update
from sqlalchemy.orm import Session

from kit.db import transaction

NONCE_BYTES = 12
_WRAP_AAD = b"rehab:data-key:v1"


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong key, wrong row or field, or tampered."""


def aad(table: str, column: str, row_id: str) -> bytes:
    return f"{table}|{column}|{row_id}".encode()


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def open_sealed(key: bytes, blob: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("ciphertext does not authenticate") from exc


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@dataclass(frozen=True)
class WrappedKey:
    kid: str
    blob: bytes


class Keyring:
    """The key-encryption keys, by id; one of them is active for wrapping new data keys.

    `Keyring.from_file(path)` is the one every process holds (`runtime.keyring`, the `keys` commands): it looks at
    the file's (mtime, size, inode) stamp on each use (one `stat`) and reads the file again when it changed, so a
    KEK added by `rehab keys rotate` is used, and a retired one forgotten, without a restart.
    """

    def __init__(self, keys: dict[str, bytes], active: str, *, path: Path | None = None) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._derived: dict[str, tuple[object, list[bytes]]] = {}
        self._state = self._checked(keys, active)

    @staticmethod
    def _checked(keys: dict[str, bytes], active: str) -> tuple[dict[str, bytes], str]:
        if active not in keys:
            raise ValueError("the active key id is not in the keyring")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid} is not 256 bits")
        return dict(keys), active

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        ring = cls.__new__(cls)
        ring.path = Path(path)
        ring._derived = {}
        ring._reload()
        return ring

    # ---- the file, read again when it changes --------------------------------------------------------------------

    def _reload(self) -> None:
        assert self.path is not None
        stamp = _file_stamp(self.path)
        keys, active = _read_keyring_file(self.path)
        self._state = self._checked(keys, active)  # one assignment: a reader sees the old state or the new one
        self._stamp = stamp

    def _current(self) -> tuple[dict[str, bytes], str]:
        if self.path is not None:
            try:
                changed = _file_stamp(self.path) != self._stamp
            except FileNotFoundError:  # between a writer's unlink and rename: keep what we have
                changed = False
            if changed:
                self._reload()
        return self._state

    @property
    def active(self) -> str:
        return self._current()[1]

    @property
    def kids(self) -> list[str]:
        """Every KEK id, the active one first."""
        keys, active = self._current()
        return [active, *sorted(k for k in keys if k != active)]

    # ---- data keys -----------------------------------------------------------------------------------------------

    def wrap(self, data_key: bytes) -> WrappedKey:
        keys, active = self._current()
        return WrappedKey(active, seal(keys[active], data_key, _WRAP_AAD))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        keys, _ = self._current()
        key = keys.get(wrapped.kid)
        if key is None and self.path is not None:
            self._reload()  # a KEK added a moment ago, within the file's timestamp granularity: one fresh look
            key = self._state[0].get(wrapped.kid)
        if key is None:
            raise DecryptionError(f"unknown key-encryption key {wrapped.kid}")
        return open_sealed(key, wrapped.blob, _WRAP_AAD)

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """The same data key under the active KEK (for rotation)."""
        if wrapped.kid == self.active:
            return wrapped
        return self.wrap(self.unwrap(wrapped))

    def new_wrapped_data_key(self) -> tuple[bytes, WrappedKey]:
        """A fresh data key, and it wrapped under the active KEK (to store beside what it seals)."""
        data_key = new_data_key()
        return data_key, self.wrap(data_key)

    def derive(self, purpose: str, kid: str | None = None) -> bytes:
        """A key for one purpose (e.g. sealing stored idempotent responses), derived from a KEK (the active one)."""
        keys, active = self._current()
        return HKDF(SHA256(), 32, salt=None, info=f"rehab:{purpose}".encode()).derive(keys[kid or active])

    def derived_keys(self, purpose: str) -> list[bytes]:
        """The purpose's key under every KEK, the active one first: what was sealed before a rotation still opens.

        Asked on every request (stored idempotent answers), so remembered per keyring state: a rotation or a
        retirement picked up from the file gives new keys at once, without a restart."""
        state = self._current()
        cached = self._derived.get(purpose)
        if cached is None or cached[0] is not state:
            cached = (state, [self.derive(purpose, kid) for kid in self.kids])
            self._derived[purpose] = cached
        return cached[1]


def _file_stamp(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def _read_keyring_file(path: Path) -> tuple[dict[str, bytes], str]:
    doc = json.loads(Path(path).read_text())
    return {kid: base64.b64decode(v) for kid, v in doc["keys"].items()}, doc["active"]


def _write_keyring_file(path: Path, doc: dict) -> None:
    """Written aside, then renamed over the file: a process reading it sees the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_key_to_file(path: Path) -> str:
    """Add a fresh KEK to the keyring file and make it active; old keys stay so existing wraps still open."""
    doc = json.loads(path.read_text())
    n = 1 + max((int(k[1:]) for k in doc["keys"] if k[:1] == "k" and k[1:].isdigit()), default=0)
    kid = f"k{n}"
    doc["keys"][kid] = base64.b64encode(os.urandom(32)).decode()
    doc["active"] = kid
    _write_keyring_file(path, doc)
    return kid


def remove_key_from_file(path: Path, kid: str) -> None:
    """Take a KEK out of the keyring file (`rehab keys retire`, once no data key of any service uses it). Never the
    active one. What it wrapped no longer opens, anywhere: the caller checks that nothing is."""
    doc = json.loads(path.read_text())
    if kid == doc["active"]:
        raise ValueError(f"{kid} is the active key-encryption key")
    if kid not in doc["keys"]:
        raise KeyError(kid)
    del doc["keys"][kid]
    _write_keyring_file(path, doc)


# ---- the tables that hold wrapped data keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class WrappedKeyColumns:
    """Where a service stores wrapped data keys: a table, the column of the KEK id and the column of the wrapped
    key (nullable ones are fine: a destroyed key is NULL in both). Each service lists its own in `WRAPPED_KEYS`."""

    table: Table
    kid_column: str = "kid"
    blob_column: str = "wrapped"
    stamped_column: str | None = None  # set to the time of re-wrapping, when the table has one

    @property
    def label(self) -> str:
        return f"{self.table.name}.{self.blob_column}"


def count_by_kek(connection: Connection | Session | Engine, table: Table | WrappedKeyColumns, *,
                 kid_column: str = "kid") -> dict[str, int]:
    """How many data keys each KEK wraps in one table (destroyed keys, NULL, are not counted)."""
    if isinstance(table, WrappedKeyColumns):
        table, kid_column = table.table, table.kid_column
    kid = table.c[kid_column]
    query = select(kid, func.count()).where(kid.is_not(None)).group_by(kid)
    if isinstance(connection, Engine):
        with connection.connect() as conn:
            rows = conn.execute(query).all()
    else:
        rows = connection.execute(query).all()
    return {k: n for k, n in rows}


def rewrap_table(session_factory: Callable[[], Session], table: Table | WrappedKeyColumns, keyring: Keyring, *,
                 kid_column: str = "kid", blob_column: str = "wrapped", key_columns: list[str] | None = None,
                 stamped_column: str | None = None, batch: int = 500, progress: Any = None,
                 unreadable: list[tuple] | None = None) -> int:
    """Re-wrap under the active KEK every data key of `table` wrapped by another, online: a transaction per `batch`
    rows in key order, each row written only if it is still the one read (a key destroyed meanwhile stays
    destroyed). The data keys, and so every ciphertext, stay as they are. Passes repeat until one finds nothing
    left (a process that wrapped a key under the old KEK while the file changed). Rows whose key does not unwrap
    are left as they are, their keys appended to `unreadable`. `progress`: a kit.progress.Progress. The number
    re-wrapped."""
    if isinstance(table, WrappedKeyColumns):
        table, kid_column, blob_column, stamped_column = (table.table, table.kid_column, table.blob_column,
                                                         table.stamped_column)
    keys = [table.c[name] for name in (key_columns or [c.name for c in table.primary_key.columns])]
    kid, blob = table.c[kid_column], table.c[blob_column]
    row_key = keys[0] if len(keys) == 1 else tuple_(*keys)
    skipped: set[tuple] = set()
    total = 0
    while True:
        done, after = 0, None
        while True:
            with transaction(session_factory) as session:
                query = (select(*keys, kid, blob)
                         .where(kid.is_not(None), blob.is_not(None), kid != keyring.active)
                         .order_by(*keys).limit(batch))
                if after is not None:
                    query = query.where(row_key > (after[0] if len(keys) == 1 else tuple_(*after)))
                rows = session.execute(query).all()
                fresh = 0
                for row in rows:
                    ident = tuple(row[: len(keys)])
                    if ident in skipped:
                        continue
                    fresh += 1
                    try:
                        again = keyring.rewrap(WrappedKey(row[len(keys)], row[len(keys) + 1]))
                    except DecryptionError:
                        skipped.add(ident)
                        if unreadable is not None:
                            unreadable.append(ident)
                        continue
                    values: dict[str, Any] = {kid_column: again.kid, blob_column: again.blob}
                    if stamped_column:
                        values[stamped_column] = datetime.now(UTC)
                    done += session.execute(
                        update(table)
                        .where(*(c == v for c, v in zip(keys, ident, strict=True)),
                               kid == row[len(keys)], blob == row[len(keys) + 1])
                        .values(**values)
                    ).rowcount
            if progress is not None and fresh:
                progress.advance(fresh)
            if len(rows) < batch:
                break
            after = tuple(rows[-1][: len(keys)])
        total += done
        if done == 0:
            return total



class BlindIndex:
    """Keyed HMAC-SHA256 of normalised values, truncated so that each value also matches a few unrelated records.

    CipherSweet's rule: with N records, keep 2 <= coincidences < sqrt(N). 32 bits stay safe up to billions of
    records for names combined with a date of birth, while leaving no plain hash to reverse.
    """

    def __init__(self, key: bytes | Callable[[], bytes], *, bits: int = 32) -> None:
        if not callable(key) and len(key) < 32:
            raise ValueError("blind index key must be at least 256 bits")
        # A function when the key is in a sealable custody (kit.custody): asked for on each use, never kept here.
        self._key_source = key if callable(key) else (lambda: key)
        self.bits = bits

    def term(self, domain: str, value: str) -> str:
        mac = hmac.new(self._key_source(), f"{domain}\x00{value}".encode(), hashlib.sha256).digest()
        return mac[: self.bits // 8].hex()
