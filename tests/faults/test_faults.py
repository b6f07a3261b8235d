"""Proof under failure, on the running system (`rehab up` as processes): while a working day runs, NATS is killed,
each service is killed, PostgreSQL is restarted, and every event is delivered again, out of order. Then: no event
lost, no effect applied twice, the ledger balances, and every API call got an answer — a success, a refusal by the
rules, or a fast 'not available right now' problem — within 5 s.

The figures each test measures are printed at the end of the module (and written as JSON to $REHAB_FAULT_REPORT
when it is set); the README's "Proof under failure" section quotes a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from tests.faults.flow import (
    Desk,
    Flow,
    Reckoning,
    wait_listening,
    wait_until_caught_up,
)
from tests.support.system import System

pytestmark = pytest.mark.e2e

FIGURES: dict[str, dict[str, Any]] = {}
# The load is two busy workers on one account: the per-user rate limit is not what these tests are about.
UNLIMITED = {"REHAB_API_RATE_LIMIT": "100000/minute"}
SERVICES_ON_POSTGRES = ("intake", "referrals", "funds", "gateway")
SERVICE_OF = {
    "create case": "intake", "record consent": "intake", "refer": "referrals", "partner accept": "referrals",
    "partner start": "referrals", "partner complete": "referrals", "partner reads referral": "referrals",
    "request aid": "funds", "approve aid": "funds", "pay aid": "funds",
}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if not FIGURES:
        return
    text = json.dumps(FIGURES, indent=2)
    print("\nproof under failure:\n" + text)
    if os.environ.get("REHAB_FAULT_REPORT"):
        with open(os.environ["REHAB_FAULT_REPORT"], "w", encoding="utf-8") as f:
            f.write(text + "\n")


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One system for the module: faults pile up on it as they would in a bad week. Its own NATS, always."""
    running = System(tmp_path_factory.mktemp("faults"), env=UNLIMITED, own_nats=True)
    try:
        running.start()
        yield running
    finally:
        running.cleanup()


@pytest.fixture(scope="module")
def desk(system: System) -> Desk:
    return Desk.open(system)


@pytest.fixture
def reckoning(system: System) -> Iterator[Reckoning]:
    books = Reckoning(system)
    yield books
    books.close()


def prove_nothing_lost_or_doubled(flow: Flow, reckoning: Reckoning, events_before: dict[str, int]) -> dict[str, Any]:
    """The checks every fault test ends with; the figures they produce (events counted for this test alone)."""
    bad = flow.unacceptable()
    assert not bad, f"{len(bad)} calls failed or were slow: {bad[:10]}"
    caught_up = wait_until_caught_up(reckoning)
    assert reckoning.doubled() == {}
    ledger = reckoning.ledger_check()
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
    assert flow.cases and flow.summary()["ok"] > 0
    events = {name: count - events_before.get(name, 0) for name, count in reckoning.events().items()}
    return {**flow.summary(), **events, "caught_up_after_load_seconds": round(caught_up, 2)}


def first_success_after(flow: Flow, service: str, since: float) -> float:
    """Seconds from `since` to the first successful call to `service` made after it."""
    answers = [call.at + call.seconds for call in flow.calls if call.at >= since and call.ok
               and SERVICE_OF.get(call.op) == service]
    assert answers, f"no call to {service} succeeded after the fault"
    return round(min(answers) - since, 2)


# ---- the faults ---------------------------------------------------------------------------------------------------

def test_nats_killed_mid_flow(system: System, desk: Desk, reckoning: Reckoning) -> None:
    events_before = reckoning.events()
    flow = Flow(desk)
    flow.start()
    try:
        flow.run_for(3)
        fault_at = time.monotonic()
        old = system.kill("nats")
        back = wait_listening(system, "nats", old)
        flow.run_for(6)
    finally:
        flow.stop()
    figures = prove_nothing_lost_or_doubled(flow, reckoning, events_before)
    # With NATS down the API keeps working: events wait in the outboxes.
    assert flow.outage(fault_at) == 0.0, "an API call failed while only NATS was down"
    FIGURES["nats killed"] = {**figures, "nats_back_listening_seconds": round(back, 2)}


