"""Intake running for real, in-process: its own database (SQLite file or fresh PostgreSQL), a real NATS server,
keys from a real secrets folder; and small helpers to talk to it as a caseworker or an auditor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from kit.auth import TokenIssuer
from kit.service import Runtime
from services.intake.config import IntakeSettings
from services.intake.main import create_app
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

    def as_(self, *roles: str, sub: str = "caseworker-1") -> dict[str, str]:
        return bearer(self.issuer, *roles, sub=sub)

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
