"""Run a service's real app in-process (its lifespan included) and talk to it over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from kit.auth import TokenIssuer


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def bearer(issuer: TokenIssuer, *roles: str, sub: str = "tester", partner_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.issue(sub=sub, roles=list(roles), partner_id=partner_id)}"}
