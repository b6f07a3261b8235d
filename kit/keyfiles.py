"""The keyring files of kit.custody, readable without the rest of the kit (the supervisor imports this, and stays
small): names, and keys.sealed — a keyring document encrypted under an unseal passphrase with Argon2id (memory-hard,
so a copied disk does not give in to a guessing rig) and AES-256-GCM."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_FILE = "kek.json"
BLIND_INDEX_KEY_FILE = "blind_index.key"
AUDIT_KEY_FILE = "audit.key"
SEALED_KEYS_FILE = "keys.sealed"
TRANSIT_KEYS_FILE = "keys.transit"

# Argon2id at RFC 9106's second recommended setting (64 MiB, 3 passes): about a quarter of a second here, paid once
# per start or unseal, and the same for every guess an attacker with the file makes.
ARGON2_TIME, ARGON2_MEMORY_KIB, ARGON2_LANES = 3, 64 * 1024, 4
_SEALED_AAD = b"rehab:keys.sealed:v1"


class WrongPassphrase(Exception):
    """The unseal passphrase does not open keys.sealed."""


def unlock_key(passphrase: str, salt: bytes, *, time_cost: int = ARGON2_TIME, memory_kib: int = ARGON2_MEMORY_KIB,
               lanes: int = ARGON2_LANES) -> bytes:
    return hash_secret_raw(passphrase.encode(), salt, time_cost=time_cost, memory_cost=memory_kib,
                           parallelism=lanes, hash_len=32, type=Type.ID)


def write_sealed_file(path: Path, bundle: dict[str, Any], *, passphrase: str | None = None,
                      unlock: tuple[bytes, dict[str, Any]] | None = None) -> tuple[bytes, dict[str, Any]]:
    """Encrypt `bundle` (the keyring document and named secrets) to `path`, written aside then renamed. Either a
    passphrase (a new salt) or the key already derived with its KDF parameters (a rotation by a running process or
    `rehab keys rotate`). Returns the key and parameters, for the next write."""
    if unlock is None:
        assert passphrase is not None
        params = {"kdf": "argon2id", "salt": base64.b64encode(os.urandom(16)).decode(), "t": ARGON2_TIME,
                  "m": ARGON2_MEMORY_KIB, "p": ARGON2_LANES}
        key = _derive_for(passphrase, params)
    else:
        key, params = unlock
    plaintext = json.dumps(bundle).encode()
    nonce = os.urandom(12)
    sealed = nonce + AESGCM(key).encrypt(nonce, plaintext, _SEALED_AAD)
    doc = {**params, "ciphertext": base64.b64encode(sealed).decode()}
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    return key, params


def _derive_for(passphrase: str, params: dict[str, Any]) -> bytes:
    return unlock_key(passphrase, base64.b64decode(params["salt"]), time_cost=params["t"], memory_kib=params["m"],
                      lanes=params["p"])


def read_sealed_file(path: Path, *, passphrase: str | None = None,
                     unlock: tuple[bytes, dict[str, Any]] | None = None) -> tuple[dict[str, Any], tuple[bytes, dict]]:
    """The bundle in keys.sealed, and the derived key with its parameters. `WrongPassphrase` when it does not open."""
    doc = json.loads(path.read_text())
    params = {k: doc[k] for k in ("kdf", "salt", "t", "m", "p")}
    key = unlock[0] if unlock is not None and unlock[1] == params else _derive_for(passphrase or "", params)
    blob = base64.b64decode(doc["ciphertext"])
    try:
        plaintext = AESGCM(key).decrypt(blob[:12], blob[12:], _SEALED_AAD)
    except (InvalidTag, ValueError):
        raise WrongPassphrase("the passphrase does not open the keys") from None
    return json.loads(plaintext), (key, params)


def new_bundle(*, kek: bool, secret_names: dict[str, str]) -> dict[str, Any]:
    """A fresh keyring document: one KEK (when the process keeps any) and a random 256-bit key per named secret."""
    bundle: dict[str, Any] = {"secrets": {name: base64.b64encode(os.urandom(32)).decode() for name in secret_names}}
    if kek:
        bundle["kek"] = {"active": "k1", "keys": {"k1": base64.b64encode(os.urandom(32)).decode()}}
    return bundle


def change_passphrase(secrets_dir: Path, *, old: str, new: str) -> list[str]:
    """Every process's keys.sealed under `secrets_dir`, sealed again under `new` with a fresh salt; the processes
    changed. Each is first opened (all of them, before any is written): one that opens under `new` already is left
    as it is, so a change that stopped half-way is finished by running it again. `WrongPassphrase` naming a file
    neither opens."""
    opened: dict[str, dict[str, Any]] = {}
    # The gateway's last: the one a command checks a typed passphrase against (ops.passphrase), so a change that
    # stopped half-way is still run again with the old one.
    for path in sorted(secrets_dir.glob(f"*/{SEALED_KEYS_FILE}"), key=lambda path: (path.parent.name == "gateway",
                                                                                   path.parent.name)):
        try:
            opened[path.parent.name] = read_sealed_file(path, passphrase=old)[0]
        except WrongPassphrase:
            try:
                read_sealed_file(path, passphrase=new)
            except WrongPassphrase:
                raise WrongPassphrase(f"{path.parent.name}/{SEALED_KEYS_FILE} opens under neither passphrase: "
                                      "nothing was changed") from None
    for process, bundle in opened.items():
        write_sealed_file(secrets_dir / process / SEALED_KEYS_FILE, bundle, passphrase=new)
    return list(opened)
