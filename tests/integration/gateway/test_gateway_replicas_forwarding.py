"""The gateway in front of two replicas of a service (gateway.replicas): with one replica gone, requests go to the
other, writes included when the connection never opened; a write whose connection broke after it was sent is never
sent again by the gateway (the caller decides, with its Idempotency-Key), while a read is."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import pytest
from aiohttp import web

from gateway.forward import forward, forwarding_session
from gateway.replicas import SILENT_AFTER, Backends
from gateway.routing import route_for
from kit.problems import Problem
from tests.integration.gateway.door import ServiceProcess, backends_running, open_gateway
from tests.support.nats import free_port

pytestmark = pytest.mark.integration


async def test_with_one_replica_gone_every_request_is_served_by_the_other(tmp_path, gateway_settings):
    with backends_running(tmp_path / "backends", ["funds"]) as backends:
        first = backends.processes["funds"]
        # The second replica: the same service on the same database, a port of its own.
        second = ServiceProcess("funds", state_dir=tmp_path / "backends", secrets_dir=backends.secrets_dir,
                                nats_url=backends.nats_url, database_url=first.env["REHAB_FUNDS_DATABASE_URL"])
        second.start()
        try:
            second.wait_ready()
            settings = gateway_settings(backends.secrets_dir, funds_url=f"{first.url},{second.url}")
            async with open_gateway(settings) as door:
                finance = await door.staff("finance")
                grants = []
                for number in range(4):
                    made = await door.client.post("/api/funds/grants", headers=finance, json=grant(f"A-{number}"))
                    assert made.status_code == 201, made.text
                    grants.append(made.json()["id"])

                first.stop()  # its port now refuses connections: nothing a request sends there arrives
                for number in range(6):
                    made = await door.client.post("/api/funds/grants", headers=finance, json=grant(f"B-{number}"))
                    assert made.status_code == 201, made.text
                    grants.append(made.json()["id"])
                    read = await door.client.get(f"/api/funds/grants/{grants[number]}", headers=finance)
                    assert read.status_code == 200, read.text
                assert door.runtime.backends.replicas("funds").healthy() == [second.url]

                # The admin's status: funds can serve, with one replica of two.
                status = await door.client.get("/api/admin/status", headers=await door.admin())
                funds = status.json()["services"]["funds"]
                assert (funds["status"], funds["detail"]) == ("ready", "1 of 2 replicas ready"), funds

                listed = await door.client.get("/api/funds/grants", params={"limit": 100}, headers=finance)
                assert sorted(item["id"] for item in listed.json()["items"]) == sorted(grants)  # each once
        finally:
            second.stop()


def grant(code: str) -> dict:
    return {"donor": "Solidarity Fund", "code": code, "currency": "EUR", "amount": "1000.00",
            "starts_on": "2026-01-01", "ends_on": "2030-12-31", "categories": ["medical"]}


# ---- a write that may have arrived: forward() itself, in front of replicas that break the connection -------------


@asynccontextmanager
async def replica(behaviour: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A tiny HTTP server on loopback that answers 200 ("answers"), reads the request and then drops the connection
    ("drops"), or never answers ("hangs", a frozen service); its URL and the methods it received."""
    received: list[str] = []
    thawed = asyncio.Event()  # a frozen service answers only when the test is over

    async def handle(request: web.Request) -> web.StreamResponse:
        received.append(request.method)
        await request.read()
        if behaviour == "hangs":
            await thawed.wait()
        if behaviour == "drops":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.1)
        return web.json_response({"served": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        thawed.set()
        await runner.cleanup()


class Admitted:
    async def admit(self, authorization: str | None) -> SimpleNamespace:
        return SimpleNamespace(roles=frozenset({"finance"}))


async def forwarded(method: str, urls: str, backends: Backends | None = None) -> tuple[int, bytes]:
    """One request through gateway.forward to the funds replicas `urls` (or `backends`'); the status and body sent
    back."""
    session = forwarding_session(connect_timeout=1, total_timeout=5, connections=10)
    state = SimpleNamespace(gatekeeper=Admitted(), forwarding=session,
                            backend_urls=backends or Backends({"funds": urls}))
    scope = {"type": "http", "method": method, "path": "/api/funds/grants", "raw_path": b"/api/funds/grants",
             "query_string": b"", "headers": [(b"host", b"gateway")], "app": SimpleNamespace(state=state),
             "client": ("127.0.0.1", 5000), "scheme": "http"}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        await forward(route_for("/api/funds/grants"), scope, receive, send)
    except Problem as problem:
        return problem.status, b""
    finally:
        await session.close()
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])


