"""The `rehab` command: its help, `secrets init`, and the groups it hands to the modules that own them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import DELEGATED, app, module_exists, run_module

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_rehab_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets; and no `.env` from the working folder."""
    for key in list(os.environ):
        if key.startswith("REHAB_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])

    assert result.exit_code == 0
    for command in ("up", "secrets", *DELEGATED):
        assert command in result.output


def test_secrets_init_creates_missing_secrets_once(tmp_path: Path) -> None:
    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}

    first = runner.invoke(app, ["secrets", "init"], env=env)
    kek = (tmp_path / "state" / "secrets" / "kek.json").read_bytes()
    second = runner.invoke(app, ["secrets", "init"], env=env)

    assert first.exit_code == 0 and "created secrets in" in first.output and "kek.json" in first.output
    assert second.exit_code == 0 and "using the existing ones" in second.output
    assert (tmp_path / "state" / "secrets" / "kek.json").read_bytes() == kek
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700


def test_a_bad_setting_is_named() -> None:
    result = runner.invoke(app, ["up"], env={"REHAB_GATEWAY_PORT": "eighty"})

    assert result.exit_code == 2
    assert "REHAB_GATEWAY_PORT" in result.output


def test_a_delegated_group_runs_its_module_with_every_argument(tmp_path: Path) -> None:
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "__init__.py").write_text("")
    (tmp_path / "gateway" / "manage.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\nsys.exit(7)\n")

    # A real process, run from the folder whose `gateway` package stands in for the real one.
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", "users", "add", "alice", "--roles", "admin", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 7
    assert json.loads(result.stdout) == ["users", "add", "alice", "--roles", "admin", "--help"]


def test_a_missing_module_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_module("ops.no_such_module", ["audit", "verify"]) == 2
    assert "ops.no_such_module does not exist" in capsys.readouterr().err


def test_module_exists_does_not_run_anything() -> None:
    assert module_exists("ops.cli")
    assert module_exists("ops")
    assert not module_exists("ops.no_such_module")
    assert not module_exists("kit.secrets.inner")  # kit.secrets is a module, not a package
    assert not module_exists("no_such_package.manage")
