"""What `rehab up --cluster` runs: the production shape on one machine, with the same code and other settings.

Three nats-server processes form one JetStream cluster (routes on loopback, each node with its own store under
`<state>/nats-cluster/<n>`), and every stream is kept on all three (`REHAB_STREAM_REPLICAS=3`); every process is
given the three client URLs and moves to another node when its own goes. PostgreSQL holds every database: the
`REHAB_<NAME>_DATABASE_URL` given, else a database `rehab_<name>` made on the machine's server
(`REHAB_CLUSTER_POSTGRES_URL`, by default the `postgres` user at 127.0.0.1:5432). Every service runs twice (the
second replica on its port + 10), and so does the gateway (the second on `REHAB_GATEWAY_PORT` + 1), each gateway
spreading requests over both replicas of every service (gateway.replicas). Only one replica of a service publishes
its outbox at a time: the relay's advisory lock on PostgreSQL (kit.bus).

`REHAB_CLUSTER_REPLICAS` (2 by default, 1 to 8) sets how many replicas of every service and how many gateways run:
replica n on its service's port + 10·(n−1), gateway n on `REHAB_GATEWAY_PORT` + n−1. With 1 it is the same cluster
(the NATS nodes, R3 streams, PostgreSQL, the relay's lock) with one process per service and one gateway: what the
bench's `scaling` part measures two replicas against.

Start-up goes stage by stage as under `rehab up`: the NATS nodes, every replica of every service, the gateways.
Two replicas starting together migrate one after the other (kit.migrations holds an advisory lock), and only one
gateway creates the first admin.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import replace
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from kit import nats_auth
from kit import secrets as secret_files
from ops.settings import SupervisorSettings
from ops.supervisor import ProcessSpec, StartupError, free_port
from ops.system import SERVICES, _python_spec, nats_server_binary, secrets_folder

NATS_NODES = 3
REPLICAS = SupervisorSettings.model_fields["cluster_replicas"].default  # unless REHAB_CLUSTER_REPLICAS says
SECOND_REPLICA_OFFSET = 10  # each further replica of a service listens this much higher: 8101, 8111, 8121, …
NATS_STAGE, SERVICES_STAGE, GATEWAY_STAGE = range(3)
# Ports of a service this checkout may have that the supervisor's settings do not name yet.
_DEFAULT_PORTS = {"reports": (8104, 8194)}


def cluster_services() -> list[str]:
    """The services to run: the three, and any other whose package this checkout has (the reports service)."""
    names = list(SERVICES)
    for extra in _DEFAULT_PORTS:
        if extra not in names and importlib.util.find_spec(f"services.{extra}.__main__") is not None:
            names.append(extra)
    return names


def service_ports(settings: SupervisorSettings, name: str) -> tuple[int, int]:
    """A service's main and metrics port (its first replica's)."""
    port, metrics = _DEFAULT_PORTS.get(name, (0, 0))
    return getattr(settings, f"{name}_port", port), getattr(settings, f"{name}_metrics_port", metrics)


def nats_client_ports(settings: SupervisorSettings) -> list[int]:
    return [settings.nats_port + node for node in range(NATS_NODES)]


def cluster_databases(settings: SupervisorSettings, names: list[str]) -> dict[str, str]:
    """Every process's PostgreSQL database: the URL the operator gave, else `rehab_<name>` on the machine's server,
    made when missing. Refuses (StartupError) when the server does not answer: the cluster never falls back to
    SQLite files, which several replicas can not share."""
    given = {name: os.environ[f"REHAB_{name.upper()}_DATABASE_URL"] for name in names
             if os.environ.get(f"REHAB_{name.upper()}_DATABASE_URL")}
    for name, url in given.items():
        if not url.startswith("postgresql"):
            raise StartupError(f"REHAB_{name.upper()}_DATABASE_URL is not PostgreSQL: a cluster's replicas share "
                               "their database, and only PostgreSQL lets them")
    missing = [name for name in names if name not in given]
    if not missing:
        return given
    admin_url = make_url(settings.cluster_postgres_url)
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            existing = {row[0] for row in conn.execute(text("SELECT datname FROM pg_database"))}
            for name in missing:
                if f"rehab_{name}" not in existing:
                    conn.execute(text(f'CREATE DATABASE "rehab_{name}"'))
    except SQLAlchemyError as error:
        raise StartupError(
            f"PostgreSQL does not answer at {admin_url.host}:{admin_url.port or 5432} ({type(error).__name__}): "
            "a cluster needs it; set REHAB_CLUSTER_POSTGRES_URL, or REHAB_<NAME>_DATABASE_URL for every process"
        ) from None
    finally:
        engine.dispose()
    made = {name: admin_url.set(database=f"rehab_{name}").render_as_string(hide_password=False) for name in missing}
    return {**given, **made}


def cluster_specs(settings: SupervisorSettings, state_dir: Path) -> list[ProcessSpec]:
    """Three NATS nodes (unless REHAB_NATS_URL names a cluster), `cluster_replicas` replicas of every service and
    as many gateways."""
    names = cluster_services()
    databases = cluster_databases(settings, [*names, "gateway"])
    secrets_dir = secrets_folder(settings, state_dir)
    specs: list[ProcessSpec] = []
    if settings.external_nats:
        nats_url = settings.nats_url
        replicas: dict[str, str] = {}  # the operator's cluster, the operator's REHAB_STREAM_REPLICAS
    else:
        specs += nats_node_specs(settings, state_dir)
        nats_url = ",".join(f"nats://127.0.0.1:{port}" for port in nats_client_ports(settings))
        replicas = {"REHAB_STREAM_REPLICAS": str(NATS_NODES)}
    common = {
        "REHAB_STATE_DIR": str(state_dir),
        "REHAB_NATS_URL": nats_url,
        **replicas,
        **{f"REHAB_{name.upper()}_DATABASE_URL": url for name, url in databases.items()},
        # Referrals and funds hand a break-glass reason stated to them to intake (kit.need_to_know.ReasonKeeper).
        "REHAB_INTAKE_URL": ",".join(f"http://127.0.0.1:{service_ports(settings, 'intake')[0] + replica * SECOND_REPLICA_OFFSET}"
                                     for replica in range(settings.cluster_replicas)),
        # Intake tells referrals at once when a consent narrows or a case is erased (services/intake/referrals_told).
        "REHAB_REFERRALS_URL": ",".join(
            f"http://127.0.0.1:{service_ports(settings, 'referrals')[0] + replica * SECOND_REPLICA_OFFSET}"
            for replica in range(settings.cluster_replicas)),
        "PYTHONUNBUFFERED": "1",
    }
    sealed = settings.key_custody == "sealed"
    urls: dict[str, list[str]] = {}
    for name in names:
        port, metrics_port = service_ports(settings, name)
        seed_file = secret_files.NATS_SEED_FILES.get(name)
        own_seed = {"REHAB_NATS_NKEY_SEED_FILE": str(secrets_dir / seed_file)} if seed_file else {}
        for replica in range(settings.cluster_replicas):
            offset = replica * SECOND_REPLICA_OFFSET
            own_port = port + offset
            spec = _python_spec(name, f"services.{name}", own_port,
                                {**common, **own_seed, f"REHAB_{name.upper()}_PORT": str(own_port)},
                                SERVICES_STAGE,
                                metrics_port=metrics_port + offset if metrics_port else 0, sealed=sealed)
            specs.append(_renamed(spec, f"{name}-{replica + 1}"))
            urls.setdefault(name, []).append(f"http://127.0.0.1:{own_port}")
    backends = {f"REHAB_{name.upper()}_URL": ",".join(found) for name, found in urls.items()}
    gateway_seed = {"REHAB_NATS_NKEY_SEED_FILE": str(secrets_dir / secret_files.NATS_SEED_FILES["gateway"])}
    for replica in range(settings.cluster_replicas):
        port = settings.gateway_port + replica
        metrics_port = settings.gateway_metrics_port + replica * SECOND_REPLICA_OFFSET \
            if settings.gateway_metrics_port else 0
        spec = _python_spec("gateway", "gateway", port,
                            {**common, **backends, **gateway_seed, "REHAB_GATEWAY_PORT": str(port)},
                            GATEWAY_STAGE, metrics_port=metrics_port, sealed=sealed)
        specs.append(_renamed(spec, f"gateway-{replica + 1}"))
    return specs


def gateway_ports(settings: SupervisorSettings) -> list[int]:
    return [settings.gateway_port + replica for replica in range(settings.cluster_replicas)]


def nats_node_specs(settings: SupervisorSettings, state_dir: Path) -> list[ProcessSpec]:
    """The three NATS nodes: each its own client, route and monitoring port and its own store, one config each
    (the same users and permissions as the embedded server's, kit.nats_auth, and the routes to the other two)."""
    try:
        keys = nats_auth.public_keys(secrets_folder(settings, state_dir))
    except FileNotFoundError as missing:
        raise StartupError(f"NATS key {missing.filename} is missing: run `rehab secrets init`") from None
    client_ports = nats_client_ports(settings)
    route_ports = [settings.nats_cluster_port + node for node in range(NATS_NODES)]
    specs = []
    for node in range(NATS_NODES):
        monitor_port = free_port()
        store = state_dir / "nats-cluster" / str(node + 1)
        store.mkdir(parents=True, exist_ok=True)
        config = state_dir / f"nats-{node + 1}.conf"
        routes = "\n".join(f"    nats-route://127.0.0.1:{port}" for port in route_ports)
        write_owner_only(config, (
            nats_auth.server_config(keys)
            + f"server_name: rehab-nats-{node + 1}\n"
            + f"listen: 127.0.0.1:{client_ports[node]}\n"
            + f"http: 127.0.0.1:{monitor_port}\n"
            + f"jetstream {{\n  store_dir: {json.dumps(str(store))}\n}}\n"
            + f"cluster {{\n  name: rehab\n  listen: 127.0.0.1:{route_ports[node]}\n  routes: [\n{routes}\n  ]\n}}\n"
        ))
        specs.append(ProcessSpec(
            name=f"nats-{node + 1}",
            argv=[nats_server_binary(), "-c", str(config)],
            ready_url=f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true",
            ports={client_ports[node]: "REHAB_NATS_PORT", route_ports[node]: "REHAB_NATS_CLUSTER_PORT",
                   monitor_port: "REHAB_NATS_MONITOR_PORT"},
            stage=NATS_STAGE,
        ))
    return specs


def write_owner_only(path: Path, content: str) -> None:
    fresh = path.with_name(f".{path.name}.new")
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    fresh.replace(path)


def _renamed(spec: ProcessSpec, name: str) -> ProcessSpec:
    """The same process under a replica's own name: its own log file and its own lines on the console."""
    return replace(spec, name=name)
