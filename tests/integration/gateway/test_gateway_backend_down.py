"""One service down takes down its own routes, not the site (issue #13): the gateway's /readyz — the Kubernetes
readiness probe — speaks only of the gateway, so its Service keeps its pods; the down service's routes answer a fast
503 with Retry-After; the other services, sign-in and the console go on; GET /api/admin/status (admin, auditor) says
which service is unreachable."""

from __future__ import annotations

import asyncio
import html
import signal
import time

import pytest

from gateway.console import i18n
from tests.console.test_console_pages import signed_in
from tests.integration.gateway.door import backends_running, open_gateway

pytestmark = pytest.mark.integration

FAST = 2.0  # seconds: a down service is answered for at once, never waited for


async def timed(call):  # noqa: ANN001, ANN201
    started = time.monotonic()
    answer = await call
    return answer, time.monotonic() - started


def assert_unavailable(answer, elapsed: float) -> None:  # noqa: ANN001
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"].endswith("/service-unavailable")
    assert int(answer.headers["retry-after"]) >= 1
    assert elapsed < FAST, f"took {elapsed:.2f}s"


async def test_a_stopped_service_makes_only_its_own_routes_unavailable(tmp_path, gateway_settings):
    with backends_running(tmp_path / "backends", ["intake", "funds"]) as backends:
        # referrals never came up at all: its URL points where nothing listens.
        settings = gateway_settings(backends.secrets_dir, intake_url=backends.processes["intake"].url,
                                    funds_url=backends.processes["funds"].url)
        async with open_gateway(settings) as door:
            admin = await door.admin()
            caseworker = await door.staff("caseworker")
            finance = await door.staff("finance")
            auditor = await door.staff("auditor")
            assert (await door.client.get("/api/funds/grants", headers=finance)).status_code == 200

            before = await door.client.get("/api/admin/status", headers=admin)
            assert before.status_code == 200, before.text
            services = before.json()["services"]
            assert services["intake"]["status"] == services["funds"]["status"] == "ready"
            assert services["referrals"]["status"] == "unreachable"

            backends.processes["funds"].stop()

            # The gateway itself is ready: it keeps its place behind the load balancer.
            ready = await door.client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "database": "ok", "migrations": "current", "keys": "unsealed"}

            # The down services' routes: a fast 503 problem with Retry-After.
            assert_unavailable(*await timed(door.client.get("/api/funds/grants", headers=finance)))
            assert_unavailable(*await timed(door.client.get("/api/referrals/partners", headers=admin)))

            # Everything else goes on: another service, sign-in, the caller, the gateway's own routes.
            assert (await door.client.get("/api/intake/cases", headers=caseworker)).status_code == 200
            user = await door.add_user("caseworker")
            signed_in = await door.sign_in(user["username"], "Staff-passphrase-2026")
            assert signed_in.status_code == 200, signed_in.text
            assert (await door.client.get("/auth/me", headers=await door.bearer_for(signed_in))).status_code == 200
            assert (await door.client.get("/")).status_code == 200  # the console's sign-in page

            # Where the backends' states went: the status report, for admins and auditors.
            for caller in (admin, auditor):
                status = await door.client.get("/api/admin/status", headers=caller)
                assert status.status_code == 200, status.text
                report = status.json()
                assert report["gateway"]["status"] == "ready"
                assert report["services"]["funds"]["status"] == "unreachable"
                assert report["services"]["referrals"]["status"] == "unreachable"
                assert report["services"]["intake"] == {"status": "ready", "database": "ok",
                                                        "migrations": "current", "nats": "connected",
                                                        "keys": "unsealed"}
                assert report["key_custody"] == "file"
            assert (await door.client.get("/api/admin/status", headers=caseworker)).status_code == 403
            assert (await door.client.get("/api/admin/status", headers=finance)).status_code == 403
            anonymous = await door.client.get("/api/admin/status")
            assert anonymous.status_code == 401
            assert anonymous.headers["content-type"] == "application/problem+json"


async def test_a_service_that_does_not_answer_the_handshake_is_not_waited_for(gateway_settings, secrets_dir):
    # TEST-NET-1 (RFC 5737): never routed. Refused at once or dropped until the short connect timeout: either way
    # a 503 within a second or so, not the ten seconds a slow answer is given.
    settings = gateway_settings(secrets_dir, funds_url="http://192.0.2.1:8103", backend_connect_timeout_seconds=0.5)
    async with open_gateway(settings) as door:
        finance = await door.staff("finance")
        assert_unavailable(*await timed(door.client.get("/api/funds/grants", headers=finance)))
        assert (await door.client.get("/readyz")).status_code == 200
        started = time.monotonic()
        status = await door.client.get("/api/admin/status", headers=await door.admin())
        assert time.monotonic() - started < FAST
        assert status.json()["services"]["funds"]["status"] == "unreachable"


async def test_a_hung_service_is_answered_for_at_once_once_its_probes_go_unanswered(tmp_path, gateway_settings):
    """A stopped process (SIGSTOP: stuck, not dead) still accepts connections, so each request to it would wait the
    whole backend timeout. Once the gateway's probes of it have gone unanswered a few times, its routes answer a
    fast 503; as soon as it answers again they work again."""
    with backends_running(tmp_path / "backends", ["funds"]) as backends:
        funds = backends.processes["funds"]
        settings = gateway_settings(backends.secrets_dir, funds_url=funds.url, backend_probe_seconds=0.2,
                                    readiness_timeout_seconds=0.3)
        async with open_gateway(settings) as door:
            finance = await door.staff("finance")
            officer, _ = await signed_in(door, "finance")  # the console's pages ask funds too
            assert (await door.client.get("/api/funds/grants", headers=finance)).status_code == 200
            assert funds.proc is not None
            funds.proc.send_signal(signal.SIGSTOP)
            try:
                # A request sent as it stops waits only until its probes have gone unanswered (0.3 + 2 × 0.2 s
                # here), not the whole backend timeout of 10 s: 504, since it may or may not have been done.
                waited, elapsed = await timed(door.client.get("/api/funds/grants", headers=finance))
                assert waited.status_code == 504 and waited.json()["type"].endswith("/service-timeout")
                assert "Idempotency-Key" not in waited.json()["detail"]  # a read: nothing to send under a key
                assert elapsed < 3, f"took {elapsed:.2f}s"
                assert_unavailable(*await timed(door.client.get("/api/funds/grants", headers=finance)))
                page, elapsed = await timed(officer.get("/console/grants"))
                assert elapsed < FAST, f"the console's page took {elapsed:.2f}s"  # not a timeout per call it makes
                assert i18n.MESSAGES["en"]["fin_refused_unavailable"] in html.unescape(page.text)
            finally:
                funds.proc.send_signal(signal.SIGCONT)
            for _ in range(50):  # the next probe that gets an answer opens its routes again
                if (await door.client.get("/api/funds/grants", headers=finance)).status_code == 200:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("funds' routes stayed closed after it answered again")
