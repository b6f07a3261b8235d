"""`rehab backup` / `rehab restore`: every process's database in one encrypted archive, and back.

What an archive holds: a consistent copy of each database (SQLite through its online backup API, so the system may
keep running; PostgreSQL through `pg_dump`, one snapshot per database), a manifest with a SHA-256 of each member,
and — only with `--include-secrets` — the key files. Each database is consistent on its own; the services are
built for that (an event one side has and the other not is published again from the outbox, and the inbox drops
what was applied before). NATS streams are not in it: they are transport, the outboxes and inboxes are the truth.

The keys are left out by default on purpose: a database copy is ciphertext only for as long as its key-encryption
key is kept somewhere else. Keep `secrets/` apart (another medium, other hands); put it in an archive only when
that archive is itself kept like a key.

The format is a standard one: an age file (age-encryption.org/v1) whose plaintext is a tar (`manifest.json` first,
then `db/<process>.sqlite|pgdump`, then `secrets/…`), so `age -d … | tar x` opens it without this code. It is
locked either with a passphrase (age's scrypt recipient) or to age recipients (`age1…` X25519 keys, or SSH public
keys): with recipients the key that opens the archive lives with a trustee, never on the server that makes it.

Streamed: nothing holds a database whole in memory. `backup` copies each database to an owner-only scratch folder
in the state folder (the SQLite backup API and `pg_dump --file` write to disk), hashes the copies from disk, and
encrypts a tar produced piece by piece as the encryptor reads it (`TarStream`). `restore` decrypts into a pipe that
a tar reader drains into an owner-only scratch folder, hashing each member as it lands; only when the decryption
has authenticated its final chunk and every member matches the manifest does anything go in place of the
system's files. Plaintext copies therefore exist only in that scratch folder (mode 0700, in the state folder, next
to what they copy; removed at the end, success or not — a process killed outright leaves one behind, `.backup-*`
or `.restore-*`, to delete by hand).

Why part of the age format is written here: pyrage 1.4 streams only for key recipients (`encrypt_io` and
`decrypt_io` take X25519, SSH or plugin keys); its passphrase functions take and return whole `bytes`, which for a
10 GB state means 10 GB (and a copy) in memory, and `encrypt_file` takes no passphrase either. So recipients go
through pyrage (rage), and the passphrase case uses the age format's scrypt stanza, header MAC and STREAM payload
as the specification (c2sp.org/age) defines them, over `cryptography`'s ChaCha20-Poly1305, HKDF, HMAC and scrypt
— no primitive of our own. tests/ops/test_backup.py holds it to rage in both directions (our files open with
`pyrage.passphrase.decrypt`, rage's with ours, chunk boundaries included) and to the stock `age` tool.

Archives in the old REHAB-BACKUP-1 format (AES-256-GCM over scrypt, before backups were age files) still restore,
read in memory as they always were; `rehab restore` says so, and a new backup should be taken afterwards.

`restore` refuses to write under a running system unless told `--force`; `rehab restore` then asks before it
replaces anything (`--yes` answers for the operator, and is needed where there is no terminal to ask on). Both
show their steps on stderr (kit.progress): the names of processes and files, never their contents.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, ClassVar, Self

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import Field
from sqlalchemy.engine import make_url

from kit.progress import Progress
from kit.settings import ProcessSettings
from ops.settings import SupervisorSettings
from ops.supervisor import port_in_use

# Every database, the programme report's included: rebuilt from the streams instead, it would count events that the
# restored services no longer hold (those after the backup), or nothing where the streams are gone.
PROCESSES = ("intake", "referrals", "funds", "reports", "gateway")
MIN_PASSPHRASE = 12
FORMAT = 2  # the manifest's "format": 1 was the REHAB-BACKUP-1 archive, 2 is the age file

# What an archive may hold, by name: anything else is refused before it is written anywhere.
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
MEMBER_NAME = re.compile(rf"manifest\.json|db/(?:{'|'.join(PROCESSES)})\.(?:sqlite|pgdump)|secrets/(?:{_SEGMENT}/)*{_SEGMENT}")
MAX_MANIFEST = 1 << 20
COPY_BUFFER = 1 << 20

# age (c2sp.org/age): the passphrase case, written here (see the module's docstring).
AGE_MAGIC = b"age-encryption.org/v1\n"
ARMOR_MAGIC = b"-----BEGIN AGE ENCRYPTED FILE-----"
CHUNK = 64 * 1024  # the payload's plaintext chunk
TAG = 16
SCRYPT_LOG_N = 18  # age's own default: 2**18 × 8 × 128 B = 256 MiB and ~0.6 s here, the same for every guess
MAX_SCRYPT_LOG_N = 22  # as age: a restore refuses a header that asks for more (2**22: 4 GiB, many seconds)
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
_MAX_HEADER_LINE = 8192
_MAX_HEADER_LINES = 4096

# The old format, read only.
LEGACY_MAGIC = b"REHAB-BACKUP-1\n"
_LEGACY_HEADER = struct.Struct(">16sIII12s")  # salt, n, r, p, nonce

PASSPHRASE, RECIPIENTS, LEGACY = "passphrase", "recipients", "legacy"


class BackupError(Exception):
    """Backup or restore cannot go on; the message says why, in words an operator can act on."""


class BackupSettings(ProcessSettings):
    """Where each process keeps its database: the same settings the processes read, nothing more."""

    process_name: ClassVar[str] = "backup"

    intake_database_url: str | None = Field(None, validation_alias="REHAB_INTAKE_DATABASE_URL")
    referrals_database_url: str | None = Field(None, validation_alias="REHAB_REFERRALS_DATABASE_URL")
    funds_database_url: str | None = Field(None, validation_alias="REHAB_FUNDS_DATABASE_URL")
    reports_database_url: str | None = Field(None, validation_alias="REHAB_REPORTS_DATABASE_URL")
    gateway_database_url: str | None = Field(None, validation_alias="REHAB_GATEWAY_DATABASE_URL")

    def database_url(self, process: str) -> str:
        return getattr(self, f"{process}_database_url") or self.sqlite_url(process)

    def database_place(self, process: str) -> str:
        """Where a process's database is, for an operator to read: a file, or a URL without its password."""
        url = make_url(self.database_url(process))
        if url.drivername.startswith("sqlite"):
            return str(url.database)
        return url.render_as_string(hide_password=True)

    def scratch_folder(self, kind: str) -> Path:
        """A new owner-only folder in the state folder for plaintext copies (the same disk and the same hands as
        what they copy; never the medium the archive goes to)."""
        state_dir = self.state_dir.resolve()
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{kind}-", dir=state_dir))  # mkdtemp: mode 0700


