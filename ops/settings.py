"""The supervisor's settings: where state lives, which ports the system uses, how long to wait."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field

from kit.settings import ProcessSettings

PortNumber = Annotated[int, Field(ge=1, le=65535)]
MetricsPort = Annotated[int, Field(ge=0, le=65535)]  # 0: that process serves no metrics


class SupervisorSettings(ProcessSettings):
    """What `rehab up` needs; every value from a `REHAB_`-prefixed environment variable (or `.env`).

    The databases (`REHAB_INTAKE_DATABASE_URL`, …) are read by the services themselves: the supervisor passes its
    environment on to every process it starts.
    """

    process_name: ClassVar[str] = "supervisor"

    gateway_port: PortNumber = 8000
    intake_port: PortNumber = 8101
    referrals_port: PortNumber = 8102
    funds_port: PortNumber = 8103
    reports_port: PortNumber = 8104
    # Each process's /metrics, on a listener of its own on loopback (never the gateway's public port).
    gateway_metrics_port: MetricsPort = 8190
    intake_metrics_port: MetricsPort = 8191
    referrals_metrics_port: MetricsPort = 8192
    funds_metrics_port: MetricsPort = 8193
    reports_metrics_port: MetricsPort = 8194
    # Not 4222: a system NATS may already listen there (it does on our development machines and in CI).
    nats_port: PortNumber = 14222
    # The embedded NATS's monitoring port, used only to ask it whether JetStream is ready; unset: any free port.
    nats_monitor_port: PortNumber | None = None
    # `rehab up --cluster` (ops.cluster): its NATS nodes take client ports nats_port…+2 and route ports from this
    # one (…+2); its databases are made on this server unless REHAB_<NAME>_DATABASE_URL names them.
    nats_cluster_port: PortNumber = 16222
    cluster_postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    # How many replicas of every service, and of the gateway, `rehab up --cluster` runs: replica n listens on its
    # service's port + 10·(n−1) (a gateway on REHAB_GATEWAY_PORT + n−1), so up to eight keep the default ports apart.
    # One runs the same cluster without the second replica (the bench's scaling part compares the two).
    cluster_replicas: int = Field(default=2, ge=1, le=8)
    startup_timeout_seconds: float = Field(default=60.0, gt=0)
    stop_timeout_seconds: float = Field(default=5.0, gt=0)

    @property
    def external_nats(self) -> bool:
        """True when the operator named a NATS server (`REHAB_NATS_URL`): then none is started here."""
        return "nats_url" in self.model_fields_set

    @property
    def embedded_nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"
