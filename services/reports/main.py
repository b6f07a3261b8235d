"""Reports' process: one app factory, used by `python -m services.reports` and by the tests."""

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from kit import logs
from kit.service import Runtime, ServiceSpec, create_service_app, serve
from services.reports import api, handlers
from services.reports.config import ReportsSettings
from services.reports.models import MonthlyAmount, ReportsTable, kit_tables


def _on_start(runtime: Runtime) -> None:
    # Sums whose people are not known (summed before they were counted) are withheld: a rebuild counts them.
    with runtime.engine.connect() as conn:
        unknown = conn.execute(select(MonthlyAmount.month).where(
            MonthlyAmount.payments > 0, MonthlyAmount.people == 0).limit(1)).first()  # type: ignore[arg-type]
    if unknown is not None:
        logs.get("reports").warning("sums of aid from before people were counted are withheld: run "
                                    "`rehab reports rebuild`")


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
    on_start=_on_start,
)


def create_app(settings: ReportsSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ReportsSettings())


def run() -> None:
    settings = ReportsSettings()
    serve(create_app(settings), settings)
