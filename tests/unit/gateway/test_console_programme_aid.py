"""The programme page's aid: a month still being paid is withheld by the reports service ("pending"), and the page
says so in the visitor's language instead of calling it a small number; a settled month is shown as published. The
report is the reports service's own, from its projection of real events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.console import i18n
from gateway.console.programme import figure, month_name, sections
from kit import db, migrations
from kit.events import Envelope
from services.reports import handlers, service

PEOPLE = handlers.PersonIndex(lambda: b"reports' own secret, for the test".ljust(32, b"."))
DURING = datetime(2026, 12, 20, tzinfo=UTC)
SETTLED = datetime(2027, 1, 3, tzinfo=UTC)


@pytest.fixture
def paid_in_december(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    migrations.upgrade(engine, Path(handlers.__file__).parent / "migrations")
    factory = db.make_session_factory(engine)
    paid = handlers.consumed(PEOPLE)["funds"][1]["rehab.funds.disbursement.paid"]
    for _ in range(5):  # five people: a sum that is shown once the month has settled
        with db.transaction(factory) as session:
            paid(session, Envelope.new(source="/rehab/funds", type="rehab.funds.disbursement.paid", subject="x", data={
                "disbursement_id": str(uuid.uuid4()), "case_id": str(uuid.uuid4()), "grant_id": "g",
                "category": "medical", "amount": "100.00", "currency": "EUR", "status": "paid",
                "occurred_at": datetime(2026, 12, 3, tzinfo=UTC).isoformat()}))
    yield lambda now: _report(factory, now)
    engine.dispose()


def _report(factory, now: datetime) -> dict:
    with db.transaction(factory) as session:
        return service.programme_report(session=session, months=["2026-11", "2026-12"], now=now)


@pytest.mark.parametrize("language", ["be", "ru", "en"])
def test_a_month_still_being_paid_is_said_to_be_unpublished_and_a_settled_one_is_shown(paid_in_december, language):
    words = i18n.MESSAGES[language]
    visit = SimpleNamespace(language=language)
    during = sections(paid_in_december(DURING), visit)
    assert month_name("2026-12", language) in during["aid_pending"]
    assert during["aid_pending"] == words["programme_aid_pending"].format(months=month_name("2026-12", language))
    (table,) = during["aid"]
    medical = dict(table.rows)[i18n.translator(language)("category_medical")]
    assert medical[1] == words["programme_not_shown_or_pending"]  # paid: withheld for the month, not as small

    settled = sections(paid_in_december(SETTLED), visit)
    assert settled["aid_pending"] is None
    (table,) = settled["aid"]
    medical = dict(table.rows)[i18n.translator(language)("category_medical")]
    assert medical[1] == i18n.format_money("500.00", "EUR", language)
    assert figure("pending", language, "EUR") == words["programme_pending"]


@pytest.mark.parametrize("language", ["be", "ru", "en"])
def test_a_month_still_under_way_has_its_counts_said_to_be_unpublished_too(paid_in_december, language):
    words = i18n.MESSAGES[language]
    visit = SimpleNamespace(language=language)
    during = sections(paid_in_december(DURING), visit)
    assert during["months_pending"] == words["programme_months_pending"].format(months=month_name("2026-12", language))
    cases = dict(during["cases"].rows)
    assert set(cases[month_name("2026-12", language)]) == {words["programme_pending"]}
    assert cases[month_name("2026-11", language)][0] == "0"  # a month that has settled, shown as published
    assert sections(paid_in_december(SETTLED), visit)["months_pending"] is None


def test_a_month_is_named_whole_as_it_stands_in_sentences():
    """«Лічбы за сне 2026 …» (CLDR's abbreviation) read as no word at all to a Belarusian reader."""
    assert [month_name("2026-12", language) for language in ("be", "ru", "en")] == [
        "снежань 2026", "декабрь 2026", "December 2026"]
    assert month_name("2026-03", "be") == "сакавік 2026"
