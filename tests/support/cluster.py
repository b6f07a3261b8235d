"""`rehab up --cluster` in a temporary state folder, on fresh PostgreSQL databases and free ports: three NATS nodes,
two replicas of every service, two gateways, all as processes under the supervisor. For the cluster fault test;
it offers what tests/faults/flow.py's `Desk` and `Reckoning` ask of a system (url, env, database_url, nats_url,
nats_options), so the working day and the books of the fault tests run on it unchanged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
from sqlalchemy import create_engine, text

from kit.bus import relay_lock_key
from ops.cluster import NATS_NODES, REPLICAS, SECOND_REPLICA_OFFSET, cluster_services
from ops.supervisor import free_block
from tests.support.postgres import create_database, drop_database
from tests.support.system import ADMIN_PASSWORD, eventually, pid_listening_on, pid_with_socket

POSTGRES_ADMIN_URL = os.environ.get("REHAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Every service `rehab up --cluster` starts in this checkout (the reports service too, where it is), each on a
# database of the test's own.
SERVICES = tuple(cluster_services())
# Offsets from a base port: every port a cluster binds (monitoring ports aside, which the supervisor picks).
_GATEWAY, _SERVICE, _METRICS, _NATS, _ROUTES = 0, 2, 20, 40, 43


def postgres_reachable() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class Cluster:
    def __init__(self, root: Path, services: tuple[str, ...] = SERVICES, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.state = root / "var"
        self.services = services
        self.base = free_block(50)
        self.ports = {name: self.base + _SERVICE + number for number, name in enumerate(services)}
        self.gateway_ports = [self.base + _GATEWAY + replica for replica in range(REPLICAS)]
        self.nats_ports = [self.base + _NATS + node for node in range(NATS_NODES)]
        self.databases = {name: create_database(POSTGRES_ADMIN_URL, f"rehab_cl_{name}_{uuid.uuid4().hex[:8]}")
                          for name in (*services, "gateway")}
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("REHAB_")}
        self.env.update({
            "REHAB_STATE_DIR": str(self.state),
            "REHAB_GATEWAY_PORT": str(self.gateway_ports[0]),
            "REHAB_GATEWAY_METRICS_PORT": str(self.base + _METRICS),
            **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in self.ports.items()},
            **{f"REHAB_{name.upper()}_METRICS_PORT": str(self.base + _METRICS + 1 + number)
               for number, name in enumerate(services)},
            "REHAB_NATS_PORT": str(self.nats_ports[0]),
            "REHAB_NATS_CLUSTER_PORT": str(self.base + _ROUTES),
            **{f"REHAB_{name.upper()}_DATABASE_URL": url for name, url in self.databases.items()},
            "REHAB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "REHAB_MFA_REQUIRED_ROLES": "",  # a TOTP code works once per 30 s; these clients sign in often
            "REHAB_API_RATE_LIMIT": "100000/minute",
            "REHAB_LOG_LEVEL": "WARNING",
            "REHAB_STARTUP_TIMEOUT_SECONDS": "120",
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        })
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.gateway_ports[0]}"
        self.urls = [f"http://127.0.0.1:{port}" for port in self.gateway_ports]

    # ---- running ---------------------------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.output = open(self.root / "supervisor.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "ops.cli", "up", "--cluster"], env=self.env,
                                     stdout=self.output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.env["PYTHONPATH"])
        eventually(self._ready, timeout=timeout, interval=0.5)

    def _ready(self) -> bool:
        assert self.proc and self.proc.poll() is None, f"rehab up --cluster exited: {self.console()[-4000:]}"
        return self.ready()

    def replica_ports(self, name: str) -> list[int]:
        return [self.ports[name] + replica * SECOND_REPLICA_OFFSET for replica in range(REPLICAS)]

    def ready(self) -> bool:
        """Every replica of every service, and both gateways, answer /readyz with 200."""
        ports = [*self.gateway_ports, *(port for name in self.services for port in self.replica_ports(name))]
        try:
            return all(httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200 for port in ports)
        except httpx.HTTPError:
            return False

    def console(self) -> str:
        return (self.root / "supervisor.out").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM to the supervisor (it stops every process), SIGKILL if it does not go; its children die with it
        either way (the supervisor has Linux send them SIGTERM when it dies)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.output.close()
        self.proc = None

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            for url in self.databases.values():
                drop_database(POSTGRES_ADMIN_URL, url)

    # ---- what the fault tests' helpers ask of a system -----------------------------------------------------------

    @property
    def nats_url(self) -> list[str]:
        """The three nodes, as nats.connect takes them (the services get them comma-separated)."""
        return [f"nats://127.0.0.1:{port}" for port in self.nats_ports]

    def nats_options(self, user: str = "ops") -> dict[str, Any]:
        return {"nkeys_seed": str(self.state / "secrets" / user / "nats.nk")}

    def database_url(self, name: str) -> str:
        return self.databases[name]

    # ---- faults ----------------------------------------------------------------------------------------------

    def kill_port(self, port: int) -> int:
        """SIGKILL the process listening on `port` (the supervisor starts it again); its pid."""
        pid = pid_listening_on(port)
        assert pid is not None, f"nothing listens on {port}"
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_replica(self, name: str, replica: int = 0) -> int:
        return self.kill_port(self.replica_ports(name)[replica])

    def stream_leader(self, stream: str) -> int:
        """The NATS node (0-based) leading `stream` now."""
        async def ask() -> str:
            nc = await nats.connect(self.nats_url, connect_timeout=3, **self.nats_options())
            try:
                info = await nc.jetstream(timeout=5).stream_info(stream)
                assert info.cluster is not None and info.cluster.leader, f"{stream} has no leader: {info.cluster}"
                assert info.config.num_replicas == NATS_NODES, info.config
                return info.cluster.leader
            finally:
                await nc.close()

        leader = asyncio.run(ask())
        return int(leader.rsplit("-", 1)[1]) - 1  # rehab-nats-<n>

    def kill_stream_leader(self, stream: str) -> int:
        node = self.stream_leader(stream)
        self.kill_port(self.nats_ports[node])
        return node

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every connection to the cluster's databases: what a PostgreSQL restart or a
        failover does to the services' connections; how many were cut."""
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        names = [url.rsplit("/", 1)[1] for url in self.databases.values()]
        try:
            with engine.connect() as conn:
                return len(conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = ANY(:names) AND pid <> pg_backend_pid()"), {"names": names}).all())
        finally:
            engine.dispose()

    def relay_leader(self, name: str) -> int | None:
        """The pid of the replica of `name` whose relay publishes now: the one whose connection holds the relay's
        advisory lock in `name`'s database (pg_locks → the backend's client port → the process with that socket)."""
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                port = conn.execute(text(
                    "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :key AND d.datname = :database"),
                    {"key": relay_lock_key(name), "database": self.databases[name].rsplit("/", 1)[1]}).scalar()
        finally:
            engine.dispose()
        return None if port is None else pid_with_socket(port, listening=False)
