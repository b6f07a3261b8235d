"""The system under test: `rehab up` (python -m ops.cli up) in a state folder of its own, on free ports.

Embedded by default (SQLite files and a nats-server of its own); with `Backing.postgres` every service and the
gateway get a fresh PostgreSQL database, dropped afterwards. An external NATS is used only when asked for: its
streams are shared with whoever else uses that server (test runs delete them), so a benchmark that relies on it
can be disturbed and can disturb.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.harness import REPO_ROOT, answers_200, children_of, wait_for
from ops.cluster import NATS_NODES, SECOND_REPLICA_OFFSET
from ops.supervisor import free_block, free_ports

ADMIN_PASSWORD = "Bench-Admin-Passphrase-2026!"
PROCESSES = ("gateway", "intake", "referrals", "funds", "reports", "nats")
DATABASES = ("intake", "referrals", "funds", "reports", "gateway")
STREAMS = ("INTAKE", "REFERRALS", "FUNDS")

# Settings that would otherwise measure the wrong thing: the per-user request budget (600/minute) would answer
# 429 to a benchmark within a second, a 10-minute token would expire during a long run, and sign-in is not timed.
BENCH_SETTINGS = {
    "REHAB_API_RATE_LIMIT": "100000000/minute",
    "REHAB_TOKEN_TTL_SECONDS": "3600",
    # Sign-in is not what is measured: the benchmark's users sign in with a password alone.
    "REHAB_MFA_REQUIRED_ROLES": "",
}


@dataclass
class Backing:
    """Where the system keeps its data: SQLite files (postgres_admin_url None) or fresh PostgreSQL databases."""

    postgres_admin_url: str | None = None
    nats_url: str | None = None  # an external NATS; None: the system starts its own
    created: dict[str, str] = field(default_factory=dict)  # service → database URL

    @property
    def name(self) -> str:
        database = "PostgreSQL" if self.postgres_admin_url else "SQLite"
        nats = "external NATS" if self.nats_url else "embedded NATS"
        return f"{database} + {nats}"

    def database_url(self, service: str, state_dir: Path) -> str:
        """The database of one service: created on first use on PostgreSQL, a file under `state_dir` otherwise."""
        if self.postgres_admin_url is None:
            return f"sqlite:///{(state_dir / f'{service}.db').resolve()}"
        if service not in self.created:
            name = f"rehab_bench_{service}_{uuid.uuid4().hex[:8]}"
            with _admin(self.postgres_admin_url) as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            self.created[service] = make_url(self.postgres_admin_url).set(database=name).render_as_string(
                hide_password=False)
        return self.created[service]

    def drop_databases(self) -> None:
        for url in self.created.values():
            with _admin(self.postgres_admin_url) as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        self.created.clear()

    def reset_streams(self) -> None:
        """Start an external NATS from no streams of ours (as the tests do), so old events are not replayed."""
        if self.nats_url is None:
            return
        import nats

        async def delete() -> None:
            client = await nats.connect(self.nats_url, connect_timeout=3)
            try:
                stream_api = client.jetstream()
                for name in STREAMS:
                    try:
                        await stream_api.delete_stream(name)
                    except Exception:  # a stream that does not exist yet
                        pass
            finally:
                await client.close()

        asyncio.run(delete())


class _admin:
    """An AUTOCOMMIT connection to PostgreSQL for CREATE/DROP DATABASE."""

    def __init__(self, admin_url: str) -> None:
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def __enter__(self):  # noqa: ANN204
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()
        self.engine.dispose()


class System:
    """One running system: start it, find its processes, stop it. The state folder survives a stop, so a system
    can be started again on the data it had (or on data a bulk loader put there in between)."""

    up_command: tuple[str, ...] = ("up",)

    def __init__(self, state_dir: Path, backing: Backing, extra_env: dict[str, str] | None = None) -> None:
        self.state_dir = state_dir
        self.backing = backing
        # Settings on top of the usual ones (and of BENCH_SETTINGS), e.g. another key custody.
        self.extra_env = dict(extra_env or {})
        processes = ("gateway", "intake", "referrals", "funds", "reports")
        ports = iter(free_ports(2 * len(processes) + 1))
        self.ports = {name: next(ports) for name in (*processes, "nats")}
        # Each process's /metrics listener (loopback), apart from its main port.
        self.metrics_ports = {name: next(ports) for name in processes}
        self.process: subprocess.Popen | None = None
        self._console: Path = state_dir.parent / f"{state_dir.name}-supervisor.out"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def database_url(self, service: str) -> str:
        return self.backing.database_url(service, self.state_dir)

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            **BENCH_SETTINGS,
            "REHAB_STATE_DIR": str(self.state_dir),
            "REHAB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{f"REHAB_{name.upper()}_METRICS_PORT": str(port) for name, port in self.metrics_ports.items()},
        }
        if self.backing.postgres_admin_url:
            for service in DATABASES:
                env[f"REHAB_{service.upper()}_DATABASE_URL"] = self.database_url(service)
        if self.backing.nats_url:
            env["REHAB_NATS_URL"] = self.backing.nats_url
        else:
            env.pop("REHAB_NATS_URL", None)  # the supervisor starts its own only when none is named
        env.update(self.extra_env)
        return env

    def start(self, *, timeout: float = 120) -> None:
        self.launch()
        self.wait_until_ready(timeout=timeout)

    def launch(self) -> None:
        """`rehab up`, without waiting for it (several systems can then start side by side)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self._console, "ab") as console:
            self.process = subprocess.Popen([sys.executable, "-m", "ops.cli", *self.up_command], env=self.environment(),
                                            stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=REPO_ROOT)

    def wait_until_ready(self, *, timeout: float = 120) -> None:
        try:
            wait_for(self._ready, timeout=timeout, interval=0.3, what="the system's readiness (every /readyz)")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"rehab up exited during start-up:\n{self.console()[-3000:]}")
        # The gateway's /readyz speaks of the gateway only; each service answers its own.
        return all(answers_200(f"http://127.0.0.1:{port}/readyz") for port in self.http_ports().values())

    def http_ports(self) -> dict[str, int]:
        """Every process that answers HTTP, by name: its port."""
        return {name: port for name, port in self.ports.items() if name != "nats"}

    def console(self) -> str:
        return self._console.read_text(errors="replace") if self._console.exists() else ""

    def pids(self) -> dict[str, int]:
        """The supervisor and each process it runs, by name."""
        assert self.process is not None
        found = {"supervisor": self.process.pid}
        for pid, command in children_of(self.process.pid).items():
            for name in PROCESSES:
                if (name == "nats" and "nats-server" in command) or command.endswith(f"-m {name}") \
                        or command.endswith(f"-m services.{name}"):
                    found[name] = pid
        return found

    def stop(self) -> None:
        """SIGTERM, as an operator would; a kill only if it does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class ClusterSystem(System):
    """`rehab up --cluster` with `replicas` replicas of every service and as many gateways (ops.cluster): three NATS
    nodes of its own (R3 streams) and fresh PostgreSQL databases (the backing must be PostgreSQL, and its NATS is
    never an external one). Its ports are one block of free ones, laid out as ops.cluster puts replicas: replica n of
    a service and its metrics 10·(n−1) above the first's, gateway n at the first gateway's port + n−1.

    Its processes are named as the single system's are, the first replica by its service's name and the others by
    their number: intake, intake-2, gateway, gateway-2, nats-1 … nats-3."""

    up_command = ("up", "--cluster")
    # Offsets in the block: a decade per replica (services, then the gateway's and the services' metrics), then the
    # gateways, then the NATS nodes' client and route ports.
    _SERVICES = ("intake", "referrals", "funds", "reports")
    _METRICS, _GATEWAYS, _NATS, _ROUTES, _BLOCK = 4, 80, 90, 93, 100

    def __init__(self, state_dir: Path, backing: Backing, replicas: int,
                 extra_env: dict[str, str] | None = None) -> None:
        if backing.postgres_admin_url is None:
            raise ValueError("a cluster's replicas share their databases: it runs on PostgreSQL only")
        if not 1 <= replicas <= 8:
            raise ValueError("1 to 8 replicas (ops.settings: REHAB_CLUSTER_REPLICAS)")
        backing.nats_url = None  # its own three nodes: an external NATS's streams would be shared
        super().__init__(state_dir, backing, {
            "REHAB_CLUSTER_REPLICAS": str(replicas),
            "REHAB_STARTUP_TIMEOUT_SECONDS": "180",  # a dozen processes migrating and starting on two cores
            **(extra_env or {}),
        })
        self.replicas = replicas
        base = free_block(self._BLOCK)
        self.ports = {name: base + number for number, name in enumerate(self._SERVICES)}
        self.ports["gateway"] = base + self._GATEWAYS
        self.ports["nats"] = base + self._NATS
        self.metrics_ports = {name: base + self._METRICS + number
                              for number, name in enumerate(("gateway", *self._SERVICES))}
        self.extra_env["REHAB_NATS_CLUSTER_PORT"] = str(base + self._ROUTES)

    @property
    def gateway_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.ports['gateway'] + replica}" for replica in range(self.replicas)]

    def wait_until_ready(self, *, timeout: float = 240) -> None:
        super().wait_until_ready(timeout=timeout)

    def http_ports(self) -> dict[str, int]:
        ports = {_replica_name("gateway", replica): self.ports["gateway"] + replica for replica in range(self.replicas)}
        for name in self._SERVICES:
            for replica in range(self.replicas):
                ports[_replica_name(name, replica)] = self.ports[name] + replica * SECOND_REPLICA_OFFSET
        return ports

    def pids(self) -> dict[str, int]:
        """The supervisor and each process it runs: a replica known by the port it was told (its REHAB_PORT), a
        NATS node by its config file."""
        assert self.process is not None
        by_port = {port: name for name, port in self.http_ports().items()}
        found = {"supervisor": self.process.pid}
        for pid, command in children_of(self.process.pid).items():
            if "nats-server" in command:
                for node in range(1, NATS_NODES + 1):
                    if command.endswith(f"nats-{node}.conf"):
                        found[f"nats-{node}"] = pid
                continue
            name = by_port.get(_told_port(pid))
            if name:
                found[name] = pid
        return found


def _replica_name(name: str, replica: int) -> str:
    return name if replica == 0 else f"{name}-{replica + 1}"


def _told_port(pid: int) -> int | None:
    """The REHAB_PORT a process was started with (ops.system gives every Python process its own)."""
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for entry in environment:
        if entry.startswith(b"REHAB_PORT="):
            return int(entry.split(b"=", 1)[1])
    return None
