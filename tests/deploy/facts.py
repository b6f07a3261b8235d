"""What the deployment files must agree with: the processes, their settings, their keys, their NATS topology.

The lists here are the contract the code is written against (kit.settings, kit.secrets, docs/events.md); where the
settings classes can be imported, the tests also derive the names from them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit import nats_auth
from kit import secrets as secret_files

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
COMPOSE_FILE = ROOT / "docker-compose.yml"
NATS_CONF = DEPLOY / "nats" / "nats-server.conf"
NATS_VALUES = PRODUCTION / "nats-values.yaml"
POSTGRES_INIT = DEPLOY / "postgres" / "init" / "10-rehab-databases.sh"
ENTRYPOINT = DEPLOY / "docker" / "entrypoint.sh"
MAKE_SECRETS = DEPLOY / "make-secrets.sh"

COMMON_ENV = {
    "REHAB_ENVIRONMENT", "REHAB_STATE_DIR", "REHAB_SECRETS_DIR", "REHAB_HOST", "REHAB_LOG_LEVEL",
    "REHAB_TOKEN_ISSUER", "REHAB_TOKEN_AUDIENCE", "REHAB_OTEL_ENABLED", "REHAB_METRICS_HOST",
}
# Each process's /metrics listener in a container: a port of its own, never in a Service the ingress uses, never
# published (SPEC §3); the same numbers `rehab up` uses on loopback (ops.settings).
METRICS_PORTS = {"gateway": 8190, "intake": 8191, "referrals": 8192, "funds": 8193, "reports": 8194}
# The key files each process reads, by name inside its own folder $REHAB_SECRETS_DIR/<process>/ (kit.secrets; SPEC §8:
# one keyring per service). What a deployment mounts for a process is exactly its list, from its folder only. The
# NATS nkey (nats.nk) is not among them: the deployments' NATS users log in with passwords. Every process also gets
# control_signers.json (the public keys of who may sign a seal or unseal command, kit.control): without it a
# deployed process accepts no seal command.
CONTROL_SIGNERS = secret_files.CONTROL_SIGNERS_FILE
AUDIT_SIGNING_KEYS = {Path(secret_files.AUDIT_SIGNING_KEY_FILES["intake"]).name,
                      Path(secret_files.AUDIT_VERIFYING_KEY_FILES["intake"]).name}
SERVICE_KEYS = {secret_files.KEK_FILE, secret_files.BLIND_INDEX_KEY_FILE, secret_files.AUDIT_KEY_FILE,
                secret_files.TOKEN_PUBLIC_KEY_FILE, CONTROL_SIGNERS} | AUDIT_SIGNING_KEYS
GATEWAY_KEYS = {Path(secret_files.TOKEN_PRIVATE_KEY_FILE).name, secret_files.TOKEN_PUBLIC_KEY_FILE,
                secret_files.AUDIT_KEY_FILE, CONTROL_SIGNERS} | AUDIT_SIGNING_KEYS
# The reports service holds no data key (kit.secrets.KEYLESS_SERVICES): no KEK, no blind-index key.
KEYLESS_SERVICE_KEYS = {secret_files.AUDIT_KEY_FILE, secret_files.TOKEN_PUBLIC_KEY_FILE, CONTROL_SIGNERS} | AUDIT_SIGNING_KEYS
# Never in the gateway's hands: the field-encryption keys of the services.
SERVICE_ONLY_KEYS = {secret_files.KEK_FILE, secret_files.BLIND_INDEX_KEY_FILE}
NATS_SEED_FILE = Path(secret_files.NATS_SEED_FILES["intake"]).name
# In a process's folder but not mounted by the deployments: the NATS nkey (password login instead).
NOT_MOUNTED = {NATS_SEED_FILE}
# Under OpenBao custody (kit.custody) a service's keyring is one file, keys.transit, in place of these three.
FILE_CUSTODY_KEYS = {secret_files.KEK_FILE, secret_files.BLIND_INDEX_KEY_FILE, secret_files.AUDIT_KEY_FILE}
TRANSIT_KEYS_FILE = secret_files.TRANSIT_KEYS_FILE


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    port: int
    settings_path: str  # module:Class
    keys: frozenset[str]
    consumes: dict[str, str] = field(default_factory=dict)  # producer service → durable consumer name

    @property
    def upper(self) -> str:
        return self.name.upper()

    @property
    def is_service(self) -> bool:
        return self.name != "gateway"

    @property
    def holds_data_keys(self) -> bool:
        """A service with a KEK and a blind-index key of its own (kit.secrets.KEY_HOLDERS); reports holds none."""
        return self.name in secret_files.KEY_HOLDERS

    @property
    def metrics_port(self) -> int:
        return METRICS_PORTS[self.name]

    @property
    def required_env(self) -> set[str]:
        """The settings this process must be given in a container (their defaults only suit a developer's laptop)."""
        # Every process publishes events (the gateway: who the staff are), each with its own NATS user.
        env = set(COMMON_ENV) | {f"REHAB_{self.upper}_DATABASE_URL", f"REHAB_{self.upper}_PORT", "REHAB_METRICS_PORT",
                                 "REHAB_NATS_URL", "REHAB_STREAM_REPLICAS"}
        if not self.is_service:
            # The gateway forwards to the services over HTTP.
            env |= {"REHAB_INTAKE_URL", "REHAB_REFERRALS_URL", "REHAB_FUNDS_URL", "REHAB_REPORTS_URL",
                    "REHAB_ADMIN_PASSWORD"}
        return env

    def settings_class(self) -> type | None:
        module, _, cls = self.settings_path.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError):
            return None


