"""The `rehab` command: its help, `secrets init`, and the groups it hands to the modules that own them."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from ops.cli import DELEGATED, app, module_exists, run_module

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # rich wraps help at the terminal's width; a usage line should not break in a test


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
    for command in ("up", "backup", "restore", "secrets", "audit", *DELEGATED):
        assert command in result.output


def command_tree() -> dict[tuple[str, ...], Any]:
    """Every group and command under `rehab`, by path: its own, and those of the modules it hands groups to (read
    from their typer apps, so that a command added there is walked here without a word in this test)."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    tree: dict = {(): root}
    for name, command in root.commands.items():
        if name in DELEGATED:
            owner = typer.main.get_command(importlib.import_module(DELEGATED[name][0]).app)
            assert isinstance(owner, TyperGroup)
            command = owner.commands[name]
        tree.update(_walk(command, (name,)))
    return tree


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def through_processes(path: tuple[str, ...]) -> bool:
    """Run as an operator runs it, in processes: `rehab --help`, and `rehab GROUP --help` for each group handed
    to a module (that module's own process then names itself `rehab`). The rest runs in this process, the same
    typer apps with the same program name: ~19 pairs of processes would cost a minute on two cores."""
    return len(path) == 0 or (len(path) == 1 and path[0] in DELEGATED)


def rehab_help(path: tuple[str, ...]) -> tuple[int, str]:
    """`rehab PATH --help`: its exit code and what it printed."""
    if not through_processes(path):
        owner = importlib.import_module(DELEGATED[path[0]][0]).app if path[0] in DELEGATED else app
        result = runner.invoke(owner, [*path, "--help"], prog_name="rehab", env=WIDE)
        return result.exit_code, result.output
    done = subprocess.run([sys.executable, "-m", "ops.cli", *path, "--help"], env={**os.environ, **WIDE},
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def test_every_group_and_command_has_help_that_names_it_as_typed(tmp_path: Path) -> None:
    tree = command_tree()
    assert {("keys", "status"), ("audit", "verify"), ("ledger", "check"), ("users", "reset-password"),
            ("secrets", "nats-users"), ("restore",)} <= set(tree)  # the walk reaches into every kind of group

    processes = [path for path in tree if through_processes(path)]
    with ThreadPoolExecutor(max_workers=3) as pool:  # the runner swaps sys.stdout: it stays in this thread
        helps = dict(zip(processes, pool.map(rehab_help, processes), strict=True))
    helps.update({path: rehab_help(path) for path in tree if not through_processes(path)})

    for path, command in tree.items():
        code, text = helps[path]
        typed = " ".join(("rehab", *path))
        assert code == 0, f"{typed} --help exited {code}:\n{text}"
        assert f"Usage: {typed} [OPTIONS]" in text, f"{typed} --help does not name itself as typed:\n{text}"
        assert "python -m" not in text
        for sub in getattr(command, "commands", {}):
            assert sub in text, f"{typed} --help hides {sub}"
    assert list(tmp_path.iterdir()) == []  # help runs nothing: no state folder, no database


def test_the_line_for_each_group_names_all_its_commands() -> None:
    tree = command_tree()
    listing = runner.invoke(app, ["--help"], prog_name="rehab", env=WIDE).output

    for path, command in tree.items():
        if len(path) != 1 or not isinstance(command, TyperGroup):
            continue
        group = path[0]
        line = next(line for line in listing.splitlines() if line.strip("│ ").startswith(group + " "))
        for sub in command.commands:
            assert sub in line, f"`rehab --help` says of {group}: {line.strip('│ ')!r}, without {sub}"


def test_keys_status_and_rotate_without_a_database_say_so_in_a_line(tmp_path: Path) -> None:
    state = tmp_path / "fresh"
    env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
    env["REHAB_STATE_DIR"] = str(state)

    def rehab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)

    status = rehab("keys", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout == "".join(f"{process}: no keyring yet at {state}/secrets/{process}/kek.json (run "
                                    "`rehab secrets init` or `rehab up` first)\n"
                                    for process in ("intake", "referrals", "funds"))
    assert status.stderr == ""

    rotate = rehab("keys", "rotate")
    assert rotate.returncode == 1
    assert rotate.stdout == "" and "Traceback" not in rotate.stderr
    assert rotate.stderr == "".join(f"error: no keyring yet at {state}/secrets/{process}/kek.json (run "
                                    "`rehab secrets init` or `rehab up` first)\n"
                                    for process in ("intake", "referrals", "funds"))

    assert not state.exists() or list(state.rglob("*")) == []  # neither made a database nor a key


def test_audit_verify_without_a_key_says_so_in_a_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"], env={"REHAB_STATE_DIR": str(tmp_path / "fresh")})

    assert result.exit_code == 2
    assert result.output.startswith(f"error: no audit keys under {tmp_path / 'fresh' / 'secrets'}")
    assert result.output.count("\n") == 1  # one line, no traceback


def test_secrets_init_creates_missing_secrets_once(tmp_path: Path) -> None:
    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}

    first = runner.invoke(app, ["secrets", "init"], env=env)
    kek = (tmp_path / "state" / "secrets" / "intake" / "kek.json").read_bytes()
    second = runner.invoke(app, ["secrets", "init"], env=env)

    assert first.exit_code == 0 and "created secrets in" in first.output and "intake/kek.json" in first.output
    assert second.exit_code == 0 and "using the existing ones" in second.output
    assert (tmp_path / "state" / "secrets" / "intake" / "kek.json").read_bytes() == kek
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