@pytest.mark.parametrize("victim", ["intake", "referrals", "funds"])
def test_a_service_killed_mid_flow(system: System, desk: Desk, reckoning: Reckoning, victim: str) -> None:
    events_before = reckoning.events()
    flow = Flow(desk)
    flow.start()
    try:
        flow.run_for(3)
        fault_at = time.monotonic()
        old = system.kill(victim)  # SIGKILL: no shutdown, no drain, transactions cut wherever they are
        back = wait_listening(system, victim, old)
        flow.run_for(6)
    finally:
        flow.stop()
    figures = prove_nothing_lost_or_doubled(flow, reckoning, events_before)
    FIGURES[f"{victim} killed"] = {
        **figures,
        "service_back_listening_seconds": round(back, 2),
        "first_success_after_kill_seconds": first_success_after(flow, victim, fault_at),
        "api_outage_seconds": flow.outage(fault_at),
    }


def test_events_delivered_twice_and_out_of_order(system: System, desk: Desk, reckoning: Reckoning) -> None:
    flow = Flow(desk)
    flow.start()
    try:
        flow.run_for(3)
    finally:
        flow.stop()
    wait_until_caught_up(reckoning)
    # A message a killed process took and never acked comes again once its ack wait (30 s) is over, and is counted
    # as a duplicate: the earlier tests' leftovers are let through first, so only the copies below are counted.
    asyncio.run(wait_until_nothing_unacked(system))
    before = snapshot(reckoning)
    suppressed_before = duplicates_suppressed(system)

    copies, expected = asyncio.run(redeliver_every_event_backwards(system))
    assert copies > 0

    deadline = time.monotonic() + 30
    while sum(duplicates_suppressed(system).values()) - sum(suppressed_before.values()) < expected:
        assert time.monotonic() < deadline, (duplicates_suppressed(system), suppressed_before, expected)
        time.sleep(0.2)
    suppressed = {consumer: count - suppressed_before.get(consumer, 0)
                  for consumer, count in duplicates_suppressed(system).items()}
    assert sum(suppressed.values()) == expected
    assert snapshot(reckoning) == before  # not one row more: no effect applied twice
    assert reckoning.doubled() == {}
    assert reckoning.ledger_check().returncode == 0
    FIGURES["every event delivered again, newest first"] = {
        "copies_published": copies, "deliveries_of_copies": expected,
        "duplicates_suppressed": sum(suppressed.values()), "by_consumer": suppressed,
        "effects_changed": 0,
    }


