"""The programme page's aid: approvals rejected or voided afterwards are shown as aid released beside approved, in the
visitor's language; a currency received that the report left out makes no table (real reports projection)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.console import i18n
from gateway.console.programme import sections
from kit import db, migrations
from kit.events import Envelope
from services.reports import handlers
from tests.unit.gateway.test_console_programme_aid import PEOPLE, SETTLED, _report


@pytest.fixture
def voided_in_december(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    migrations.upgrade(engine, Path(handlers.__file__).parent / "migrations")
    factory = db.make_session_factory(engine)
    funds = handlers.consumed(PEOPLE)["funds"][1]
    for n in range(5):
        base = {"disbursement_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "grant_id": "g",
                "category": "medical", "amount": "100.00", "currency": "EUR"}
        for subject, extra in (("approved", {}), ("voided", {"released_amount": "100.00"}),
                               ("paid", {"paid_amount": "290.00", "paid_currency": "GEL", "fx_rate": "2.9",
                                         "converted_amount": "100.00"})):
            if subject == "paid" and n:
                continue  # one person paid in lari: no GEL table
            with db.transaction(factory) as session:
                funds[f"rehab.funds.disbursement.{subject}"](session, Envelope.new(
                    source="/rehab/funds", type=f"rehab.funds.disbursement.{subject}", subject="x",
                    data={**base, **extra, "status": subject,
                          "occurred_at": datetime(2026, 12, 3, tzinfo=UTC).isoformat()}))
    yield factory
    engine.dispose()


@pytest.mark.parametrize("language", ["be", "ru", "en"])
def test_released_aid_is_a_column_of_its_own_and_a_left_out_currency_makes_no_table(voided_in_december, language):
    t = i18n.translator(language)
    shown = sections(_report(voided_in_december, SETTLED), SimpleNamespace(language=language))
    (table,) = shown["aid"]
    assert t("programme_released") in table.columns
    medical = dict(table.rows)[t("category_medical")]
    assert medical[table.columns.index(t("programme_released"))] == i18n.format_money("500.00", "EUR", language)
    assert medical[table.columns.index(t("programme_approved"))] == i18n.format_money("500.00", "EUR", language)
    assert shown["paid_elsewhere"] == []  # one person paid in lari: no GEL table, and nothing said of it
