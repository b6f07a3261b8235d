"""Intake's part of `rehab keys rotate` (python -m services.intake.manage keys rotate, run by ops for each service
after it added a KEK): every case's data key re-wrapped under the new key-encryption key while intake keeps running
and serving; `keys status` shows what each KEK still wraps. tests/integration/test_keys_every_service.py runs the
whole `rehab keys rotate|status|retire` over the three services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from kit.crypto import Keyring, add_key_to_file
from services.intake import manage
from services.intake.models import CaseKey
from tests.integration.intake.conftest import Intake

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _settings_env(intake: Intake) -> dict[str, str]:
    return {"REHAB_STATE_DIR": str(intake.settings.state_dir), "REHAB_SECRETS_DIR": str(intake.settings.secrets_dir),
            "REHAB_INTAKE_DATABASE_URL": intake.settings.database_url}


def _manage_process(intake: Intake, *args: str) -> subprocess.CompletedProcess:
    """As `rehab keys …` runs it: another process, configured by the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REHAB_")} | _settings_env(intake)
    return subprocess.run([sys.executable, "-m", "services.intake.manage", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def _manage(intake: Intake, *args: str):  # noqa: ANN202
    """The same commands in this process (an import of the whole stack costs seconds per process)."""
    return CliRunner().invoke(manage.app, list(args), env=_settings_env(intake))


def _kids(intake: Intake) -> dict[str, str]:
    with intake.engine.connect() as conn:
        return dict(conn.execute(select(CaseKey.__table__.c.case_id, CaseKey.__table__.c.kid)).all())


async def test_rotation_rewraps_every_data_key_while_intake_serves(intake: Intake):
    cases = [await intake.create(full_name=name, safety_notes=f"note {i}")
             for i, name in enumerate(["Марыя Жук", "Ігар Рыбак", "Алена Васілеўская", "Юлія Навуменка", "Ян Жук"])]
    old_kid = Keyring.from_file(intake.settings.kek_path).active
    assert set(_kids(intake).values()) == {old_kid}

    new_kid = add_key_to_file(intake.settings.kek_path)  # what `keys rotate` does first (here by hand: the re-wrap alone is under test)
    rotated = _manage_process(intake, "keys", "rotate", "--rewrap-only", "--batch-size", "2")
    assert rotated.returncode == 0, rotated.stderr
    assert new_kid != old_kid
    assert f"active key-encryption key: {new_kid}; data keys re-wrapped: 5" in rotated.stdout
    assert set(_kids(intake).values()) == {new_kid}

    # The running service, started before the rotation, reads every case and opens new ones under the new KEK.
    for i, case in enumerate(cases):
        read = await intake.read(case["id"])
        assert read.status_code == 200 and read.json()["safety_notes"] == f"note {i}"
    later = await intake.create(full_name="Аляксей Пятровіч")
    assert _kids(intake)[later["id"]] == new_kid

    status = _manage(intake, "keys", "status")
    assert status.exit_code == 0, status.output
    assert f"{new_kid}: 6 data keys (active)" in status.stdout and f"{old_kid}: 0 data keys" in status.stdout

    nothing_left = _manage(intake, "keys", "rotate", "--rewrap-only")
    assert nothing_left.exit_code == 0 and "data keys re-wrapped: 0" in nothing_left.stdout
    add_key_to_file(intake.settings.kek_path)
    again = _manage(intake, "keys", "rotate", "--rewrap-only")
    assert again.exit_code == 0 and "data keys re-wrapped: 6" in again.stdout
    assert (await intake.read(later["id"])).json()["full_name"] == "Аляксей Пятровіч"


async def test_rotation_reports_a_data_key_it_cannot_unwrap_and_leaves_it(intake: Intake):
    good = await intake.create(full_name="Марыя Жук")
    broken = await intake.create(full_name="Ігар Рыбак")
    table = CaseKey.__table__
    with intake.engine.begin() as conn:
        conn.execute(table.update().where(table.c.case_id == broken["id"]).values(wrapped=b"\x00" * 60))
    add_key_to_file(intake.settings.kek_path)
    rotated = _manage(intake, "keys", "rotate", "--rewrap-only")
    assert rotated.exit_code == 1
    assert broken["id"] in rotated.stderr and "re-wrapped: 1" in rotated.stdout
    kids = _kids(intake)
    assert kids[good["id"]] != kids[broken["id"]]
