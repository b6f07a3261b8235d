"""The `scaling` part (issue #21): read case through the gateway with one replica of every service against two, on
PostgreSQL and a NATS cluster of three, in one run.

Two systems, one after the other, each `rehab up --cluster` on fresh PostgreSQL databases (bench.system's
`ClusterSystem`): `REHAB_CLUSTER_REPLICAS=1` (three NATS nodes with R3 streams, one process per service, one gateway)
and `=2` (two of each, two gateways, each gateway spreading requests over both replicas) — the same cluster but for
the replicas. On each: the users of `scenarios.set_up`, CASES cases created through the gateway, then each round
the bare baseline (`bench.baseline_app`) at 16 clients, and read case (of those cases, cycled) at 16 and 64 clients
through the first gateway; with two gateways also through both at once: two load generators side by side, each
with half the clients, their req/s summed and each latency percentile the higher of the two (the generators' own
latencies are not merged). The best round of each counts, as elsewhere in the bench.

One system at a time: a dozen idle processes of one cluster would disturb the other's figures. The interleaving is
within a system (the baseline each round, the order of its measurements reversed every other round), so each
figure has a baseline measured on the same system's turn, with that system up and idle: a machine that grew busier
between the two systems shows in × baseline, and the ratio of the two systems' × baseline is the scaling with the
machine's drift taken out.

Recorded for every run: the cores each process kept busy (harness.CpuUse: every gateway and replica by name — intake,
intake-2, gateway, gateway-2, nats-1 … —, all of PostgreSQL, the load generators), the cores the whole machine
was busy (anyone's processes: another CI run shows here), and the load average before it. Once the processes'
busy cores add up to the machine's core count, a second replica has no core to run on: the report says so beside
the ratio.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import report, scenarios
from bench.harness import CpuUse, baseline_server, machine_busy_seconds, run_load
from bench.load_spec import Latency, LoadResult, LoadSpec
from bench.population import People
from bench.system import Backing, ClusterSystem
from kit.db import make_engine, ping

REPLICAS = (1, 2)
CLIENTS = (16, 64)
BASELINE_CLIENTS = 16
CASES = 300
BASELINE = "baseline"


def scaling(run: scenarios.Run, workdir: Path, backing_for: Callable[[], Backing],
            progress: Callable[[str], None] = lambda _message: None, *, replicas: tuple[int, ...] = REPLICAS,
            clients: tuple[int, ...] = CLIENTS) -> None:
    """Start each cluster in turn, measure it, stop it and drop its databases; the figures go to
    `run.results["scaling"]` (or why not, when PostgreSQL does not answer)."""
    why = _postgres_missing(backing_for())
    if why:
        progress(f"scaling: skipped, {why}")
        run.results["scaling"] = {"skipped": why}
        return
    systems = []
    for count in replicas:
        system = ClusterSystem(workdir / f"scaling-{count}", backing_for(), count)
        try:
            progress(f"scaling: starting `rehab up --cluster` with {count} replica(s) of every service")
            started = time.monotonic()
            system.start()
            start_seconds = round(time.monotonic() - started, 1)
            actors = scenarios.set_up(system)
            case_ids = _create_cases(system, actors)
            progress(f"scaling: {count} replica(s) up in {start_seconds:g} s, {len(case_ids)} cases; measuring")
            systems.append({"replicas": count, "gateways": count, "start_seconds": start_seconds,
                            "cases": len(case_ids), "processes": sorted(system.pids()),
                            **_measure(run, system, actors, case_ids, clients, progress)})
        finally:
            system.stop()
            system.backing.drop_databases()
    run.results["scaling"] = {"clients": list(clients), "baseline_clients": BASELINE_CLIENTS,
                              "rounds": run.settings.rounds, "cores": report.machine()["cores"], "systems": systems}


def _postgres_missing(backing: Backing) -> str | None:
    if backing.postgres_admin_url is None:
        return "it needs PostgreSQL (--postgres-url)"
    engine = make_engine(backing.postgres_admin_url)
    try:
        return None if ping(engine) else "PostgreSQL does not answer"
    finally:
        engine.dispose()


def _create_cases(system: ClusterSystem, actors: scenarios.Actors) -> list[str]:
    """CASES new people's cases through the first gateway, 16 at a time: what the reads read."""
    people = People(seed=21)
    spec = LoadSpec(base_url=system.url, concurrency=16, duration=60, cycle=False, collect="id",
                    requests=[scenarios._post("/api/intake/cases", people.case(), actors.as_caseworker)
                              for _ in range(CASES)])
    created = run_load(spec)
    if len(created.collected) < CASES // 2:
        raise RuntimeError(f"only {len(created.collected)} of {CASES} cases created: {created.statuses} "
                           f"{created.error_samples}")
    return created.collected