@pytest.mark.parametrize(("named", "seen"), [(None, "nats://127.0.0.1:18225"),
                                              ("nats://nats.example:4222", "nats://nats.example:4222")])
def test_a_handed_over_command_is_told_the_nats_rehab_up_runs(monkeypatch: pytest.MonkeyPatch, named: str | None,
                                                             seen: str) -> None:
    """`rehab reports rebuild` looked for NATS on the default port, whatever REHAB_NATS_PORT said (a traceback and
    exit 2 wherever the port had moved); an operator's REHAB_NATS_URL is still the one used."""
    monkeypatch.setenv("REHAB_NATS_PORT", "18225")
    if named:
        monkeypatch.setenv("REHAB_NATS_URL", named)
    told: dict[str, Any] = {}
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: told.update(kw) or subprocess.CompletedProcess(argv, 0))
    assert run_module("services.reports.manage", ["reports", "rebuild"]) == 0
    env = told["env"] if told["env"] is not None else os.environ
    assert env["REHAB_NATS_URL"] == seen


def test_keys_commands_under_sealed_custody_rotate_and_retire_inside_each_keys_sealed(tmp_path: Path) -> None:
    from kit.keyfiles import read_sealed_file
    from kit.secrets import ensure_secrets

    passphrase = "a passphrase for the keys test"
    state = tmp_path / "state"
    ensure_secrets(state / "secrets", custody="sealed", passphrase=passphrase)
    given = tmp_path / "unseal-passphrase"
    given.write_text(passphrase + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
    env |= {"REHAB_STATE_DIR": str(state), "REHAB_KEY_CUSTODY": "sealed", "UNSEAL_PASSPHRASE_FILE": str(given)}

    def rehab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)

    def keks(process: str) -> dict:
        return read_sealed_file(state / "secrets" / process / "keys.sealed", passphrase=passphrase)[0]["kek"]

    first = {process: keks(process)["keys"]["k1"] for process in ("intake", "referrals", "funds")}
    assert len(set(first.values())) == 3  # one keyring per service

    rotated = rehab("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert all(keks(process)["active"] == "k2" for process in first)
    status = rehab("keys", "status")
    assert status.returncode == 0 and "intake: custody sealed, active key-encryption key k2" in status.stdout

    retired = rehab("keys", "retire", "--yes")
    assert retired.returncode == 0, retired.stderr
    assert all(set(keks(process)["keys"]) == {"k2"} for process in first)

    env["UNSEAL_PASSPHRASE_FILE"] = str(tmp_path / "wrong")
    (tmp_path / "wrong").write_text("not the passphrase\n")
    refused = rehab("keys", "rotate")
    assert refused.returncode == 1 and "that passphrase does not open the keys" in refused.stderr  # before any change
    assert all(keks(process)["active"] == "k2" for process in first)


def test_keys_passphrase_seals_every_keys_sealed_again_under_a_new_passphrase_and_salt(tmp_path: Path) -> None:
    """After a leaked keys.sealed and a weak passphrase: every process's file opens under the new passphrase only,
    each with a fresh salt (a rotation alone kept the salt, the derived key and the passphrase)."""
    import json

    from kit.keyfiles import WrongPassphrase, read_sealed_file
    from kit.secrets import ensure_secrets
    from tests.support.nats import free_port

    old, new = "a weak old passphrase", "a long new unseal passphrase, never typed before"
    state = tmp_path / "state"
    ensure_secrets(state / "secrets", custody="sealed", passphrase=old)
    files = sorted((state / "secrets").glob("*/keys.sealed"))
    assert {path.parent.name for path in files} >= {"gateway", "intake", "referrals", "funds"}
    salts = {path: json.loads(path.read_text())["salt"] for path in files}
    bundles = {path: read_sealed_file(path, passphrase=old)[0] for path in files}
    (tmp_path / "old").write_text(old + "\n")
    (tmp_path / "new").write_text(new + "\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
    env |= {"REHAB_STATE_DIR": str(state), "REHAB_KEY_CUSTODY": "sealed", "UNSEAL_PASSPHRASE_FILE": str(tmp_path / "old"),
            **{f"REHAB_{name}_PORT": str(free_port()) for name in ("GATEWAY", "INTAKE", "REFERRALS", "FUNDS", "REPORTS",
                                                                  "NATS")}}

    changed = subprocess.run([sys.executable, "-m", "ops.cli", "keys", "passphrase", "--new-passphrase-file",
                              str(tmp_path / "new")], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert changed.returncode == 0, changed.stderr
    for path in files:
        assert read_sealed_file(path, passphrase=new)[0] == bundles[path], path  # the same keys inside
        assert json.loads(path.read_text())["salt"] != salts[path]
        with pytest.raises(WrongPassphrase):
            read_sealed_file(path, passphrase=old)
    assert old not in changed.stdout + changed.stderr and new not in changed.stdout + changed.stderr

    again = subprocess.run([sys.executable, "-m", "ops.cli", "keys", "passphrase", "--new-passphrase-file",
                            str(tmp_path / "new")], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 1 and "does not open the keys" in again.stderr  # the old one opens nothing now


def test_seal_with_nats_away_leaves_the_mark_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a raid NATS may be gone first: the command cannot reach the processes, but the mark it leaves seals every
    process of this machine, and the operator is told that, not only that something failed."""
    import nkeys

    from kit import control
    from tests.support.nats import free_port

    state = tmp_path / "var"
    monkeypatch.setenv("REHAB_STATE_DIR", str(state))
    seed = tmp_path / "ops.nk"
    seed.write_bytes(nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)).seed)
    result = CliRunner().invoke(app, ["seal", "--nats-url", f"nats://127.0.0.1:{free_port()}",
                                      "--nkey-seed", str(seed)])
    assert result.exit_code == 1
    assert (state / control.SEAL_MARK).exists()
    assert "seal mark is in" in result.output and "seals from it" in result.output


def test_up_refuses_while_a_restore_s_erasures_are_owed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rehab restore` marks the erasures owed before it replaces the databases and clears the mark once every one was
    re-applied: a restore stopped in between (a wrong unseal passphrase, a killed command) must not let the system
    start with people erased since the backup back in it."""
    from ops import erasures

    state = tmp_path / "var"
    state.mkdir()
    monkeypatch.setenv("REHAB_STATE_DIR", str(state))
    erasures.owe(state)
    refused = CliRunner().invoke(app, ["up"])
    assert refused.exit_code == 1
    assert "rehab erasures reapply" in refused.output and not (state / "logs").exists(), "nothing was started"
    erasures.settle(state)
    assert not erasures.owed(state)


@pytest.mark.parametrize("command", [["erasures", "reapply"], ["keys", "passphrase"], ["keys", "move-to-sealed"],
                                     ["audit", "restored", "--backup-made", "2026-12-01T10:00:00+00:00"]])
def test_commands_for_a_stopped_system_are_refused_while_it_runs(command: list[str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-applying the erasure ledger belongs before a restored system answers anyone, and a new unseal passphrase
    before processes holding the old one's key write again: either, while the system's ports are in use, is refused
    before it reads anything (the ledger, a passphrase). So is signing a trail as restored: under a running system it
    took a trail cut just then for one put back, and `verify` said ok (an outside review's find)."""
    from tests.ops.test_backup import socket_on
    from tests.support.nats import free_port

    port = free_port()
    monkeypatch.setenv("REHAB_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("REHAB_KEY_CUSTODY", "sealed")
    monkeypatch.setenv("REHAB_FUNDS_PORT", str(port))
    with socket_on(port):
        refused = CliRunner().invoke(app, command)
    assert refused.exit_code == 1, refused.output
    assert f"port {port} (funds) is in use: the system seems to be running" in refused.output


def test_restore_under_sealed_custody_asks_for_the_unseal_passphrase_before_it_replaces_anything() -> None:
    """The order in `rehab restore`: the erasure ledger read, the unseal passphrase had (a missing or wrong one stops
    it here), the mark left, and only then the databases put back (it asked for the passphrase after, and stopped
    between the two with the erased people back)."""
    import inspect

    from ops import cli

    source = inspect.getsource(cli.restore)
    steps = [source.index(step) for step in ("_erasure_ledger(", "needed_passphrase()", "erasures.owe(",
                                             "backups.put_back(", "erasures.reapply(ledger, unseal)")]
    assert steps == sorted(steps)


@pytest.mark.parametrize("custody", ["sealed", "openbao"])
def test_an_installation_of_plain_keys_is_not_given_new_keys_under_another_custody(tmp_path: Path,
                                                                                   custody: str) -> None:
    """Started under `sealed` (or `openbao`), an installation made under `file` got new keys beside its plain ones:
    every record unreadable, and the plain keys still on the disk (an outside review's find). Refused, saying so."""
    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}
    assert runner.invoke(app, ["secrets", "init"], env=env).exit_code == 0
    (tmp_path / "pass").write_text("a long unseal passphrase\n")
    changed = runner.invoke(app, ["secrets", "init"], env={**env, "REHAB_KEY_CUSTODY": custody,
                                                           "UNSEAL_PASSPHRASE_FILE": str(tmp_path / "pass"),
                                                           "OPENBAO_ADDR": "http://127.0.0.1:9"})
    assert changed.exit_code == 1 and "intake/kek.json" in changed.output and "REHAB_KEY_CUSTODY=file" in changed.output
    assert not list((tmp_path / "state" / "secrets").glob("*/keys.*"))


def test_an_installation_of_plain_keys_moved_to_sealed_then_starts_sealed(tmp_path: Path) -> None:
    """The way on from the refusal above: `rehab keys move-to-sealed` seals the keys it has, and the installation
    then starts under `sealed` with them (what they open is kept: tests/unit/kit/test_custody.py)."""
    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}
    assert runner.invoke(app, ["secrets", "init"], env=env).exit_code == 0
    (tmp_path / "pass").write_text("a long unseal passphrase\n")
    sealed = {**env, "REHAB_KEY_CUSTODY": "sealed", "UNSEAL_PASSPHRASE_FILE": str(tmp_path / "pass")}

    assert runner.invoke(app, ["keys", "move-to-sealed"], env=env).exit_code == 2  # custody not set to sealed yet
    moved = runner.invoke(app, ["keys", "move-to-sealed"], env=sealed)

    assert moved.exit_code == 0, moved.output
    assert "intake/kek.json" in moved.output and "rehab keys rotate" in moved.output
    started = runner.invoke(app, ["secrets", "init"], env=sealed)
    assert started.exit_code == 0, started.output
    folder = tmp_path / "state" / "secrets"
    assert not list(folder.glob("*/kek.json")) and not list(folder.glob("*/audit_signing.pem"))
    assert len(list(folder.glob("*/keys.sealed"))) == 5
    assert "nothing to move" in runner.invoke(app, ["keys", "move-to-sealed"], env=sealed).output


def test_a_move_to_sealed_that_stopped_half_way_says_so_and_the_system_does_not_start_until_it_is_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that refused reports' keys.sealed stopped the move with a traceback, and `rehab up` then started with
    new keys for the processes not sealed yet, the plain ones still on the disk (an outside review's find)."""
    from kit import secrets as secret_files

    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}
    assert runner.invoke(app, ["secrets", "init"], env=env).exit_code == 0
    (tmp_path / "pass").write_text("a long unseal passphrase\n")
    sealed = {**env, "REHAB_KEY_CUSTODY": "sealed", "UNSEAL_PASSPHRASE_FILE": str(tmp_path / "pass")}
    writes = secret_files.write_sealed_file

    def disk_full_at_reports(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.parent.name == "reports":
            raise OSError(28, "No space left on device", str(path))
        return writes(path, *args, **kwargs)

    monkeypatch.setattr(secret_files, "write_sealed_file", disk_full_at_reports)
    stopped = runner.invoke(app, ["keys", "move-to-sealed"], env=sealed)
    assert stopped.exit_code == 1 and "the move stopped" in stopped.output and "No space left" in stopped.output
    refused = runner.invoke(app, ["secrets", "init"], env=sealed)
    assert refused.exit_code == 1 and "stopped half-way" in refused.output, refused.output
    monkeypatch.setattr(secret_files, "write_sealed_file", writes)
    assert runner.invoke(app, ["keys", "move-to-sealed"], env=sealed).exit_code == 0
    assert runner.invoke(app, ["secrets", "init"], env=sealed).exit_code == 0
    assert not list((tmp_path / "state" / "secrets").glob("*/kek.json"))


@pytest.mark.parametrize("made", ["not a time at all", "2026-12-01T10:00:00", "2999-01-01T00:00:00+00:00"])
def test_audit_restored_takes_only_the_time_a_backup_was_made(tmp_path: Path, made: str) -> None:
    """Any text was taken and signed as a restore, and `verify` called a cut trail whole after it (an outside
    review's find): it takes a time with its offset, not in the future, or stops before anything is signed."""
    from ops.audit import app as audit_app

    refused = runner.invoke(audit_app, ["restored", "--backup-made", made],
                            env={"REHAB_STATE_DIR": str(tmp_path / "state")})
    assert refused.exit_code == 2 and "--backup-made takes the time" in refused.output
