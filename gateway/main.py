"""The gateway's process: one app factory, used by `python -m gateway` and by the tests."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, FastAPI

from gateway import api, console, service
from gateway.access import Gatekeeper, RateLimit, Standing, gateway_principal
from gateway.config import GatewaySettings
from gateway.domain import SignInPolicy, ThrottleKeys, key_for, password_weakness
from gateway.forward import ForwardingMiddleware, forwarding_session
from gateway.mfa import FactorKeys
from gateway.models import MIGRATIONS_DIR, kit_tables
from gateway.openapi import ServiceDocuments
from gateway.passwords import Hasher
from gateway.replicas import Backends
from gateway.routing import UPLOADS, route_for
from gateway.runtime import GatewayRuntime
from gateway.sessions import AtWork, RenewalsAtOnce, SessionPolicy
from kit import checkpoints, control, custody, db, errors, http, logs, metrics, migrations, openapi, problems, tracing
from kit.audit import AuditTrail, audit_router, tell_of_commits
from kit.auth import TokenIssuer, TokenVerifier, VerifiedTokens
from kit.bus import Bus, BusOptions
from kit.idempotency import Idempotency
from kit.service import ReadSession, fastapi_telemetry, purge_idempotency_keys, serve

log = logs.get("gateway")


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    logs.configure("gateway", settings.log_level)
    tracing.setup("gateway", settings)  # nothing unless REHAB_OTEL_ENABLED

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        runtime = build_runtime(settings)
        if runtime.custody.passphrases is not None:  # sealed custody: passphrases from `rehab up`'s pipe, any time
            # (while the seal mark is there, a passphrase waits for the unseal command: kit.control)
            runtime.custody.passphrases.follow_pipe(lambda: control.start_keys(runtime.custody, settings.state_dir))
        warm_up: asyncio.Task | None = None
        checkpointing: asyncio.Task | None = None
        commands: asyncio.Task | None = None  # seal
        probing: asyncio.Task | None = None
        purging: asyncio.Task | None = None
        try:
            await asyncio.to_thread(migrations.upgrade, runtime.engine, MIGRATIONS_DIR)
            await bootstrap_admin(runtime)
            # Returns at once: it connects, provisions the GATEWAY stream and relays the outbox in the background,
            # retrying while NATS is away (the gateway serves meanwhile; its events wait in the outbox).
            await runtime.bus.start()
            # Signs the audit trail's head and publishes it to the stream AUDIT (kit.checkpoints), NATS permitting.
            checkpointing = asyncio.create_task(runtime.checkpoints.run()) if runtime.checkpoints else None
            # seal: `rehab seal` / `rehab unseal` reach the gateway too, on `rehab.control.>`, and a seal recorded
            # on NATS before it started seals it before it serves (kit.control).
            seal = control.listener_for("gateway", runtime.custody, settings)
            await control.look_before_serving(seal, runtime.bus)
            commands = asyncio.create_task(control.follow_commands(seal, lambda: runtime.bus.nc))
            app.state.runtime = runtime
            app.state.token_verifier = VerifiedTokens(TokenVerifier(
                runtime.issuer.public_key(), issuer=settings.token_issuer, audience=settings.token_audience))
            app.state.gatekeeper = Gatekeeper(app.state.token_verifier, runtime.standing,
                                              RateLimit(settings.api_rate_limit, scope="principal"))
            app.state.forwarding = runtime.forwarding
            # Each service's replicas (gateway.replicas): `backend_urls[name]` is the next healthy one in turn.
            app.state.backend_urls = runtime.backends
            probing = asyncio.create_task(runtime.backends.watch(
                runtime.calls, every=settings.backend_probe_seconds, timeout=settings.readiness_timeout_seconds))
            warm_up = asyncio.create_task(runtime.service_documents.current())  # services may still be starting
            purging = asyncio.create_task(purge_idempotency_keys(runtime))  # as at every service
            settings.warn_of_key_custody(log)
            log.info("gateway started", port=settings.port)
            yield
        finally:
            for task in (warm_up, checkpointing, commands, probing, purging):
                if task:
                    task.cancel()
            await runtime.bus.stop()
            await runtime.forwarding.close()
            await runtime.calls.aclose()
            await runtime.uow.close()
            runtime.engine.dispose()

    # /metrics on its own listener (REHAB_METRICS_HOST:REHAB_METRICS_PORT), never on the public one (SPEC §3).
    # No redirect to the slash-less path: Starlette's 307 names the site the request's Host header gave and keeps the
    # method and body (a password re-posted there); a path with a trailing slash names nothing, as at the services.
    app = FastAPI(title="Rehab Support gateway", redirect_slashes=False,
                  lifespan=metrics.served_beside(lifespan, settings.metrics_host, settings.metrics_port),
                  openapi_url=None, docs_url=None,
                  redoc_url=None, telemetry=fastapi_telemetry(settings))
    problems.install(app)
    console.install_error_pages(app)  # a console page that fails answers as a page, in words
    # operationIds, and only the error answers each route can give (kit.openapi)
    openapi.install(app, operation_ids={"system_status": "status_get"})
    app.add_middleware(console.RenewedSessionCookies)  # the console's renewed session, on whatever page answers
    app.add_middleware(ForwardingMiddleware)  # added first, so it runs inside kit.http's middleware
    http.install(app, service="gateway", max_body_bytes=settings.max_body_bytes, body_limits=UPLOADS,
                 own_request_ids=True,  # the public edge: a caller's X-Request-ID is not written anywhere
                 refused_address=console.refused_address,  # a NUL in a console address: a page, in words
                 failure_page=console.failure_page,  # a console page that failed: a page, in words
                 # A service's body is streamed to it unread, checked there once the gateway has admitted its
                 # caller: never parsed here for a stranger.
                 passed_on=lambda scope: route_for(scope["path"]) is not None,
                 # Nor is a JSON body sent to the gateway's own routes by a caller they would refuse.
                 refused_unread=lambda scope: api.unread_json_refused(scope, getattr(app.state, "gatekeeper", None)))
    tracing.instrument_app(app, "gateway")

    async def readiness() -> dict[str, Any]:
        """Whether the gateway itself can serve: its database and migrations. Not the services behind it: a
        service that is down makes its own routes answer 503, and sign-in and the console stay up (SPEC §3); the
        services' states are at GET /api/admin/status."""
        runtime: GatewayRuntime | None = getattr(app.state, "runtime", None)
        if runtime is None:
            return {"status": "starting"}
        return await runtime.own_readiness()

    app.include_router(http.health_router(readiness))
    # Their bodyless POSTs (seal, revoke-all, an approval) refuse a body with fields, as the services' do (SPEC §6);
    # not on the forwarded paths, whose bodies are the services' to judge.
    no_body = [Depends(problems.no_fields_where_no_body_is_taken)]
    app.include_router(api.auth_router, dependencies=no_body)
    app.include_router(api.admin_router, dependencies=no_body)
    # The gateway's own audit trail (sign-ins, failures, identity changes), for auditors, as every service serves
    # its own; `gateway_principal` runs first, so a disabled user's token is refused here too.
    app.include_router(audit_router(lambda request: request.app.state.runtime.audit, ReadSession,
                                    lambda request: request.app.state.runtime.checkpoints),
                       prefix="/api/admin", dependencies=[Depends(gateway_principal), *no_body])
    app.include_router(api.public_router)
    app.include_router(console.router)  # the staff web console (SPEC §3 `GET /`): signing in, a password, a factor
    app.include_router(console.cases_router)  # the caseworker's: cases, casework, break-glass, referrals
    app.include_router(console.caseload_router)  # the supervisor's: the caseload and (re)assignment
    app.include_router(console.admin_router)  # its admin pages: staff accounts and approvals (SPEC §2)
    app.include_router(console.referral_router)  # a referral's page and its messages, for the case's caseworkers
    app.include_router(console.partner_router)  # partner staff's console: referrals to their partner (SPEC §4)
    app.include_router(console.partners_admin_router)  # the admin's partner directory, webhooks and deliveries
    app.include_router(console.audit_router)  # the auditor's: every service's audit trail, verified; break-glass
    app.include_router(console.finance_router)  # finance: grants, the disbursement queue, the donor report
    app.include_router(console.estimates_router)  # finance asks for aid from partners' cost estimates
    app.include_router(console.programme_router)  # the coordinator's: the programme report (soon)
    return app


