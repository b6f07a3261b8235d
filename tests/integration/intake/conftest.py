"""Intake running for real, in-process: its own database (SQLite file or fresh PostgreSQL), a real NATS server,
keys from a real secrets folder; and small helpers to talk to it as a caseworker or an auditor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, select

from kit.auth import TokenIssuer
from kit.events import Envelope
from kit.service import Runtime
from services.intake import assignment
from services.intake.config import IntakeSettings
from services.intake.main import create_app
from services.intake.models import kit_tables
from tests.support.apps import bearer, running


@dataclass
class Intake:
    client: httpx.AsyncClient
    app: FastAPI
    settings: IntakeSettings
    issuer: TokenIssuer

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    @property
    def engine(self) -> Engine:
        return self.runtime.engine

    def as_(self, *roles: str, sub: str = "caseworker-1", username: str | None = None) -> dict[str, str]:
        """A token for `sub` with `roles`; with `username`, the gateway's `username` claim too."""
        if username is None:
            return bearer(self.issuer, *roles, sub=sub)
        token = self.issuer.issue(sub=sub, roles=list(roles), extra={"username": username})
        return {"Authorization": f"Bearer {token}"}

    async def staff(self, user_id: str, username: str, *roles: str, enabled: bool = True) -> None:
        """Put someone in the staff directory, as the gateway's events would (roles default to caseworker)."""
        await self.runtime.uow.run(lambda session: assignment.record_staff(
            session, user_id=user_id, username=username, roles=list(roles or ("caseworker",)), partner_id=None,
            enabled=enabled, occurred_at=datetime.now(UTC)))

    @property
    def caseworker(self) -> dict[str, str]:
        return self.as_("caseworker")

    @property
    def auditor(self) -> dict[str, str]:
        return self.as_("auditor", sub="auditor-1")

    async def create(self, **body: Any) -> dict[str, Any]:
        body.setdefault("full_name", "Марыя Жук")
        response = await self.client.post("/api/intake/cases", json=body, headers=self.caseworker)
        assert response.status_code == 201, response.text
        return response.json()

    async def read(self, case_id: str) -> httpx.Response:
        return await self.client.get(f"/api/intake/cases/{case_id}", headers=self.caseworker)

    def events(self, subject: str) -> list[dict[str, Any]]:
        """The data of the events intake wrote to its outbox on `subject`, oldest first (a row stays once relayed)."""
        outbox = kit_tables.outbox
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.envelope).where(outbox.c.subject == subject)
                                .order_by(outbox.c.seq)).scalars().all()
        return [Envelope.from_bytes(row.encode()).data for row in rows]


@pytest.fixture
def intake_settings(tmp_path, secrets_dir, nats_url, database_url_factory) -> IntakeSettings:
    return IntakeSettings(state_dir=tmp_path / "state", secrets_dir=secrets_dir, nats_url=nats_url,
                          database_url=database_url_factory("intake"), consumer_ack_wait_seconds=5)


@pytest.fixture
async def intake(intake_settings, token_issuer) -> AsyncIterator[Intake]:
    app = create_app(intake_settings)
    async with running(app) as client:
        yield Intake(client, app, intake_settings, token_issuer)


async def eventually(predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy (awaiting it when it is a coroutine); its value."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
