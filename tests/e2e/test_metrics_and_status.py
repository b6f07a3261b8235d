"""Issue #13 through a real `rehab up`: /metrics lives on each process's own metrics port, never on the public one;
one service down takes down its own routes, not the site, and GET /api/admin/status says which."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.support.system import (
    ADMIN_PASSWORD,
    PROCESSES,
    STAFF_PASSWORD,
    System,
    eventually,
    sign_in,
)

pytestmark = pytest.mark.e2e


def test_metrics_ports_and_a_service_down_under_rehab_up(system: System) -> None:
    # /metrics: not on any main port (the gateway's is the public one), on each metrics port with its own counts.
    for name in PROCESSES:
        assert httpx.get(f"http://127.0.0.1:{system.ports[name]}/metrics", timeout=5).status_code == 404
        text = system.metrics(name)
        assert any(line.startswith("rehab_http_requests_total{") and f'service="{name}"' in line
                   for line in text.splitlines()), name

    admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
    for username, roles in (("casey", ["caseworker"]), ("fin", ["finance"])):
        made = admin.post("/api/admin/users", json={"username": username, "password": STAFF_PASSWORD, "roles": roles})
        assert made.status_code == 201, made.text
    caseworker = sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD)
    finance = sign_in(system.url, grant_type="password", username="fin", password=STAFF_PASSWORD)
    assert {name: state["status"] for name, state in admin.get("/api/admin/status").json()["services"].items()} == {
        "intake": "ready", "referrals": "ready", "funds": "ready", "reports": "ready"}
    # The programme report through the gateway: finance (and coordinators) read it, a caseworker is refused.
    report = finance.get("/api/reports/programme")
    assert report.status_code == 200 and len(report.json()["months"]) == 12
    refused = caseworker.get("/api/reports/programme")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    # what runs behind the port is not said (uvicorn's `Server` header), by the gateway nor by a service
    for port in (system.ports["gateway"], system.ports["intake"]):
        assert "server" not in httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).headers

    # funds dies, and the supervisor is held so it does not bring it back before we look.
    supervisor = system.proc.pid
    os.kill(supervisor, signal.SIGSTOP)
    try:
        system.kill("funds")
        eventually(lambda: admin.get("/api/admin/status").json()["services"]["funds"]["status"] == "unreachable",
                   timeout=10)
        assert httpx.get(system.url + "/readyz", timeout=5).status_code == 200
        started = time.monotonic()
        down = finance.get("/api/funds/grants")
        assert down.status_code == 503 and "retry-after" in down.headers
        assert time.monotonic() - started < 2
        assert caseworker.get("/api/intake/cases").status_code == 200
        assert sign_in(system.url, grant_type="password", username="casey", password=STAFF_PASSWORD).token
        assert caseworker.get("/api/admin/status").status_code == 403
    finally:
        os.kill(supervisor, signal.SIGCONT)
    # Restarted, funds is back in the report and its routes answer again.
    eventually(lambda: admin.get("/api/admin/status").json()["services"]["funds"]["status"] == "ready", timeout=60)
    assert eventually(lambda: finance.get("/api/funds/grants").status_code == 200, timeout=30)
