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

from gateway import openapi
from kit import asyncapi
from gateway.access import RateLimit, Standing
from gateway.config import GatewaySettings
from gateway.domain import LockoutPolicy
from gateway.passwords import Hasher
from kit.audit import AuditTrail
from kit.auth import TokenIssuer


@dataclass
class GatewayRuntime:
    settings: GatewaySettings
    engine: Engine
    session_factory: sessionmaker[Session]
    audit: AuditTrail
    hasher: Hasher
    issuer: TokenIssuer
    jwk: dict[str, str]
    lockout: LockoutPolicy
    standing: Standing
    signin_limit: RateLimit
    forwarding: aiohttp.ClientSession  # the hot path: forwarded requests
    calls: httpx.AsyncClient  # everything else the gateway asks of a service: readiness, documents
    service_documents: openapi.ServiceDocuments
    event_documents: openapi.ServiceDocuments  # each service's AsyncAPI document of what it publishes
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
        return asyncapi.merge("Rehab Support events", [documents[name] for name in sorted(documents)])

    async def service_readiness(self) -> dict[str, str]:
        """Each service's own /readyz, asked side by side with a short timeout."""
        names = list(self.settings.backends)
        answers = await asyncio.gather(*(self._ready(name) for name in names))
        return dict(zip(names, answers, strict=True))

    async def _ready(self, name: str) -> str:
        try:
            response = await self.calls.get(self.settings.backends[name] + "/readyz",
                                            timeout=self.settings.readiness_timeout_seconds)
        except httpx.HTTPError:
            return "unreachable"
        return "ready" if response.status_code == 200 else "not ready"


async def get_runtime(request: Request) -> GatewayRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[GatewayRuntime, Depends(get_runtime)]