def test_postgres_restarted_mid_flow(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The three services and the gateway on a private PostgreSQL server (the machine's own is shared, and is never
    restarted by a test), which crashes and comes back mid-flow."""
    from tests.deploy.test_postgres_init import PrivatePostgres

    server = PrivatePostgres()  # skips when initdb / pg_ctl are not installed
    server.start()
    try:
        password = uuid.uuid4().hex
        psql = ["psql", "-h", str(server.dir), "-p", str(server.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        server.run(*psql, "-c", f"ALTER USER postgres PASSWORD '{password}'")
        for name in SERVICES_ON_POSTGRES:
            server.run(*psql, "-c", f"CREATE DATABASE {name}")
        databases = {name: server.url("postgres", password, name) for name in SERVICES_ON_POSTGRES}
        system = System(tmp_path_factory.mktemp("pg-faults"), databases=databases, env=UNLIMITED, own_nats=True)
        try:
            system.start()
            desk = Desk.open(system)
            reckoning = Reckoning(system)
            events_before = reckoning.events()
            flow = Flow(desk)
            flow.start()
            try:
                flow.run_for(3)
                fault_at = time.monotonic()
                data = str(server.dir / "data")
                server.run(server.pg_ctl, "-D", data, "-m", "immediate", "stop")  # as a crash would
                down_for = time.monotonic() - fault_at
                server.run(server.pg_ctl, "-D", data, "-w", "-l", str(server.dir / "log"), "-o",
                           f"-p {server.port} -k {server.dir} -c listen_addresses=127.0.0.1", "start")
                restarted = time.monotonic() - fault_at
                flow.run_for(6)
            finally:
                flow.stop()
            figures = prove_nothing_lost_or_doubled(flow, reckoning, events_before)
            reckoning.close()
            FIGURES["postgresql restarted (crash stop)"] = {
                **figures,
                "postgres_down_seconds": round(restarted - down_for, 2),
                "api_outage_seconds": flow.outage(fault_at),
                "first_success_after_restart_seconds": {
                    service: first_success_after(flow, service, fault_at) for service in ("intake", "referrals", "funds")},
            }
        finally:
            system.cleanup()
    finally:
        server.stop()


# ---- helpers -------------------------------------------------------------------------------------------------

def snapshot(reckoning: Reckoning) -> dict[str, int]:
    """Counts that any event applied a second time would change."""
    return {
        "intake timeline": reckoning.count("intake", "SELECT count(*) FROM timeline_entries"),
        "referrals cases": reckoning.count("referrals", "SELECT count(*) FROM cases"),
        "funds cases": reckoning.count("funds", "SELECT count(*) FROM cases"),
        "inbox rows": sum(reckoning.count(s, "SELECT count(*) FROM inbox") for s in ("intake", "referrals", "funds")),
    }


def duplicates_suppressed(system: System) -> dict[str, float]:
    """Per consumer, the events each service acked as already applied (its own /metrics, on its metrics port)."""
    counts: dict[str, float] = {}
    for service in ("intake", "referrals", "funds", "reports"):
        metrics = system.metrics(service)
        for line in metrics.splitlines():
            if line.startswith("rehab_events_duplicates_suppressed_total{"):
                consumer = line.split('consumer="', 1)[1].split('"', 1)[0]
                counts[consumer] = counts.get(consumer, 0) + float(line.rsplit(" ", 1)[1])
    return counts


async def wait_until_nothing_unacked(system: System, timeout: float = 60) -> None:
    """Until no consumer of any stream has a message waiting or delivered and not yet acked."""
    nc = await nats.connect(f"nats://127.0.0.1:{system.ports['nats']}", **system.nats_options())
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    try:
        while True:
            consumers = [consumer for stream in await js.streams_info()
                         for consumer in await js.consumers_info(stream.config.name)]
            unsettled = {consumer.name: (consumer.num_pending, consumer.num_ack_pending) for consumer in consumers
                         if consumer.num_pending or consumer.num_ack_pending}
            if not unsettled:
                return
            assert time.monotonic() < deadline, f"consumers still unsettled (pending, unacked): {unsettled}"
            await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def redeliver_every_event_backwards(system: System) -> tuple[int, int]:
    """Publish a copy of every message of every stream, newest first, each under a new Nats-Msg-Id (so the stream's
    own de-duplication lets it through and only the consumers' inboxes can stop it). Returns the copies published
    and how many deliveries of them the consumers will get."""
    nc = await nats.connect(f"nats://127.0.0.1:{system.ports['nats']}", **system.nats_options())
    js = nc.jetstream()
    copies = deliveries = 0
    try:
        filters: dict[str, list[set[str]]] = {}
        for stream in ("INTAKE", "REFERRALS", "FUNDS"):
            consumers = await js.consumers_info(stream)
            filters[stream] = [set(c.config.filter_subjects or [c.config.filter_subject]) for c in consumers]
        for stream in ("INTAKE", "REFERRALS", "FUNDS"):
            last = (await js.stream_info(stream)).state.last_seq
            originals = [await js.get_msg(stream, seq) for seq in range(1, last + 1)]
            for message in reversed(originals):
                headers = {**(message.headers or {}), "Nats-Msg-Id": str(uuid.uuid4())}
                await js.publish(message.subject, message.data, headers=headers)
                copies += 1
                deliveries += sum(message.subject in wanted for wanted in filters[stream])
    finally:
        await nc.close()
    return copies, deliveries

