"""What a benchmark run measures, one function per part of the issue. Each returns plain data (JSON-ready) and
leaves judging it to `bench.report`.

All load goes through `bench.load` in its own process; the harness only prepares requests and reads databases.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, select

from bench import api
from bench.bulk import bulk_load
from bench.harness import CpuUse, PeakMemory, baseline_server, rss_mib, run_load, wait_for
from bench.load_spec import LoadResult, LoadSpec, RequestSpec, percentile
from bench.population import People, written_otherwise
from bench.system import ADMIN_PASSWORD, Backing, System
from kit.tables import KitTables

CONCURRENCY = (1, 16, 64)
OVERHEAD_CONCURRENCY = (16, 64)


@dataclass
class Settings:
    duration: float = 5.0  # seconds per measurement
    warmup: float = 1.0
    rounds: int = 2  # gateway-vs-direct pairs are measured this many times, interleaved; the best of each counts
    propagation_rates: tuple[float, ...] = (100.0, 10.0)  # events per second: the target's, and a light load
    propagation_seconds: float = 10.0
    sizes: tuple[int, ...] = (10_000, 100_000)
    loader_workers: int = 2


@dataclass
class Run:
    """What one run gathers; `results` is what goes to JSON and to the report."""

    settings: Settings
    results: dict[str, Any] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)  # process → highest RSS seen under load, MiB

    def load(self, spec: LoadSpec, pids: dict[str, int] | None = None) -> LoadResult:
        """One load run, with the RSS of the system's processes sampled while it goes on."""
        if not pids:
            return run_load(spec)
        with PeakMemory(pids) as memory, CpuUse(pids) as cpu:
            result = run_load(spec)
        memory.merge_into(self.peaks)
        result.cpu_cores = cpu.cores
        return result


def _get(path: str, headers: dict[str, str] | None = None) -> RequestSpec:
    return RequestSpec(method="GET", path=path, headers=headers or {})


def _search(name: str, headers: dict[str, str]) -> RequestSpec:
    """A search by name as the API takes it: the name in the body, never in the URL."""
    return _post("/api/intake/cases/search", {"q": name}, headers)


def _best(results: list[LoadResult]) -> LoadResult:
    """Of repeated runs, the fastest: other work on a shared machine only ever slows a run down."""
    return max(results, key=lambda r: r.rps)


# ---- the baseline -------------------------------------------------------------------------------------------------

def baseline(run: Run) -> None:
    """The bare FastAPI endpoint at each concurrency: what the machine and the generator can do at all."""
    s = run.settings
    with baseline_server() as (url, pid):
        idle = rss_mib(pid)
        by_clients = {}
        for clients in CONCURRENCY:
            spec = LoadSpec(base_url=url, requests=[_get("/healthz")], concurrency=clients, duration=s.duration,
                            warmup=s.warmup)
            by_clients[str(clients)] = run.load(spec).model_dump()
        loaded = rss_mib(pid)
    run.results["baseline"] = by_clients
    run.results.setdefault("memory", {})["baseline app"] = {"idle": idle, "load": loaded}


# ---- the system ---------------------------------------------------------------------------------------------------

@dataclass
class Actors:
    """The people a benchmark acts as, signed in, and what they set up."""

    caseworker: api.Client
    finance: api.Client
    partner_id: str
    grant_id: str

    @property
    def as_caseworker(self) -> dict[str, str]:
        return self.caseworker.auth

    @property
    def as_finance(self) -> dict[str, str]:
        return self.finance.auth


def set_up(system: System) -> Actors:
    signed_in = api.staff(system.url, ADMIN_PASSWORD, {"casey": ["caseworker"], "fin": ["finance"]})
    partner = api.clinic(signed_in["admin"])
    grant = api.grant(signed_in["fin"])
    return Actors(signed_in["casey"], signed_in["fin"], partner["id"], grant["id"])


def system_benchmarks(run: Run, system: System, actors: Actors) -> None:
    """Memory at rest, the gateway's overhead, the five operations, event propagation, memory under load."""
    pids = system.pids()
    run.results.setdefault("memory", {}).update(
        {name: {"idle": rss_mib(pid)} for name, pid in pids.items()})
    people = People(seed=11)
    case_ids = operations(run, system, actors, people, pids)
    gateway_overhead(run, system, actors, case_ids, pids)
    propagation(run, system, actors, people)
    for name, peak in run.peaks.items():
        run.results["memory"].setdefault(name, {})["load"] = peak


