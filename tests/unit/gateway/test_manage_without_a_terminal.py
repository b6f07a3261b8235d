"""`rehab users …` where there is no terminal (a script, a cron job, ssh without a tty): an outside review found that
`users add` printed Python's GetPassWarning and "Aborted.", and that `users enable --help` promised an enabling that
only files a request an admin approves."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gateway.manage import app

runner = CliRunner()


@pytest.mark.parametrize("command", [["users", "add", "ales.bialiatski", "--role", "caseworker"],
                                     ["users", "reset-password", "ales.bialiatski"]])
def test_a_password_asked_for_without_a_terminal_says_to_use_password_stdin(command: list[str], tmp_path) -> None:
    result = runner.invoke(app, command, input="", env={"REHAB_STATE_DIR": str(tmp_path / "state")})

    assert result.exit_code == 1
    assert "there is no terminal to ask for ales.bialiatski's password on: pass --password-stdin" in result.stderr
    assert "Aborted" not in result.output and "GetPassWarning" not in result.output + result.stderr
    assert not (tmp_path / "state").exists()  # said before any database is opened


def test_enable_says_it_waits_for_an_admin_s_approval() -> None:
    listed = runner.invoke(app, ["users", "--help"], prog_name="rehab", env={"COLUMNS": "200"}).output
    own = runner.invoke(app, ["users", "enable", "--help"], prog_name="rehab", env={"COLUMNS": "200"}).output

    line = next(line for line in listed.splitlines() if " enable " in line)
    assert "waits for an admin's approval" in line
    assert "waits for an admin's approval" in own and "stays disabled" in own
