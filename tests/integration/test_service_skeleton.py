"""A service built on the kit starts, migrates, serves health, refuses unsigned calls and publishes events."""

from __future__ import annotations

import asyncio

import nats
import pytest

from services.intake.config import IntakeSettings
from services.intake.main import create_app
from tests.support.apps import bearer, running
from tests.support.nats import patient_jetstream

pytestmark = pytest.mark.integration


async def test_intake_starts_migrates_and_publishes(tmp_path, secrets_dir, token_issuer, nats_url, database_url_factory):
    settings = IntakeSettings(state_dir=tmp_path, secrets_dir=secrets_dir, nats_url=nats_url,
                              database_url=database_url_factory("intake"))
    app = create_app(settings)
    async with running(app) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready["database"] == "ok" and ready["migrations"] == "current"

        unauthenticated = await client.post("/api/intake/cases", json={})
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["content-type"] == "application/problem+json"

        created = await client.post("/api/intake/cases", json={"full_name": "Ян Жук", "country": "LT"},
                                    headers=bearer(token_issuer, "caseworker"))
        assert created.status_code == 201, created.text

        nc = await nats.connect(nats_url)
        js = patient_jetstream(nc)
        for _ in range(100):
            try:
                if (await js.stream_info("INTAKE")).state.messages == 1:  # case.opened (naming its creator)
                    break
            except Exception:
                pass
            await asyncio.sleep(0.05)
        assert (await js.stream_info("INTAKE")).state.messages == 1
        await nc.close()
