"""The upgrade that makes grant codes unique in any letter case: grants made before it that differ by case alone
are kept (aid was booked to them), and the upgrade does not fail on them; otherwise the database refuses such twins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from kit import migrations
from kit.db import make_engine
from services.funds.main import SPEC

pytestmark = pytest.mark.integration

BEFORE = "a2b4c6d8e0f1"  # the schema just before this change
GRANT = ("INSERT INTO grants (id, code, donor, currency, budget_minor, starts_on, ends_on, categories, created_by, "
         "created_at) VALUES (:id, :code, '', 'EUR', 100, '2026-01-01', '2026-12-31', '[]', 'finance', :at)")


def upgraded_from_before(url: str, codes: list[str]) -> list[str]:
    engine = make_engine(url)
    try:
        config = migrations.config_for(SPEC.migrations_dir, engine.url.render_as_string(hide_password=False))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, BEFORE)
            for n, code in enumerate(codes):
                conn.execute(text(GRANT), {"id": f"00000000-0000-0000-0000-00000000000{n}", "code": code,
                                           "at": datetime.now(UTC)})
        migrations.upgrade(engine, SPEC.migrations_dir)
        with engine.begin() as conn:
            try:
                conn.execute(text(GRANT), {"id": "00000000-0000-0000-0000-000000000009", "code": "g-new",
                                           "at": datetime.now(UTC)})
                conn.execute(text(GRANT), {"id": "00000000-0000-0000-0000-000000000008", "code": "G-NEW",
                                           "at": datetime.now(UTC)})
            except IntegrityError:
                return ["refused"]
        with engine.connect() as conn:
            return sorted(conn.execute(text("SELECT code FROM grants")).scalars())
    finally:
        engine.dispose()


def test_twins_made_before_are_kept_and_the_upgrade_goes_on(database_url_factory):
    assert upgraded_from_before(database_url_factory("funds"), ["G-EUR", "g-eur"]) == [
        "G-EUR", "G-NEW", "g-eur", "g-new"]  # kept; the index waits (create_grant's check still refuses new ones)


def test_without_twins_the_database_refuses_them(database_url_factory):
    assert upgraded_from_before(database_url_factory("funds"), ["G-EUR", "G-PLN"]) == ["refused"]
