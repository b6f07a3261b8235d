"""The `custody` part (issue #16: `openbao` key custody within 1.5× of `file`): create case and read case through
the gateway, with the same system keeping its keys in files and in OpenBao, in one run.

Three systems run side by side on the same database backing (each with a NATS of its own), each signed in as `scenarios.set_up` does, and one OpenBao
server in dev mode (`bao server -dev`, in memory, random root token: `tests.support.openbao.OpenBaoDev`):

- `file`: `REHAB_KEY_CUSTODY=file`, the default;
- `openbao`: every data key wrapped by the process's Transit key; new keys from the pre-wrapped pool, unwrapped
  keys cached (`REHAB_OPENBAO_CACHE_SECONDS`, 300 s by default);
- `openbao, cache 0 s`: the same with `REHAB_OPENBAO_CACHE_SECONDS=0`, on a Transit mount of its own: every read
  unwraps its data key in OpenBao. This is the *cold read*: a case nobody opened within the cache's lifetime, the
  usual case for a caseworker's read. Restarting intake instead would only make the first read of each case cold
  and the cache warm again within the measurement (a figure drifting from cold to warm); cache 0 gives every read
  the round trip, steadily: an upper bound of what the cache cannot save.

Only one system is under load at a time: each round measures the three one after another (create case, then read
case of the cases that system created in this run), the order reversed every other round, so drift in the
machine's load falls on all three alike; the round with the most req/s counts, as elsewhere in the bench. The two
idle systems cost little (their relays, checkpoints and the pool thread's key check every 5 s).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import report, scenarios
from bench.load_spec import LoadResult, LoadSpec, RequestSpec
from bench.population import People
from bench.system import Backing, System
from tests.support.openbao import OpenBaoDev, bao_runs

FILE, OPENBAO, COLD = report.CUSTODY_FILE, report.CUSTODY_OPENBAO, report.CUSTODY_COLD
CONFIGS = (FILE, OPENBAO, COLD)
COLD_MOUNT = "transit-cold"
CLIENTS = (16, 1)
READ_CASES = 2000  # the most recent cases a system created are read, cycled


def environments(bao: OpenBaoDev) -> dict[str, dict[str, str]]:
    """Each system's settings on top of the usual ones."""
    openbao = {"REHAB_KEY_CUSTODY": "openbao", "REHAB_OPENBAO_ADDR": bao.addr,
               "REHAB_OPENBAO_TOKEN": bao.root_token, "REHAB_OPENBAO_TRANSIT_MOUNT": "transit"}
    return {
        FILE: {"REHAB_KEY_CUSTODY": "file"},
        OPENBAO: openbao,
        COLD: {**openbao, "REHAB_OPENBAO_TRANSIT_MOUNT": COLD_MOUNT, "REHAB_OPENBAO_CACHE_SECONDS": "0"},
    }


def custody(run: scenarios.Run, workdir: Path, backing_for: Callable[[], Backing],
            progress: Callable[[str], None] = lambda _message: None, *, clients: tuple[int, ...] = CLIENTS,
            configs: tuple[str, ...] = CONFIGS) -> None:
    """Start OpenBao and the systems (`configs`: all three unless a smoke test asks for fewer), measure, stop them
    all; the figures go to `run.results["custody"]`."""
    runs, why = bao_runs()
    if not runs:
        progress(f"custody: skipped, {why}")
        run.results["custody"] = {"skipped": why}
        return
    s = run.settings
    bao = OpenBaoDev(workdir / "openbao")
    systems: dict[str, System] = {}
    try:
        bao.start()
        bao.enable_transit(COLD_MOUNT)
        progress(f"custody: starting {len(configs)} systems: {'; '.join(configs)} custody")
        envs = environments(bao)
        for name in configs:
            env = envs[name]
            backing = backing_for()
            # Each its own NATS: three systems on one external NATS would share its streams and durable consumers.
            backing.nats_url = None
            system = systems[name] = System(workdir / f"custody-{len(systems)}", backing, extra_env=env)
            system.launch()
        actors: dict[str, scenarios.Actors] = {}
        for name, system in systems.items():
            system.wait_until_ready()
            _check_custody(name, system, bao)
            actors[name] = scenarios.set_up(system)
        people = People(seed=16)
        case_ids: dict[str, list[str]] = {name: [] for name in configs}
        measured: dict[str, dict[str, dict[str, list[LoadResult]]]] = {}
        loads: list[float] = []

        def measure(what: str, concurrency: int, name: str, requests: list[RequestSpec], **options: Any) -> LoadResult:
            warmup = s.warmup if options.get("cycle", True) else 0.0  # one-off requests get no warm-up
            spec = LoadSpec(base_url=systems[name].url, requests=requests, concurrency=concurrency,
                            duration=s.duration, warmup=warmup, **options)
            result = run.load(spec)
            measured.setdefault(what, {}).setdefault(str(concurrency), {}).setdefault(name, []).append(result)
            return result

        for round_number in range(s.rounds):
            order = list(configs) if round_number % 2 == 0 else list(reversed(configs))
            loads.append(report.load_average())
            progress(f"custody: round {round_number + 1} of {s.rounds} (load average {loads[-1]})")
            for level in clients:
                for name in order:  # fresh people every time, as scenarios.operations does
                    auth = actors[name].as_caseworker
                    bodies = [people.case() for _ in range(scenarios._enough(s.duration))]
                    created = measure("create case", level, name,
                                      [scenarios._post("/api/intake/cases", body, auth) for body in bodies],
                                      cycle=False, collect="id")
                    case_ids[name].extend(created.collected)
                for name in order:
                    if not case_ids[name]:
                        raise RuntimeError(f"no case could be created under {name} custody")
                    auth = actors[name].as_caseworker
                    measure("read case", level, name,
                            [scenarios._get(f"/api/intake/cases/{case_id}", auth)
                             for case_id in case_ids[name][-READ_CASES:]])
        run.results["custody"] = {
            "configs": {name: {key: value for key, value in env.items() if key != "REHAB_OPENBAO_TOKEN"}
                        for name, env in envs.items() if name in configs},
            "rounds": s.rounds, "load_by_round": loads,
            "cases_created": {name: len(ids) for name, ids in case_ids.items()},
            "measurements": {
                what: {level: {name: {"best": scenarios._best(results).model_dump(exclude={"collected"}),
                                        "rounds": [{"rps": r.rps, "p99": r.latency_ms.p99} for r in results]}
                                 for name, results in by_name.items()}
                       for level, by_name in by_clients.items()}
                for what, by_clients in measured.items()},
        }
    finally:
        with ThreadPoolExecutor(max_workers=len(CONFIGS)) as pool:  # side by side: each stop waits for its exit
            list(pool.map(_stop, systems.values()))
        bao.stop()


def _stop(system: System) -> None:
    try:
        system.stop()
    finally:
        system.backing.drop_databases()


def _check_custody(name: str, system: System, bao: OpenBaoDev) -> None:
    """The settings took: intake's keyring is where the custody says (a bench of the wrong thing is worse than none)."""
    intake = system.state_dir / "secrets" / "intake"
    if name == FILE:
        if not (intake / "kek.json").exists():
            raise RuntimeError("file custody: intake has no kek.json")
        return
    mount = COLD_MOUNT if name == COLD else "transit"
    keys = bao.api("LIST", f"{mount}/keys")
    if not (intake / "keys.transit").exists() or (intake / "kek.json").exists() \
            or keys.status_code != 200 or "rehab-intake" not in keys.json()["data"]["keys"]:
        raise RuntimeError(f"{name} custody: intake's keys are not in OpenBao ({mount})")