def gateway_overhead(run: Run, system: System, actors: Actors, case_ids: list[str], pids: dict[str, int]) -> None:
    """The same request to intake directly and through the gateway, interleaved, best of `rounds` each.

    `/healthz` is answered by each process itself (no forwarding: it shows the cost of each app's middleware);
    reading a case and listing cases are forwarded, with the same bearer token both ways (services verify
    tokens themselves), so the difference is the gateway's hop.
    """
    s = run.settings
    intake, gateway = system.service_url("intake"), system.url
    cases = [_get(f"/api/intake/cases/{case_id}", actors.as_caseworker) for case_id in case_ids[:500]]
    pairs = {
        "healthz": [_get("/healthz")],
        "read case": cases,
        "list cases": [_get("/api/intake/cases?limit=20", actors.as_caseworker)],
    }
    results: dict[str, Any] = {}
    for name, requests in pairs.items():
        for clients in OVERHEAD_CONCURRENCY:
            measured: dict[str, list[LoadResult]] = {"direct": [], "gateway": []}
            for _ in range(s.rounds):
                for side, url in (("direct", intake), ("gateway", gateway)):
                    spec = LoadSpec(base_url=url, requests=requests, concurrency=clients, duration=s.duration,
                                    warmup=s.warmup)
                    measured[side].append(run.load(spec, pids))
            results.setdefault(name, {})[str(clients)] = {side: _best(r).model_dump() for side, r in measured.items()}
    run.results["overhead"] = results


