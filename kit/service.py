"""The one place a domain service is wired: settings → database → migrations → keys → bus → routes.

A service calls `create_service_app(ServiceSpec(...), settings)` from its `main.py`; tests call the same with
their own settings (a temporary SQLite file or a fresh PostgreSQL database, a real NATS server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import Engine, MetaData
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from kit import (asyncapi, checkpoints, control, custody, db, http, logs, metrics, migrations, openapi, problems,
                 revocation, tracing)
from kit.audit import AuditTrail, TargetLabels, answer_refusal, audit_router, tell_of_commits
from kit.auth import TokenVerifier, VerifiedTokens
from kit.bus import Bus, BusOptions, Subscription
from kit.crypto import BlindIndex
from kit.errors import Conflict, Refused
from kit.idempotency import Idempotency
from kit.settings import ProcessSettings, ServiceSettings
from kit.tables import KitTables

log = logs.get("service")


@dataclass
class Runtime:
    """Everything a running service holds; reachable from a request as `request.app.state.runtime`."""

    name: str
    settings: ServiceSettings
    engine: Engine
    session_factory: sessionmaker[Session]
    tables: KitTables
    keyring: custody.Custody  # this service's keys (kit.custody), sealable
    blind_index: BlindIndex
    audit: AuditTrail
    idempotency: Idempotency
    bus: Bus
    uow: db.UnitOfWork  # every write of the process: `await runtime.uow.run(fn)`; reads: `runtime.uow.read()`
    revoked_access: revocation.RevokedAccess  # ended sessions, whose tokens every request is checked against
    # The audit trail's signed checkpoints on the stream AUDIT (kit.checkpoints): published by a background job,
    # checked by /audit/verify.
    checkpoints: checkpoints.Checkpointer | None = None
    # seal: the key custody, sealed and unsealed by signed commands on NATS (kit.control, SPEC §8).
    custody: control.Sealable | None = None
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceSpec:
    name: str
    title: str
    metadata: MetaData
    tables: KitTables
    migrations_dir: Path
    routers: list[APIRouter]
    subscriptions: Callable[[Runtime], list[Subscription]] = lambda _rt: []
    on_start: Callable[[Runtime], None] | None = None
    background: list[Callable[[Runtime], Any]] = field(default_factory=list)
    description: str = ""
    published: dict[str, type[BaseModel]] = field(default_factory=dict)  # subject → payload model, for AsyncAPI
    # Routes that take a larger body than `max_body_bytes` (an upload), each by method and path (kit.http.BodyLimit).
    body_limits: list[http.BodyLimit] = field(default_factory=list)
    # Route functions whose name makes no readable operationId, each with the one to use (kit.openapi).
    operation_ids: dict[str, str] = field(default_factory=dict)
    # How the audit trail's readers are shown the records it names (kit.audit.TargetLabels): a case's reference.
    audit_labels: TargetLabels | None = None
    # Audit actions (by prefix) signed into a checkpoint as soon as they are committed (kit.audit.AuditTrail).
    audit_signed_at_once: tuple[str, ...] = ()


def build_runtime(spec: ServiceSpec, settings: ServiceSettings) -> Runtime:
    engine = db.make_engine(settings.db_url)
    tracing.instrument_engine(engine, spec.name)
    factory = db.make_session_factory(engine)
    # The keys, in the custody REHAB_KEY_CUSTODY names (kit.custody): `runtime.keyring` is that custody, which wraps
    # and unwraps like a Keyring and refuses (503 sealed) once `rehab seal` made it forget.
    keyring = custody.open_custody(settings)
    control.start_keys(keyring, settings.state_dir)  # sealed at start while the system is (`rehab seal`)
    uow = db.UnitOfWork(engine, factory)
    uow.reads_off_loop = keyring.kind == "openbao"  # an unwrap may be a round trip to OpenBao: not on the loop
    bus = Bus(  # wakes its relay after every commit that wrote events
        service=spec.name, url=settings.nats_url, uow=uow, tables=spec.tables,
        options=BusOptions(max_deliver=settings.consumer_max_deliver, ack_wait=settings.consumer_ack_wait_seconds,
                           stream_replicas=settings.stream_replicas),
        nkey_seed_file=settings.nats_seed_path,
    )

    audit = AuditTrail(spec.tables, keyring.secret_source("audit"), signed_at_once=spec.audit_signed_at_once)
    runtime = Runtime(
        name=spec.name, settings=settings, engine=engine, session_factory=factory, tables=spec.tables,
        keyring=keyring, blind_index=BlindIndex(keyring.secret_source("blind_index")), audit=audit,
        idempotency=Idempotency(spec.tables, lambda: keyring.derived_keys("idempotency"),
                                fingerprint_keys=lambda: keyring.derived_keys("idempotency-fingerprint"),
                                naming_secret=keyring.secret_source("audit"),
                                lease=timedelta(seconds=settings.idempotency_lease_seconds),
                                retention=timedelta(hours=settings.idempotency_retention_hours), audit=audit),
        bus=bus, uow=uow,
        revoked_access=revocation.RevokedAccess(spec.tables,
                                                retention=timedelta(seconds=settings.revocation_retention_seconds)),
    )
    bus.subscriptions = runtime.revoked_access.subscribe(spec.subscriptions(runtime), service=spec.name)
    runtime.checkpoints = checkpoints.for_process(
        spec.name, settings, table=spec.tables.audit, jetstream=bus.jetstream, read=uow.read,
        replicas=settings.stream_replicas)
    if runtime.checkpoints is not None:
        tell_of_commits(uow, runtime.checkpoints)
    # The custody is what `rehab seal` seals (kit.control); the checkpoint signing key goes and comes back with it.
    runtime.custody = keyring
    keyring.watch(lambda held: runtime.checkpoints and runtime.checkpoints.use_key(held.signing_key()))
    return runtime


async def purge_idempotency_keys(runtime: Runtime) -> None:
    """Every service's own: delete the Idempotency-Key answers and fingerprints past their retention, at start and
    then every `idempotency_purge_interval_seconds`, whether or not requests come in."""
    while True:
        try:
            # A unit of work like a request's: no second writer waiting on SQLite's lock, and no connection of
            # its own open while an erasure checkpoints the write-ahead log.
            await runtime.uow.run(runtime.idempotency.purge)
        except Exception as exc:  # the database away for a moment: the next round deletes them
            log.warning("idempotency purge failed, retrying", error_type=type(exc).__name__)
        await asyncio.sleep(runtime.settings.idempotency_purge_interval_seconds)


async def publish_audit_checkpoints(runtime: Runtime) -> None:
    """Sign the audit trail's head and publish it to the stream AUDIT (kit.checkpoints), NATS permitting."""
    if runtime.checkpoints is not None:
        await runtime.checkpoints.run()


