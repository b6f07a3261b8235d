"""The unseal passphrase, obtained one way for every command that needs it (`rehab up`, `rehab unseal`, `rehab keys …`,
`rehab restore`): from UNSEAL_PASSPHRASE_FILE or typed on a terminal, and checked against the keys before it is used.
A service's `manage` command gets it through a pipe it inherits (REHAB_UNSEAL_FD, kit.custody), never its environment
or arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from ops.settings import SupervisorSettings
from ops.system import secrets_folder

Run = Callable[..., subprocess.CompletedProcess]


@contextmanager
def handing_passphrase(passphrase: str | None = None) -> Iterator[Run]:
    """`run(module, args, input=None)`: `python -m module args…`, its stdout captured (text), the passphrase handed
    over when the keys are sealed: `passphrase` when the caller obtained it already (`rehab restore` asks before it
    replaces anything), else obtained now."""
    if passphrase is None:
        passphrase = needed_passphrase()

    def run(module: str, args: list[str], input: str | None = None) -> subprocess.CompletedProcess:  # noqa: A002
        command = [sys.executable, "-m", module, *args]
        captured = {"stdout": subprocess.PIPE, "text": True, "check": False, "input": input}
        if input is not None:
            captured["stderr"] = subprocess.PIPE
        if passphrase is None:
            return subprocess.run(command, **captured)
        reading, writing = os.pipe()
        os.write(writing, (passphrase + "\n").encode())
        os.close(writing)
        try:
            return subprocess.run(command, pass_fds=(reading,), env={**os.environ, "REHAB_UNSEAL_FD": str(reading)},
                                  **captured)
        finally:
            os.close(reading)

    yield run


def needed_passphrase() -> str | None:
    """The unseal passphrase a command run beside the system needs (checked), or None when the keys are not sealed."""
    settings = SupervisorSettings()
    return unseal_passphrase(settings, settings.state_dir.resolve(), making=False)


def unseal_passphrase(settings: SupervisorSettings, state_dir: Path, *, making: bool = True) -> str | None:
    """Under sealed key custody: the passphrase from UNSEAL_PASSPHRASE_FILE or typed on the terminal (twice when
    the keys are made now), checked against the keys before anything starts. None under other custodies."""
    if settings.key_custody != "sealed":
        return None
    from kit.keyfiles import SEALED_KEYS_FILE, WrongPassphrase, read_sealed_file

    existing = secrets_folder(settings, state_dir) / "gateway" / SEALED_KEYS_FILE
    if settings.unseal_passphrase_file is not None:
        try:
            passphrase = settings.unseal_passphrase_file.read_text().rstrip("\r\n")
        except OSError as error:
            typer.echo(f"error: UNSEAL_PASSPHRASE_FILE: {error.strerror}", err=True)
            raise typer.Exit(2) from None
    elif sys.stdin.isatty():
        passphrase = typer.prompt("unseal passphrase", hide_input=True,
                                  confirmation_prompt=making and not existing.exists())
    else:
        typer.echo("error: key custody is `sealed`: type the unseal passphrase on a terminal, or name a file "
                   "holding it in UNSEAL_PASSPHRASE_FILE", err=True)
        raise typer.Exit(2)
    if len(passphrase) < 12:
        typer.echo("error: the unseal passphrase is shorter than 12 characters", err=True)
        raise typer.Exit(2)
    if existing.exists():
        try:
            read_sealed_file(existing, passphrase=passphrase)
        except WrongPassphrase:
            typer.echo("error: that passphrase does not open the keys", err=True)
            raise typer.Exit(1) from None
    return passphrase
