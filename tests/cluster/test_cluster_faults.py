"""The cluster on one machine under faults (`rehab up --cluster`: three NATS nodes with R3 streams, two replicas of
every service and two gateways, on PostgreSQL). While a working day runs through both gateways, from clients that
retry idempotently: the NATS node leading the stream INTAKE is killed, then the replica of each service whose relay
publishes, then every PostgreSQL connection of the services is terminated.

Afterwards: every write the clients made was done exactly once (cases, referrals, disbursements and payments counted
by the ids their Idempotency-Keys got), every event was applied once downstream (funds and referrals know every case
intake opened, nothing doubled, no dead letter), the ledger balances, and each service's relay leadership moved to
another replica, which published after the kill. The failed requests of each fault are counted and printed, not
asserted: the clients' retries are what must end with everything done once. No timing is asserted.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.cluster.cluster_day import Day
from tests.faults.flow import Desk, Reckoning, wait_until_caught_up
from tests.support.cluster import Cluster, postgres_reachable
from tests.support.system import eventually

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not postgres_reachable(), reason="the cluster needs PostgreSQL at 127.0.0.1:5432 "
                                                        "(or REHAB_TEST_POSTGRES_URL), which does not answer"),
    pytest.mark.timeout(360),
]

SERVICES = ("intake", "referrals", "funds")
SETTLE_SECONDS = 8.0  # the working day between faults


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    # A redelivery after a killed replica comes after ack_wait, and a claim its death left on an Idempotency-Key
    # is taken over after the lease: both shorter than in production, so the day ends sooner.
    running = Cluster(tmp_path, env={"REHAB_CONSUMER_ACK_WAIT_SECONDS": "5", "REHAB_IDEMPOTENCY_LEASE_SECONDS": "10"})
    try:
        running.start()
        yield running
    finally:
        running.cleanup()


def test_nothing_lost_or_doubled_when_nats_leader_replicas_and_database_connections_go(cluster: Cluster) -> None:
    desk = Desk.open(cluster)
    books = Reckoning(cluster)
    day = Day(cluster.urls, desk)
    marks: dict[str, float] = {}
    relay_leaders: dict[str, int] = {}
    try:
        day.start()
        time.sleep(SETTLE_SECONDS)

        marks["nats stream leader killed"] = time.monotonic()
        killed_node = cluster.kill_stream_leader("INTAKE")
        time.sleep(SETTLE_SECONDS)

        marks["one replica of each service killed (the relay leader)"] = time.monotonic()
        for name in SERVICES:
            leader = eventually(lambda name=name: cluster.relay_leader(name), timeout=30)
            relay_leaders[name] = leader
        killed_at_wall = books_now(books)
        for pid in relay_leaders.values():
            os.kill(pid, signal.SIGKILL)  # the supervisor starts it again
        handed_over = seconds_until_others_lead(cluster, relay_leaders)  # reported, not asserted
        time.sleep(SETTLE_SECONDS)

        marks["postgresql backends terminated"] = time.monotonic()
        terminated = cluster.terminate_backends()
        time.sleep(SETTLE_SECONDS)
        marks["end"] = time.monotonic()
    finally:
        day.stop()

    try:
        figures = {"summary": day.summary(), "killed nats node (INTAKE's leader)": killed_node + 1,
                   "INTAKE's leader after": cluster.stream_leader("INTAKE") + 1,
                   "seconds until another replica's relay leads": handed_over,
                   "backends terminated": terminated}
        names = list(marks)
        for fault, end in zip(names[:-1], names[1:]):
            figures[fault] = day.failed_between(marks[fault], marks[end])
        print("\ncluster under faults:\n" + json.dumps(figures, indent=2))

        assert not day.unfinished, f"writes without a definite answer: {day.unfinished}"
        assert not day.unexpected, day.unexpected
        assert day.cases and day.referrals and day.paid, day.summary()

        # Relay leadership moved: another replica holds the lock and published after the kill.
        for name, old in relay_leaders.items():
            new = eventually(lambda name=name: cluster.relay_leader(name), timeout=30)
            assert new != old, f"{name}: the killed replica's relay is still the leader"
            assert books.count(name, "SELECT count(*) FROM outbox WHERE published_at > :at", at=killed_at_wall) > 0

        wait_until_caught_up(books, timeout=90)
        assert books.doubled() == {}

        # Every write done exactly once: each Idempotency-Key's id, and nothing else.
        assert sorted(r[0] for r in books.rows("intake", "SELECT CAST(id AS TEXT) FROM cases")) \
            == sorted(day.cases.values())
        assert sorted(r[0] for r in books.rows("referrals", "SELECT CAST(id AS TEXT) FROM referrals")) \
            == sorted(day.referrals.values())
        assert sorted(r[0] for r in books.rows("funds", "SELECT CAST(id AS TEXT) FROM disbursements")) \
            == sorted(day.disbursements.values())
        assert sorted(r[0] for r in books.rows("funds", "SELECT CAST(disbursement_id AS TEXT) FROM payments")) \
            == sorted(day.paid.values())
        completed = {r[0] for r in books.rows("referrals", "SELECT CAST(id AS TEXT) FROM referrals "
                                                           "WHERE status = 'completed'")}
        assert completed == day.completed

        checked = books.ledger_check()
        assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        books.close()


def seconds_until_others_lead(cluster: Cluster, old: dict[str, int], limit: float = 30.0) -> dict[str, float | None]:
    """For each service, how long until a replica other than the killed one holds its relay lock (None: not within
    `limit`)."""
    started = time.monotonic()
    moved: dict[str, float | None] = dict.fromkeys(old)
    while time.monotonic() - started < limit and None in moved.values():
        for name, pid in old.items():
            if moved[name] is None and cluster.relay_leader(name) not in (None, pid):
                moved[name] = round(time.monotonic() - started, 2)
        time.sleep(0.1)
    return moved


def books_now(books: Reckoning):  # noqa: ANN201
    """The database's clock (the outbox's published_at is written by the services: compare like with like)."""
    return books.rows("intake", "SELECT now()")[0][0]
