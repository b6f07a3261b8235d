"""Referrals' process: one app factory, used by `python -m services.referrals` and by the tests.

One app serves both the staff paths (`/api/referrals`) and the partner-facing API (`/api/partner`).
"""

import asyncio
from pathlib import Path

from fastapi import FastAPI
from sqlmodel import Session

from kit import logs
from kit.db import checkpoint_wal
from kit.service import Runtime, ServiceSpec, create_service_app, serve
from services.referrals import api, events, handlers, service, vault
from services.referrals.config import ReferralsSettings
from services.referrals.models import ReferralsTable, kit_tables

log = logs.get("referrals")


def forget_for_good(runtime: Runtime) -> None:
    """Make a destroyed key gone from the files too, not only from the rows (SQLite, the embedded default).

    The kit's SQLite connections overwrite deleted bytes (`secure_delete`); after a commit that destroyed a key, a
    checkpoint also truncates the write-ahead log, which still held the key's old page.
    """

    def _truncate_wal(session: Session) -> None:
        if session.info.pop(vault.SHREDDED, False):
            checkpoint_wal(runtime.engine)

    runtime.units.on_commit(_truncate_wal)  # after the commit that holds the shredding, shared or not


async def watch(runtime: Runtime) -> None:
    """Every few seconds: destroy packets whose consent has expired, refresh the overdue gauge."""
    interval = runtime.settings.watch_interval_seconds  # type: ignore[attr-defined]
    while True:
        try:
            service.keep_watch(runtime=runtime)
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
    on_start=forget_for_good,
    background=[watch],
    published=events.PUBLISHED,
)


def create_app(settings: ReferralsSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ReferralsSettings())


def run() -> None:
    settings = ReferralsSettings()
    serve(create_app(settings), settings)
