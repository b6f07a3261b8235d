"""Everything a running gateway holds, reachable from a request as `request.app.state.runtime`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

import aiohttp
import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from gateway import events, openapi
from gateway.models import MIGRATIONS_DIR
from kit import asyncapi, checkpoints, db, migrations
from gateway.access import RateLimit, Standing
from gateway.config import GatewaySettings
from gateway.domain import SignInPolicy, ThrottleKeys
from gateway.mfa import FactorKeys
from gateway.passwords import Hasher
from gateway.replicas import Backends
from gateway.sessions import AtWork, RenewalsAtOnce, SessionPolicy
from kit.audit import AuditTrail
from kit.auth import TokenIssuer
from kit.bus import Bus
from kit.idempotency import Idempotency


@dataclass
class GatewayRuntime:
    settings: GatewaySettings
    engine: Engine
    session_factory: sessionmaker[Session]
    uow: db.UnitOfWork  # every write to the gateway's database: `await runtime.uow.run(fn)`; reads: `uow.read()`
    audit: AuditTrail
    hasher: Hasher
    issuer: TokenIssuer
    jwk: dict[str, str]
    signin_policy: SignInPolicy
    throttle_keys: ThrottleKeys
    session_policy: SessionPolicy
    factor_keys: FactorKeys
    standing: Standing
    renewals: RenewalsAtOnce  # two tabs renewing with one refresh token at once: one renewal
    idempotency: Idempotency  # the Idempotency-Key of an admin's POST (a retry creates no second account or client)
    at_work: AtWork  # a console page opened starts its session's idle clock again (once a minute at most)
    signin_limit: RateLimit  # per address: sign-ins with a password or a client secret
    refresh_limit: RateLimit  # per address: renewals with a refresh token
    forwarding: aiohttp.ClientSession  # the hot path: forwarded requests
    calls: httpx.AsyncClient  # everything else the gateway asks of a service: readiness, documents
    backends: Backends  # each service's replicas, the healthy ones taken in turn (gateway.replicas)
    service_documents: openapi.ServiceDocuments
    event_documents: openapi.ServiceDocuments  # each service's AsyncAPI document of what it publishes
    # The outbox relay of the gateway's own events (gateway.events), no subscriptions; woken after each commit that
    # wrote events. Its state is not the gateway's readiness: with NATS away the events wait in the outbox.
    bus: Bus
    # The audit trail's signed checkpoints on the stream AUDIT (kit.checkpoints), as every service keeps them.
    checkpoints: checkpoints.Checkpointer | None = None
    custody: Any = None  # kit.custody.Custody: the gateway's keys, sealable (`rehab seal`)
    _own_document: dict[str, Any] | None = field(default=None)
    _merged: tuple[tuple, dict[str, Any]] | None = field(default=None)

    async def merged_openapi(self, app: FastAPI) -> dict[str, Any]:
        if self._own_document is None:
            self._own_document = get_openapi(
                title="Rehab Support API", version="1.0.0", routes=app.routes,
                description="Every public path of Rehab Support, through its one gateway. Errors are "
                            "application/problem+json (RFC 9457). Access tokens come from POST /auth/token.",
            )
        documents = await self.service_documents.current()
        version = self.service_documents.version
        if self._merged is None or self._merged[0] != version:
            self._merged = (version, openapi.merge(self._own_document, documents))
        return self._merged[1]

    async def merged_asyncapi(self) -> dict[str, Any]:
        documents = await self.event_documents.current()
        own = asyncapi.document("Rehab Support gateway", events.PUBLISHED)
        return asyncapi.merge("Rehab Support events", [own, *(documents[name] for name in sorted(documents))])

    async def own_readiness(self) -> dict[str, Any]:
        """The gateway's own /readyz: its database answers and its migrations are current. Nothing else."""
        database_ok = await asyncio.to_thread(db.ping, self.engine)
        migrated = database_ok and await asyncio.to_thread(migrations.current_is_head, self.engine, MIGRATIONS_DIR)
        return {
            "status": "ready" if migrated else "not ready",
            "database": "ok" if database_ok else "unreachable",
            "migrations": "current" if migrated else "behind",
            "keys": self.keys_state,  # seal: reported, never a reason to be unready
        }

    @property
    def keys_state(self) -> str:
        return "sealed" if self.custody is not None and self.custody.sealed else "unsealed"

    async def service_readiness(self) -> dict[str, dict[str, Any]]:
        """Each service's own /readyz, asked side by side with a short timeout: `{"status": "ready" | "not ready" |
        "unreachable", ...}` with what the service said of its database, migrations and NATS. A service with
        several replicas is ready when one is (requests go to the ready ones), and says how many are."""
        names = list(self.backends)
        answers = await asyncio.gather(*(self._replicas_ready(name) for name in names))
        return dict(zip(names, answers, strict=True))

    async def _replicas_ready(self, name: str) -> dict[str, Any]:
        urls = self.backends.replicas(name).urls
        reports = await asyncio.gather(*(self._ready(url) for url in urls))
        if len(reports) == 1:
            return reports[0]
        ready = [report for report in reports if report["status"] == "ready"]
        if len(ready) == len(reports):
            return ready[0]
        return {**(ready or reports)[0], "detail": f"{len(ready)} of {len(reports)} replicas ready"}

    async def _ready(self, url: str) -> dict[str, Any]:
        settings = self.settings
        timeout = httpx.Timeout(settings.readiness_timeout_seconds, connect=settings.backend_connect_timeout_seconds)
        try:
            response = await self.calls.get(url + "/readyz", timeout=timeout)
        except httpx.TimeoutException:
            return {"status": "unreachable", "detail": "no answer in time"}
        except httpx.HTTPError:
            return {"status": "unreachable", "detail": "no connection"}
        try:
            said = response.json()
        except ValueError:
            said = None
        report = {key: value for key, value in (said if isinstance(said, dict) else {}).items()
                  if key in _REPORTED and isinstance(value, str)}
        return {**report, "status": "ready" if response.status_code == 200 else "not ready"}

    async def status(self) -> dict[str, Any]:
        """GET /api/admin/status: the gateway, every service behind it, and the key custody in force."""
        own, services = await asyncio.gather(self.own_readiness(), self.service_readiness())
        return {"gateway": own, "services": services, "key_custody": self.settings.key_custody}


# What a service's /readyz may add to its state in the status report (short words, never a value of a record).
_REPORTED = ("database", "migrations", "nats", "keys")


async def get_runtime(request: Request) -> GatewayRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]