def build_runtime(settings: GatewaySettings) -> GatewayRuntime:
    engine = db.make_engine(settings.db_url)
    tracing.instrument_engine(engine, "gateway")
    factory = db.make_session_factory(engine)
    uow = db.UnitOfWork(engine, factory)
    # The gateway's own keys (kit.custody: no KEK, its audit key, from which its other secrets derive), sealable.
    keys = custody.open_custody(settings)
    control.start_keys(keys, settings.state_dir)  # sealed at start while the system is (`rehab seal`)
    issuer = token_issuer(settings, keys)
    calls = httpx.AsyncClient(timeout=settings.readiness_timeout_seconds, trust_env=False)
    backends = Backends(settings.backends, eject_seconds=settings.backend_eject_seconds)
    audit_key = keys.secret_source("audit")

    def current_standing(sub: str, partner_id: str | None) -> service.Standing | None:
        # Sessions revoked before the oldest unexpired access token was issued no longer matter.
        since = service.now_utc() - timedelta(seconds=settings.token_ttl_seconds + 60)
        with uow.read() as session:
            return service.current_standing(session=session, sub=sub, partner_id=partner_id, since=since)

    bus = Bus(service="gateway", url=settings.nats_url, uow=uow, tables=kit_tables,
              options=BusOptions(stream_replicas=settings.stream_replicas), nkey_seed_file=settings.nats_seed_path,
              provisions=[control.ensure_state_stream])  # the seal state's stream (kit.control)
    runtime = GatewayRuntime(
        settings=settings, engine=engine, session_factory=factory, uow=uow,
        audit=AuditTrail(kit_tables, audit_key),
        hasher=Hasher.from_settings(settings), issuer=issuer, jwk=issuer.jwk,
        signin_policy=SignInPolicy(backoff_seconds=settings.signin_backoff_seconds,
                                   lock_after=settings.lockout_after_failures, lock_seconds=settings.lockout_seconds,
                                   lock_everywhere_after=settings.lockout_everywhere_after_failures,
                                   lock_codes_after=settings.lockout_codes_after_failures,
                                   forget_after_seconds=settings.signin_failures_kept_seconds),
        throttle_keys=ThrottleKeys.derived_from(audit_key),
        factor_keys=FactorKeys(audit_key),
        custody=keys,
        standing=Standing(current_standing, settings.principal_check_seconds),
        renewals=RenewalsAtOnce(grace=settings.refresh_reuse_grace_seconds),
        idempotency=Idempotency(kit_tables, lambda: [key_for(audit_key(), "idempotency answers")],
                                fingerprint_keys=lambda: [key_for(audit_key(), "idempotency fingerprints")],
                                naming_secret=audit_key,
                                lease=timedelta(seconds=settings.idempotency_lease_seconds),
                                retention=timedelta(hours=settings.idempotency_retention_hours)),
        at_work=AtWork(),
        session_policy=SessionPolicy(idle=timedelta(seconds=settings.session_idle_seconds),
                                     absolute=timedelta(seconds=settings.session_max_seconds)),
        signin_limit=RateLimit(settings.signin_rate_limit, scope="signin"),
        refresh_limit=RateLimit(settings.refresh_rate_limit, scope="refresh"),
        forwarding=forwarding_session(connect_timeout=settings.backend_connect_timeout_seconds,
                                      total_timeout=settings.backend_timeout_seconds,
                                      connections=settings.backend_connections),
        calls=calls,
        backends=backends,
        service_documents=ServiceDocuments(calls, backends, max_age=settings.openapi_refresh_seconds,
                                           timeout=settings.readiness_timeout_seconds),
        event_documents=ServiceDocuments(calls, backends, max_age=settings.openapi_refresh_seconds,
                                         timeout=settings.readiness_timeout_seconds, path="/asyncapi.json"),
        # The gateway's events (gateway.events) leave through its outbox: a relay and nothing consumed.
        bus=bus,
        checkpoints=checkpoints.for_process("gateway", settings, table=kit_tables.audit, jetstream=bus.jetstream,
                                            read=uow.read, replicas=settings.stream_replicas),
    )
    tell_of_commits(uow, runtime.checkpoints)
    # Sealing forgets the checkpoint signing key with the rest; unsealing gives it back (kit.custody).
    keys.watch(lambda held: runtime.checkpoints and runtime.checkpoints.use_key(held.signing_key()))
    return runtime


