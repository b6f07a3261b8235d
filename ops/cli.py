"""The `rehab` command: start the system, create its secrets, and hand other commands to the part that owns them."""

from __future__ import annotations

import asyncio
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from kit import nats_auth
from kit.secrets import ensure_secrets
from ops import backup as backups
from ops.settings import SupervisorSettings
from ops.supervisor import StartupError, Supervisor
from ops.system import secrets_folder, system_specs

# Command groups that belong to other parts of the system: `rehab users add alice …` runs
# `python -m gateway.manage users add alice …` and passes its exit code on.
DELEGATED: dict[str, tuple[str, str]] = {
    "users": ("gateway.manage", "Staff users: add, list, disable, reset a password."),
    "clients": ("gateway.manage", "Partner API clients: add, list, revoke."),
    "keys": ("services.intake.manage", "Field-encryption keys: rotate."),
    "names": ("services.intake.manage", "The blind index of names: rebuild it after an upgrade."),
    "ledger": ("services.funds.manage", "The funds ledger: check that it balances."),
    "audit": ("ops.audit", "Audit trails: verify their hash chains."),
}
# Where the gateway writes the first admin's generated password (SPEC §3, Bootstrap). Its log says so too, but
# the console is the place an operator looks.
ADMIN_PASSWORD_FILE = "admin-password.txt"

app = typer.Typer(
    name="rehab",
    help="Rehab Support: run the system and look after it.",
    no_args_is_help=True,
    add_completion=False,
)
secrets_app = typer.Typer(help="The keys kept under the state folder.", no_args_is_help=True)
app.add_typer(secrets_app, name="secrets")


@app.command()
def up() -> None:
    """Start NATS, the three services and the gateway in the foreground; Ctrl-C stops them all."""
    settings = _settings()
    state_dir = _state_dir(settings)
    secrets_dir = _ensure_secrets(settings, state_dir)
    log_dir = state_dir / "logs"
    try:
        specs = system_specs(settings, state_dir)
    except StartupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if settings.external_nats:
        typer.echo("using the NATS server named by REHAB_NATS_URL")  # not the URL itself: it may hold a password

    def announce() -> None:
        typer.echo(f"Rehab Support is up: http://127.0.0.1:{settings.gateway_port}")
        typer.echo(f"logs: {log_dir}")
        if (secrets_dir / ADMIN_PASSWORD_FILE).exists():
            typer.echo(f"the first admin's password is in {secrets_dir / ADMIN_PASSWORD_FILE}")

    supervisor = Supervisor(
        specs,
        log_dir=log_dir,
        on_ready=announce,
        startup_timeout=settings.startup_timeout_seconds,
        stop_timeout=settings.stop_timeout_seconds,
    )
    raise typer.Exit(asyncio.run(supervisor.run()))


@app.command()
def backup(
    archive: Annotated[Path, typer.Argument(help="The archive file to write (must not exist).")],
    include_secrets: Annotated[bool, typer.Option(
        "--include-secrets", help="Put the key files in the archive too (keep such an archive like a key).")] = False,
) -> None:
    """An encrypted copy of every database (online), in one archive. The keys are left out unless asked for:
    keep var/secrets apart from the backups. Passphrase: REHAB_BACKUP_PASSPHRASE, or asked for on stdin."""
    settings = _backup_settings()
    passphrase = _passphrase(confirm=True)
    try:
        manifest = backups.backup(settings, archive, passphrase, include_secrets=include_secrets)
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"backed up {len(manifest['members'])} files to {archive}")
    if not include_secrets:
        typer.echo(f"the keys are NOT in it: keep {settings.secrets_path} safe and apart; without them the "
                   "archive's personal data cannot be read")


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An archive written by `rehab backup`.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Write even though the system's ports are in use, or over keys that differ from the archive's.",
    )] = False,
) -> None:
    """Put every database back from an archive, after checking it is authentic; the system must be stopped."""
    settings = _backup_settings()
    passphrase = _passphrase(confirm=False)
    try:
        manifest = backups.restore(settings, archive, passphrase, force=force)
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"restored {len(manifest['members'])} files from the backup of {manifest['created_at']}")


def _backup_settings() -> backups.BackupSettings:
    try:
        return backups.BackupSettings()
    except ValidationError as error:
        typer.echo(f"error: {error.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None


def _passphrase(*, confirm: bool) -> str:
    """From REHAB_BACKUP_PASSPHRASE, else typed (twice for a new archive), else the first line of stdin."""
    given = os.environ.get("REHAB_BACKUP_PASSPHRASE")
    if given:
        return given
    if sys.stdin.isatty():
        return typer.prompt("backup passphrase", hide_input=True, confirmation_prompt=confirm)
    return sys.stdin.readline().rstrip("\n")


@secrets_app.command("init")
def secrets_init() -> None:
    """Create the secrets that are missing (existing ones are never replaced)."""
    settings = _settings()
    _ensure_secrets(settings, _state_dir(settings))


@secrets_app.command("nats-users")
def secrets_nats_users() -> None:
    """Print the nats-server `authorization` block for these keys (public keys and permissions only), for an
    external NATS that should let the services in with their nkeys as the embedded one does."""
    settings = _settings()
    secrets_dir = _ensure_secrets(settings, _state_dir(settings), quiet=True)
    typer.echo(nats_auth.authorization_block(nats_auth.public_keys(secrets_dir)), nl=False)


def _settings() -> SupervisorSettings:
    try:
        return SupervisorSettings()
    except ValidationError as error:
        for problem in error.errors():
            setting = "REHAB_" + "_".join(str(part) for part in problem["loc"]).upper()
            typer.echo(f"error: {setting}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None


def _state_dir(settings: SupervisorSettings) -> Path:
    """The state folder as an absolute path (every process gets the same one), created owner-only."""
    state_dir = settings.state_dir.resolve()
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the databases and the keys
    return state_dir


def _ensure_secrets(settings: SupervisorSettings, state_dir: Path, *, quiet: bool = False) -> Path:
    """Create the missing secrets and say so (on stderr when `quiet`); the folder they are in."""
    secrets_dir = secrets_folder(settings, state_dir)
    created = ensure_secrets(secrets_dir)
    if created:
        typer.echo(f"created secrets in {secrets_dir}: {', '.join(created)}", err=quiet)
    elif not quiet:
        typer.echo(f"secrets: using the existing ones in {secrets_dir}")
    return secrets_dir


def _delegate(group: str, module: str, help_text: str) -> None:
    @app.command(
        group,
        help=f"{help_text} (Runs `python -m {module} {group} …`.)",
        # Every argument, --help included, belongs to the module that does the work.
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def command(ctx: typer.Context) -> None:
        raise typer.Exit(run_module(module, [group, *ctx.args]))


def run_module(module: str, args: list[str]) -> int:
    """Run `python -m module args…` in the foreground; its exit code, or 2 when the module does not exist."""
    if not module_exists(module):
        typer.echo(f"error: {module} does not exist yet in this installation", err=True)
        return 2
    return subprocess.run([sys.executable, "-m", module, *args], check=False).returncode


def module_exists(dotted: str) -> bool:
    """Whether `python -m dotted` would find a module, without importing (and so running) any of its packages."""
    top, *rest = dotted.split(".")
    spec = importlib.util.find_spec(top)
    name = top
    for part in rest:
        if spec is None or spec.submodule_search_locations is None:
            return False
        name = f"{name}.{part}"
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec is not None


for _group, (_module, _help) in DELEGATED.items():
    _delegate(_group, _module, _help)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