def _measure(run: scenarios.Run, system: ClusterSystem, actors: scenarios.Actors, case_ids: list[str],
             clients: tuple[int, ...], progress: Callable[[str], None]) -> dict[str, Any]:
    """Each round: the baseline, then read case at every concurrency through the first gateway and (with two)
    through every gateway at once. The best round of each, with every round's req/s, p99 and load average."""
    s = run.settings
    reads = [scenarios._get(f"/api/intake/cases/{case_id}", actors.as_caseworker) for case_id in case_ids]
    pids = system.pids()
    gateway_counts = (1, len(system.gateway_urls)) if len(system.gateway_urls) > 1 else (1,)
    plan = [(gateways, level) for level in clients for gateways in gateway_counts]
    measured: dict[str, list[dict[str, Any]]] = {}
    with baseline_server() as (baseline_url, baseline_pid):
        for round_number in range(s.rounds):
            progress(f"scaling: {system.replicas} replica(s), round {round_number + 1} of {s.rounds}")
            order = plan if round_number % 2 == 0 else list(reversed(plan))
            measured.setdefault(BASELINE, []).append(_load(
                [LoadSpec(base_url=baseline_url, requests=[scenarios._get("/healthz")],
                          concurrency=BASELINE_CLIENTS, duration=s.duration, warmup=s.warmup)],
                {"baseline app": baseline_pid, **pids}))
            for gateways, level in order:
                urls = system.gateway_urls[:gateways]
                specs = [LoadSpec(base_url=url, requests=reads, concurrency=level // gateways, duration=s.duration,
                                  warmup=s.warmup) for url in urls]
                waits = LockWaits(system.backing.postgres_admin_url,
                                  make_url(system.database_url("intake")).database)
                measured.setdefault(f"{gateways}@{level}", []).append(_load(specs, pids, waits))
    figures: dict[str, Any] = {"baseline": _kept(measured.pop(BASELINE)), "reads": []}
    for gateways, level in plan:
        figures["reads"].append({"gateways": gateways, "clients": level, **_kept(measured[f"{gateways}@{level}"])})
    return figures


def _kept(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The best of several runs (most req/s: others' work only ever slows one down), and each run's gist."""
    best = max(runs, key=lambda r: r["rps"])
    return {"best": best, "rounds": [{"rps": r["rps"], "p99": r["latency_ms"]["p99"], "load": r["load_average"],
                                      "machine_cores": r["machine_cores"]} for r in runs]}


class LockWaits:
    """How many of intake's PostgreSQL backends were waiting for a lock, sampled every 20 ms while a block runs (a
    thread of its own). Every read of a case writes an audit entry, and the trail is one hash chain per database:
    each transaction holding an entry keeps the chain's advisory lock until its COMMIT, so the replicas' transactions
    take turns. The mean shows how much of the run went to that queue."""

    def __init__(self, admin_url: str | None, database: str | None, interval: float = 0.02) -> None:
        self.database, self.interval = database, interval
        self.engine = create_engine(admin_url, pool_size=1) if admin_url and database else None
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        assert self.engine is not None
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                self.samples.append(conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :db AND wait_event_type = 'Lock'"),
                    {"db": self.database}).scalar_one())
                conn.rollback()
                self._stop.wait(self.interval)

    def __enter__(self) -> LockWaits:
        if self.engine is not None:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self.engine is not None:
            self._thread.join()
            self.engine.dispose()

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 2) if self.samples else None


def _load(specs: list[LoadSpec], pids: dict[str, int], waits: LockWaits | None = None) -> dict[str, Any]:
    """One run of one or several load generators side by side, with the cores every process kept busy meanwhile
    (and, given `waits`, how many of intake's backends waited for a lock)."""
    load = report.load_average()
    busy_before, started = machine_busy_seconds(), time.monotonic()
    with CpuUse(pids) as cpu, (waits or LockWaits(None, None)) as waited:
        if len(specs) == 1:
            results = [run_load(specs[0])]
        else:
            with ThreadPoolExecutor(max_workers=len(specs)) as pool:
                results = list(pool.map(run_load, specs))
    machine = (machine_busy_seconds() - busy_before) / (time.monotonic() - started)
    together = _together(results)
    together.cpu_cores = cpu.cores
    return {**together.model_dump(exclude={"collected"}), "generators": len(specs), "load_average": load,
            "machine_cores": round(machine, 2), "lock_waits": waited.mean}


def _together(results: list[LoadResult]) -> LoadResult:
    """Several generators' runs as one: counts and req/s summed, each percentile the highest of theirs (an upper
    bound: without their latencies the true percentile of the whole is not known, and the generators see alike)."""
    if len(results) == 1:
        return results[0]
    statuses: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for result in results:
        statuses.update(result.statuses)
        samples.update(result.error_samples)
    requests = sum(r.requests for r in results)
    latencies = [r.latency_ms for r in results]
    return LoadResult(
        requests=requests, seconds=max(r.seconds for r in results), rps=round(sum(r.rps for r in results), 1),
        ok=sum(r.ok for r in results), statuses=dict(statuses), error_samples=samples,
        latency_ms=Latency(p50=max(x.p50 for x in latencies), p95=max(x.p95 for x in latencies),
                           p99=max(x.p99 for x in latencies), max=max(x.max for x in latencies),
                           mean=round(sum(r.latency_ms.mean * r.requests for r in results) / requests, 2)
                           if requests else 0.0))

