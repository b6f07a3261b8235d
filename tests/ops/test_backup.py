"""`rehab backup` / `rehab restore`: a running system's data survives a wipe; the archive is a standard age file
holding a tar, locked with a passphrase or to recipients (the stock `age` tool and rage open it, and ours opens
rage's); a tampered or cut archive, a wrong passphrase or identity, or a running system stop a restore before it
writes anything; a large database goes through without being held in memory; the keys travel only when asked; a
restore asks before it replaces anything, and both show their steps on stderr without a value from the databases;
an archive of the old format still restores, and says so."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import select
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pyrage
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.engine import make_url

from ops import backup as backups
from tests.support.nats import free_port
from tests.support.postgres import create_database, drop_database
from tests.support.system import EXTERNAL_PG, PROCESSES, STAFF_PASSWORD, Client, System, sign_in

PASSPHRASE = "correct horse battery staple"
NAME = "Алесь Бабровіч-Зэльвенскі"  # made up; searched for in clear in the archive


def rehab(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


# ---- the whole system --------------------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.timeout(300)  # two starts, two restores, a key rotation: minutes on a busy machine
def test_back_up_a_running_system_wipe_it_and_restore_it(tmp_path: Path) -> None:
    # Its own NATS, whose stream AUDIT holds this system's checkpoints alone; a checkpoint after every new entry.
    # This month's figures published as they change (REHAB_REPORTS_SETTLING_DAYS below zero): the report's count of
    # the cases opened here is what shows the restore took the reports database back too.
    system = System(tmp_path, own_nats=True, env={"REHAB_AUDIT_CHECKPOINT_ENTRIES": "1",
                                                  "REHAB_REPORTS_SETTLING_DAYS": "-62"})
    archive = tmp_path / "rehab.backup"
    env = {**system.env, "REHAB_BACKUP_PASSPHRASE": PASSPHRASE}
    try:
        system.start()
        admin = sign_in(system.url, grant_type="password", username="admin", password=system.env["REHAB_ADMIN_PASSWORD"])
        assert admin.post("/api/admin/users", json={"username": "casey", "password": STAFF_PASSWORD,
                                                     "roles": ["caseworker"]}).status_code == 201
        assert admin.post("/api/admin/users", json={"username": "fiona", "password": STAFF_PASSWORD,
                                                     "roles": ["finance"]}).status_code == 201
        caseworker = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        case = caseworker.post("/api/intake/cases", json={"full_name": NAME, "country": "LT"})
        assert case.status_code == 201, case.text
        for number in range(4):  # five in all: the programme report publishes the count as it is
            assert caseworker.post("/api/intake/cases", json={"full_name": f"Case {number}"}).status_code == 201
        finance = sign_in(system.url, grant_type="password", username="fiona", password=STAFF_PASSWORD)
        assert cases_opened_in_the_report(finance, reaching=5) == 5

        # A session open at the backup, ended after it (signed out everywhere): the restore must not revive it.
        ended = httpx.post(system.url + "/auth/token", data={"grant_type": "password", "username": "fiona",
                                                             "password": STAFF_PASSWORD}, timeout=10).json()
        made = rehab("backup", str(archive), env=env)  # online, while the system runs
        assert made.returncode == 0, made.stdout + made.stderr
        # A case after the backup: the restored system does not hold it, and its report must not count it.
        assert caseworker.post("/api/intake/cases", json={"full_name": "After the backup"}).status_code == 201
        assert cases_opened_in_the_report(finance, reaching=6) == 6
        time.sleep(3)  # signed into the checkpoints: entries the restore will take away
        assert "NOT in it" in made.stdout  # the operator is told to keep the keys apart
        assert httpx.post(system.url + "/auth/sessions/revoke-all", timeout=10, headers={
            "Authorization": f"Bearer {ended['access_token']}"}).status_code == 204
        refused = rehab("restore", str(archive), "--yes", env=env)
        assert refused.returncode == 1 and "running" in refused.stderr
        assert system.stop() == 0

        sealed = archive.read_bytes()
        assert sealed.startswith(b"age-encryption.org/v1\n-> scrypt ")  # a standard age file, for a passphrase
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        for clear in (NAME.encode(), "Бабровіч".encode(), b"CREATE TABLE", b"token_signing"):
            assert clear not in sealed

        wipe_databases(system)
        restored = rehab("restore", str(archive), "--yes", env=env)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        for name in PROCESSES:  # the trails put back, signed as restored: each goes on from there
            assert f"audit checkpoint of the restored trail: {name}: signed at seq" in restored.stdout, restored.stdout
        assert "every session ended" in restored.stdout, restored.stdout

        checkpoints_before = int(next(line for line in rehab("audit", "verify", env=env).stdout.splitlines()
                                      if line.startswith("intake ")).split()[3])
        system.start()
        caseworker = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        back = caseworker.get(f"/api/intake/cases/{case.json()['id']}")
        assert back.status_code == 200 and back.json()["full_name"] == NAME
        revived = httpx.post(system.url + "/auth/token", timeout=10, data={
            "grant_type": "refresh_token", "refresh_token": ended["refresh_token"]})
        assert revived.status_code == 400 and revived.json()["error"] == "invalid_grant", revived.text
        # The programme report is back as it was at the backup: neither empty nor counting the case made after it.
        finance = sign_in(system.url, grant_type="password", username="fiona", password=STAFF_PASSWORD)
        assert cases_opened_in_the_report(finance, reaching=5) == 5
        # The audit trails verify, the restore shown; and the processes sign their trails again.
        assert caseworker.post("/api/intake/cases", json={"full_name": "After the restore"}).status_code == 201
        time.sleep(3)
        verified = rehab("audit", "verify", env=env)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.count("restored from the backup of") >= len(PROCESSES)
        assert "disagrees with its last checkpoint" not in system.console()  # each signs its trail again
        intake = next(line for line in verified.stdout.splitlines() if line.startswith("intake "))
        assert int(intake.split()[3]) > checkpoints_before  # a checkpoint since the restore's
        assert system.stop() == 0

        # The README's rotation, then retirement: the backup's data keys are wrapped under a KEK no keyring holds
        # now. The restore once said it succeeded and every case answered 500: now it says so, and fails.
        for step in (("keys", "rotate"), ("keys", "retire", "--yes")):
            done = rehab(*step, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
        assert "keep a copy of the secrets folder" in done.stderr
        keyless = rehab("restore", str(archive), "--yes", env=env)
        assert keyless.returncode == 1, keyless.stdout + keyless.stderr
        assert "intake: k1 (" in keyless.stderr and "cannot be opened" in keyless.stderr
    finally:
        system.cleanup()


def cases_opened_in_the_report(finance: Client, *, reaching: int) -> object:
    """This month's cases opened in the programme report, once it shows `reaching` (its consumers apply events a
    moment after they happen), or as it stands after ten seconds."""
    month = datetime.now(UTC).strftime("%Y-%m")
    deadline = time.monotonic() + 10
    while True:
        report = finance.get(f"/api/reports/programme?from={month}&to={month}")
        assert report.status_code == 200, report.text
        opened = report.json()["cases"]["cells"][month]["opened"]
        if opened == reaching or time.monotonic() > deadline:
            return opened
        time.sleep(0.2)


def wipe_databases(system: System) -> None:
    for name in PROCESSES:
        url = system.database_url(name)
        if url.startswith("sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(make_url(url).database + suffix).unlink(missing_ok=True)
        else:
            drop_database(EXTERNAL_PG, url)
            create_database(EXTERNAL_PG, make_url(url).database)


# ---- the archive itself, on small SQLite databases ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def quick_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, a cheaper passphrase KDF (2**14): the commands run as processes keep age's 2**18."""
    monkeypatch.setattr(backups, "SCRYPT_LOG_N", 14)


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state folder with a small database per process and a secrets folder; nothing listens on its ports."""
    directory = tmp_path / "var"
    (directory / "secrets").mkdir(parents=True)
    (directory / "secrets" / "kek.json").write_text('{"k1": "not a real key"}')
    for name in PROCESSES:
        with sqlite3.connect(directory / f"{name}.db") as conn:
            conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
            conn.execute("INSERT INTO notes (body) VALUES (?)", (f"{name}: {NAME}",))
    monkeypatch.setenv("REHAB_STATE_DIR", str(directory))
    for name in ("gateway", "intake", "referrals", "funds", "reports", "nats"):
        monkeypatch.setenv(f"REHAB_{name.upper()}_PORT", str(free_port()))
    for name in PROCESSES:
        monkeypatch.delenv(f"REHAB_{name.upper()}_DATABASE_URL", raising=False)
    monkeypatch.delenv("REHAB_BACKUP_PASSPHRASE", raising=False)
    return directory


@pytest.fixture
def trustee(tmp_path: Path) -> tuple[pyrage.x25519.Identity, Path]:
    """An age identity kept elsewhere (a trustee's), and its identity file in age's format."""
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "trustee" / "key.txt"
    path.parent.mkdir()
    path.write_text(f"# created: by the test\n# public key: {identity.to_public()}\n{identity}\n")
    return identity, path


def scratch_left(state: Path) -> list[str]:
    """Plaintext working folders left in the state folder (there must be none once a command is over)."""
    return sorted(p.name for p in state.iterdir() if p.name.startswith((".backup-", ".restore-")))


def add_note(state: Path, name: str, body: str) -> None:
    with sqlite3.connect(state / f"{name}.db") as conn:
        conn.execute("INSERT INTO notes (body) VALUES (?)", (body,))


def notes(state: Path, name: str) -> list[str]:
    with sqlite3.connect(state / f"{name}.db") as conn:
        return [row[0] for row in conn.execute("SELECT body FROM notes")]


def test_round_trip_without_the_keys_by_default(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    manifest = backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    assert sorted(manifest["members"]) == sorted(f"db/{name}.sqlite" for name in backups.PROCESSES)
    assert manifest["includes_secrets"] is False
    for name in backups.PROCESSES:
        (state / f"{name}.db").unlink()
    (state / "intake.db-wal").write_bytes(b"stale log of the wiped database")
    backups.restore(backups.BackupSettings(), archive, PASSPHRASE)
    for name in backups.PROCESSES:
        assert notes(state, name) == [f"{name}: {NAME}"]
    assert not (state / "intake.db-wal").exists()


def test_the_keys_travel_only_when_asked(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "with-keys.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE, include_secrets=True)
    kek = (state / "secrets" / "kek.json").read_bytes()
    (state / "secrets" / "kek.json").unlink()
    backups.restore(backups.BackupSettings(), archive, PASSPHRASE)
    assert (state / "secrets" / "kek.json").read_bytes() == kek
    assert stat.S_IMODE((state / "secrets" / "kek.json").stat().st_mode) == 0o600
    (state / "secrets" / "kek.json").write_text("another key")
    with pytest.raises(backups.BackupError, match="differ"):
        backups.restore(backups.BackupSettings(), archive, PASSPHRASE)


def test_an_archive_for_recipients_opens_with_an_identity_and_no_passphrase(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path]) -> None:
    identity, key_file = trustee
    other = pyrage.x25519.Identity.generate()
    recipients_file = tmp_path / "recipients.txt"
    recipients_file.write_text(f"# the second trustee\n\n{other.to_public()}\n")
    archive = tmp_path / "a.age"
    env = dict(os.environ)  # no REHAB_BACKUP_PASSPHRASE, and nothing on stdin: nothing may be asked

    made = rehab("backup", str(archive), "--recipient", str(identity.to_public()), "-R", str(recipients_file),
                 env=env, stdin="")
    assert made.returncode == 0, made.stderr
    assert "encrypted to 2 age recipient(s)" in made.stdout
    header = archive.read_bytes()[:1000]
    assert header.startswith(b"age-encryption.org/v1\n") and header.count(b"-> X25519 ") == 2
    assert b"scrypt" not in header

    add_note(state, "funds", "written after the backup")
    asked = rehab("restore", str(archive), "--yes", env=env, stdin=PASSPHRASE + "\n")
    assert asked.returncode == 1 and "--identity" in asked.stderr  # no identity: told what to give, nothing asked
    restored = rehab("restore", str(archive), "--yes", "--without-erasure-ledger", "--identity", str(key_file), env=env, stdin="")
    assert restored.returncode == 0, restored.stderr
    assert notes(state, "funds") == [f"funds: {NAME}"]

    second = tmp_path / "second.txt"  # the other trustee's key opens it as well
    second.write_text(f"{other}\n")
    assert rehab("restore", str(archive), "-y", "--without-erasure-ledger", "-i", str(second), env=env, stdin="").returncode == 0
    assert scratch_left(state) == []


def test_a_wrong_recipient_is_refused_before_anything_is_copied(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.age"
    made = rehab("backup", str(archive), "-r", "age1notakeyatall", env=dict(os.environ), stdin="")
    assert made.returncode == 1 and "not an age recipient" in made.stderr
    assert "backup:" not in made.stderr  # refused before the first step
    assert not archive.exists() and scratch_left(state) == []


def test_an_identity_file_locked_with_a_passphrase_opens_the_archive(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path]) -> None:
    identity, key_file = trustee
    archive = tmp_path / "a.age"
    backups.backup(backups.BackupSettings(), archive, recipients=[str(identity.to_public())])
    locked = tmp_path / "key.age"  # as `age-keygen | age -p > key.age` makes it (a cheap work factor: a test)
    with key_file.open("rb") as plain, locked.open("wb") as sealed:
        backups.age_scrypt_encrypt(plain, sealed, PASSPHRASE, log_n=10)

    with pytest.raises(backups.BackupError, match="wrong passphrase for the identity file"):
        backups.read_identities(locked, lambda: "not the passphrase")
    identities = backups.read_identities(locked, lambda: PASSPHRASE)
    add_note(state, "funds", "written after the backup")
    backups.restore(backups.BackupSettings(), archive, identities=identities)
    assert notes(state, "funds") == [f"funds: {NAME}"]


@pytest.mark.parametrize("key", ["identity", "passphrase"])
def test_a_wrong_identity_or_passphrase_is_refused_before_anything_is_written(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path], key: str) -> None:
    identity, _ = trustee
    archive = tmp_path / "a.age"
    settings = backups.BackupSettings()
    if key == "identity":
        backups.backup(settings, archive, recipients=[str(identity.to_public())])
        opening = {"identities": [pyrage.x25519.Identity.generate()]}
        said = "none of the given identities opens this archive"
    else:
        backups.backup(settings, archive, PASSPHRASE)
        opening = {"passphrase": "correct horse battery stable"}
        said = "wrong passphrase"
    add_note(state, "funds", "written after the backup")
    before = {name: (state / f"{name}.db").read_bytes() for name in PROCESSES}

    with pytest.raises(backups.BackupError, match=said):
        backups.restore(settings, archive, **opening)

    assert {name: (state / f"{name}.db").read_bytes() for name in PROCESSES} == before
    assert scratch_left(state) == []


def payload_start(sealed: bytes) -> int:
    """Where an age file's payload (its 16-byte nonce, then the chunks) begins: after the `--- MAC` line."""
    return sealed.index(b"\n---") + sealed[sealed.index(b"\n---") + 1:].index(b"\n") + 2


@pytest.mark.parametrize("lock", ["passphrase", "recipients"])
@pytest.mark.parametrize("where", ["mac", "nonce", "middle", "last byte", "cut at a chunk", "cut", "appended"])
def test_a_tampered_archive_is_refused_before_anything_is_written(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path], lock: str, where: str) -> None:
    with sqlite3.connect(state / "intake.db") as conn:  # a payload of several 64 KiB chunks
        conn.execute("CREATE TABLE filler (data BLOB)")
        conn.execute("INSERT INTO filler VALUES (randomblob(300000))")
    identity, _ = trustee
    archive = tmp_path / "a.age"
    settings = backups.BackupSettings()
    if lock == "passphrase":
        backups.backup(settings, archive, PASSPHRASE)
        opening: dict = {"passphrase": PASSPHRASE}
    else:
        backups.backup(settings, archive, recipients=[str(identity.to_public())])
        opening = {"identities": [identity]}
    sealed = bytearray(archive.read_bytes())
    payload = payload_start(bytes(sealed))
    if where.startswith("cut"):
        sealed = sealed[: payload + 16 + backups.CHUNK + 16] if where == "cut at a chunk" else sealed[:-100]
    elif where == "appended":
        sealed += b"\0"
    else:
        position = {"mac": payload - 10, "nonce": payload + 3, "middle": (payload + len(sealed)) // 2,
                    "last byte": len(sealed) - 1}[where]
        sealed[position] ^= 0x01
    archive.write_bytes(bytes(sealed))
    add_note(state, "funds", "written after the backup")

    with pytest.raises(backups.BackupError, match="altered or is damaged"):
        backups.restore(settings, archive, **opening)

    assert "written after the backup" in notes(state, "funds")  # untouched
    assert scratch_left(state) == []


