"""What `rehab up --cluster` would start (ops.cluster), read from its process specs without starting any: three NATS
nodes routed to each other, two replicas of every service on PostgreSQL, two gateways given both replicas of every
service (one of each with REHAB_CLUSTER_REPLICAS=1). The real thing runs under faults in
tests/cluster/test_cluster_faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.secrets import ensure_secrets
from ops import system
from ops.cluster import cluster_services, cluster_specs, gateway_ports
from ops.settings import SupervisorSettings
from ops.supervisor import StartupError, free_port

DATABASES = {f"REHAB_{name.upper()}_DATABASE_URL": f"postgresql+psycopg://rehab@db/{name}"
             for name in ("intake", "referrals", "funds", "reports", "gateway")}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in DATABASES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("REHAB_NATS_URL", raising=False)
    ensure_secrets(tmp_path / "secrets")
    return tmp_path


def given_databases(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, url in DATABASES.items():
        monkeypatch.setenv(key, url)


def test_three_nats_nodes_two_replicas_of_every_service_and_two_gateways(state: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    given_databases(monkeypatch)
    settings = SupervisorSettings(state_dir=state)
    specs = {spec.name: spec for spec in cluster_specs(settings, state)}
    services = cluster_services()
    assert set(specs) == {"nats-1", "nats-2", "nats-3", "gateway-1", "gateway-2",
                          *(f"{name}-{replica}" for name in services for replica in (1, 2))}
    ports = [port for spec in specs.values() for port in spec.ports]
    assert len(ports) == len(set(ports))  # no port wanted twice

    configs = [(state / f"nats-{node}.conf").read_text() for node in (1, 2, 3)]
    for node, config in enumerate(configs, start=1):
        assert f"server_name: rehab-nats-{node}" in config
        assert f"listen: 127.0.0.1:{14222 + node - 1}" in config
        assert all(f"nats-route://127.0.0.1:{port}" in config for port in (16222, 16223, 16224))
        assert str(state / "nats-cluster" / str(node)) in config
        assert "authorization {" in config  # the same users and permissions as the embedded server's

    intake_1, intake_2 = specs["intake-1"].env, specs["intake-2"].env
    assert (intake_1["REHAB_INTAKE_PORT"], intake_2["REHAB_INTAKE_PORT"]) == ("8101", "8111")
    assert (intake_1["REHAB_METRICS_PORT"], intake_2["REHAB_METRICS_PORT"]) == ("8191", "8201")
    for env in (intake_1, intake_2, specs["gateway-2"].env):
        assert env["REHAB_NATS_URL"] == "nats://127.0.0.1:14222,nats://127.0.0.1:14223,nats://127.0.0.1:14224"
        assert env["REHAB_STREAM_REPLICAS"] == "3"
        assert env["REHAB_INTAKE_DATABASE_URL"] == DATABASES["REHAB_INTAKE_DATABASE_URL"]

    for gateway, port in (("gateway-1", "8000"), ("gateway-2", "8001")):
        env = specs[gateway].env
        assert env["REHAB_GATEWAY_PORT"] == port
        assert env["REHAB_FUNDS_URL"] == "http://127.0.0.1:8103,http://127.0.0.1:8113"
    # The services start before the gateways, NATS before both.
    assert specs["nats-1"].stage < specs["funds-2"].stage < specs["gateway-2"].stage


def test_one_replica_is_the_same_cluster_with_one_process_per_service_and_one_gateway(
        state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given_databases(monkeypatch)
    monkeypatch.setenv("REHAB_CLUSTER_REPLICAS", "1")
    settings = SupervisorSettings(state_dir=state)
    specs = {spec.name: spec for spec in cluster_specs(settings, state)}
    assert set(specs) == {"nats-1", "nats-2", "nats-3", "gateway-1", *(f"{name}-1" for name in cluster_services())}
    assert gateway_ports(settings) == [8000]
    gateway = specs["gateway-1"].env
    assert gateway["REHAB_FUNDS_URL"] == "http://127.0.0.1:8103"  # the one replica, no second URL
    assert gateway["REHAB_STREAM_REPLICAS"] == "3"  # the NATS cluster as with two replicas
    assert specs["intake-1"].env["REHAB_INTAKE_PORT"] == "8101"


def test_the_replicas_are_counted_from_one() -> None:
    with pytest.raises(ValueError):
        SupervisorSettings(cluster_replicas=0)
    assert SupervisorSettings().cluster_replicas == 2  # `rehab up --cluster` as it always was


def test_an_operators_nats_cluster_is_used_as_it_is(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given_databases(monkeypatch)
    monkeypatch.setenv("REHAB_NATS_URL", "nats://n1:4222,nats://n2:4222")
    specs = cluster_specs(SupervisorSettings(state_dir=state), state)
    assert not [spec for spec in specs if spec.name.startswith("nats")]
    assert {spec.env["REHAB_NATS_URL"] for spec in specs} == {"nats://n1:4222,nats://n2:4222"}
    assert all("REHAB_STREAM_REPLICAS" not in spec.env for spec in specs)  # the operator's own setting


def test_replicas_never_share_sqlite(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given_databases(monkeypatch)
    monkeypatch.setenv("REHAB_FUNDS_DATABASE_URL", f"sqlite:///{state / 'funds.db'}")
    with pytest.raises(StartupError, match="REHAB_FUNDS_DATABASE_URL is not PostgreSQL"):
        cluster_specs(SupervisorSettings(state_dir=state), state)


def test_without_postgresql_it_refuses_and_says_what_to_set(state: Path) -> None:
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StartupError, match="PostgreSQL does not answer.*REHAB_CLUSTER_POSTGRES_URL"):
        cluster_specs(SupervisorSettings(state_dir=state, cluster_postgres_url=nowhere), state)


def test_the_embedded_nats_monitor_never_takes_a_port_the_settings_name(state: Path) -> None:
    settings = SupervisorSettings(state_dir=state, reports_port=18104, reports_metrics_port=0)
    ports = system.configured_ports(settings)
    assert {8000, 8101, 8102, 8103, 18104, 8190, 8191, 8192, 8193, 14222} <= ports
    assert 0 not in ports and 8104 not in ports and 8194 not in ports  # none, and ports given to nobody
    assert system.spare_port(ports) not in ports
