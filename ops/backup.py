"""`rehab backup` / `rehab restore`: every process's database in one encrypted archive, and back.

What an archive holds: a consistent copy of each database (SQLite through its online backup API, so the system may
keep running; PostgreSQL through `pg_dump`, one snapshot per database), a manifest with a SHA-256 of each member,
and — only with `--include-secrets` — the key files. Each database is consistent on its own; the services are
built for that (an event one side has and the other not is published again from the outbox, and the inbox drops
what was applied before). NATS streams are not in it: they are transport, the outboxes and inboxes are the truth.

The keys are left out by default on purpose: a database copy is ciphertext only for as long as its key-encryption
key is kept somewhere else. Keep `secrets/` apart (another medium, other hands); put it in an archive only when
that archive is itself kept like a key.

The archive is AES-256-GCM under a key derived with scrypt from a passphrase (random salt); its header is bound
as associated data. `restore` checks the whole archive's authenticity before it writes anything, and refuses to
write under a running system unless told `--force`; `rehab restore` then asks before it replaces anything (`--yes`
answers for the operator, and is needed where there is no terminal to ask on). Both show their steps on stderr
(kit.progress): the names of processes and files, never their contents.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import Field
from sqlalchemy.engine import make_url

from kit.progress import Progress
from kit.settings import ProcessSettings
from ops.settings import SupervisorSettings
from ops.supervisor import port_is_free

PROCESSES = ("intake", "referrals", "funds", "gateway")
MAGIC = b"REHAB-BACKUP-1\n"
# scrypt cost: 2**15 × 8 × 128 B = 32 MiB and ~0.1 s per try here; a guessed passphrase costs the same.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_HEADER = struct.Struct(">16sIII12s")  # salt, n, r, p, nonce
MIN_PASSPHRASE = 12


class BackupError(Exception):
    """Backup or restore cannot go on; the message says why, in words an operator can act on."""


class BackupSettings(ProcessSettings):
    """Where each process keeps its database: the same settings the processes read, nothing more."""

    process_name: ClassVar[str] = "backup"

    intake_database_url: str | None = Field(None, validation_alias="REHAB_INTAKE_DATABASE_URL")
    referrals_database_url: str | None = Field(None, validation_alias="REHAB_REFERRALS_DATABASE_URL")
    funds_database_url: str | None = Field(None, validation_alias="REHAB_FUNDS_DATABASE_URL")
    gateway_database_url: str | None = Field(None, validation_alias="REHAB_GATEWAY_DATABASE_URL")

    def database_url(self, process: str) -> str:
        return getattr(self, f"{process}_database_url") or self.sqlite_url(process)

    def database_place(self, process: str) -> str:
        """Where a process's database is, for an operator to read: a file, or a URL without its password."""
        url = make_url(self.database_url(process))
        if url.drivername.startswith("sqlite"):
            return str(url.database)
        return url.render_as_string(hide_password=True)


@dataclass(frozen=True)
class Member:
    name: str  # path inside the archive
    data: bytes


# ---- backup ---------------------------------------------------------------------------------------------------

def backup(settings: BackupSettings, target: Path, passphrase: str, *, include_secrets: bool = False,
           progress: Progress | None = None) -> dict:
    """Write the encrypted archive to `target` (never over an existing file); its manifest."""
    progress = progress or Progress.silent()
    check_passphrase(passphrase)
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name")
    progress.set_total(len(PROCESSES) + include_secrets + 1)
    members = []
    for process in PROCESSES:
        progress.doing(f"copying the {process} database")
        members.append(copy_database(process, settings.database_url(process)))
        progress.advance()
    if include_secrets:
        progress.doing("copying the keys")
        members += secret_members(settings.secrets_path)
        progress.advance()
    progress.doing("encrypting and writing the archive")
    manifest = {
        "format": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "includes_secrets": include_secrets,
        "members": {m.name: {"sha256": hashlib.sha256(m.data).hexdigest(), "bytes": len(m.data)} for m in members},
    }
    sealed = seal(pack([Member("manifest.json", json.dumps(manifest, indent=1).encode()), *members]), passphrase)
    write_owner_only(target, sealed)
    progress.advance()
    return manifest