@pytest.mark.parametrize("entries", [
    {"manifest": "lies", "db/intake.sqlite": b"x"},
    {"db/intake.sqlite": b"x", "manifest": "honest"},  # the manifest not first
    {"manifest": "honest", "../escape": b"x"},
    {"manifest": "honest", "db/intake.sqlite": b"x", "db/extra.sqlite": b"y"},
    {"manifest": "honest", "db/intake.sqlite": b"x", "db/funds.sqlite": b"not listed"},
])
def test_an_authentic_archive_whose_contents_do_not_hold_together_is_refused(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path], entries: dict) -> None:
    """Encrypted correctly, but made by hand: only named members, the manifest first, each matching it."""
    identity, _ = trustee
    members = {name: data for name, data in entries.items() if name != "manifest"}
    listed = {name: {"sha256": hashlib.sha256(b"other" if entries.get("manifest") == "lies" else data).hexdigest(),
                     "bytes": len(data)} for name, data in members.items() if name == "db/intake.sqlite"}
    manifest = json.dumps({"format": 2, "created_at": "2026-01-01T00:00:00+00:00", "includes_secrets": False,
                           "members": listed}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, value in entries.items():
            data = manifest if name == "manifest" else value
            info = tarfile.TarInfo("manifest.json" if name == "manifest" else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "made-by-hand.age"
    archive.write_bytes(pyrage.encrypt(buffer.getvalue(), [identity.to_public()]))
    before = (state / "intake.db").read_bytes()

    with pytest.raises(backups.BackupError, match="manifest|unexpected entry"):
        backups.restore(backups.BackupSettings(), archive, identities=[identity])

    assert (state / "intake.db").read_bytes() == before
    assert scratch_left(state) == []


@pytest.mark.parametrize("lock", ["passphrase", "recipients"])
def test_no_name_or_member_is_in_clear_in_the_archive(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path], lock: str) -> None:
    identity, _ = trustee
    archive = tmp_path / "a.age"
    if lock == "passphrase":
        backups.backup(backups.BackupSettings(), archive, PASSPHRASE, include_secrets=True)
    else:
        backups.backup(backups.BackupSettings(), archive, recipients=[str(identity.to_public())],
                       include_secrets=True)
    sealed = archive.read_bytes()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    for clear in (NAME.encode(), "Бабровіч".encode(), NAME.encode("utf-16-le"), b"CREATE TABLE", b"notes",
                  b"SQLite format", b"manifest.json", b"db/intake", b"kek.json", b"not a real key"):
        assert clear not in sealed, clear
    assert scratch_left(state) == []


BIG = 96 << 20  # one database this large; the commands may use far less than that above what they start with

MEASURE = textwrap.dedent("""
    import os, resource, sys
    from pathlib import Path
    import pyrage
    from ops import backup as backups

    def peak() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    backups.SCRYPT_LOG_N = 15
    backups._scrypt_key("warm up", bytes(16), 15)  # the KDF's 32 MiB are in the baseline, not in the growth
    lock, archive = sys.argv[1], Path(sys.argv[2])
    identity = pyrage.x25519.Identity.generate()
    settings = backups.BackupSettings()
    before = peak()
    if lock == "passphrase":
        backups.backup(settings, archive, "a passphrase long enough")
    else:
        backups.backup(settings, archive, recipients=[str(identity.to_public())])
    after_backup = peak()
    (settings.state_dir / "intake.db").unlink()
    if lock == "passphrase":
        backups.restore(settings, archive, "a passphrase long enough")
    else:
        backups.restore(settings, archive, identities=[identity])
    print(before, after_backup, peak())
""")


@pytest.mark.parametrize("lock", ["passphrase", "recipients"])
def test_a_large_database_is_streamed_not_held_in_memory(state: Path, tmp_path: Path, lock: str) -> None:
    """The peak resident memory of a process that backs up and restores a 96 MiB database grows by much less than
    96 MiB (in the Python and in the Rust parts: RSS counts both); reading a member whole would fail it."""
    with sqlite3.connect(state / "intake.db") as conn:
        conn.execute("CREATE TABLE filler (data BLOB)")
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                     "INSERT INTO filler SELECT randomblob(1048576) FROM n", (BIG >> 20,))
    size = (state / "intake.db").stat().st_size
    assert size >= BIG
    archive = tmp_path / "big.age"

    done = subprocess.run([sys.executable, "-c", MEASURE, lock, str(archive)], capture_output=True, text=True,
                          timeout=120, check=False)

    assert done.returncode == 0, done.stderr
    before, after_backup, after_restore = map(int, done.stdout.split())
    assert archive.stat().st_size > size  # the big database is in it, encrypted
    assert after_backup - before < size // 4, (before, after_backup)
    assert after_restore - before < size // 4, (before, after_restore)
    assert (state / "intake.db").stat().st_size == size and notes(state, "intake") == [f"intake: {NAME}"]


