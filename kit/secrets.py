"""The secrets the system needs, created once under the secrets folder, owner-only, never overwritten.

Each process has a folder of its own (SPEC §8: one keyring per service; in Kubernetes, one Secret each), and is
told only where that one is:

    secrets/intake/     kek.json, blind_index.key, audit.key   (or keys.sealed, or keys.transit: kit.custody)
                        audit_signing.pem (+ .pub.pem), nats.nk, token_signing.pub.pem
    secrets/referrals/  the same
    secrets/funds/      the same
    secrets/reports/    audit.key (or keys.sealed / keys.transit), audit_signing.pem (+ .pub.pem), nats.nk,
                        token_signing.pub.pem: no KEK, no blind-index key (it holds no data key)
    secrets/gateway/    audit.key (or keys.sealed / keys.transit), token_signing.pem (+ .pub.pem), audit_signing.pem,
                        nats.nk
    secrets/ops/        nats.nk (the operator's: `rehab audit verify`, `rehab seal`)

A folder from before (every key flat in secrets/, one KEK for all) is moved into this shape at the first start:
each service gets its own copy of the old KEK, blind-index and audit keys, so every record still opens, and
`rehab keys rotate` then `rehab keys retire` give each its own (README, "Keys").
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kit import nats_auth
from kit.keyfiles import (
    AUDIT_KEY_FILE,
    BLIND_INDEX_KEY_FILE,
    KEK_FILE,
    SEALED_KEYS_FILE,
    TRANSIT_KEYS_FILE,
    WrongPassphrase,
    new_bundle,
    read_sealed_file,
    write_sealed_file,
)

# Services that hold no data key and nothing to open with one (reports: anonymous counts only): no KEK and no
# blind-index key, an audit key like the gateway's.
KEYLESS_SERVICES: tuple[str, ...] = ("reports",)
# The processes with key-encryption keys of their own.
KEY_HOLDERS: tuple[str, ...] = tuple(s for s in nats_auth.SERVICES if s not in KEYLESS_SERVICES)
GATEWAY = "gateway"
# The named secrets each process keeps in its custody, and the file each is in under `file` custody.
SERVICE_SECRETS = {"blind_index": BLIND_INDEX_KEY_FILE, "audit": AUDIT_KEY_FILE}
GATEWAY_SECRETS = {"audit": AUDIT_KEY_FILE}
TOKEN_PRIVATE_KEY_FILE = f"{GATEWAY}/token_signing.pem"  # relative to the secrets folder
TOKEN_PUBLIC_KEY_FILE = "token_signing.pub.pem"  # in every process's folder: each checks tokens itself
# One NATS nkey seed per process that connects to NATS (and one for the operator), each in its owner's folder.
NATS_SEED_FILES = {user: nats_auth.seed_file_name(user) for user in nats_auth.USERS}
# One Ed25519 key per process that keeps an audit trail, signing its checkpoints (kit.checkpoints); never the token
# key. The public half beside it, for whoever verifies offline (`rehab audit verify`).
AUDIT_SIGNING_KEY_FILES = {process: f"{process}/audit_signing.pem" for process in nats_auth.PROCESSES}
AUDIT_VERIFYING_KEY_FILES = {process: f"{process}/audit_signing.pub.pem" for process in nats_auth.PROCESSES}
# In every process's folder: the public keys of who may sign a seal or unseal command (kit.control), user by key.
CONTROL_SIGNERS_FILE = "control_signers.json"
CONTROL_SIGNERS = (nats_auth.OPERATOR, "gateway")


def secret_names(process: str) -> dict[str, str]:
    return GATEWAY_SECRETS if process == GATEWAY or process in KEYLESS_SERVICES else SERVICE_SECRETS


def keeps_keks(process: str) -> bool:
    return process in KEY_HOLDERS


def write_new(path: Path, content: bytes) -> bool:
    """Write a file with mode 0600 only if it does not exist yet; True when written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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


