"""Reports' process: one app factory, used by `python -m services.reports` and by the tests."""

from pathlib import Path

from fastapi import FastAPI

from kit.service import ServiceSpec, create_service_app, serve
from services.reports import api, handlers
from services.reports.config import ReportsSettings
from services.reports.models import ReportsTable, kit_tables

SPEC = ServiceSpec(
    name="reports",
    title="Rehab Support — reports",
    description="Programme reports from every service's events: anonymous counts, sums and durations per month, "
                "small numbers suppressed. No personal data reaches it.",
    metadata=ReportsTable.metadata,
    tables=kit_tables,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=[api.router],
    subscriptions=handlers.subscriptions,
)


def create_app(settings: ReportsSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ReportsSettings())


def run() -> None:
    settings = ReportsSettings()
    serve(create_app(settings), settings)
