"""/metrics is served on a listener of its own in every process, never on the main one (SPEC §3, issue #13): the
gateway's main listener is the public one, and counts of sign-ins, creations and erasures are activity intelligence.

The apps run in-process (their lifespan included); the metrics listener is a real socket on loopback.
"""

from __future__ import annotations

import httpx
import pytest

from gateway.config import GatewaySettings
from gateway.main import create_app as create_gateway
from kit import metrics
from ops.supervisor import port_is_free
from services.intake.config import IntakeSettings
from services.intake.main import create_app as create_intake
from tests.support.apps import running
from tests.support.nats import free_port

pytestmark = pytest.mark.integration


def scrape(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5, trust_env=False)


def counted(text: str, service: str, route: str) -> bool:
    return any(line.startswith("rehab_http_requests_total{") and f'service="{service}"' in line
               and f'route="{route}"' in line for line in text.splitlines())


async def test_the_gateway_serves_metrics_on_its_metrics_port_only(tmp_path, secrets_dir, database_url_factory):
    port = free_port()
    settings = GatewaySettings(state_dir=tmp_path / "gateway", secrets_dir=secrets_dir,
                               database_url=database_url_factory("gateway"), admin_password="Gateway-admin-2026",
                               argon2_time_cost=1, argon2_memory_kib=19456, argon2_parallelism=1,
                               metrics_port=port)
    async with running(create_gateway(settings)) as public:
        assert (await public.get("/healthz")).status_code == 200

        on_public = await public.get("/metrics")
        assert on_public.status_code == 404
        assert "rehab_http_requests_total" not in on_public.text

        scraped = scrape(port)
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert counted(scraped.text, "gateway", "/healthz")
    assert port_is_free(port), "the metrics listener closes with the app"


async def test_a_service_serves_metrics_on_its_metrics_port_only(tmp_path, secrets_dir, nats_url,
                                                                  database_url_factory):
    port = free_port()
    settings = IntakeSettings(state_dir=tmp_path, secrets_dir=secrets_dir, nats_url=nats_url,
                              database_url=database_url_factory("intake"), metrics_port=port)
    async with running(create_intake(settings)) as main:
        assert (await main.get("/readyz")).status_code == 200
        assert (await main.get("/metrics")).status_code == 404

        scraped = scrape(port)
        assert scraped.status_code == 200
        assert counted(scraped.text, "intake", "/readyz")
        assert "rehab_nats_connected" in scraped.text
    assert port_is_free(port)


def test_port_zero_serves_no_metrics_and_a_taken_port_is_refused():
    assert metrics.listen("127.0.0.1", 0) is None
    listener = metrics.listen("127.0.0.1", free_port())
    assert listener is not None
    try:
        with pytest.raises(OSError):
            metrics.listen("127.0.0.1", listener.port)
    finally:
        listener.close()
    assert port_is_free(listener.port)
