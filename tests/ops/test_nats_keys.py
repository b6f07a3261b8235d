"""What `rehab up` gives NATS and each process: the embedded server's config made from the keys, each service and
the gateway told of its own key only; and `rehab secrets nats-users` for an operator's own NATS."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kit import nats_auth
from kit.secrets import NATS_SEED_FILES, ensure_secrets
from ops.cli import app
from ops.settings import SupervisorSettings
from ops.supervisor import StartupError
from ops.system import system_specs


@pytest.fixture(autouse=True)
def no_rehab_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("REHAB_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def seed_settings(spec_env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in spec_env.items() if ".nk" in value or "NKEY" in key}


@pytest.mark.parametrize("external", [False, True])
def test_each_process_is_told_of_its_own_key_only(tmp_path: Path, external: bool) -> None:
    state = tmp_path / "var"
    ensure_secrets(state / "secrets")
    settings = SupervisorSettings(state_dir=state, **({"nats_url": "nats://127.0.0.1:4999"} if external else {}))
    specs = {spec.name: spec for spec in system_specs(settings, state)}

    for process in nats_auth.PROCESSES:  # the services and the gateway, each its own key
        own = state.resolve() / "secrets" / NATS_SEED_FILES[process]
        assert seed_settings(dict(specs[process].env)) == {"REHAB_NATS_NKEY_SEED_FILE": str(own)}
    if external:
        assert "nats" not in specs
        return
    argv = list(specs["nats"].argv)
    config = Path(argv[argv.index("-c") + 1])
    assert config == state / "nats.conf" and stat.S_IMODE(config.stat().st_mode) == 0o600
    keys = nats_auth.public_keys(state / "secrets")
    assert config.read_text() == nats_auth.server_config(keys)
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_config_follows_the_keys_and_missing_keys_stop_the_start(tmp_path: Path) -> None:
    state = tmp_path / "var"
    with pytest.raises(StartupError, match="rehab secrets init"):
        system_specs(SupervisorSettings(state_dir=state), state)
    ensure_secrets(state / "secrets")
    system_specs(SupervisorSettings(state_dir=state), state)
    first = (state / "nats.conf").read_text()
    (state / "secrets" / NATS_SEED_FILES["funds"]).unlink()
    ensure_secrets(state / "secrets")  # a lost key is made anew; the next start lets the new one in
    system_specs(SupervisorSettings(state_dir=state), state)
    assert (state / "nats.conf").read_text() != first
    assert nats_auth.public_keys(state / "secrets")["funds"] in (state / "nats.conf").read_text()


def test_secrets_nats_users_prints_public_keys_and_permissions(tmp_path: Path) -> None:
    env = {"REHAB_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(app, ["secrets", "nats-users"], env=env)
    assert result.exit_code == 0, result.output
    secrets_dir = tmp_path / "state" / "secrets"
    keys = nats_auth.public_keys(secrets_dir)
    assert nats_auth.authorization_block(keys) in result.stdout
    for name in NATS_SEED_FILES.values():
        assert (secrets_dir / name).read_bytes().strip().decode() not in result.output
