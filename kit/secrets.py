"""The secrets the system needs, created once under the state folder, owner-only, never overwritten."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit import nats_auth

KEK_FILE = "kek.json"
BLIND_INDEX_KEY_FILE = "blind_index.key"
AUDIT_KEY_FILE = "audit.key"
TOKEN_PRIVATE_KEY_FILE = "token_signing.pem"
TOKEN_PUBLIC_KEY_FILE = "token_signing.pub.pem"
# One NATS nkey seed per process that connects to NATS (and one for the operator), each read by its owner only.
NATS_SEED_FILES = {user: nats_auth.seed_file_name(user) for user in nats_auth.USERS}
# One Ed25519 key per process that keeps an audit trail, signing its checkpoints (kit.checkpoints); never the token
# key. The public half beside it, for whoever verifies offline (`rehab audit verify`).
AUDIT_SIGNING_KEY_FILES = {process: f"audit_signing_{process}.pem" for process in nats_auth.PROCESSES}
AUDIT_VERIFYING_KEY_FILES = {process: f"audit_signing_{process}.pub.pem" for process in nats_auth.PROCESSES}


def _write_new(path: Path, content: bytes) -> bool:
    """Write a file with mode 0600 only if it does not exist yet; True when written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    return True


def new_kek_document() -> bytes:
    kid = "k1"
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return json.dumps({"active": kid, "keys": {kid: key}}, indent=2).encode()


def ensure_secrets(directory: Path) -> list[str]:
    """Create every missing secret in `directory`; return the names of the files created."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created: list[str] = []
    if _write_new(directory / KEK_FILE, new_kek_document()):
        created.append(KEK_FILE)
    for name in (BLIND_INDEX_KEY_FILE, AUDIT_KEY_FILE):
        if _write_new(directory / name, base64.b64encode(secrets.token_bytes(32))):
            created.append(name)
    created += _ensure_ed25519(directory, TOKEN_PRIVATE_KEY_FILE, TOKEN_PUBLIC_KEY_FILE)
    for process, name in AUDIT_SIGNING_KEY_FILES.items():
        created += _ensure_ed25519(directory, name, AUDIT_VERIFYING_KEY_FILES[process])
    for name in NATS_SEED_FILES.values():
        if _write_new(directory / name, nats_auth.new_seed()):
            created.append(name)
    return created


def _ensure_ed25519(directory: Path, private_name: str, public_name: str) -> list[str]:
    """An Ed25519 key pair (PKCS#8 and SubjectPublicKeyInfo PEM), each file made only when missing."""
    created = []
    private_path = directory / private_name
    if not private_path.exists():
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if _write_new(private_path, pem):
            created.append(private_name)
    public_path = directory / public_name
    if not public_path.exists():
        private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        pub = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if _write_new(public_path, pub):
            created.append(public_name)
    return created


def read_key_file(path: Path) -> bytes:
    """A base64 key file as raw bytes."""
    return base64.b64decode(path.read_bytes().strip())
