"""Traces with REHAB_OTEL_ENABLED: one trace runs from a caseworker's request through intake's outbox and NATS into
funds' consumer; and no span that leaves a process holds a person's name, even when a name is in the query string."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select, text

from kit import tracing
from services.funds.config import FundsSettings
from services.funds.main import create_app as create_funds
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake
from tests.support.apps import bearer, running
from tests.support.shared import NAME_VARIANTS

pytestmark = pytest.mark.integration

NAMES_CSV = NAME_VARIANTS


def a_person() -> tuple[str, str]:
    """A made-up Belarusian name from the shared test data, and its Latin passport spelling."""
    with NAMES_CSV.open(encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    return row["belarusian"], row["latin_passport"]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    tracing.shutdown()  # later tests in this process run with tracing off again


async def test_a_request_and_the_consumer_of_its_event_share_one_trace(
    tmp_path, secrets_dir, token_issuer, nats_url, database_url_factory, spans
):
    common = {"secrets_dir": secrets_dir, "nats_url": nats_url, "otel_enabled": True}
    intake_settings = IntakeSettings(state_dir=tmp_path / "intake", database_url=database_url_factory("intake"), **common)
    funds_settings = FundsSettings(state_dir=tmp_path / "funds", database_url=database_url_factory("funds"), **common)
    tracing.setup("intake", intake_settings, exporter=spans)
    tracing.setup("funds", funds_settings, exporter=spans)
    full_name, latin = a_person()

    async with running(create_intake(intake_settings)) as intake, running(create_funds(funds_settings)) as funds:
        created = await intake.post("/api/intake/cases", json={"full_name": full_name, "country": "LT"},
                                    headers=bearer(token_issuer, "caseworker"))
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]
        searched = await intake.post("/api/intake/cases/search", json={"q": latin},
                                     headers=bearer(token_issuer, "caseworker"))
        assert searched.status_code == 200

        funds_runtime = funds._transport.app.state.runtime  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while not _funds_knows(funds_runtime, case_id):
            assert time.monotonic() < deadline, "funds never learned the case"
            await asyncio.sleep(0.05)

    finished = spans.get_finished_spans()
    server = next(s for s in finished if s.kind == SpanKind.SERVER and s.attributes.get("http.route") == "/api/intake/cases"
                  and s.attributes.get("http.request.method", s.attributes.get("http.method")) == "POST")
    trace_id = server.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    kinds = {(s.kind, s.resource.attributes["service.name"]) for s in in_trace}
    assert (SpanKind.PRODUCER, "rehab-intake") in kinds  # the relay's publish
    assert (SpanKind.CONSUMER, "rehab-funds") in kinds  # funds applying case.opened
    consumer = next(s for s in in_trace if s.kind == SpanKind.CONSUMER)
    assert consumer.name == "process rehab.intake.case.opened"
    assert consumer.attributes["messaging.consumer.group.name"] == "funds-intake"
    # The consumer's own database work hangs under its span, in the same trace.
    assert any(s.parent is not None and s.parent.span_id == consumer.context.span_id for s in in_trace)

    # Nothing exported holds the person's name: not the search's query string, not a SQL error, nowhere.
    exported = repr([(s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events],
                      s.status.description) for s in finished])
    for secret in (full_name, latin, *full_name.split(), *latin.split()):
        assert secret not in exported
        assert secret.replace(" ", "+") not in exported


def _funds_knows(runtime, case_id: str) -> bool:
    with runtime.session_factory() as session:
        return session.execute(select(text("1")).select_from(text("cases")).where(text("case_id = :c")),
                               {"c": case_id}).first() is not None


def test_tracing_is_off_unless_asked(tmp_path, secrets_dir):
    settings = IntakeSettings(state_dir=tmp_path, secrets_dir=secrets_dir)
    assert tracing.setup("intake", settings) is None
    assert not tracing.enabled() and tracing.current_traceparent() is None
