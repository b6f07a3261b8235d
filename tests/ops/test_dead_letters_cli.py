"""`rehab dead-letters`: what each service parked is listed by number (never the event's data), and a replay asks
for the numbers or --all. The replay itself, over real NATS, is tests/integration/test_backbone.py."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, insert
from typer.testing import CliRunner

from kit.db import make_engine
from kit.tables import KitTables
from ops.cli import app

runner = CliRunner()
PAYLOAD = '{"data": {"case_id": "c-1", "marker": "PAYLOAD-MARKER-5521"}}'


@pytest.fixture
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in list(os.environ):
        if key.startswith("REHAB_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REHAB_STATE_DIR", str(tmp_path))
    metadata = MetaData()
    tables = KitTables(metadata)
    engine = make_engine(f"sqlite:///{tmp_path / 'funds.db'}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(tables.dead_letters).values(
            consumer="funds-intake", event_id="e-1", subject="rehab.intake.case.erased", payload=PAYLOAD,
            error="KeyError", deliveries=5, parked_at=datetime(2026, 12, 5, 10, 0, tzinfo=UTC)))
    return tmp_path


def test_the_list_names_each_parked_event_by_number_and_never_its_data(state: Path) -> None:
    listed = runner.invoke(app, ["dead-letters", "list"])

    assert listed.exit_code == 0, listed.output
    assert "funds      #1" in listed.output and "rehab.intake.case.erased e-1 KeyError (tried 5 times)" in listed.output
    assert "intake     no database yet" in listed.output
    assert "PAYLOAD-MARKER" not in listed.output and "1 parked" in listed.output


def test_a_replay_asks_for_numbers_or_all_and_a_service_that_consumes_events(state: Path) -> None:
    neither = runner.invoke(app, ["dead-letters", "replay", "funds"])
    both = runner.invoke(app, ["dead-letters", "replay", "funds", "1", "--all"])
    gateway = runner.invoke(app, ["dead-letters", "replay", "gateway", "--all"])

    assert neither.exit_code == both.exit_code == gateway.exit_code == 2
    assert "numbers, or --all" in neither.output and "not one of intake, referrals, funds, reports" in gateway.output