def token_issuer(settings: GatewaySettings, keys: custody.Custody) -> TokenIssuer:
    """The signer of access tokens: its key from a file, or (sealed custody) from the gateway's keys.sealed, asked
    for at each signing, so a sealed gateway signs nothing — under file custody either (`rehab seal` is the same
    seal whatever the custody: a renewal or sign-in during it is a 503, not a token)."""
    common = {"issuer": settings.token_issuer, "audience": settings.token_audience,
              "ttl_seconds": settings.token_ttl_seconds}
    if settings.private_key_path.is_file():
        held = serialization.load_pem_private_key(settings.private_key_path.read_bytes(), password=None)
        if not isinstance(held, Ed25519PrivateKey):
            raise ValueError("token signing key must be Ed25519")

        def while_unsealed() -> Ed25519PrivateKey:
            if keys.sealed:
                raise errors.Sealed()
            return held

        return TokenIssuer(while_unsealed, public_key=held.public_key(), **common)
    public = serialization.load_pem_public_key(settings.public_key_path.read_bytes())

    def private() -> Ed25519PrivateKey:
        return serialization.load_pem_private_key(keys.secret(custody.TOKEN_SECRET), password=None)

    return TokenIssuer(private, public_key=public, **common)


async def bootstrap_admin(runtime: GatewayRuntime) -> None:
    """SPEC §3: with no user at all, create `admin` with REHAB_ADMIN_PASSWORD, or with a generated password written
    to an owner-only file whose path (never the password) is logged."""
    with runtime.uow.read() as session:
        if service.count_users(session=session):
            return
    settings = runtime.settings
    given = settings.admin_password.get_secret_value() if settings.admin_password else None
    if given is not None and (weakness := password_weakness(given, username="admin")):
        raise RuntimeError(f"REHAB_ADMIN_PASSWORD is not acceptable: {weakness}")
    password = given or generated_password()
    password_hash = await runtime.hasher.hash_async(password)
    created = await runtime.uow.run(lambda session: service.bootstrap_admin(
        session=session, audit=runtime.audit, password_hash=password_hash, generated=given is None))
    if created is None:
        return  # another replica created the first admin
    if given is not None:
        log.warning("first admin created with the password from REHAB_ADMIN_PASSWORD", username="admin")
        return
    path = settings.admin_password_path
    write_owner_only(path, password + "\n")
    log.warning("first admin created; its password is in a file only this user can read", username="admin",
                path=str(path.resolve()))


def generated_password() -> str:
    while True:
        candidate = secrets.token_urlsafe(18)
        if password_weakness(candidate, username="admin") is None:
            return candidate


def write_owner_only(path: Path, content: str) -> None:
    """Write `content` to a new 0600 file, then move it into place (an older file from a wiped database is replaced)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(content)
    os.replace(temporary, path)


def run() -> None:
    settings = GatewaySettings()
    serve(create_app(settings), settings)  # uvicorn with uvloop and httptools, no access log