def copy_database(process: str, url: str) -> Member:
    """A consistent copy of one database: `db/<process>.sqlite` or `db/<process>.pgdump`."""
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        if not path.is_file():
            raise BackupError(f"{process}: no database at {path} (has the system ever started with this state folder?)")
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "copy.db"
            source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            destination = sqlite3.connect(copy)
            try:
                source.backup(destination)  # online: a consistent snapshot while the service keeps writing
            finally:
                destination.close()
                source.close()
            return Member(f"db/{process}.sqlite", copy.read_bytes())
    dump = _pg_tool("pg_dump")
    command = [dump, "--format=custom", "--no-owner", "--no-privileges", "--dbname", _libpq_uri(url)]
    result = subprocess.run(command, env=_pg_env(url), capture_output=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"{process}: pg_dump failed: {result.stderr.decode(errors='replace').strip()[:500]}")
    return Member(f"db/{process}.pgdump", result.stdout)


def secret_members(secrets_dir: Path) -> list[Member]:
    if not secrets_dir.is_dir():
        raise BackupError(f"no secrets folder at {secrets_dir}")
    return [Member(f"secrets/{path.name}", path.read_bytes()) for path in sorted(secrets_dir.iterdir()) if path.is_file()]


# ---- restore --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Archive:
    """An opened archive: authenticated, every member matching the manifest."""

    manifest: dict
    members: dict[str, bytes]

    @property
    def databases(self) -> list[str]:
        """The processes whose database it holds, in restore order."""
        return [p for p in PROCESSES if f"db/{p}.sqlite" in self.members or f"db/{p}.pgdump" in self.members]

    @property
    def secrets(self) -> dict[str, bytes]:
        """The key files it holds, by file name (none unless it was made with `--include-secrets`)."""
        return {name.removeprefix("secrets/"): data
                for name, data in self.members.items() if name.startswith("secrets/")}


def restore(settings: BackupSettings, source: Path, passphrase: str, *, force: bool = False,
            progress: Progress | None = None) -> dict:
    """Put the archive's databases (and keys, when it has them) back in place; its manifest.

    Nothing is written before the whole archive is authenticated and every member matches the manifest; nothing
    is written under a running system unless `force`.
    """
    return put_back(settings, open_archive(settings, source, passphrase, force=force), force=force, progress=progress)


def open_archive(settings: BackupSettings, source: Path, passphrase: str, *, force: bool = False) -> Archive:
    """The archive, authenticated and matched against its manifest, once this system may take it: not running,
    and no key file here that differs from the archive's (unless `force`). Writes nothing."""
    members = unpack(open_sealed(source.read_bytes(), passphrase))
    manifest = json.loads(members.pop("manifest.json"))
    for name, facts in manifest["members"].items():
        if name not in members or hashlib.sha256(members[name]).hexdigest() != facts["sha256"]:
            raise BackupError(f"the archive's {name} does not match its manifest")
    archive = Archive(manifest, members)
    if not force:
        refuse_if_running()
        secrets_dir = settings.secrets_path
        differing = [name for name, data in archive.secrets.items()
                     if (secrets_dir / name).exists() and (secrets_dir / name).read_bytes() != data]
        if differing:
            raise BackupError(f"the keys in {secrets_dir} differ from the archive's ({', '.join(differing)}); "
                              "move them away first, or pass --force")
    return archive


def put_back(settings: BackupSettings, archive: Archive, *, force: bool = False,
             progress: Progress | None = None) -> dict:
    """Write an opened archive's databases and keys in place of this system's; its manifest."""
    progress = progress or Progress.silent()
    if not force:
        refuse_if_running()  # again: the operator may have taken a while to say yes
    restored_secrets = archive.secrets
    progress.set_total(len(archive.databases) + bool(restored_secrets))
    for process in archive.databases:
        progress.doing(f"writing the {process} database")
        if f"db/{process}.sqlite" in archive.members:
            restore_sqlite(settings.database_url(process), archive.members[f"db/{process}.sqlite"])
        else:
            restore_postgres(process, settings.database_url(process), archive.members[f"db/{process}.pgdump"])
        progress.advance()
    if restored_secrets:
        progress.doing("writing the keys")
        secrets_dir = settings.secrets_path
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for name, data in restored_secrets.items():
            write_owner_only(secrets_dir / name, data, replace=True)
        progress.advance()
    return archive.manifest