def ensure_secrets(directory: Path, *, custody: str = "file", passphrase: str | None = None,
                   transit: Callable[[str], Any] | None = None) -> list[str]:
    """Create every missing secret in `directory` (each process's folder); the paths created, relative to it.

    `custody` says how the keyrings are kept (kit.custody): `file` writes kek.json, blind_index.key and audit.key;
    `sealed` writes one keys.sealed per process under `passphrase` (none without it); `openbao` writes one
    keys.transit per process through `transit(process)`, that process's Transit client (without it, each process
    makes its own at its first start, where its folder is writable)."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created = _move_flat_layout(directory)
    _refuse_a_custody_change(directory, custody)
    for process in nats_auth.PROCESSES:
        own = directory / process
        own.mkdir(mode=0o700, exist_ok=True)
        created += _ensure_keyring(own, process, custody, passphrase)
        if custody == "openbao" and transit is not None:
            from kit.custody import ensure_transit_document  # only here: it needs httpx and the Transit client

            from kit.errors import KeysUnavailable

            try:
                if ensure_transit_document(transit(process), own / TRANSIT_KEYS_FILE, secret_names(process)):
                    created.append(f"{process}/{TRANSIT_KEYS_FILE}")
            except KeysUnavailable:
                # The gateway and reports hold no data key: a deployment may leave them on `file` custody with no
                # Transit key of their own (deploy/k8s/overlays/openbao). Where one runs under openbao, it makes its
                # file at start.
                if process != GATEWAY and process not in KEYLESS_SERVICES:
                    raise
    # The Ed25519 signing keys: in files, unless a sealed keyring holds them (only their public halves are files).
    sealed = {process for process in nats_auth.PROCESSES if (directory / process / SEALED_KEYS_FILE).exists()}
    if custody == "sealed" and GATEWAY not in sealed:
        return created  # nothing more until the passphrase is given: no private key is ever written in clear
    if GATEWAY not in sealed:
        created += _ensure_ed25519(directory, TOKEN_PRIVATE_KEY_FILE, f"{GATEWAY}/{TOKEN_PUBLIC_KEY_FILE}")
    public = (directory / GATEWAY / TOKEN_PUBLIC_KEY_FILE).read_bytes()
    for process in nats_auth.SERVICES:  # every service checks tokens itself
        if write_new(directory / process / TOKEN_PUBLIC_KEY_FILE, public):
            created.append(f"{process}/{TOKEN_PUBLIC_KEY_FILE}")
    for process, name in AUDIT_SIGNING_KEY_FILES.items():
        if process not in sealed:
            created += _ensure_ed25519(directory, name, AUDIT_VERIFYING_KEY_FILES[process])
    for name in NATS_SEED_FILES.values():
        if write_new(directory / name, nats_auth.new_seed()):
            created.append(name)
    _write_control_signers(directory)
    return created


class CustodyChanged(Exception):
    """Keys of one custody lie in the folder, and another was asked for: new keys would open none of the records."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _refuse_a_custody_change(directory: Path, custody: str) -> None:
    """An installation made under `file` custody, started under `sealed` or `openbao`, would get a new keyring beside
    the plain one: every record, second factor and audit signature made before unreadable, and the plain keys left
    on the disk all the same (an outside review's find). Refused before anything is made, saying what to do."""
    if custody == "file":
        return
    if custody == "sealed":
        # Under `sealed` no key lies in clear: a move to it that stopped half-way (`move_to_sealed`) left some, and
        # started so, the processes not yet sealed would get new keys (an outside review's find).
        left = [str(path.relative_to(directory)) for process in nats_auth.PROCESSES
                for path in _plain_keys(directory, process)[1]]
        moved = [process for process in nats_auth.PROCESSES if (directory / process / SEALED_KEYS_FILE).exists()]
        if left and moved:
            raise CustodyChanged(
                f"a move of this installation's keys to `sealed` custody stopped half-way: {', '.join(left)} still "
                f"lie in clear. Run `rehab keys move-to-sealed` again, with the same passphrase, before starting it.")
    plain = [f"{process}/{KEK_FILE}" for process in nats_auth.PROCESSES if (directory / process / KEK_FILE).exists()]
    own_file = SEALED_KEYS_FILE if custody == "sealed" else TRANSIT_KEYS_FILE
    unmade = [process for process in KEY_HOLDERS if not (directory / process / own_file).exists()]
    if plain and unmade:
        raise CustodyChanged(
            f"this installation's keys lie in plain files ({', '.join(plain)}): custody `file`. Started under "
            f"`{custody}` it would make new keys that open none of its records. Start it with REHAB_KEY_CUSTODY=file"
            + ("; or, the system stopped, seal these keys first: `rehab keys move-to-sealed`." if custody == "sealed"
               else "; this release cannot move an installation's keys into OpenBao (choose the custody before the "
                    "first start)."))


class KeysNotMoved(Exception):
    """`move_to_sealed` refused, before any plain file was removed."""