# ---- the standard: rage and the stock age tool open what we write, and we open what they write ---------------------

@pytest.mark.parametrize("size", [0, 1, backups.CHUNK - 1, backups.CHUNK, backups.CHUNK + 1, 3 * backups.CHUNK])
def test_our_passphrase_files_open_with_rage(size: int) -> None:
    """Every chunk boundary: an empty payload, a full last chunk (never followed by an empty one), a short one."""
    data = os.urandom(size)
    sealed = io.BytesIO()
    backups.age_scrypt_encrypt(io.BytesIO(data), sealed, PASSPHRASE, log_n=10)
    assert pyrage.passphrase.decrypt(sealed.getvalue(), PASSPHRASE) == data
    with pytest.raises(pyrage.DecryptError):
        pyrage.passphrase.decrypt(sealed.getvalue(), "another passphrase")


def test_rage_passphrase_files_open_with_ours() -> None:
    """One file, several chunks and a short last one: rage calibrates its scrypt to about a second (2**20 here),
    and opening it costs as much again."""
    data = os.urandom(2 * backups.CHUNK + 5)
    sealed = pyrage.passphrase.encrypt(data, PASSPHRASE)
    opened = io.BytesIO()
    backups.age_scrypt_decrypt(io.BytesIO(sealed), opened, PASSPHRASE)
    assert opened.getvalue() == data
    ours = io.BytesIO()
    backups.age_scrypt_encrypt(io.BytesIO(data), ours, PASSPHRASE, log_n=10)
    with pytest.raises(backups.BackupError, match="wrong passphrase"):
        backups.age_scrypt_decrypt(io.BytesIO(ours.getvalue()), io.BytesIO(), "another passphrase")


