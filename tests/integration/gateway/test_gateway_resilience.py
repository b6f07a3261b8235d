"""A service that is down, slow or broken gets a quick problem answer from the gateway, never a hang; the gateway
stays up, and forwards again as soon as the service is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.integration.gateway.door import backends_running, open_gateway
from tests.support.nats import free_port

pytestmark = pytest.mark.integration

# The gateway must answer within this, however the service misbehaves (a bound on a hang, not a timing assert).
NO_HANG = 8.0


async def eventually_status(call, wanted: int, timeout: float = 30.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        answer = await asyncio.wait_for(call(), NO_HANG)
        if answer.status_code == wanted or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.1)


async def test_a_service_that_is_down_gives_503_and_the_gateway_recovers_when_it_returns(tmp_path, gateway_settings):
    with backends_running(tmp_path / "backends", ["intake"]) as backends:
        intake = backends.processes["intake"]
        settings = gateway_settings(backends.secrets_dir, intake_url=intake.url)
        async with open_gateway(settings) as door:
            caseworker = await door.staff("caseworker")

            async def list_cases():  # noqa: ANN202
                return await door.client.get("/api/intake/cases", headers=caseworker)

            assert (await list_cases()).status_code == 200
            intake.stop()

            down = await asyncio.wait_for(list_cases(), NO_HANG)
            assert down.status_code == 503
            assert down.headers["content-type"] == "application/problem+json"
            assert "retry-after" in down.headers and "Traceback" not in down.text
            assert (await door.client.get("/healthz")).status_code == 200
            # The gateway itself stays ready (SPEC §3); the down service shows in the admins' status report.
            readiness = await door.client.get("/readyz")
            assert readiness.status_code == 200 and "services" not in readiness.json()
            status = (await door.client.get("/api/admin/status", headers=await door.admin())).json()
            assert status["services"]["intake"]["status"] == "unreachable"

            intake.start()
            intake.wait_ready()
            assert (await eventually_status(list_cases, 200)).status_code == 200


class Silent(asyncio.Protocol):
    """A service that accepts the connection and the request, and never answers."""

    def data_received(self, data: bytes) -> None:
        pass


class HangsUp(asyncio.Protocol):
    """A service that closes the connection as soon as a request arrives."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.close()


@pytest.fixture
async def misbehaving() -> AsyncIterator[dict[str, str]]:
    loop = asyncio.get_running_loop()
    servers = {}
    urls = {}
    for name, protocol in (("silent", Silent), ("closing", HangsUp)):
        port = free_port()
        servers[name] = await loop.create_server(protocol, "127.0.0.1", port)
        urls[name] = f"http://127.0.0.1:{port}"
    yield urls
    for server in servers.values():
        server.close()


async def test_a_slow_service_gives_504_and_a_broken_one_502(misbehaving, gateway_settings, secrets_dir):
    settings = gateway_settings(secrets_dir, funds_url=misbehaving["silent"], referrals_url=misbehaving["closing"],
                                backend_timeout_seconds=1.0)
    async with open_gateway(settings) as door:
        finance = await door.staff("finance")
        admin = await door.admin()

        slow = await asyncio.wait_for(door.client.get("/api/funds/grants", headers=finance), NO_HANG)
        broken = await asyncio.wait_for(door.client.get("/api/referrals/partners", headers=admin), NO_HANG)

        assert slow.status_code == 504 and slow.headers["content-type"] == "application/problem+json"
        assert broken.status_code == 502 and broken.headers["content-type"] == "application/problem+json"
        assert (await door.client.get("/auth/me", headers=finance)).status_code == 200