def move_to_sealed(directory: Path, passphrase: str) -> list[str]:
    """An installation made under `file` custody, moved to `sealed` (with the system stopped): each process's keys
    that lie in plain files (its KEKs, named secrets and private signing keys) are sealed in its keys.sealed under
    `passphrase` and read back, and only once every process's opens with the same keys are the plain files removed;
    the files removed, relative to `directory`. The keys themselves stay: every record, second factor and audit
    signature made before opens as it did. A move that stopped half-way is finished by running it again with the
    same passphrase; a keys.sealed that opens under another, or holds other keys, stops it (KeysNotMoved)."""
    _move_flat_layout(directory)  # an installation from before one keyring per process: into its folders first
    moving: dict[str, tuple[dict[str, Any], list[Path]]] = {}
    for process in nats_auth.PROCESSES:
        plain, files = _plain_keys(directory, process)
        sealed_path = directory / process / SEALED_KEYS_FILE
        if not files:
            continue
        if sealed_path.exists():  # an earlier run's: it must hold what the files still hold
            try:
                earlier = read_sealed_file(sealed_path, passphrase=passphrase)[0]
            except WrongPassphrase:
                raise KeysNotMoved(f"{process}/{SEALED_KEYS_FILE}, made by an earlier run, does not open under this "
                                   f"passphrase: run it again with that one. Nothing was removed.") from None
            if not _holds(earlier, plain):
                raise KeysNotMoved(f"{process}/{SEALED_KEYS_FILE} holds other keys than {process}'s plain files: "
                                   "nothing was removed; look into it before going on.")
        elif missing := _missing_plain(process, plain):
            raise KeysNotMoved(f"{process} lacks {', '.join(missing)} among its plain keys: nothing was moved.")
        moving[process] = (plain, files)
    # The gateway's last: the one whose keys.sealed a later command checks the passphrase against (ops.passphrase).
    for process in sorted(moving, key=lambda name: (name == GATEWAY, name)):
        sealed_path = directory / process / SEALED_KEYS_FILE
        if not sealed_path.exists():
            write_sealed_file(sealed_path, moving[process][0], passphrase=passphrase)
        if not _holds(read_sealed_file(sealed_path, passphrase=passphrase)[0], moving[process][0]):
            raise KeysNotMoved(f"{process}/{SEALED_KEYS_FILE} did not read back as written: nothing was removed.")
    removed = []
    for process, (_, files) in moving.items():
        for file in files:
            file.unlink()
            removed.append(str(file.relative_to(directory)))
    return removed


def _plain_keys(directory: Path, process: str) -> tuple[dict[str, Any], list[Path]]:
    """What a process's plain key files hold, as a keys.sealed bundle holds it, and those files."""
    own = directory / process
    bundle: dict[str, Any] = {"secrets": {}}
    files: list[Path] = []
    if keeps_keks(process) and (own / KEK_FILE).is_file():
        document = json.loads((own / KEK_FILE).read_text())
        bundle["kek"] = {"active": document["active"], "keys": document["keys"]}
        files.append(own / KEK_FILE)
    for name, file in secret_names(process).items():
        if (own / file).is_file():
            bundle["secrets"][name] = base64.b64encode(read_key_file(own / file)).decode()
            files.append(own / file)
    private = {"audit_signing": directory / AUDIT_SIGNING_KEY_FILES[process]}
    if process == GATEWAY:
        private["token_signing"] = directory / TOKEN_PRIVATE_KEY_FILE
    for name, path in private.items():
        if path.is_file():
            bundle["secrets"][name] = base64.b64encode(path.read_bytes()).decode()
            files.append(path)
    return bundle, files


def _missing_plain(process: str, bundle: dict[str, Any]) -> list[str]:
    wanted = [*secret_names(process), "audit_signing", *(["token_signing"] if process == GATEWAY else [])]
    missing = [name for name in wanted if name not in bundle["secrets"]]
    return missing + (["kek"] if keeps_keks(process) and "kek" not in bundle else [])


def _holds(sealed: dict[str, Any], plain: dict[str, Any]) -> bool:
    """Whether a keys.sealed bundle holds every key the plain files (still) hold, the same."""
    if "kek" in plain and sealed.get("kek") != plain["kek"]:
        return False
    return all(sealed.get("secrets", {}).get(name) == value for name, value in plain["secrets"].items())