AGE = shutil.which("age")
needs_age = pytest.mark.skipif(AGE is None, reason="the stock age tool is not installed (Debian: apt-get install "
                                                   "age), so opening an archive with it cannot be tried here")


def members_match_manifest(tar_bytes: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(members.pop("manifest.json"))
    assert set(members) == set(manifest["members"])
    for name, data in members.items():
        assert hashlib.sha256(data).hexdigest() == manifest["members"][name]["sha256"]
    return members


@needs_age
def test_the_stock_age_tool_opens_an_archive_made_for_a_recipient(
        state: Path, tmp_path: Path, trustee: tuple[pyrage.x25519.Identity, Path]) -> None:
    identity, key_file = trustee
    archive = tmp_path / "a.age"
    backups.backup(backups.BackupSettings(), archive, recipients=[str(identity.to_public())])

    opened = subprocess.run([AGE, "--decrypt", "--identity", str(key_file), str(archive)], capture_output=True,
                            timeout=60, check=False)

    assert opened.returncode == 0, opened.stderr
    members = members_match_manifest(opened.stdout)
    copy = tmp_path / "intake-copy.db"
    copy.write_bytes(members["db/intake.sqlite"])
    with sqlite3.connect(copy) as conn:
        assert [row[0] for row in conn.execute("SELECT body FROM notes")] == [f"intake: {NAME}"]


@needs_age
def test_the_stock_age_tool_opens_an_archive_locked_with_a_passphrase(state: Path, tmp_path: Path) -> None:
    """age reads a passphrase only from a terminal: it gets one (a pty), and the passphrase is typed into it."""
    archive, out = tmp_path / "a.age", tmp_path / "out.tar"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: age, with the pty as its terminal; never back into pytest
        try:
            os.execv(AGE, [AGE, "--decrypt", "--output", str(out), str(archive)])  # type: ignore[list-item]
        finally:
            os._exit(127)
    shown, typed, deadline = b"", False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.2)[0]:
                try:
                    piece = os.read(terminal, 1024)
                except OSError:  # the child is gone
                    break
                if not piece:
                    break
                shown += piece
                if not typed and b"passphrase" in shown.lower():
                    os.write(terminal, PASSPHRASE.encode() + b"\n")
                    typed = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(terminal)
    assert typed and os.waitstatus_to_exitcode(status) == 0, shown
    members_match_manifest(out.read_bytes())


