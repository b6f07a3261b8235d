"""`rehab backup` / `rehab restore`: a running system's data survives a wipe; a tampered archive, a wrong passphrase
or a running system stop a restore before it writes anything; the keys travel only when asked; a restore asks
before it replaces anything, and both show their steps on stderr without a value from the databases."""

from __future__ import annotations

import os
import pty
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from ops import backup as backups
from tests.support.nats import free_port
from tests.support.postgres import create_database, drop_database
from tests.support.system import EXTERNAL_PG, PROCESSES, STAFF_PASSWORD, System, sign_in

PASSPHRASE = "correct horse battery staple"
NAME = "Алесь Бабровіч-Зэльвенскі"  # made up; searched for in clear in the archive


def rehab(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


# ---- the whole system --------------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_back_up_a_running_system_wipe_it_and_restore_it(tmp_path: Path) -> None:
    system = System(tmp_path)
    archive = tmp_path / "rehab.backup"
    env = {**system.env, "REHAB_BACKUP_PASSPHRASE": PASSPHRASE}
    try:
        system.start()
        admin = sign_in(system.url, grant_type="password", username="admin", password=system.env["REHAB_ADMIN_PASSWORD"])
        assert admin.post("/api/admin/users", json={"username": "casey", "password": STAFF_PASSWORD,
                                                     "roles": ["caseworker"]}).status_code == 201
        caseworker = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        case = caseworker.post("/api/intake/cases", json={"full_name": NAME, "country": "LT"})
        assert case.status_code == 201, case.text

        made = rehab("backup", str(archive), env=env)  # online, while the system runs
        assert made.returncode == 0, made.stdout + made.stderr
        assert "NOT in it" in made.stdout  # the operator is told to keep the keys apart
        refused = rehab("restore", str(archive), "--yes", env=env)
        assert refused.returncode == 1 and "running" in refused.stderr
        assert system.stop() == 0

        sealed = archive.read_bytes()
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        for clear in (NAME.encode(), "Бабровіч".encode(), b"CREATE TABLE", b"token_signing"):
            assert clear not in sealed

        wipe_databases(system)
        restored = rehab("restore", str(archive), "--yes", env=env)
        assert restored.returncode == 0, restored.stdout + restored.stderr

        system.start()
        caseworker = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
        back = caseworker.get(f"/api/intake/cases/{case.json()['id']}")
        assert back.status_code == 200 and back.json()["full_name"] == NAME
        assert system.stop() == 0
    finally:
        system.cleanup()


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
    for name in ("gateway", "intake", "referrals", "funds", "nats"):
        monkeypatch.setenv(f"REHAB_{name.upper()}_PORT", str(free_port()))
    for name in PROCESSES:
        monkeypatch.delenv(f"REHAB_{name.upper()}_DATABASE_URL", raising=False)
    return directory


def notes(state: Path, name: str) -> list[str]:
    with sqlite3.connect(state / f"{name}.db") as conn:
        return [row[0] for row in conn.execute("SELECT body FROM notes")]


def test_round_trip_without_the_keys_by_default(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    manifest = backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    assert sorted(manifest["members"]) == sorted(f"db/{name}.sqlite" for name in PROCESSES)
    assert manifest["includes_secrets"] is False
    for name in PROCESSES:
        (state / f"{name}.db").unlink()
    (state / "intake.db-wal").write_bytes(b"stale log of the wiped database")
    backups.restore(backups.BackupSettings(), archive, PASSPHRASE)
    for name in PROCESSES:
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


@pytest.mark.parametrize("where", ["header", "body", "tag"])
def test_a_tampered_archive_is_refused_before_anything_is_written(state: Path, tmp_path: Path, where: str) -> None:
    archive = tmp_path / "a.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)
    sealed = bytearray(archive.read_bytes())
    position = {"header": len(backups.MAGIC) + 2, "body": len(sealed) // 2, "tag": len(sealed) - 1}[where]
    sealed[position] ^= 0x01
    archive.write_bytes(bytes(sealed))
    with sqlite3.connect(state / "funds.db") as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('written after the backup')")
    with pytest.raises(backups.BackupError, match="altered"):
        backups.restore(backups.BackupSettings(), archive, PASSPHRASE)
    assert "written after the backup" in notes(state, "funds")  # untouched


def test_wrong_passphrase_and_running_system_are_refused_through_the_command(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    env = dict(os.environ)
    made = rehab("backup", str(archive), env=env, stdin=PASSPHRASE + "\n")  # the passphrase on stdin
    assert made.returncode == 0, made.stderr
    assert "backup: 5 of 5 steps (100%), done after" in made.stderr  # no terminal: plain lines, no bar
    assert rehab("backup", str(archive), env=env, stdin=PASSPHRASE + "\n").returncode == 1  # never overwrites
    wrong = rehab("restore", str(archive), "--yes", env=env, stdin="not the passphrase at all\n")
    assert wrong.returncode == 1 and "wrong passphrase" in wrong.stderr
    with socket_on(int(env["REHAB_INTAKE_PORT"])):
        busy = rehab("restore", str(archive), "--yes", env=env, stdin=PASSPHRASE + "\n")
        assert busy.returncode == 1 and "running" in busy.stderr
        forced = rehab("restore", str(archive), "--force", "-y", env=env, stdin=PASSPHRASE + "\n")
        assert forced.returncode == 0, forced.stderr
    short = rehab("backup", str(tmp_path / "b.backup"), env=env, stdin="short\n")
    assert short.returncode == 1 and "at least" in short.stderr


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

    declined = rehab_on_a_terminal("restore", str(archive), answer="n\n")
    assert declined.returncode == 1, declined.stderr
    assert f"the funds database, {(state / 'funds.db').resolve()}" in declined.stdout
    assert "Restore? [y/N]" in declined.stdout and "nothing was restored" in declined.stderr
    assert "written after the backup" in notes(state, "funds")

    accepted = rehab_on_a_terminal("restore", str(archive), answer="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert notes(state, "funds") == [f"funds: {NAME}"]
    assert "restore: 4 of 4 steps (100%), done after" in accepted.stderr  # stderr is no terminal: plain lines
    for said in (declined, accepted):
        assert NAME not in said.stdout + said.stderr  # names of processes and files, never what they hold


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