async def follow_revocations(runtime: Runtime) -> None:
    """Ended sessions this replica did not receive itself (replicas share a durable), from the table; and the purge."""
    await revocation.follow(runtime.revoked_access, runtime.engine, runtime.uow.run,
                            every=runtime.settings.revocation_refresh_seconds)


def said_if_failed(task: asyncio.Task[Any]) -> None:
    """A background job that ends by an error is logged at once (its type and where it was raised: a message may
    quote data), not left to a warning at garbage collection."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background job stopped", job=task.get_name(), exc_info=error)


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    logs.configure(spec.name, settings.log_level)
    tracing.setup(spec.name, settings)  # nothing unless REHAB_OTEL_ENABLED

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        runtime = build_runtime(spec, settings)
        if runtime.keyring.passphrases is not None:  # sealed custody: passphrases from `rehab up`'s pipe, any time
            # (while the seal mark is there, a passphrase waits for the unseal command: kit.control)
            runtime.keyring.passphrases.follow_pipe(lambda: control.start_keys(runtime.keyring, settings.state_dir))
        migrations.upgrade(runtime.engine, spec.migrations_dir)
        app.state.runtime = runtime
        app.state.token_verifier = VerifiedTokens(TokenVerifier.from_file(
            settings.public_key_path, issuer=settings.token_issuer, audience=settings.token_audience
        ))
        runtime.revoked_access.refresh(runtime.engine)  # before the first request: a restart forgets nothing
        app.state.revoked_access = runtime.revoked_access
        if spec.on_start:
            spec.on_start(runtime)
        await runtime.bus.start()
        jobs = [purge_idempotency_keys, follow_revocations, publish_audit_checkpoints, *spec.background]
        tasks = [asyncio.create_task(job(runtime), name=job.__name__) for job in jobs]
        for task in tasks:
            task.add_done_callback(said_if_failed)
        if runtime.custody is not None:  # seal: `rehab seal` / `rehab unseal`, and the seal recorded (kit.control)
            seal = control.listener_for(runtime.name, runtime.custody, runtime.settings)
            await control.look_before_serving(seal, runtime.bus)
            tasks.append(asyncio.create_task(control.follow_commands(seal, lambda: runtime.bus.nc)))
        settings.warn_of_key_custody(log)
        log.info("service started", port=settings.port)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for extra in runtime.extras.values():  # what a service keeps open (a client to another service)
                if hasattr(extra, "aclose"):
                    await extra.aclose()
            await runtime.bus.stop()
            await runtime.uow.close()
            runtime.engine.dispose()

    # /metrics on its own listener (REHAB_METRICS_HOST:REHAB_METRICS_PORT), open for as long as the app runs.
    # No redirect of a path with a trailing slash to the one without: its Location would name this process's own
    # address, which the gateway passes on to the caller (a 404 instead, as for any path not served).
    app = FastAPI(title=spec.title, description=spec.description, redirect_slashes=False,
                  dependencies=[Depends(problems.no_fields_where_no_body_is_taken)],
                  lifespan=metrics.served_beside(lifespan, settings.metrics_host, settings.metrics_port),
                  telemetry=fastapi_telemetry(settings))
    problems.install(app)
    # Every refused authorisation is audited: a refusal carrying its entry (kit.audit.refusal_recorded) leaves it
    # in the trail, in a unit of its own after the refused one rolled back, before the 403 is answered.
    app.add_exception_handler(Refused, answer_refusal)
    app.add_exception_handler(Conflict, answer_refusal)  # the few a trail keeps (refusal_recorded's `of`)
    openapi.install(app, operation_ids=spec.operation_ids)  # operationIds, and the error answers each route can give
    http.install(app, service=spec.name, max_body_bytes=settings.max_body_bytes, body_limits=spec.body_limits)
    tracing.instrument_app(app, spec.name)

    async def readiness() -> dict[str, Any]:
        runtime: Runtime | None = getattr(app.state, "runtime", None)
        if runtime is None:
            return {"status": "starting"}
        database_ok = await asyncio.to_thread(db.ping, runtime.engine)
        migrated = database_ok and await asyncio.to_thread(migrations.current_is_head, runtime.engine, spec.migrations_dir)
        return {
            "status": "ready" if database_ok and migrated else "not ready",
            "database": "ok" if database_ok else "unreachable",
            "migrations": "current" if migrated else "behind",
            "nats": runtime.bus.state(),
            # seal: sealed keys do not make a process unready (Kubernetes would restart it); they are reported.
            "keys": "sealed" if runtime.custody is not None and runtime.custody.sealed else "unsealed",
        }

    app.include_router(http.health_router(readiness))
    app.include_router(asyncapi.router(spec.title, spec.published))
    prefix = f"/api/{spec.name}"
    app.include_router(audit_router(lambda request: request.app.state.runtime.audit, ReadSession,
                                    lambda request: request.app.state.runtime.checkpoints, spec.audit_labels),
                       prefix=prefix)
    for router in spec.routers:
        app.include_router(router)
    return app


def fastapi_telemetry(settings: ProcessSettings) -> dict[str, bool]:
    """FastAPI's own OpenTelemetry hooks cost tens of microseconds per request even with nothing configured."""
    return {} if settings.otel_enabled else {"tracing": False, "metrics": False, "logs": False}


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def read_session(request: Request) -> AsyncIterator[Session]:
    """A read-only session for one request (`uow.read()`: committed rows, never the write lock, never committed).
    A route that writes, an audited read included, runs its use case through `await runtime.uow.run(...)` instead.

    Async on purpose: FastAPI runs sync dependencies on a thread pool, and a thread hop per request (a few hundred
    microseconds under load) costs more than the short SQLite read it wraps. Any app whose `state.runtime` has a `uow`
    (every service, the gateway) can use it.
    """
    with request.app.state.runtime.uow.read() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ReadSession = Annotated[Session, Depends(read_session)]


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one process with uvicorn (uvloop, httptools), no access log: we log requests without query strings.

    X-Forwarded-For is believed only from REHAB_TRUSTED_PROXIES (SPEC §3), never by default: uvicorn's own default
    (proxy headers on, trusted from 127.0.0.1 or its FORWARDED_ALLOW_IPS variable) would let any local client, or
    a proxy that passes the header on, choose the address the sign-in limits count. `log_config=None`: uvicorn
    installs no handler of its own, so its lines go through kit.logs' JSON handler like everyone's. No `Server`
    header: what runs behind a port is not told to whoever asks (an outside review's find).
    """
    trusted = settings.trusted_proxy_list
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning", log_config=None,
                proxy_headers=bool(trusted), forwarded_allow_ips=trusted, server_header=False,
                loop="uvloop", http=http.HeadersInTime, timeout_graceful_shutdown=5)