def _write_control_signers(directory: Path) -> None:
    """Public keys only, written again at each start: a replaced operator seed is taken up by the next start."""
    signers = {nats_auth.public_key((directory / NATS_SEED_FILES[user]).read_bytes()): user
               for user in CONTROL_SIGNERS}
    content = json.dumps(signers, indent=2).encode()
    for process in nats_auth.PROCESSES:
        path = directory / process / CONTROL_SIGNERS_FILE
        if not path.is_file() or path.read_bytes() != content:
            tmp = path.with_name(f".{CONTROL_SIGNERS_FILE}.new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(tmp, path)


def _ensure_keyring(own: Path, process: str, custody: str, passphrase: str | None) -> list[str]:
    names = secret_names(process)
    if custody == "openbao" or (own / TRANSIT_KEYS_FILE).exists():
        return []
    if custody == "sealed" or (own / SEALED_KEYS_FILE).exists():
        if (own / SEALED_KEYS_FILE).exists():
            return []
        if passphrase is None:  # made by whoever has the passphrase (`rehab up` asks for it)
            return []
        bundle = new_bundle(kek=keeps_keks(process), secret_names=names)
        made = [f"{process}/{SEALED_KEYS_FILE}"]
        # Its Ed25519 keys go in with the rest; only the public halves are files (`rehab audit verify`, the services'
        # token checks read them).
        pairs = [("audit_signing", "audit_signing.pub.pem")]
        if process == GATEWAY:
            pairs.append(("token_signing", TOKEN_PUBLIC_KEY_FILE))
        for secret, public_name in pairs:
            private, public = _new_ed25519()
            bundle["secrets"][secret] = base64.b64encode(private).decode()
            if write_new(own / public_name, public):
                made.append(f"{process}/{public_name}")
        write_sealed_file(own / SEALED_KEYS_FILE, bundle, passphrase=passphrase)
        return made
    created = []
    if keeps_keks(process) and write_new(own / KEK_FILE, new_kek_document()):
        created.append(f"{process}/{KEK_FILE}")
    for file in names.values():
        if write_new(own / file, base64.b64encode(secrets.token_bytes(32))):
            created.append(f"{process}/{file}")
    return created


# The flat layout of earlier releases: one of each, shared by every process.
_FLAT_SHARED = (KEK_FILE, BLIND_INDEX_KEY_FILE, AUDIT_KEY_FILE, "token_signing.pub.pem")


def _move_flat_layout(directory: Path) -> list[str]:
    """Keys of an earlier release, flat in the secrets folder, into each process's folder (see the module's text)."""
    moved: list[str] = []
    for user in nats_auth.USERS:
        _move(directory / f"nats-{user}.nk", directory / NATS_SEED_FILES[user], moved, directory)
    for process in nats_auth.PROCESSES:
        _move(directory / f"audit_signing_{process}.pem", directory / AUDIT_SIGNING_KEY_FILES[process], moved, directory)
        _move(directory / f"audit_signing_{process}.pub.pem", directory / AUDIT_VERIFYING_KEY_FILES[process], moved,
              directory)
    _move(directory / "token_signing.pem", directory / TOKEN_PRIVATE_KEY_FILE, moved, directory)
    for name in _FLAT_SHARED:
        old = directory / name
        if not old.is_file():
            continue
        for process in nats_auth.PROCESSES:
            wanted = name in (AUDIT_KEY_FILE, TOKEN_PUBLIC_KEY_FILE) or keeps_keks(process)
            target = directory / process / name
            if wanted and not target.exists():
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                shutil.copy2(old, target)
                os.chmod(target, 0o600)
                moved.append(f"{process}/{name}")
        old.unlink()
    return moved


def _move(old: Path, new: Path, moved: list[str], directory: Path) -> None:
    if old.is_file() and not new.exists():
        new.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(old, new)
        moved.append(str(new.relative_to(directory)))


def _new_ed25519() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as PEM: PKCS#8, SubjectPublicKeyInfo."""
    private = Ed25519PrivateKey.generate()
    return (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()),
            private.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def _ensure_ed25519(directory: Path, private_name: str, public_name: str) -> list[str]:
    """An Ed25519 key pair (PKCS#8 and SubjectPublicKeyInfo PEM), each file made only when missing."""
    created = []
    private_path = directory / private_name
    if not private_path.exists():
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if write_new(private_path, pem):
            created.append(private_name)
    public_path = directory / public_name
    if not public_path.exists():
        private_key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        pub = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if write_new(public_path, pub):
            created.append(public_name)
    return created


def read_key_file(path: Path) -> bytes:
    """A base64 key file as raw bytes."""
    return base64.b64decode(path.read_bytes().strip())