@dataclass(frozen=True)
class Staged:
    """One member of an archive being written: its name inside, and the file on disk that holds it."""

    name: str
    path: Path
    sha256: str
    size: int


# ---- backup ---------------------------------------------------------------------------------------------------

def backup(settings: BackupSettings, target: Path, passphrase: str | None = None, *,
           recipients: Sequence[str] = (), include_secrets: bool = False,
           progress: Progress | None = None) -> dict:
    """Write the encrypted archive to `target` (never over an existing file); its manifest.

    Locked with `passphrase` (age scrypt), or, when `recipients` are given (`age1…` or SSH public keys), to them
    alone: then only one of their identities opens it.
    """
    progress = progress or Progress.silent()
    if (passphrase is None) == (not recipients):
        # age allows a passphrase alone or recipients alone: a passphrase mixed in would open what a trustee holds
        raise BackupError("lock the archive with a passphrase or with recipients, one of the two")
    keys = parse_recipients(recipients) if recipients else None
    if passphrase is not None:
        check_passphrase(passphrase)
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    progress.set_total(len(PROCESSES) + include_secrets + 1)
    scratch = settings.scratch_folder("backup")
    try:
        members = []
        for process in PROCESSES:
            progress.doing(f"copying the {process} database")
            members.append(copy_database(process, settings.database_url(process), scratch))
            progress.advance()
        if include_secrets:
            progress.doing("copying the keys")
            members += copy_secrets(settings.secrets_path, scratch)
            progress.advance()
        progress.doing("encrypting and writing the archive")
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(UTC).isoformat(),
            "includes_secrets": include_secrets,
            "members": {m.name: {"sha256": m.sha256, "bytes": m.size} for m in members},
        }
        manifest_path = scratch / "manifest.json"
        write_owner_only(manifest_path, json.dumps(manifest, indent=1).encode())
        stream = TarStream([stage("manifest.json", manifest_path), *members])
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                if keys is not None:
                    try:
                        pyrage.encrypt_io(stream, out, keys)
                    except pyrage.EncryptError as error:
                        raise BackupError(f"age could not encrypt the archive: {error}") from None
                else:
                    assert passphrase is not None
                    age_scrypt_encrypt(stream, out, passphrase)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            target.unlink(missing_ok=True)  # never leave half an archive that looks like one
            raise
        progress.advance()
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def copy_database(process: str, url: str, scratch: Path) -> Staged:
    """A consistent copy of one database in `scratch`: `db/<process>.sqlite` or `db/<process>.pgdump`."""
    (scratch / "db").mkdir(mode=0o700, exist_ok=True)
    if url.startswith("sqlite"):
        path = Path(make_url(url).database or "")
        if not path.is_file():
            raise BackupError(f"{process}: no database at {path} (has the system ever started with this state folder?)")
        copy = scratch / "db" / f"{process}.sqlite"
        os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        destination = sqlite3.connect(copy)
        try:
            source.backup(destination)  # online: a consistent snapshot while the service keeps writing, page by page
        finally:
            destination.close()
            source.close()
        return stage(f"db/{process}.sqlite", copy)
    dump = scratch / "db" / f"{process}.pgdump"
    os.close(os.open(dump, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    command = [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(dump),
               "--dbname", _libpq_uri(url)]
    result = subprocess.run(command, env=_pg_env(url), capture_output=True, timeout=6 * 3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"{process}: pg_dump failed: {result.stderr.decode(errors='replace').strip()[:500]}")
    return stage(f"db/{process}.pgdump", dump)


def copy_secrets(secrets_dir: Path, scratch: Path) -> list[Staged]:
    """The key files (sub-folders too), copied owner-only so that what is hashed is what is archived."""
    if not secrets_dir.is_dir():
        raise BackupError(f"no secrets folder at {secrets_dir}")
    staged = []
    for path in sorted(p for p in secrets_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(secrets_dir).as_posix()
        name = f"secrets/{relative}"
        if not MEMBER_NAME.fullmatch(name):
            raise BackupError(f"a key file's name cannot go in an archive: {relative!r} (rename or move it)")
        copy = scratch / name
        copy.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with path.open("rb") as source, _create_owner_only(copy) as destination:
            shutil.copyfileobj(source, destination, COPY_BUFFER)
        staged.append(stage(name, copy))
    return staged


def stage(name: str, path: Path) -> Staged:
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return Staged(name, path, digest, path.stat().st_size)


class TarStream:
    """A tar of staged files, made as it is read: `read(n)` gives the next n bytes. The headers come from
    `tarfile` (PAX, so a member past 8 GiB is fine); the contents go straight from the files, a piece at a time."""

    def __init__(self, members: Iterable[Staged]) -> None:
        self._pieces = self._generate(list(members))
        self._pending = bytearray()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("a TarStream is read a piece at a time")
        while len(self._pending) < size:
            piece = next(self._pieces, None)
            if piece is None:
                break
            self._pending += piece
        out = bytes(self._pending[:size])
        del self._pending[:size]
        return out

    def readable(self) -> bool:
        return True

    @staticmethod
    def _generate(members: list[Staged]) -> Iterator[bytes]:
        written, mtime = 0, int(time.time())
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime, info.type = member.size, 0o600, mtime, tarfile.REGTYPE
            header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            yield header
            left = member.size
            with member.path.open("rb") as file:
                while left:
                    piece = file.read(min(CHUNK, left))
                    if not piece:
                        raise BackupError(f"{member.name} shrank while it was archived")
                    left -= len(piece)
                    yield piece
            padding = -member.size % tarfile.BLOCKSIZE
            yield bytes(padding)
            written += len(header) + member.size + padding
        end = 2 * tarfile.BLOCKSIZE
        yield bytes(end + (-(written + end) % tarfile.RECORDSIZE))  # as tarfile closes an archive


# ---- keys: recipients and identities ----------------------------------------------------------------------------

def parse_recipients(values: Iterable[str]) -> list[Any]:
    """pyrage recipients from `age1…` (X25519) and `ssh-ed25519 …` / `ssh-rsa …` public keys."""
    parsed: list[Any] = []
    for value in values:
        value = value.strip()
        try:
            if value.startswith("ssh-"):
                parsed.append(pyrage.ssh.Recipient.from_str(value))
            else:
                parsed.append(pyrage.x25519.Recipient.from_str(value))
        except (pyrage.RecipientError, ValueError, TypeError):
            shown = value if len(value) <= 80 else value[:77] + "..."
            raise BackupError(f"not an age recipient: {shown!r} (expected an age1… key from age-keygen, or an "
                              "ssh-ed25519/ssh-rsa public key; plugin recipients are not supported)") from None
    if not parsed:
        raise BackupError("no recipient given")
    return parsed


def read_recipients_file(path: Path) -> list[str]:
    """The recipients in a file of age's own format: one a line; blank lines and `#` comments skipped."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"cannot read the recipients file {path}: {error}") from None
    found = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise BackupError(f"{path} names no recipient")
    return found


def read_identities(path: Path, passphrase: Callable[[], str] | None = None) -> list[Any]:
    """pyrage identities from an age identity file (`AGE-SECRET-KEY-1…` lines, `#` comments), an unencrypted SSH
    private key, or an identity file that is itself passphrase-encrypted with age (then `passphrase()` is asked).
    An error never shows a line of the file: it is a secret."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BackupError(f"cannot read the identity file {path}: {error.strerror}") from None
    if len(data) > MAX_MANIFEST:
        raise BackupError(f"{path} is too big to be an identity file")
    if data.startswith(AGE_MAGIC) or data.lstrip().startswith(ARMOR_MAGIC):
        if passphrase is None:
            raise BackupError(f"{path} is encrypted with a passphrase, and none can be asked for")
        try:
            data = pyrage.passphrase.decrypt(data, passphrase())
        except pyrage.DecryptError:
            raise BackupError(f"wrong passphrase for the identity file {path}: nothing was restored") from None
    if b"PRIVATE KEY-----" in data:
        try:
            return [pyrage.ssh.Identity.from_buffer(data)]
        except (pyrage.IdentityError, ValueError, TypeError):
            raise BackupError(f"{path}: an SSH private key age cannot use (a passphrase-protected one, or another "
                              "kind than ed25519/RSA)") from None
    identities = []
    for number, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except (pyrage.IdentityError, ValueError, TypeError):
            raise BackupError(f"{path}, line {number}: not an age identity (AGE-SECRET-KEY-1…)") from None
    if not identities:
        raise BackupError(f"{path} holds no identity")
    return identities


# ---- restore --------------------------------------------------------------------------------------------------

@dataclass
class Archive:
    """An opened archive: decrypted into an owner-only scratch folder, every member matching the manifest. Close
    it (or use it in a `with`) to delete the plaintext copies."""

    manifest: dict
    files: dict[str, Path]  # member name → its decrypted copy in `scratch`
    scratch: Path
    legacy: bool = False

    @property
    def databases(self) -> list[str]:
        """The processes whose database it holds, in restore order."""
        return [p for p in PROCESSES if f"db/{p}.sqlite" in self.files or f"db/{p}.pgdump" in self.files]

    @property
    def secrets(self) -> dict[str, bytes]:
        """The key files it holds, by path under the secrets folder (none unless made with `--include-secrets`)."""
        return {name.removeprefix("secrets/"): path.read_bytes()
                for name, path in self.files.items() if name.startswith("secrets/")}

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def restore(settings: BackupSettings, source: Path, passphrase: str | None = None, *,
            identities: Sequence[Any] = (), force: bool = False, progress: Progress | None = None) -> dict:
    """Put the archive's databases (and keys, when it has them) back in place; its manifest.

    Nothing is written in place before the whole archive is decrypted and authenticated and every member matches
    the manifest; nothing is written under a running system unless `force`.
    """
    with open_archive(settings, source, passphrase, identities=identities, force=force) as archive:
        return put_back(settings, archive, force=force, progress=progress)


def archive_kind(source: Path) -> str:
    """How an archive is locked, from its header alone (no key needed): PASSPHRASE, RECIPIENTS or LEGACY."""
    try:
        with source.open("rb") as file:
            start = file.read(len(ARMOR_MAGIC))
            if start.startswith(LEGACY_MAGIC):
                return LEGACY
            if start.lstrip().startswith(ARMOR_MAGIC[:20]):
                raise BackupError("this is an ASCII-armored age file; `rehab backup` writes binary ones: turn it "
                                  "back with `age -d` and restore the tar by hand, or use the original archive")
            if not start.startswith(AGE_MAGIC):
                raise BackupError(f"{source} is not a Rehab Support backup (neither an age file nor the old "
                                  "REHAB-BACKUP-1 format)")
            file.seek(0)
            _, stanzas, _ = read_age_header(file)
    except OSError as error:
        raise BackupError(f"cannot read {source}: {error.strerror}") from None
    return PASSPHRASE if any(args[0] == b"scrypt" for args, _ in stanzas) else RECIPIENTS


def check_key_kind(kind: str, *, identities_given: bool) -> None:
    """An archive made for recipients opens with an identity, one locked with a passphrase with that alone."""
    if kind == RECIPIENTS and not identities_given:
        raise BackupError("this archive was made for age recipients: give the identity file of one of them "
                          "(--identity FILE)")
    if kind != RECIPIENTS and identities_given:
        raise BackupError("this archive is locked with a passphrase, not to recipients: leave out --identity")


def open_archive(settings: BackupSettings, source: Path, passphrase: str | None = None, *,
                 identities: Sequence[Any] = (), force: bool = False, progress: Progress | None = None) -> Archive:
    """The archive, decrypted, authenticated and matched against its manifest, once this system may take it: not
    running, and no key file here that differs from the archive's (unless `force`). Writes nothing in place."""
    progress = progress or Progress.silent()
    kind = archive_kind(source)
    check_key_kind(kind, identities_given=bool(identities))
    if kind != RECIPIENTS and passphrase is None:
        raise BackupError("this archive is locked with a passphrase: give it")
    if not force:
        refuse_if_running()  # before the long part, and again before anything is written
    scratch = settings.scratch_folder("restore")
    try:
        progress.doing("decrypting and checking the archive")
        manifest, files = _decrypt_and_unpack(kind, source, passphrase, identities, scratch / "members", progress)
        archive = Archive(manifest, files, scratch, legacy=kind == LEGACY)
        if not force:
            refuse_if_running()
            secrets_dir = settings.secrets_path
            differing = [name for name, data in archive.secrets.items()
                         if (secrets_dir / name).exists() and (secrets_dir / name).read_bytes() != data]
            if differing:
                raise BackupError(f"the keys in {secrets_dir} differ from the archive's ({', '.join(differing)}); "
                                  "move them away first, or pass --force")
        return archive
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def put_missing_keys(settings: BackupSettings, archive: Archive) -> list[str]:
    """Write the archive's key files that this machine's secrets folder lacks (those it has are the archive's, or
    `open_archive` refused them), and name them. On a new machine they are what opening the erasure ledger needs
    (NATS's keys), before the restore may write anything else; `put_back` writes them all again later."""
    missing = {name: data for name, data in archive.secrets.items() if not (settings.secrets_path / name).exists()}
    _write_keys(settings, missing, replace=False)
    return sorted(missing)


def _write_keys(settings: BackupSettings, files: dict[str, bytes], *, replace: bool) -> None:
    """Key files, by path under the secrets folder, written owner-only in owner-only folders."""
    if files:  # mkdir gives `mode` to the last folder only: the secrets folder is made first
        settings.secrets_path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, data in files.items():
        (settings.secrets_path / name).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_owner_only(settings.secrets_path / name, data, replace=replace)


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
        if f"db/{process}.sqlite" in archive.files:
            restore_sqlite(settings.database_url(process), archive.files[f"db/{process}.sqlite"])
        else:
            restore_postgres(process, settings.database_url(process), archive.files[f"db/{process}.pgdump"])
        progress.advance()
    if restored_secrets:
        progress.doing("writing the keys")
        _write_keys(settings, restored_secrets, replace=True)
        progress.advance()
    return archive.manifest


def refuse_if_running() -> None:
    """The system's ports (from the same settings `rehab up` uses): any in use means it may be running."""
    if taken := port_in_use(SupervisorSettings()):
        raise BackupError(f"{taken} is in use: the system seems to be running. Stop it first "
                          "(restoring under a running service corrupts its database), or pass --force")


def restore_sqlite(url: str, copy: Path) -> None:
    """Put the decrypted copy in place of the database (moved when on the same disk, else copied beside it)."""
    path = Path(make_url(url).database or "")
    if not url.startswith("sqlite") or not path.name:
        raise BackupError(f"the archive holds a SQLite database, but this system's is {make_url(url).drivername}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.restoring")
    staged.unlink(missing_ok=True)
    try:
        os.replace(copy, staged)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        with copy.open("rb") as source, _create_owner_only(staged) as destination:
            shutil.copyfileobj(source, destination, COPY_BUFFER)
    os.chmod(staged, 0o600)
    with staged.open("rb+") as file:
        os.fsync(file.fileno())
    # A write-ahead log left from the old database would be replayed into the restored one.
    for leftover in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    os.replace(staged, path)


def restore_postgres(process: str, url: str, dump: Path) -> None:
    if url.startswith("sqlite"):
        raise BackupError(f"{process}: the archive holds a PostgreSQL dump, but this system's database is SQLite")
    command = [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
               "--single-transaction", "--exit-on-error", "--dbname", _libpq_uri(url), str(dump)]
    result = subprocess.run(command, env=_pg_env(url), capture_output=True, timeout=6 * 3600, check=False)
    if result.returncode != 0:
        raise BackupError(f"{process}: pg_restore failed: {result.stderr.decode(errors='replace').strip()[:500]}")


def _decrypt_and_unpack(kind: str, source: Path, passphrase: str | None, identities: Sequence[Any],
                        folder: Path, progress: Progress) -> tuple[dict, dict[str, Path]]:
    """Decrypt in a thread into a pipe; here, read the tar from the pipe into `folder`, checking as it lands.

    The tar reader stops at the end-of-archive marker; the pipe is then drained to its end, so the decryption
    always reaches (and authenticates) the final chunk. A decryption failure wins over the tar error it causes."""
    read_end, write_end = os.pipe()
    failures: list[BaseException] = []

    def decrypt() -> None:
        try:
            # The pipe's end first: whatever fails after, leaving the `with` closes it, and the reader sees the end.
            with os.fdopen(write_end, "wb") as plain, source.open("rb") as sealed:
                if kind == LEGACY:
                    assert passphrase is not None
                    plain.write(legacy_open(sealed.read(), passphrase))
                elif kind == PASSPHRASE:
                    assert passphrase is not None
                    age_scrypt_decrypt(sealed, plain, passphrase)
                else:
                    pyrage.decrypt_io(sealed, plain, list(identities))
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which raises it
            failures.append(error)

    worker = threading.Thread(target=decrypt, name="restore-decrypt", daemon=True)
    worker.start()
    unpack_error: BaseException | None = None
    result: tuple[dict, dict[str, Path]] | None = None
    try:
        with os.fdopen(read_end, "rb") as plain:
            try:
                result = unpack(plain, folder, progress)
                while plain.read(COPY_BUFFER):
                    pass
            except BaseException as error:  # noqa: BLE001 - raised below, unless the decryption's comes first
                unpack_error = error
    finally:
        worker.join()  # the read end is closed: a writer still writing gets a broken pipe and stops
    failure = failures[0] if failures else None
    if isinstance(failure, BrokenPipeError) and unpack_error is not None:
        failure = None  # the reader stopped first: its reason is the one to give
    if isinstance(failure, BackupError):
        raise failure
    if isinstance(failure, pyrage.DecryptError) and "no matching keys" in str(failure).lower():
        raise BackupError("none of the given identities opens this archive (it was made for other recipients): "
                          "nothing was restored") from None
    if isinstance(failure, (pyrage.DecryptError, OSError)):
        # pyrage: a bad header is a DecryptError, a chunk that fails authentication (or a cut) an OSError
        raise _altered() from None
    if unpack_error is not None:
        if isinstance(unpack_error, tarfile.TarError):
            raise BackupError(f"the archive's contents are not a readable tar ({unpack_error}): nothing was "
                              "restored") from None
        raise unpack_error
    if failure is not None:
        raise failure
    assert result is not None
    return result


def unpack(plain: BinaryIO, folder: Path, progress: Progress | None = None) -> tuple[dict, dict[str, Path]]:
    """The manifest, and each member written owner-only under `folder`: only regular files with the names an
    archive may hold, the manifest first, each listed in it with the same size and SHA-256, none missing."""
    progress = progress or Progress.silent()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    manifest: dict | None = None
    files: dict[str, Path] = {}
    with tarfile.open(fileobj=plain, mode="r|") as archive:
        for info in archive:
            name = info.name
            if not info.isreg() or not MEMBER_NAME.fullmatch(name):
                raise BackupError(f"the archive holds an unexpected entry: {name[:100]!r}")
            if manifest is None:
                if name != "manifest.json" or info.size > MAX_MANIFEST:
                    raise BackupError("the archive does not start with its manifest")
                extracted = archive.extractfile(info)
                assert extracted is not None
                manifest = _checked_manifest(extracted.read())
                continue
            facts = manifest["members"].get(name)
            if facts is None or name in files:
                raise BackupError(f"the archive holds {name}, which its manifest does not list (once)")
            if info.size != facts["bytes"]:
                raise BackupError(f"the archive's {name} does not match its manifest")
            progress.doing(f"checking {name}")
            path = folder / name
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            extracted = archive.extractfile(info)
            assert extracted is not None
            digest = hashlib.sha256()
            with _create_owner_only(path) as out:
                while piece := extracted.read(COPY_BUFFER):
                    digest.update(piece)
                    out.write(piece)
            if not hmac.compare_digest(digest.hexdigest(), str(facts["sha256"])):
                raise BackupError(f"the archive's {name} does not match its manifest")
            files[name] = path
    if manifest is None:
        raise BackupError("the archive has no manifest")
    missing = sorted(set(manifest["members"]) - set(files))
    if missing:
        raise BackupError(f"the archive lacks what its manifest lists: {', '.join(missing)}")
    return manifest, files


def _checked_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data)
        members = manifest["members"]
        assert isinstance(members, dict) and isinstance(manifest["created_at"], str)
        for name, facts in members.items():
            assert MEMBER_NAME.fullmatch(name) and name != "manifest.json"
            assert isinstance(facts["bytes"], int) and isinstance(facts["sha256"], str)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise BackupError("the archive's manifest is not one `rehab backup` writes") from None
    return manifest


# ---- age, the passphrase case (c2sp.org/age: scrypt stanza, header MAC, STREAM payload) ----------------------

def age_scrypt_encrypt(source: Any, out: BinaryIO, passphrase: str, log_n: int | None = None) -> None:
    """Encrypt everything `source.read` gives into `out` as an age file for a passphrase, 64 KiB at a time."""
    log_n = SCRYPT_LOG_N if log_n is None else log_n
    file_key, salt = secrets.token_bytes(16), secrets.token_bytes(16)
    body = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).encrypt(_ZERO_NONCE, file_key, None)
    header = AGE_MAGIC + b"-> scrypt %s %d\n%s\n---" % (_b64(salt), log_n, _b64(body))
    out.write(header + b" " + _b64(_header_mac(file_key, header)) + b"\n")
    nonce = secrets.token_bytes(16)
    out.write(nonce)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    chunk, counter = _read_full(source, CHUNK), 0
    while True:
        following = _read_full(source, CHUNK) if len(chunk) == CHUNK else b""
        last = not following  # a full chunk at the end is the final one; an empty one only for an empty payload
        out.write(aead.encrypt(_chunk_nonce(counter, last), chunk, None))
        if last:
            return
        chunk, counter = following, counter + 1


def age_scrypt_decrypt(sealed: BinaryIO, out: BinaryIO, passphrase: str) -> None:
    """Decrypt an age file locked with a passphrase from `sealed` into `out`, 64 KiB at a time. What reaches `out`
    is authenticated chunk by chunk; the end is authenticated by the final chunk, so a truncation raises."""
    header, stanzas, mac = read_age_header(sealed)
    if len(stanzas) != 1 or stanzas[0][0][0] != b"scrypt":
        raise BackupError("this age file is not locked with a passphrase alone")
    args, body = stanzas[0]
    if len(args) != 3 or not re.fullmatch(rb"[1-9][0-9]*", args[2]) or len(body) != 32:
        raise _altered()
    salt, log_n = _unb64(args[1]), int(args[2])
    if len(salt) != 16:
        raise _altered()
    if log_n > MAX_SCRYPT_LOG_N:
        raise BackupError(f"the archive asks for a scrypt work factor of 2^{log_n}, above the 2^{MAX_SCRYPT_LOG_N} "
                          "a restore accepts: nothing was restored")
    try:
        file_key = ChaCha20Poly1305(_scrypt_key(passphrase, salt, log_n)).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        raise BackupError("wrong passphrase: nothing was restored") from None
    if not hmac.compare_digest(_header_mac(file_key, header), mac):
        raise _altered()
    nonce = _read_full(sealed, 16)
    if len(nonce) != 16:
        raise _altered()
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    chunk, counter = _read_full(sealed, CHUNK + TAG), 0
    while True:
        if len(chunk) < TAG:
            raise _altered()  # cut short: the final chunk is missing
        following = _read_full(sealed, CHUNK + TAG) if len(chunk) == CHUNK + TAG else b""
        last = not following
        try:
            plain = aead.decrypt(_chunk_nonce(counter, last), chunk, None)
        except InvalidTag:
            raise _altered() from None
        if last and not plain and counter:
            raise _altered()  # an empty final chunk after others: not a valid age payload
        out.write(plain)
        if last:
            return
        chunk, counter = following, counter + 1


def read_age_header(sealed: BinaryIO) -> tuple[bytes, list[tuple[list[bytes], bytes]], bytes]:
    """The header as the MAC covers it (up to `---`), its stanzas (arguments, body) and the MAC; `sealed` is left
    at the payload's first byte."""
    if sealed.readline(len(AGE_MAGIC)) != AGE_MAGIC:
        raise BackupError("not an age file")
    seen, stanzas = [AGE_MAGIC], []
    for _ in range(_MAX_HEADER_LINES):
        line = sealed.readline(_MAX_HEADER_LINE)
        if not line.endswith(b"\n"):
            raise _altered()
        if line.startswith(b"--- "):
            mac = _unb64(line[4:-1])
            if len(mac) != 32:
                raise _altered()
            return b"".join(seen) + b"---", stanzas, mac
        args = line[3:-1].split(b" ")
        if not line.startswith(b"-> ") or not all(args):
            raise _altered()
        seen.append(line)
        body_lines = []
        while True:
            body_line = sealed.readline(66)
            if not body_line.endswith(b"\n") or len(body_line) > 65:
                raise _altered()
            seen.append(body_line)
            body_lines.append(body_line[:-1])
            if len(body_line) < 65:
                break
        stanzas.append((args, _unb64(b"".join(body_lines))))
    raise _altered()


def _altered() -> BackupError:
    return BackupError("the archive was altered or is damaged (age could not authenticate it): nothing was restored")


def _scrypt_key(passphrase: str, salt: bytes, log_n: int) -> bytes:
    return Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=2**log_n, r=8, p=1).derive(passphrase.encode())


