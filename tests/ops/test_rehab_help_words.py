"""What `rehab up --help` says it starts: an outside review found "the three services" where four run."""

from __future__ import annotations

from typer.testing import CliRunner

from ops.cli import app
from ops.system import SERVICES


def test_up_names_every_service_it_starts() -> None:
    text = CliRunner().invoke(app, ["up", "--help"], prog_name="rehab", env={"COLUMNS": "200"}).output

    assert "three services" not in text and "four services" in text and len(SERVICES) == 4
    assert all(name in text for name in SERVICES), text
