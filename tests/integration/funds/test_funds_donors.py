"""A grant's donor may be a person, and giving to a group Belarus calls "extremist" is prosecuted there: the donor is
sealed under the grant's own data key, so no row or database file holds the name in clear, while finance reads it in
the grant, the grants report, the donor report and their CSVs. Grants made before donors were sealed are sealed once
funds runs, and `rehab keys rotate` re-wraps a donor's key like a case's. Funds' app and database, on the run's
database (PostgreSQL when REHAB_TEST_POSTGRES_URL names one)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from kit import crypto, db
from services.funds import donors
from services.funds.main import create_app
from services.funds.models import WRAPPED_KEYS, Grant
from tests.support.apps import running
from tests.support.polling import wait_for
from tests.integration.funds.conftest import Desk


def holds_in_clear(desk: Desk, text: str) -> list[str]:
    """Where `text` lies in clear: tables' rows, and (SQLite) the database's files."""
    found = [table.name for table in desk.runtime.tables.outbox.metadata.sorted_tables
             if any(text in repr(row) for row in desk.rows(table))]
    if desk.runtime.engine.url.get_backend_name() == "sqlite":
        database = desk.runtime.engine.url.database
        found += [path.name for path in (Path(database), Path(database + "-wal"))
                  if path.exists() and text.encode() in path.read_bytes()]
    return found


async def test_a_donor_is_read_by_finance_everywhere_and_lies_nowhere_in_clear(desk: Desk, names: list[str]):
    donor = f"{names[2]} (private donor)"
    grant = await desk.create_grant(donor=donor)
    assert grant["donor"] == donor
    assert (await desk.client.get(f"/api/funds/grants/{grant['id']}", headers=desk.finance)).json()["donor"] == donor
    listed = (await desk.client.get("/api/funds/grants", headers=desk.finance)).json()["items"]
    assert [g["donor"] for g in listed if g["id"] == grant["id"]] == [donor]
    report = (await desk.client.get("/api/funds/reports/grants", headers=desk.finance)).json()
    assert [g["donor"] for g in report["grants"] if g["id"] == grant["id"]] == [donor]
    for path, params in (("/api/funds/reports/grants", {"format": "csv"}),
                         ("/api/funds/reports/donor", {"grant_id": grant["id"], "format": "csv"})):
        answer = await desk.client.get(path, params=params, headers=desk.finance)
        assert answer.status_code == 200 and names[2] in answer.text, path
    donor_report = await desk.client.get("/api/funds/reports/donor", params={"grant_id": grant["id"]},
                                         headers=desk.finance)
    assert donor_report.json()["donor"] == donor
    # The choice a caseworker makes among grants names no donor (as before).
    choices = await desk.client.get("/api/funds/grants/open", headers=desk.caseworker)
    assert choices.status_code == 200 and names[2] not in choices.text

    (row,) = [r for r in desk.rows(Grant.__table__) if r["id"] == grant["id"]]
    assert row["donor"] == donors.SEALED and row["donor_sealed"] and row["donor_kid"] and row["donor_key"]
    assert holds_in_clear(desk, names[2]) == []


async def test_a_donor_kept_in_clear_before_is_sealed_once_funds_runs_and_rotation_rewraps_its_key(
        desk: Desk, names: list[str]):
    before = str(uuid.uuid4())
    with db.transaction(desk.runtime.session_factory) as session:  # as a grant made before this release lies
        session.execute(insert(Grant).values(
            id=before, code=f"G-{before[:8]}", donor=names[3], currency="EUR", budget_minor=100000,
            starts_on=date.today(), ends_on=date.today() + timedelta(days=30), categories=["medical"],
            created_by="finance-anna", created_at=datetime.now(UTC)))
    assert holds_in_clear(desk, names[3]) != []

    async with running(create_app(desk.runtime.settings)):  # funds started again, as after an upgrade
        await wait_for(lambda: [r["donor"] for r in desk.rows(Grant.__table__) if r["id"] == before] == [""],
                       timeout=10)
    (row,) = [r for r in desk.rows(Grant.__table__) if r["id"] == before]
    assert row["donor"] == donors.SEALED and row["donor_sealed"] is not None
    with db.transaction(desk.runtime.session_factory) as session:
        grant = session.get(Grant, before)
        assert donors.donor(desk.runtime.keyring, grant) == names[3]
    assert holds_in_clear(desk, names[3]) == []

    # `rehab keys rotate`: a new KEK, and every data key re-wrapped under it (the donors' too); the donor opens.
    active = desk.runtime.keyring.add_kek()
    for columns in WRAPPED_KEYS:
        crypto.rewrap_table(desk.runtime.session_factory, columns, desk.runtime.keyring)
    with db.transaction(desk.runtime.session_factory) as session:
        assert set(session.execute(select(Grant.donor_kid)).scalars()) == {active}
        assert donors.donor(desk.runtime.keyring, session.get(Grant, before)) == names[3]
