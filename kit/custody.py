"""Where a process's keys are kept (SPEC §8), three ways behind one object, `runtime.custody`.

Every process has a keyring of its own under `<secrets>/<process>/`: its key-encryption keys (KEKs; the gateway has
none), its blind-index key, its audit-chain key. How they are kept is `REHAB_KEY_CUSTODY`:

- `file`: in plain files (kek.json, blind_index.key, audit.key). Development only; every start says so.
- `sealed`: one file, keys.sealed, encrypted under an unseal passphrase with Argon2id (memory-hard, so a copied disk
  does not give in to a guessing rig) and AES-256-GCM. The passphrase reaches the process through an inherited pipe
  (`REHAB_UNSEAL_FD`, from `rehab up`) or a file named by `UNSEAL_PASSPHRASE_FILE` (a mounted Secret), never its
  environment or arguments. While unsealed the process holds the key derived from it, to read keys.sealed again after
  `rehab keys rotate` without asking anyone.
- `openbao`: every data key is wrapped by an OpenBao Transit key (kit.openbao); the KEK never leaves OpenBao. The
  process's other keys sit in keys.transit, encrypted by the same Transit key.

`seal()` forgets every key in memory at once (a raid, a coerced operator: kit.control); from then on whatever needs a
key raises `kit.errors.Sealed` (503 problem `/sealed`) until `unseal()` loads them again, without a restart.
"""

from __future__ import annotations

import base64
import json
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kit import errors
from kit.crypto import Keyring, WrappedKey, add_key_to_file, remove_key_from_file
from kit.keyfiles import (
    SEALED_KEYS_FILE,
    TRANSIT_KEYS_FILE,
    WrongPassphrase,
    read_sealed_file,
    write_sealed_file,
)

CustodyKind = Literal["file", "sealed", "openbao"]
# In a sealed or transit bundle, the PEM of the audit checkpoints' signing key (kit.checkpoints) and, the gateway's,
# of the token signing key: kept with the other keys, not in files beside them.
SIGNING_SECRET = "audit_signing"
TOKEN_SECRET = "token_signing"


# ---- what a process holds while unsealed ----------------------------------------------------------------------------


@dataclass
class HeldKeys:
    """A process's keys in memory: its KEKs as a keyring (none for the gateway), and its named secrets."""

    keyring: Any | None  # kit.crypto.Keyring or kit.openbao.TransitKeyring
    secrets: dict[str, bytes] = field(default_factory=dict)
    signing_pem: bytes | None = None  # the audit checkpoints' Ed25519 key (kit.checkpoints), when there is one

    def forget(self) -> None:
        for step in ("forget", "close"):  # close: a Transit keyring's refill thread ends with it
            method = getattr(self.keyring, step, None)
            if method is not None:
                method()
        self.keyring = None
        self.secrets.clear()
        self.signing_pem = None


