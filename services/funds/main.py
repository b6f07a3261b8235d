"""Funds' process: one app factory, used by `python -m services.funds` and by the tests."""

from pathlib import Path

from fastapi import FastAPI

from kit.service import ServiceSpec, create_service_app, serve
from services.funds import api, events, handlers, older_in_clear
from services.funds.config import FundsSettings
from services.funds.models import FundsTable, kit_tables

SPEC = ServiceSpec(
    name="funds",
    title="Rehab Support — funds",
    description="Donor grants, a double-entry ledger, four-eyes disbursements that can never pay twice, reports.",
    metadata=FundsTable.metadata,
    tables=kit_tables,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=[api.router],
    subscriptions=handlers.subscriptions,
    published=events.PUBLISHED,
    operation_ids=api.OPERATION_IDS,
    background=[older_in_clear.seal_in_background],  # donors and payment references older releases kept in clear
    # A money movement's audit entry is signed into a checkpoint once committed: removed from the database before the
    # next minute's checkpoint, it would leave no trace (a reviewer deleted an approval's and a payment's entries).
    audit_signed_at_once=("grant.create", "disbursement.request", "disbursement.approve", "disbursement.reject",
                          "disbursement.void", "disbursement.pay"),
)


def create_app(settings: FundsSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or FundsSettings())


def run() -> None:
    settings = FundsSettings()
    serve(create_app(settings), settings)
