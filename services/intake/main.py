"""Intake's process: one app factory, used by `python -m services.intake` and by the tests."""

from functools import partial
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import select

from kit import erasures, logs
from kit.bus import Subscription
from kit.rates import RateLimit
from kit.service import Runtime, ServiceSpec, create_service_app, serve
from services.intake import api, events, handlers, queries
from services.intake.cleaning import Cleaner
from services.intake.config import IntakeSettings
from services.intake.models import IntakeTable, NameIndexPending, kit_tables
from services.intake.protection import CaseVault


def _subscriptions(runtime: Runtime) -> list[Subscription]:
    return [
        Subscription(producer="referrals", durable="intake-referrals",
                     handlers={**dict.fromkeys(handlers.REFERRAL_SUBJECTS, handlers.referral_changed),
                               handlers.REFERRALS_BREAK_GLASS: handlers.opened_elsewhere}),
        Subscription(producer="funds", durable="intake-funds",
                     handlers={**dict.fromkeys(handlers.DISBURSEMENT_SUBJECTS, handlers.disbursement_changed),
                               handlers.FUNDS_BREAK_GLASS: handlers.opened_elsewhere}),
        Subscription(producer="gateway", durable="intake-gateway",
                     handlers=dict.fromkeys(handlers.STAFF_SUBJECTS, partial(handlers.staff_changed,
                                                                            audit=runtime.audit))),
    ]


def _on_start(runtime: Runtime) -> None:
    # Erasures go to the ledger through the outbox (kit.erasures): its stream exists before the relay sends one.
    runtime.bus.provisions.append(erasures.ensure_stream)
    # Erasure deletes the kit's stored answers about the case (found by case id, whichever KEK sealed them).
    runtime.extras["vault"] = CaseVault(runtime.keyring, runtime.blind_index,
                                        runtime.idempotency)
    runtime.extras["cleaner"] = Cleaner()  # documents are cleaned in worker processes, started on the first upload
    runtime.extras["duplicate_checks"] = RateLimit(
        runtime.settings.duplicate_check_rate_limit, scope="duplicate-check",
        detail="Too many duplicate checks for now (opening a case is one: it answers the case's possible "
               "duplicates): a check answers from a name and a date of birth, and is not a way to search. Wait "
               "for the time Retry-After says.")
    runtime.extras["searches"] = RateLimit(
        runtime.settings.search_rate_limit, scope="search",
        detail="Too many searches that found cases other caseworkers hold, for now: a search finds the people you "
               "register and work with, and is not a way to go through a list of names. Wait for the time "
               "Retry-After says.")
    with runtime.engine.connect() as conn:
        pending = conn.execute(select(NameIndexPending.part)).scalars().all()
    if pending:  # searches stay right meanwhile, only slower
        logs.get("intake").warning("cases opened before an upgrade lack some name-index terms: run `rehab names reindex`",
                                   parts=sorted(pending))


SPEC = ServiceSpec(
    name="intake",
    title="Rehab Support — intake",
    description="Cases of released people: encrypted personal data, duplicates across scripts, need-to-know "
                "assignment, needs, consent, the case timeline and erasure.",
    metadata=IntakeTable.metadata,
    tables=kit_tables,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=[api.router],
    subscriptions=_subscriptions,
    on_start=_on_start,
    published=events.PUBLISHED,
    body_limits=[api.UPLOAD_LIMIT],  # a document upload, up to 20 MiB; every other route keeps max_body_bytes
    audit_labels=queries.case_references,  # every target of intake's trail is a case
)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or IntakeSettings())


def run() -> None:
    settings = IntakeSettings()
    serve(create_app(settings), settings)
