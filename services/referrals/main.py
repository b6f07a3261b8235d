"""Referrals' process: one app factory, used by `python -m services.referrals` and by the tests.

One app serves both the staff paths (`/api/referrals`) and the partner-facing API (`/api/partner`).
"""

import asyncio
from pathlib import Path

from fastapi import FastAPI

from kit import logs
from kit.service import Runtime, ServiceSpec, create_service_app, serve
from services.referrals import api, events, handlers, service
from services.referrals.config import ReferralsSettings
from services.referrals.models import ReferralsTable, kit_tables

log = logs.get("referrals")


async def watch(runtime: Runtime) -> None:
    """Every few seconds: destroy packets whose consent has expired, refresh the overdue gauge."""
    interval = runtime.settings.watch_interval_seconds  # type: ignore[attr-defined]
    while True:
        try:
            await runtime.uow.run(lambda session: service.keep_watch(session=session, runtime=runtime))
        except Exception as exc:
            log.warning("referrals watch failed, retrying", error_type=type(exc).__name__)
        await asyncio.sleep(interval)


SPEC = ServiceSpec(
    name="referrals",
    title="Rehab Support — referrals",
    description="The partner directory, referrals and their lifecycle, and the partner-facing API.",
    metadata=ReferralsTable.metadata,
    tables=kit_tables,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=[api.router, api.partner_router],
    subscriptions=handlers.subscriptions,
    background=[watch],
    published=events.PUBLISHED,
)


def create_app(settings: ReferralsSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ReferralsSettings())


def run() -> None:
    settings = ReferralsSettings()
    serve(create_app(settings), settings)