PROCESSES: dict[str, Process] = {
    p.name: p
    for p in (
        # What each service consumes is kit.nats_auth's table, the one `rehab up` makes its NATS users from
        # (tests/unit/kit/test_nats_auth.py checks it against the services' own subscriptions).
        Process("intake", "services.intake", 8101, "services.intake.config:IntakeSettings", frozenset(SERVICE_KEYS),
                nats_auth.CONSUMES["intake"]),
        Process("referrals", "services.referrals", 8102, "services.referrals.config:ReferralsSettings",
                frozenset(SERVICE_KEYS), nats_auth.CONSUMES["referrals"]),
        Process("funds", "services.funds", 8103, "services.funds.config:FundsSettings", frozenset(SERVICE_KEYS),
                nats_auth.CONSUMES["funds"]),
        Process("reports", "services.reports", 8104, "services.reports.config:ReportsSettings",
                frozenset(KEYLESS_SERVICE_KEYS), nats_auth.CONSUMES["reports"]),
        # A producer only (rehab.gateway.>): nothing consumed.
        Process("gateway", "gateway", 8000, "gateway.config:GatewaySettings", frozenset(GATEWAY_KEYS),
                nats_auth.CONSUMES.get("gateway", {})),
    )
}
SERVICES = [p for p in PROCESSES.values() if p.is_service]
# Every process with a NATS user of its own (kit.nats_auth.PROCESSES): the services and the gateway.
NATS_PROCESSES = [PROCESSES[name] for name in nats_auth.PROCESSES]

# One subject each service publishes, used to drive events through a real server.
SAMPLE_SUBJECT = {
    "intake": "rehab.intake.case.opened",
    "referrals": "rehab.referrals.referral.sent",
    "funds": "rehab.funds.disbursement.paid",
    "reports": "rehab.reports.programme.rebuilt",  # it publishes nothing today; its own subjects are these
    "gateway": "rehab.gateway.user.created",
}


def expected_permissions(service: str) -> tuple[set[str], set[str]]:
    """The NATS publish and subscribe allow-lists a process's user needs (a service's, or the gateway's): its own subjects, the JetStream API
    calls kit.bus makes (stream provisioning for its own stream and the ones it reads, its own durables), acks.

    One table for every NATS the system meets: kit.nats_auth's, from which `rehab up` writes the embedded server's
    users; the deployments' configs are checked against it here, and run with the real bus in
    test_nats_permissions.py."""
    publish, subscribe = nats_auth.permissions(service)
    return set(publish), set(subscribe)


# ---- settings classes --------------------------------------------------------------------------------------------


def env_names(settings_cls: type) -> dict[str, Any]:
    """Environment variable name → pydantic field, as pydantic-settings reads them (validation_alias, else prefix)."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    names: dict[str, Any] = {}
    for name, info in settings_cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, str):
            names[alias.upper()] = info
        elif alias is not None and hasattr(alias, "choices"):
            for choice in alias.choices:
                if isinstance(choice, str):
                    names[choice.upper()] = info
        else:
            names[f"{prefix}{name}".upper()] = info
    return names


def required_env_from_class(settings_cls: type) -> set[str]:
    return {env for env, info in env_names(settings_cls).items() if info.is_required()}


# ---- docker-compose ----------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$(?:(\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class Reference:
    name: str
    op: str | None
    arg: str


def compose_references(text: str) -> list[Reference]:
    refs = []
    for match in _INTERPOLATION.finditer(text):
        if match.group(1):
            continue
        name = match.group("braced") or match.group("bare")
        refs.append(Reference(name, match.group("op"), match.group("arg") or ""))
    return refs


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """docker-compose variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, $$), applied recursively."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        current = env.get(name)
        if op in (":-", "-"):
            return current if current or (op == "-" and current is not None) else arg
        if op in (":?", "?"):
            if current is None or (op == ":?" and current == ""):
                raise KeyError(f"{name}: {arg}")
            return current
        if op in (":+", "+"):
            return arg if current else ""
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ---- Kubernetes --------------------------------------------------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization_literals(kustomization: dict[str, Any], name: str) -> dict[str, str]:
    for generator in kustomization.get("configMapGenerator", []):
        if generator["name"] == name:
            return dict(literal.split("=", 1) for literal in generator.get("literals", []))
    return {}