def _hkdf(key: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _header_mac(file_key: bytes, header: bytes) -> bytes:
    return hmac.new(_hkdf(file_key, None, b"header"), header, "sha256").digest()  # no salt: HKDF's zero salt


def _chunk_nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(text: bytes) -> bytes:
    """Canonical unpadded base64, as age requires; anything else is an altered header."""
    if not re.fullmatch(rb"[A-Za-z0-9+/]*", text):
        raise _altered()
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise _altered() from None
    if _b64(data) != text:
        raise _altered()
    return data


def _read_full(source: Any, size: int) -> bytes:
    """`size` bytes, fewer only at the end (a pipe or a TarStream may give less per read)."""
    pieces, left = [], size
    while left:
        piece = source.read(left)
        if not piece:
            break
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


# ---- the old format (REHAB-BACKUP-1), read only ----------------------------------------------------------------

def legacy_open(sealed: bytes, passphrase: str) -> bytes:
    """The tar inside an archive of the old format: AES-256-GCM under a scrypt key, the header as associated data."""
    header_end = len(LEGACY_MAGIC) + _LEGACY_HEADER.size
    if not sealed.startswith(LEGACY_MAGIC) or len(sealed) < header_end + 16:
        raise BackupError("this is not a Rehab Support backup archive")
    salt, n, r, p, nonce = _LEGACY_HEADER.unpack(sealed[len(LEGACY_MAGIC):header_end])
    if not (2**14 <= n <= 2**20 and r <= 32 and p <= 16):
        raise BackupError("the archive's key-derivation settings are out of range")
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    try:
        return AESGCM(key).decrypt(nonce, sealed[header_end:], sealed[:header_end])
    except InvalidTag:
        raise BackupError("wrong passphrase, or the archive was altered: nothing was restored") from None


# ---- small helpers -------------------------------------------------------------------------------------------

def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")


def write_owner_only(path: Path, data: bytes, *, replace: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace:
        path.unlink(missing_ok=True)
    with _create_owner_only(path) as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _create_owner_only(path: Path) -> io.BufferedWriter:
    """A new file only its owner may read (never an existing one: O_EXCL)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


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