# ---- the old format ------------------------------------------------------------------------------------------------

def old_format_archive(path: Path, members: dict[str, bytes], passphrase: str) -> None:
    """An archive as `rehab backup` wrote them before they were age files: REHAB-BACKUP-1, AES-256-GCM, scrypt."""
    manifest = {"format": 1, "created_at": "2026-01-01T00:00:00+00:00", "includes_secrets": False,
                "members": {n: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in members.items()}}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    salt, nonce, n, r, p = os.urandom(16), os.urandom(12), 2**14, 8, 1
    header = backups.LEGACY_MAGIC + backups._LEGACY_HEADER.pack(salt, n, r, p, nonce)
    key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    path.write_bytes(header + AESGCM(key).encrypt(nonce, buffer.getvalue(), header))


def test_an_archive_of_the_old_format_still_restores_and_says_so(state: Path, tmp_path: Path) -> None:
    old = {f"db/{name}.sqlite": (state / f"{name}.db").read_bytes() for name in backups.PROCESSES}
    archive = tmp_path / "old.backup"
    old_format_archive(archive, old, PASSPHRASE)
    add_note(state, "funds", "written after the backup")
    env = dict(os.environ)

    wrong = rehab("restore", str(archive), "--yes", env=env, stdin="not the passphrase at all\n")
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    key = tmp_path / "key.txt"
    key.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    mixed = rehab("restore", str(archive), "--yes", "--identity", str(key), env=env, stdin="")
    assert mixed.returncode == 1 and "locked with a passphrase" in mixed.stderr
    restored = rehab("restore", str(archive), "--yes", "--without-erasure-ledger", env=env, stdin=PASSPHRASE + "\n")

    assert restored.returncode == 0, restored.stderr
    assert "old REHAB-BACKUP-1 format" in restored.stderr and "take a new backup" in restored.stderr
    assert notes(state, "funds") == [f"funds: {NAME}"]
    assert scratch_left(state) == []