def nowhere() -> str:
    with socket.socket() as probe:  # a port that was free a moment ago: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_a_write_that_may_have_arrived_is_not_sent_to_another_replica():
    async with replica("drops") as (dropping, dropped), replica("answers") as (answering, answered):
        for _ in range(4):  # the dropping replica is the first in turn each time
            status, _ = await forwarded("POST", f"{dropping},{answering}")
            assert status == 502
        # Every POST reached the dropping replica, got a 502 and went nowhere else.
        assert dropped == ["POST"] * 4
        assert answered == []


async def test_a_read_whose_connection_broke_is_tried_on_another_replica():
    async with replica("drops") as (dropping, dropped), replica("answers") as (answering, answered):
        for _ in range(4):
            status, body = await forwarded("GET", f"{dropping},{answering}")
            assert status == 200 and b"served" in body
        assert len(answered) == 4


async def test_a_write_whose_connection_never_opened_goes_to_another_replica():
    async with replica("answers") as (answering, answered):
        for _ in range(4):
            status, _ = await forwarded("POST", f"{nowhere()},{answering}")
            assert status == 200
        assert answered == ["POST"] * 4
    status, _ = await forwarded("POST", f"{nowhere()},{nowhere()}")
    assert status == 503


async def test_requests_waiting_on_a_frozen_service_leave_the_other_services_their_connections():
    """The pool bounds connections per service, not in all: a service that holds every connection it may have
    (requests waiting on it) does not make another service's routes wait for one."""
    connections = 4
    session = forwarding_session(connect_timeout=2, total_timeout=60, connections=connections)
    async with replica("hangs") as (frozen, reached_frozen), replica("answers") as (working, _), session:
        waiting = [asyncio.create_task(session.get(f"{frozen}/cases")) for _ in range(connections * 2)]
        while len(reached_frozen) < connections:  # every connection the frozen service may have is taken
            await asyncio.sleep(0.01)
        try:
            async with asyncio.timeout(10):  # the frozen requests wait 60 s: only a connection of its own gets here
                async with session.get(f"{working}/grants") as answer:
                    assert answer.status == 200
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)


async def test_a_request_waiting_on_a_replica_that_goes_silent_is_given_up_then_a_read_goes_to_the_other():
    """A request sent to a replica that hangs (stopped) is not left to wait out the 5 s timeout: once the probes have
    taken the replica for silent, a read goes to the other replica and a write, which may have arrived, is 504."""
    async with replica("hangs") as (frozen, _), replica("answers") as (answering, _):
        for method, expected in (("GET", 200), ("POST", 504)):
            backends = Backends({"funds": f"{frozen},{answering}"})  # the frozen one first in turn

            async def probes_unanswered(backends: Backends = backends) -> None:
                async with httpx.AsyncClient() as probes:
                    for _ in range(SILENT_AFTER):
                        await asyncio.sleep(0.05)
                        await backends.replicas("funds").probe(probes, timeout=0.1)

            started = time.monotonic()
            (status, _), _ = await asyncio.gather(forwarded(method, "", backends), probes_unanswered())
            assert (status, method) == (expected, method) and time.monotonic() - started < 3
