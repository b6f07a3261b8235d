"""`rehab backup` and `rehab restore` with no terminal and no passphrase given: an outside review found that a backup
said "the passphrase must have at least 12 characters" where nothing was typed; now each says there is no terminal to
ask on, and what to give instead, before anything is copied or replaced."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops import backup as backups
from ops.cli import app
from tests.support.nats import free_port
from tests.support.system import PROCESSES

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small database per process; nothing listens on the system's ports; no passphrase in the environment."""
    directory = tmp_path / "var"
    (directory / "secrets").mkdir(parents=True)
    for name in PROCESSES:
        with sqlite3.connect(directory / f"{name}.db") as conn:
            conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    monkeypatch.setenv("REHAB_STATE_DIR", str(directory))
    for name in ("gateway", "intake", "referrals", "funds", "reports", "nats"):
        monkeypatch.setenv(f"REHAB_{name.upper()}_PORT", str(free_port()))
    for name in PROCESSES:
        monkeypatch.delenv(f"REHAB_{name.upper()}_DATABASE_URL", raising=False)
    monkeypatch.delenv("REHAB_BACKUP_PASSPHRASE", raising=False)
    return directory


@pytest.mark.parametrize("stdin", ["", "\n"])
def test_a_backup_without_a_terminal_or_a_passphrase_says_where_to_give_one(state: Path, tmp_path: Path,
                                                                            stdin: str) -> None:
    archive = tmp_path / "a.backup"

    result = CliRunner().invoke(app, ["backup", str(archive)], input=stdin)

    assert result.exit_code == 2, result.output
    assert "no terminal to ask for the backup passphrase on" in result.stderr
    assert "REHAB_BACKUP_PASSPHRASE" in result.stderr and "--recipient" in result.stderr
    assert "at least 12" not in result.stderr
    assert not archive.exists() and not [p for p in state.iterdir() if p.name.startswith(".backup-")]


def test_a_passphrase_on_stdin_still_locks_the_backup(state: Path, tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"

    result = CliRunner().invoke(app, ["backup", str(archive)], input=PASSPHRASE + "\n")

    assert result.exit_code == 0, result.output
    assert backups.archive_kind(archive) == backups.PASSPHRASE


def test_a_restore_without_a_terminal_or_a_passphrase_says_so_and_replaces_nothing(state: Path,
                                                                                  tmp_path: Path) -> None:
    archive = tmp_path / "a.backup"
    backups.backup(backups.BackupSettings(), archive, PASSPHRASE)

    result = CliRunner().invoke(app, ["restore", str(archive), "--yes"], input="")

    assert result.exit_code == 2, result.output
    assert "no terminal to ask for the backup passphrase on" in result.stderr
    assert "REHAB_BACKUP_PASSPHRASE" in result.stderr and "--recipient" not in result.stderr