def refuse_if_running() -> None:
    """The system's ports (from the same settings `rehab up` uses): any in use means it may be running."""
    ports = SupervisorSettings()
    for name in ("gateway", "intake", "referrals", "funds", "nats"):
        port = getattr(ports, f"{name}_port")
        if not port_is_free(port):
            raise BackupError(f"port {port} ({name}) is in use: the system seems to be running. Stop it first "
                              "(restoring under a running service corrupts its database), or pass --force")


def restore_sqlite(url: str, data: bytes) -> None:
    path = Path(make_url(url).database or "")
    if not url.startswith("sqlite") or not path.name:
        raise BackupError(f"the archive holds a SQLite database, but this system's is {make_url(url).drivername}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.restoring")
    write_owner_only(staged, data, replace=True)
    # A write-ahead log left from the old database would be replayed into the restored one.
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(staged, path)


def restore_postgres(process: str, url: str, dump: bytes) -> None:
    if url.startswith("sqlite"):
        raise BackupError(f"{process}: the archive holds a PostgreSQL dump, but this system's database is SQLite")
    tool = _pg_tool("pg_restore")
    command = [tool, "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
               "--exit-on-error", "--dbname", _libpq_uri(url)]
    result = subprocess.run(command, input=dump, env=_pg_env(url), capture_output=True, timeout=3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"{process}: pg_restore failed: {result.stderr.decode(errors='replace').strip()[:500]}")


# ---- the archive: a tar, sealed ------------------------------------------------------------------------------

def pack(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime = len(member.data), 0o600, 0
            archive.addfile(info, io.BytesIO(member.data))
    return buffer.getvalue()


def unpack(data: bytes) -> dict[str, bytes]:
    """The members by name; only regular files with plain relative names (the archive is authenticated, but a
    restore should not trust even itself with paths)."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for info in archive.getmembers():
            name = info.name
            if not info.isfile() or name.startswith("/") or ".." in Path(name).parts:
                raise BackupError(f"the archive holds an unexpected entry: {name!r}")
            extracted = archive.extractfile(info)
            assert extracted is not None
            members[name] = extracted.read()
    if "manifest.json" not in members:
        raise BackupError("the archive has no manifest")
    return members


def seal(plaintext: bytes, passphrase: str) -> bytes:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = MAGIC + _HEADER.pack(salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, nonce)
    key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def open_sealed(sealed: bytes, passphrase: str) -> bytes:
    if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _HEADER.size + 16:
        raise BackupError("this is not a Rehab Support backup archive")
    header = sealed[: len(MAGIC) + _HEADER.size]
    salt, n, r, p, nonce = _HEADER.unpack(header[len(MAGIC):])
    if not (2**14 <= n <= 2**20 and r <= 32 and p <= 16):
        raise BackupError("the archive's key-derivation settings are out of range")
    try:
        return AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, sealed[len(header):], header)
    except InvalidTag:
        raise BackupError("wrong passphrase, or the archive was altered: nothing was restored") from None


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")


# ---- small helpers -------------------------------------------------------------------------------------------

def write_owner_only(path: Path, data: bytes, *, replace: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace:
        path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed: PostgreSQL databases are backed up and restored with "
                          f"pg_dump and pg_restore (Debian: apt-get install postgresql-client)")
    return found


def _libpq_uri(url: str) -> str:
    """The SQLAlchemy URL as a libpq one, without its password (that goes in PGPASSWORD, not on a command line)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _pg_env(url: str) -> dict[str, str]:
    password = make_url(url).password
    return {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
