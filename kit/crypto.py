"""Field encryption: AES-256-GCM with a data key per record, wrapped by a key-encryption key kept outside the
database; and keyed blind indexes for finding records without decrypting them.

A data key is wrapped with the KEK whose id is stored beside it, so `rotate` can re-wrap every data key with a
new KEK while the system runs. Associated data binds each ciphertext to its table, column and row, so a
ciphertext copied to another row or field does not decrypt. Destroying a record's wrapped data key makes every
ciphertext under it unrecoverable (crypto-shredding), even for someone who holds the KEK.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

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
    """The key-encryption keys, by id; one of them is active for wrapping new data keys."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError("the active key id is not in the keyring")
        for kid, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid} is not 256 bits")
        self._keys = keys
        self.active = active

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        doc = json.loads(path.read_text())
        return cls({kid: base64.b64decode(v) for kid, v in doc["keys"].items()}, doc["active"])

    def wrap(self, data_key: bytes) -> WrappedKey:
        return WrappedKey(self.active, seal(self._keys[self.active], data_key, _WRAP_AAD))

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        key = self._keys.get(wrapped.kid)
        if key is None:
            raise DecryptionError(f"unknown key-encryption key {wrapped.kid}")
        return open_sealed(key, wrapped.blob, _WRAP_AAD)

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        """The same data key under the active KEK (for rotation)."""
        if wrapped.kid == self.active:
            return wrapped
        return self.wrap(self.unwrap(wrapped))

    def derive(self, purpose: str, kid: str | None = None) -> bytes:
        """A key for one purpose (e.g. sealing stored idempotent responses), derived from a KEK (the active one)."""
        return HKDF(SHA256(), 32, salt=None, info=f"rehab:{purpose}".encode()).derive(self._keys[kid or self.active])

    def derived_keys(self, purpose: str) -> list[bytes]:
        """The purpose's key under every KEK, the active one first: what was sealed before a rotation still opens."""
        return [self.derive(purpose, self.active)] + [self.derive(purpose, k) for k in self._keys if k != self.active]


def add_key_to_file(path: Path) -> str:
    """Add a fresh KEK to the keyring file and make it active; old keys stay so existing wraps still open."""
    doc = json.loads(path.read_text())
    n = 1 + max(int(k.lstrip("k") or 0) for k in doc["keys"] if k.lstrip("k").isdigit()) if doc["keys"] else 1
    kid = f"k{n}"
    doc["keys"][kid] = base64.b64encode(os.urandom(32)).decode()
    doc["active"] = kid
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)
    return kid


class BlindIndex:
    """Keyed HMAC-SHA256 of normalised values, truncated so that each value also matches a few unrelated records.

    CipherSweet's rule: with N records, keep 2 <= coincidences < sqrt(N). 32 bits stay safe up to billions of
    records for names combined with a date of birth, while leaving no plain hash to reverse.
    """

    def __init__(self, key: bytes, *, bits: int = 32) -> None:
        if len(key) < 32:
            raise ValueError("blind index key must be at least 256 bits")
        self._key = key
        self.bits = bits

    def term(self, domain: str, value: str) -> str:
        mac = hmac.new(self._key, f"{domain}\x00{value}".encode(), hashlib.sha256).digest()
        return mac[: self.bits // 8].hex()