def operations(run: Run, system: System, actors: Actors, people: People, pids: dict[str, int]) -> list[str]:
    """Create case, read case, search by name, create referral, approve disbursement: through the gateway at
    1, 16 and 64 clients. Returns the ids of the cases it created."""
    s = run.settings
    gateway = system.url
    results: dict[str, dict[str, Any]] = {}

    def measure(name: str, clients: int, requests: list[RequestSpec], *, duration: float | None = None,
                **options: Any) -> LoadResult:
        warmup = s.warmup if options.get("cycle", True) else 0.0  # a warm-up would spend one-off requests
        spec = LoadSpec(base_url=gateway, requests=requests, concurrency=clients, duration=duration or s.duration,
                        warmup=warmup, **options)
        result = run.load(spec, pids)
        stored = result.model_dump(exclude={"collected"})
        results.setdefault(name, {})[str(clients)] = stored
        return result

    # Create case: new people every time (the same person again would grow each answer's duplicate list).
    case_ids: list[str] = []
    names: list[str] = []
    for clients in CONCURRENCY:
        bodies = [people.case() for _ in range(_enough(s.duration))]
        created = measure("create case", clients, [_post("/api/intake/cases", b, actors.as_caseworker) for b in bodies],
                          cycle=False, collect="id")
        case_ids.extend(created.collected)
        names.extend(b["full_name"] for b in bodies[:len(created.collected)])
    if not case_ids:
        raise RuntimeError(f"no case could be created: {results['create case']}")

    reads = [_get(f"/api/intake/cases/{case_id}", actors.as_caseworker) for case_id in case_ids[:2000]]
    searches = [_search(name, actors.as_caseworker) for name in names[:2000]]
    for clients in CONCURRENCY:
        measure("read case", clients, reads)
    for clients in CONCURRENCY:
        measure("search by name", clients, searches)

    # Create referral: cases whose consent covers the clinic's category, once the referrals service knows it.
    consented = case_ids[:50]
    for case_id in consented:
        actors.caseworker.call("PUT", f"/api/intake/cases/{case_id}/consent", json=api.MEDICAL_CONSENT)
    referral_bodies = [_post("/api/referrals/referrals", {
        "case_id": case_id, "partner_id": actors.partner_id, "need_category": "medical",
        "packet": {"display_name": "A. B.", "language": "be", "note": "Needs a follow-up visit."}},
        actors.as_caseworker) for case_id in consented]
    _until_known(lambda: actors.caseworker.http.post("/api/referrals/referrals",
                                                     json=referral_bodies[-1].json_body).status_code == 201,
                 "the referrals service learning the consents")
    for clients in CONCURRENCY:
        measure("create referral", clients, referral_bodies)

    # Approve disbursement: requests made first (by the caseworker: four eyes), each approved once by finance;
    # requested for three measurement periods, so that each approval run has about a period's worth.
    _until_known(lambda: actors.caseworker.http.post(
        "/api/funds/disbursements", headers={"Idempotency-Key": uuid.uuid4().hex},
        json=_disbursement(case_ids[-1], actors.grant_id)).status_code == 201, "the funds service learning the cases")
    requested = measure("request disbursement", 16, [
        _post("/api/funds/disbursements", _disbursement(case_ids[i % len(case_ids)], actors.grant_id),
              {**actors.as_caseworker, "Idempotency-Key": uuid.uuid4().hex})
        for i in range(_enough(s.duration * 3))], duration=s.duration * 3, cycle=False, collect="id").collected
    shares = {1: requested[: len(requested) // 5], 16: requested[len(requested) // 5: 3 * len(requested) // 5],
              64: requested[3 * len(requested) // 5:]}
    for clients, ids in shares.items():
        if ids:
            measure("approve disbursement", clients,
                    [_post(f"/api/funds/disbursements/{d}/approve", None, actors.as_finance) for d in ids], cycle=False)
    run.results["operations"] = results
    return case_ids


def propagation(run: Run, system: System, actors: Actors, people: People) -> None:
    """Cases opened at a steady rate through the gateway; for each `case.opened` event, the time from its outbox
    row (written in the case's transaction) to the inbox row of the referrals and of the funds consumer (written
    in the transaction that applied it to their projections), read from the databases afterwards.

    At the target rate, and at a light one: when intake cannot keep up with the target rate on this machine, the
    first figure is mostly queueing, and the second shows the event path itself."""
    s = run.settings
    run.results["propagation"] = [_propagation_at(system, actors, people, rate, s.propagation_seconds)
                                  for rate in s.propagation_rates]


def _propagation_at(system: System, actors: Actors, people: People, rate: float, seconds: float) -> dict[str, Any]:
    count = int(rate * seconds)
    started = datetime.now(UTC)
    spec = LoadSpec(base_url=system.url, requests=[_post("/api/intake/cases", people.case(), actors.as_caseworker)
                                                   for _ in range(count)],
                    cycle=False, concurrency=64, rate=rate, duration=seconds + 30)
    load = run_load(spec)
    outbox, inbox = KitTables(MetaData()).outbox, KitTables(MetaData()).inbox
    intake = create_engine(system.database_url("intake"))

    def written() -> list[Any]:
        with intake.connect() as conn:
            return conn.execute(select(outbox.c.event_id, outbox.c.created_at, outbox.c.published_at).where(
                outbox.c.subject == "rehab.intake.case.opened", outbox.c.created_at >= _stored(started, conn))).all()

    sent = {row.event_id: row.created_at for row in written()}
    figures: dict[str, Any] = {"rate": rate, "requested": count, "created": load.ok,
                               "achieved_rate": round(load.ok / load.seconds, 1) if load.seconds else 0.0,
                               "http": load.model_dump(exclude={"collected"})}
    for service, consumer in (("referrals", "referrals-intake"), ("funds", "funds-intake")):
        engine = create_engine(system.database_url(service))

        def applied() -> dict[str, datetime]:
            with engine.connect() as conn:
                return dict(conn.execute(select(inbox.c.event_id, inbox.c.applied_at).where(
                    inbox.c.consumer == consumer, inbox.c.event_id.in_(list(sent)))).all())

        try:
            done = wait_for(lambda: (got := applied()) and len(got) >= len(sent) and got, timeout=60, interval=0.5,
                            what=f"{service} applying every event")
        except TimeoutError:
            done = applied()  # reported as fewer applied than sent
        engine.dispose()
        delays = sorted((_aware(done[e]) - _aware(sent[e])).total_seconds() * 1000 for e in sent if e in done)
        figures[service] = {"events": len(sent), "applied": len(delays), **_percentiles(delays)}
    # Where the time goes: until intake's relay marked the event published (after its batch was acknowledged by
    # NATS, in a transaction of its own), read once the consumers are done; the rest is NATS and the consumer.
    rows = written()
    intake.dispose()
    relayed = sorted((_aware(row.published_at) - _aware(row.created_at)).total_seconds() * 1000
                     for row in rows if row.published_at is not None)
    figures["relay"] = {"events": len(rows), "published": len(relayed), **_percentiles(relayed)}
    return figures


# ---- growth -------------------------------------------------------------------------------------------------------

def growth(run: Run, workdir: Path, backing_for: Callable[[], Backing],
           progress: Callable[[str], None] = lambda _message: None) -> None:
    """Search by name and list cases with more and more cases loaded (bulk, before each start), through the
    gateway. The same system is stopped, grown and started again for each size."""
    s = run.settings
    backing = backing_for()
    system = System(workdir / "growth", backing)
    steps: list[dict[str, Any]] = []
    loaded, names = 0, []
    caseworker: api.Client | None = None
    try:
        for size in sorted(s.sizes):
            progress(f"growth: bulk-loading {size - loaded:,} cases (to {size:,})")
            report = bulk_load(system.database_url("intake"), system.state_dir / "secrets", size - loaded,
                               workers=s.loader_workers, seed=size)
            loaded = size
            names.extend(report.sample_names)
            progress(f"growth: loaded in {report.seconds:.0f} s; measuring at {size:,} cases")
            system.start()
            try:
                if caseworker is None:  # the gateway's database keeps the user, and its token stays valid
                    # A supervisor too: bulk-loaded cases are nobody's, and the list that grows with them is the
                    # whole caseload (`?assigned=any`), a supervisor's view.
                    caseworker = api.staff(system.url, ADMIN_PASSWORD, {"casey": ["caseworker", "supervisor"]})["casey"]
                steps.append({"cases": size, "load_seconds": round(report.seconds, 1),
                              "cases_per_second": round(report.cases_per_second),
                              **_growth_step(run, system, caseworker, names)})
            finally:
                system.stop()
    finally:
        if caseworker is not None:
            caseworker.close()
        backing.drop_databases()
    run.results["growth"] = steps


def _growth_step(run: Run, system: System, caseworker: api.Client, names: list[str]) -> dict[str, Any]:
    """Searches of names of loaded people: as written, by surname, and as another person would write them
    (`population.written_otherwise`: a familiar or short form of the given name, Latin or Cyrillic — Nasta Loika for
    Настасся Лойка), also only forms standing for several name groups (Саша, Слава, Жэня: the search walks each
    group's terms); and the whole caseload's list."""
    s = run.settings
    auth = caseworker.auth
    chance = random.Random(len(names))
    familiar = [written_otherwise(name, chance) for name in names]
    several = [form for name in names if (form := written_otherwise(name, chance, several=True))]
    listing = [_get("/api/intake/cases?assigned=any&limit=50", auth)]
    step: dict[str, Any] = {}
    for label, queries, levels in (("search full name", names, (1, 16)), ("search familiar form", familiar, (1,)),
                                   ("search several-group form", several, (1,)),
                                   ("search surname", [name.split()[-1] for name in names], (1,))):
        if not queries:  # a few loaded people may have no given name of several groups
            continue
        for clients in levels:
            spec = LoadSpec(base_url=system.url, requests=[_search(query, auth) for query in queries],
                            concurrency=clients, duration=s.duration, warmup=s.warmup)
            step.setdefault(label, {})[str(clients)] = run_load(spec).model_dump(exclude={"collected"})
    for clients in (1, 16):
        spec = LoadSpec(base_url=system.url, requests=listing, concurrency=clients, duration=s.duration,
                        warmup=s.warmup)
        step.setdefault("list cases", {})[str(clients)] = run_load(spec).model_dump(exclude={"collected"})
    step["matches"] = _typical_matches(caseworker, list(zip(names, familiar, strict=True))[:20])
    return step


def _typical_matches(caseworker: api.Client, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """How many cases a search finds (first page, up to 200), by the name as written and as written otherwise: the
    answer's size, for the record; and whether the other writing found everyone the written one found (it should:
    the same keys, or more for a form of several groups), so that what is timed is a search that works."""
    def found(query: str) -> set[str]:
        answer = caseworker.call("POST", "/api/intake/cases/search", json={"q": query, "limit": 200})
        return {item["id"] for item in answer["items"]}

    written, otherwise = [found(name) for name, _ in pairs], [found(form) for _, form in pairs]
    all_found = sum(a <= b for a, b in zip(written, otherwise, strict=True))
    return {"full name, median": _median([len(ids) for ids in written]),
            "familiar form, median": _median([len(ids) for ids in otherwise]),
            "familiar form finds the written name's cases": f"{all_found}/{len(pairs)}"}


def _median(counts: list[int]) -> float:
    return sorted(counts)[len(counts) // 2] if counts else 0.0


# ---- helpers ------------------------------------------------------------------------------------------------------

def _post(path: str, body: Any, headers: dict[str, str]) -> RequestSpec:
    return RequestSpec(method="POST", path=path, headers=headers, json_body=body)


def _disbursement(case_id: str, grant_id: str) -> dict[str, Any]:
    return {"case_id": case_id, "grant_id": grant_id, "category": "medical", "amount": "1.00", "currency": "EUR",
            "purpose": "clinic visit"}


def _enough(seconds: float) -> int:
    """Requests to prepare for a run that must not repeat any: more than the system can take in `seconds`."""
    return int(max(500, seconds * 1500))


def _until_known(check: Callable[[], bool], what: str) -> None:
    wait_for(check, timeout=60, interval=0.2, what=what)


def _stored(moment: datetime, conn: Any) -> datetime:
    """SQLite keeps these datetimes without a zone (UTC by convention); PostgreSQL compares aware ones."""
    return moment.replace(tzinfo=None) if conn.dialect.name == "sqlite" else moment


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values_ms, 0.50), 2), "p99": round(percentile(values_ms, 0.99), 2),
            "max": round(values_ms[-1], 2) if values_ms else 0.0}
