"""Referrals' process: one app factory, used by `python -m services.referrals` and by the tests.

One app serves both the staff paths (`/api/referrals`) and the partner-facing API (`/api/partner`).
"""

from pathlib import Path

from fastapi import FastAPI

from kit.service import ServiceSpec, create_service_app, serve
from services.referrals import api, events, handlers, projections, webhook_delivery
from services.referrals.config import ReferralsSettings
from services.referrals.models import ReferralsTable, kit_tables

SPEC = ServiceSpec(
    name="referrals",
    title="Rehab Support — referrals",
    description="The partner directory, referrals and their lifecycle, and the partner-facing API.",
    metadata=ReferralsTable.metadata,
    tables=kit_tables,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=[api.router, api.partner_router],
    subscriptions=handlers.subscriptions,
    # every few seconds: expired consent, the overdue gauge; and the partners' webhook deliveries
    background=[projections.watch, webhook_delivery.deliver],
    published=events.PUBLISHED,
    operation_ids=api.OPERATION_IDS,
)


def create_app(settings: ReferralsSettings | None = None) -> FastAPI:
    app = create_service_app(SPEC, settings or ReferralsSettings())
    app.webhooks.include_router(api.webhook_router)  # described in the OpenAPI document, for partners to build to
    return app


def run() -> None:
    settings = ReferralsSettings()
    serve(create_app(settings), settings)