def test_something_else_is_not_taken_for_an_archive(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "notes.txt"
    archive.write_text("hello")
    with pytest.raises(backups.BackupError, match="not a Rehab Support backup"):
        backups.restore(backups.BackupSettings(), archive, PASSPHRASE)


def test_wrong_passphrase_and_running_system_are_refused_through_the_command(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    env = dict(os.environ)
    made = rehab("backup", str(archive), env=env, stdin=PASSPHRASE + "\n")  # the passphrase on stdin
    assert made.returncode == 0, made.stderr
    assert "backup: 6 of 6 steps (100%), done after" in made.stderr  # no terminal: plain lines, no bar
    assert rehab("backup", str(archive), env=env, stdin=PASSPHRASE + "\n").returncode == 1  # never overwrites
    wrong = rehab("restore", str(archive), "--yes", env=env, stdin="not the passphrase at all\n")
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    key = tmp_path / "key.txt"
    key.write_text(f"{pyrage.x25519.Identity.generate()}\n")
    mixed = rehab("restore", str(archive), "--yes", "--identity", str(key), env=env, stdin="")
    assert mixed.returncode == 1 and "locked with a passphrase" in mixed.stderr
    with socket_on(int(env["REHAB_INTAKE_PORT"])):
        busy = rehab("restore", str(archive), "--yes", env=env, stdin=PASSPHRASE + "\n")
        assert busy.returncode == 1 and "running" in busy.stderr
        forced = rehab("restore", str(archive), "--force", "-y", "--without-erasure-ledger", env=env,
                       stdin=PASSPHRASE + "\n")
        assert forced.returncode == 0, forced.stderr
    short = rehab("backup", str(tmp_path / "b.backup"), env=env, stdin="short\n")
    assert short.returncode == 1 and "at least" in short.stderr


def test_an_archive_without_the_report_database_says_to_rebuild_the_report(
        state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "a.backup"
    with monkeypatch.context() as before_reports_were_backed_up:
        before_reports_were_backed_up.setattr(backups, "PROCESSES", ("intake", "referrals", "funds", "gateway"))
        backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    add_note(state, "reports", "counted after the backup")

    restored = rehab("restore", str(archive), "--yes", "--without-erasure-ledger", env=dict(os.environ),
                     stdin=PASSPHRASE + "\n")

    assert restored.returncode == 0, restored.stderr
    assert "run `rehab reports rebuild`" in restored.stderr
    assert "counted after the backup" in notes(state, "reports")  # not in the archive: left as it was


def test_without_a_terminal_restore_needs_yes(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    with sqlite3.connect(state / "funds.db") as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('written after the backup')")

    refused = rehab("restore", str(archive), env=dict(os.environ), stdin=PASSPHRASE + "\n")

    assert refused.returncode == 2
    assert "no terminal to ask on: pass --yes" in refused.stderr
    assert "written after the backup" in notes(state, "funds")  # untouched


def rehab_on_a_terminal(*args: str, answer: str) -> subprocess.CompletedProcess:
    """`rehab …` with a terminal for stdin, `answer` typed ahead into it; stdout and stderr are pipes."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "ops.cli", *args], stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "REHAB_BACKUP_PASSPHRASE": PASSPHRASE})
        os.close(follower)
        os.write(leader, answer.encode())  # the terminal holds the line until the prompt reads it
        out, err = process.communicate(timeout=120)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def test_on_a_terminal_restore_asks_first_and_no_is_no(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    with sqlite3.connect(state / "funds.db") as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('written after the backup')")

    # These small databases have no NATS store beside them: no erasure ledger to replay (see the test below).
    declined = rehab_on_a_terminal("restore", str(archive), "--without-erasure-ledger", answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert f"the funds database, {(state / 'funds.db').resolve()}" in declined.stdout
    assert "Restore? [y/N]" in declined.stdout and "nothing was restored" in declined.stderr
    assert "written after the backup" in notes(state, "funds")

    accepted = rehab_on_a_terminal("restore", str(archive), "--without-erasure-ledger", answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert notes(state, "funds") == [f"funds: {NAME}"]
    assert "restore: 5 of 5 steps (100%), done after" in accepted.stderr  # stderr is no terminal: plain lines
    for said in (declined, accepted):
        assert NAME not in said.stdout + said.stderr  # names of processes and files, never what they hold


def test_without_the_erasure_ledger_a_restore_is_refused_unless_told(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    add_note(state, "intake", "written after the backup")
    env = {**os.environ, "REHAB_BACKUP_PASSPHRASE": PASSPHRASE}

    refused = rehab("restore", str(archive), "--yes", env=env)  # no NATS store here: the ledger can not be read
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "erasure ledger" in refused.stderr and "--without-erasure-ledger" in refused.stderr
    assert "Nothing was restored" in refused.stderr
    assert "written after the backup" in notes(state, "intake")  # refused before anything was written

    told = rehab("restore", str(archive), "--yes", "--without-erasure-ledger", env=env)
    assert told.returncode == 0, told.stdout + told.stderr
    assert "the erasure ledger was NOT replayed" in told.stderr
    assert notes(state, "intake") == [f"intake: {NAME}"]


class socket_on:  # noqa: N801 - used as a context manager, reads as one
    """Something listening on a port, as a running service would."""

    def __init__(self, port: int) -> None:
        import socket

        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
