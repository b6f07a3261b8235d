"""Running a service's `manage` commands that open its keyring, from `rehab keys …` and `rehab restore`: under sealed
custody without UNSEAL_PASSPHRASE_FILE, the passphrase is asked once and handed to each command through a pipe it
inherits (REHAB_UNSEAL_FD, kit.custody), never its environment or arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer

from ops.settings import SupervisorSettings

Run = Callable[..., subprocess.CompletedProcess]


@contextmanager
def handing_passphrase() -> Iterator[Run]:
    """`run(module, args, input=None)`: `python -m module args…`, its stdout captured (text), the passphrase handed
    over when the keys are sealed."""
    settings = SupervisorSettings()
    passphrase = None
    if settings.key_custody == "sealed" and settings.unseal_passphrase_file is None:
        if not sys.stdin.isatty():
            typer.echo("error: the keys are sealed: set UNSEAL_PASSPHRASE_FILE, or run this on a terminal to type "
                       "the passphrase", err=True)
            raise typer.Exit(2)
        passphrase = typer.prompt("unseal passphrase", hide_input=True)

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