class Custody:
    """One process's keys, sealable. It stands where a `kit.crypto.Keyring` stood (wrap, unwrap, derive, …), and
    gives the other secrets by name (`secret("blind_index")`); all of them raise `Sealed` while sealed."""

    def __init__(self, kind: CustodyKind, load: Callable[[], HeldKeys], *, process: str = "") -> None:
        self.kind = kind
        self.process = process
        self._load = load
        self._lock = threading.Lock()
        self._held: HeldKeys | None = None
        self.passphrases: PassphraseSource | None = None  # sealed custody: where unseal passphrases come from
        self._watchers: list[Callable[[Custody], Any]] = []

    # ---- sealing -----------------------------------------------------------------------------------------------

    @property
    def sealed(self) -> bool:
        return self._held is None

    def seal(self) -> None:
        """Forget every key now. Quick and never fails: a raid does not wait."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            held.forget()
        if self.passphrases is not None:
            self.passphrases.drop()  # one handed over before the seal must not undo it
        self._tell_watchers()

    def unseal(self) -> None:
        """Load the keys again from their custody; raises `Sealed` when they cannot be had (no passphrase yet)."""
        with self._lock:
            if self._held is not None:
                if self.passphrases is not None:
                    self.passphrases.drop()  # handed to a process that is open already: not kept for later
                return
            self._held = self._load()
        self._tell_watchers()

    def watch(self, watcher: Callable[[Custody], Any]) -> None:
        """Call `watcher(custody)` after every seal and unseal, and now: for what keeps a key object of its own
        (the audit checkpointer's signing key)."""
        self._watchers.append(watcher)
        watcher(self)

    def _tell_watchers(self) -> None:
        for watcher in self._watchers:
            watcher(self)

    def signing_key(self) -> Any:
        """The audit checkpoints' Ed25519 private key; None while sealed or when the process has none."""
        held = self._held
        if held is None or held.signing_pem is None:
            return None
        from cryptography.hazmat.primitives import serialization

        return serialization.load_pem_private_key(held.signing_pem, password=None)

    # ---- the keys ----------------------------------------------------------------------------------------------

    def _keys(self) -> HeldKeys:
        held = self._held
        if held is None:
            raise errors.Sealed()
        return held

    @property
    def keyring(self) -> Any:
        ring = self._keys().keyring
        if ring is None:
            raise KeyError(f"{self.process or 'this process'} keeps no key-encryption keys")
        return ring

    def secret(self, name: str) -> bytes:
        return self._keys().secrets[name]

    def secret_source(self, name: str) -> Callable[[], bytes]:
        """A function giving the secret on each call: what holds it keeps no copy that a seal would not reach."""
        return lambda: self.secret(name)

    # ---- KEKs: rotation and retirement (`rehab keys`) ------------------------------------------------------------

    def add_kek(self) -> str:
        """A new KEK, made active for wrapping; the old ones stay until retired. Its id."""
        ring = self.keyring
        if self.kind == "file":
            return add_key_to_file(ring.path)
        if self.kind == "sealed":
            return add_kek_to_sealed_file(ring.path, ring.unlocked)
        return ring.rotate()

    def remove_kek(self, kid: str) -> None:
        """Drop a KEK (never the active one): what it wrapped opens nowhere any more; the caller checked that
        nothing is."""
        ring = self.keyring
        if self.kind == "file":
            remove_key_from_file(ring.path, kid)
        elif self.kind == "sealed":
            remove_kek_from_sealed_file(ring.path, ring.unlocked, kid)
        else:
            ring.retire(kid)

    # The Keyring's surface, so that every caller of `runtime.keyring` keeps working unchanged.
    @property
    def active(self) -> str:
        return self.keyring.active

    @property
    def kids(self) -> list[str]:
        return self.keyring.kids

    def wrap(self, data_key: bytes) -> WrappedKey:
        return self.keyring.wrap(data_key)

    def unwrap(self, wrapped: WrappedKey) -> bytes:
        return self.keyring.unwrap(wrapped)

    def rewrap(self, wrapped: WrappedKey) -> WrappedKey:
        return self.keyring.rewrap(wrapped)

    def new_wrapped_data_key(self) -> tuple[bytes, WrappedKey]:
        return self.keyring.new_wrapped_data_key()

    def derive(self, purpose: str, kid: str | None = None) -> bytes:
        return self.keyring.derive(purpose, kid)

    def derived_keys(self, purpose: str) -> list[bytes]:
        return self.keyring.derived_keys(purpose)


# ---- file custody ---------------------------------------------------------------------------------------------------


def file_loader(kek_path: Path | None, secret_paths: dict[str, Path],
                signing_path: Path | None = None) -> Callable[[], HeldKeys]:
    def load() -> HeldKeys:
        try:
            ring = Keyring.from_file(kek_path) if kek_path is not None else None
            secrets = {name: _b64_file(path) for name, path in secret_paths.items()}
        except FileNotFoundError as missing:
            raise errors.KeysUnavailable(f"no keyring yet at {missing.filename} (run `rehab secrets init` or "
                                         "`rehab up` first)") from None
        return HeldKeys(ring, secrets, _signing_file(signing_path))

    return load


def _signing_file(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.is_file() else None


def _b64_file(path: Path) -> bytes:
    return base64.b64decode(path.read_bytes().strip())


# ---- sealed custody: keys.sealed (kit.keyfiles) ---------------------------------------------------------------------


class SealedKeyring(Keyring):
    """A Keyring whose document lives in keys.sealed: read again (with the key derived at unseal) when the file
    changes, so a KEK added by `rehab keys rotate` is used without a restart."""

    def __init__(self, path: Path, unlock: tuple[bytes, dict[str, Any]]) -> None:
        self._unlock: tuple[bytes, dict[str, Any]] | None = unlock
        self.path = path
        self._derived = {}
        self._reload()

    def _reload(self) -> None:
        if self._unlock is None:
            raise errors.Sealed()
        stamp = _stamp(self.path)
        bundle, _ = read_sealed_file(self.path, unlock=self._unlock)
        keys = {kid: base64.b64decode(v) for kid, v in bundle["kek"]["keys"].items()}
        self._state = self._checked(keys, bundle["kek"]["active"])
        self._stamp = stamp

    @property
    def unlocked(self) -> tuple[bytes, dict[str, Any]]:
        if self._unlock is None:
            raise errors.Sealed()
        return self._unlock

    def forget(self) -> None:
        self._unlock = None
        self._state = ({}, "")
        self._derived = {}


def _stamp(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class PassphraseSource:
    """Where a sealed process gets its unseal passphrase: a file named by UNSEAL_PASSPHRASE_FILE, read on each
    unseal; or lines on an inherited pipe (`rehab up` writes one at start and one at each `rehab unseal`), kept
    only until the keys are opened, a seal, or PENDING_SECONDS, whichever comes first: a passphrase waiting in a
    process would let anyone who can send a signed unseal command open it without knowing the passphrase."""

    PENDING_SECONDS = 15.0

    def __init__(self, *, file: Path | None = None, fd: int | None = None) -> None:
        self.file = file
        self._pending: str | None = None
        self._offered_at = 0.0
        self._lock = threading.Lock()
        self.fd = fd

    def offer(self, passphrase: str) -> None:
        if not passphrase:  # an empty line (a pipe read at its end) is no passphrase: the file's, if any, still is
            return
        with self._lock:
            self._pending, self._offered_at = passphrase, time.monotonic()

    def drop(self) -> None:
        """Forget a passphrase handed over and not used."""
        with self._lock:
            self._pending = None

    def take(self) -> str | None:
        with self._lock:
            pending, self._pending = self._pending, None
            fresh = time.monotonic() - self._offered_at <= self.PENDING_SECONDS
        if pending is not None and fresh:
            return pending
        if self.file is not None and self.file.is_file():
            return self.file.read_text().rstrip("\r\n")
        return None

    def follow_pipe(self, on_line: Callable[[], None]) -> threading.Thread | None:
        """Read passphrases from the inherited pipe in a thread of its own; `on_line` after each (to unseal)."""
        if self.fd is None:
            return None
        pipe = os.fdopen(self.fd, "r", encoding="utf-8", closefd=True)
        # At a first start `rehab up` wrote the passphrase before starting the process: take it now, so the
        # process is unsealed before it answers anything. After a restart nothing is there: it starts sealed.
        if select.select([pipe], [], [], 0.2)[0]:
            line = pipe.readline()
            if line:
                self.offer(line.rstrip("\r\n"))
                on_line()

        def read() -> None:
            with pipe:
                for line in pipe:
                    self.offer(line.rstrip("\r\n"))
                    on_line()

        thread = threading.Thread(target=read, name="unseal-pipe", daemon=True)
        thread.start()
        return thread


def sealed_loader(folder: Path, source: PassphraseSource, *, kek: bool, secret_names: dict[str, str],
                  signing_path: Path | None = None) -> Callable[[], HeldKeys]:
    path = folder / SEALED_KEYS_FILE

    def load() -> HeldKeys:
        passphrase = source.take()
        if passphrase is None:
            raise errors.Sealed()
        try:
            bundle, unlock = read_sealed_file(path, passphrase=passphrase)
        except WrongPassphrase:
            raise errors.Sealed() from None
        except FileNotFoundError:
            raise errors.KeysUnavailable(f"no keyring yet at {path} (run `rehab up` first)") from None
        ring = SealedKeyring(path, unlock) if kek else None
        secrets = {name: base64.b64decode(value) for name, value in bundle["secrets"].items()}
        signing = secrets.pop(SIGNING_SECRET, None) or _signing_file(signing_path)
        return HeldKeys(ring, secrets, signing)

    return load


def add_kek_to_sealed_file(path: Path, unlock: tuple[bytes, dict[str, Any]]) -> str:
    """`rehab keys rotate` under sealed custody: a fresh KEK, made active; the old ones stay until retired."""
    bundle, unlock = read_sealed_file(path, unlock=unlock)
    keys = bundle["kek"]["keys"]
    kid = f"k{1 + max((int(k[1:]) for k in keys if k[1:].isdigit()), default=0)}"
    keys[kid] = base64.b64encode(os.urandom(32)).decode()
    bundle["kek"]["active"] = kid
    write_sealed_file(path, bundle, unlock=unlock)
    return kid


def remove_kek_from_sealed_file(path: Path, unlock: tuple[bytes, dict[str, Any]], kid: str) -> None:
    bundle, unlock = read_sealed_file(path, unlock=unlock)
    if kid == bundle["kek"]["active"]:
        raise ValueError(f"{kid} is the active key-encryption key")
    if kid not in bundle["kek"]["keys"]:
        raise KeyError(kid)
    del bundle["kek"]["keys"][kid]
    write_sealed_file(path, bundle, unlock=unlock)


# ---- one process's custody, from its settings -----------------------------------------------------------------------


def open_custody(settings: Any) -> Custody:
    """The custody `settings.key_custody` names, for `settings.process_name`, sealed until `unseal()` (which
    `kit.service` calls at start; under `sealed` it succeeds once a passphrase has been handed over)."""
    from kit import secrets as secret_files  # kit.secrets imports kit.keyfiles only; this import is for names

    process = settings.process_name
    names = secret_files.secret_names(process)
    kek = secret_files.keeps_keks(process)
    own = settings.own_secrets_path
    if settings.key_custody == "file":
        paths = {name: own / file for name, file in names.items()}
        if "blind_index" in paths:
            paths["blind_index"] = settings.blind_index_key_path
        paths["audit"] = settings.audit_key_path
        return Custody("file", file_loader(settings.kek_path if kek else None, paths, settings.audit_signing_key_path),
                       process=process)
    if settings.key_custody == "sealed":
        source = PassphraseSource(file=settings.unseal_passphrase_file, fd=settings.unseal_fd)
        custody = Custody("sealed", sealed_loader(own, source, kek=kek, secret_names=names,
                                                  signing_path=settings.audit_signing_key_path), process=process)
        custody.passphrases = source
        return custody
    return Custody("openbao", transit_loader(settings, own, kek=kek, secret_names=names), process=process)


# ---- openbao custody: keys.transit -----------------------------------------------------------------------------------


def transit_client(settings: Any) -> Any:
    from kit import openbao  # httpx and the Transit client only where they are used

    token = settings.openbao_token.get_secret_value() if settings.openbao_token else None
    return openbao.TransitClient(settings.openbao_addr, key_name=settings.transit_key_name, token=token,
                                 token_file=settings.openbao_token_file, mount=settings.openbao_transit_mount,
                                 verify=str(settings.openbao_ca_file) if settings.openbao_ca_file else True)


def ensure_transit_document(client: Any, path: Path, secret_names: dict[str, str]) -> bool:
    """keys.transit: the process's other keys (a root for derived keys, blind-index and audit keys), encrypted by
    its Transit key, made once (by the process at its first start, or `rehab secrets init`); True when made now.
    Replicas share it: one writes it, the others read that one."""
    from kit import openbao

    if path.exists():
        return False
    client.ensure_key()  # created at first start when the token may (SPEC §8)
    bundle = {"root": base64.b64encode(os.urandom(32)).decode(),
              "secrets": {name: base64.b64encode(os.urandom(32)).decode() for name in secret_names}}
    from kit.secrets import write_new

    return write_new(path, openbao.seal_document(client, json.dumps(bundle).encode()).encode())


def transit_loader(settings: Any, folder: Path, *, kek: bool, secret_names: dict[str, str]) -> Callable[[], HeldKeys]:
    signing_path = settings.audit_signing_key_path
    from kit import openbao

    client = transit_client(settings)
    path = folder / TRANSIT_KEYS_FILE

    def load() -> HeldKeys:
        ensure_transit_document(client, path, secret_names)
        bundle = json.loads(openbao.open_document(client, path.read_text().strip()))
        ring = (openbao.TransitKeyring(client, base64.b64decode(bundle["root"]),
                                       cache_ttl=settings.openbao_cache_seconds) if kek else None)
        secrets = {name: base64.b64decode(value) for name, value in bundle["secrets"].items()}
        return HeldKeys(ring, secrets, secrets.pop(SIGNING_SECRET, None) or _signing_file(signing_path))

    return load


def settings_for(process: str, base: type | None = None) -> Any:
    """Settings as `process` reads them (its own secrets folder), for a tool that opens several processes' keys."""
    from kit.settings import ServiceSettings

    return type(f"{process.title()}KeySettings", (base or ServiceSettings,), {"process_name": process})()


def opened(settings: Any, *, ask: bool = True) -> Custody:
    """A process's custody, unsealed, for a command run by an operator (`rehab keys`, `rehab audit verify`, a
    service's `manage`). Under `sealed` the passphrase comes from UNSEAL_PASSPHRASE_FILE or REHAB_UNSEAL_FD, else it
    is asked on the terminal (once per command: `remember_passphrase`)."""
    custody = open_custody(settings)
    if custody.passphrases is not None:
        if custody.passphrases.fd is not None:
            if not _asked:  # the pipe holds one line: a command opening a process's keys twice reads it once
                with os.fdopen(custody.passphrases.fd, "r", encoding="utf-8", closefd=False) as pipe:
                    _asked.append(pipe.readline().rstrip("\r\n"))
            custody.passphrases.offer(_asked[0])
        elif settings.unseal_passphrase_file is None and ask:
            if not _asked:
                if not _terminal():
                    # Not "the keys are sealed: rehab unseal" (the running system may well be unsealed): this
                    # command has no way to be told the passphrase.
                    raise errors.PassphraseNeeded()
                import getpass  # asks on the terminal even when stdin is taken (`users add --password-stdin`)

                _asked.append(getpass.getpass("unseal passphrase: "))
            custody.passphrases.offer(_asked[0])
    try:
        custody.unseal()
    except errors.Sealed as sealed:
        if custody.passphrases is None or isinstance(sealed, errors.PassphraseNeeded):
            raise
        # Not "the keys are sealed: rehab unseal" while the system runs unsealed (an outside review's find): what
        # this command was given does not open them.
        raise errors.PassphraseNotOpening() from None
    return custody


def _terminal() -> bool:
    """Whether this command has a terminal to ask on, whatever its stdin is."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return False
    return True


_asked: list[str] = []  # the passphrase typed (or read from the pipe) once for this command, for each opening
