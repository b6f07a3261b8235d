"""Settings shared by every process; each process subclasses `ProcessSettings` once.

Every value comes from `REHAB_`-prefixed environment variables (or `.env`). Secrets are files under the state
folder (created by the supervisor), or paths set by the operator in production.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit import secrets as secret_files


def nats_servers(url: str) -> list[str]:
    """The servers of a NATS cluster named in one setting, comma-separated (`REHAB_NATS_URL=nats://a:4222,nats://b:4222`
    and so on): nats-py moves to another server of its list when one goes, but reads a string as one URL."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("no NATS server named")
    return servers


class ProcessSettings(BaseSettings):
    """What every process needs: where state lives, the broker, the token rules, the log level."""

    model_config = SettingsConfigDict(env_prefix="REHAB_", env_file=".env", extra="ignore", populate_by_name=True)

    process_name: ClassVar[str] = "process"

    environment: str = "development"
    state_dir: Path = Path("var")
    secrets_dir: Path | None = None
    host: str = "127.0.0.1"
    nats_url: str = "nats://127.0.0.1:14222"
    log_level: str = "INFO"
    token_issuer: str = "rehab-gateway"
    token_audience: str = "rehab-api"
    token_public_key_file: Path | None = None
    max_body_bytes: int = 1_000_000
    otel_enabled: bool = False
    # Peers whose X-Forwarded-For is believed (SPEC §3): addresses or networks, comma-separated, of the reverse proxy
    # in front of this process. Empty (the default): nobody's, every client is the address that connected.
    trusted_proxies: str = ""
    # Prometheus /metrics on a listener of its own, never the main one (SPEC §3): 0 serves no metrics at all.
    # `rehab up` gives each process a port on loopback; in a container, 0.0.0.0 on a port no Service publishes.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(0, ge=0, le=65535)
    # How this process's keys are kept (SPEC §8, kit.custody): `file` (development), `sealed` (keys.sealed under an
    # unseal passphrase) or `openbao` (a Transit key in OpenBao). SPEC's names are accepted without the prefix too.
    key_custody: Literal["file", "sealed", "openbao"] = Field(
        "file", validation_alias=AliasChoices("REHAB_KEY_CUSTODY", "KEY_CUSTODY"))
    # sealed: the passphrase from this file (a mounted Secret), else from the pipe `rehab up` hands over (its fd).
    unseal_passphrase_file: Path | None = Field(
        None, validation_alias=AliasChoices("REHAB_UNSEAL_PASSPHRASE_FILE", "UNSEAL_PASSPHRASE_FILE"))
    unseal_fd: int | None = None
    # openbao: where, with what token (or a file holding it, read again when refused), which Transit mount and key
    # (`rehab-<process>` unless set); unwrapped data keys are kept in memory this long at most.
    openbao_addr: str = Field("http://127.0.0.1:8200", validation_alias=AliasChoices("REHAB_OPENBAO_ADDR", "OPENBAO_ADDR"))
    openbao_token: SecretStr | None = Field(None, validation_alias=AliasChoices("REHAB_OPENBAO_TOKEN", "OPENBAO_TOKEN"))
    openbao_token_file: Path | None = Field(
        None, validation_alias=AliasChoices("REHAB_OPENBAO_TOKEN_FILE", "OPENBAO_TOKEN_FILE"))
    openbao_transit_mount: str = Field(
        "transit", validation_alias=AliasChoices("REHAB_OPENBAO_TRANSIT_MOUNT", "OPENBAO_TRANSIT_MOUNT"))
    openbao_transit_key: str | None = Field(
        None, validation_alias=AliasChoices("REHAB_OPENBAO_TRANSIT_KEY", "OPENBAO_TRANSIT_KEY"))
    openbao_cache_seconds: float = Field(300.0, ge=0, le=3600)
    openbao_ca_file: Path | None = None  # the CA that signed OpenBao's certificate, when not a public one
    # Audit checkpoints (kit.checkpoints, SPEC §8): the chain's head signed with this process's own Ed25519 key
    # (unset: `audit_signing_<process>.pem` under the secrets folder) and published to the stream AUDIT at least
    # every `audit_checkpoint_seconds` while the trail grows and after every `audit_checkpoint_entries` entries,
    # with a heartbeat every `audit_checkpoint_heartbeat_seconds` when nothing changed.
    audit_signing_key_file: Path | None = None
    audit_checkpoint_seconds: float = Field(60.0, gt=0, le=60)
    audit_checkpoint_entries: int = Field(100, ge=1, le=100)
    audit_checkpoint_heartbeat_seconds: float = Field(3600.0, gt=0)
    # Who may seal and unseal the keys (kit.control, SPEC §8): the public keys (`U…`, comma-separated) of the
    # operator's and the gateway's NATS users. Unset: derived from their seed files in the secrets folder.
    control_signers: str = ""

    def warn_of_key_custody(self, log: Any) -> None:
        """Every process says at start how its keys are kept, when that is fit for development only (SPEC §8)."""
        if self.key_custody == "file":
            log.warning("key custody is `file`: the keys that open every record lie in plain files beside the data; "
                        "for development only", secrets_dir=str(self.secrets_path))

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"REHAB_TRUSTED_PROXIES: {item!r} is not an address or a network "
                                 "(`*` is refused: any client could choose its own address)") from None
        return ",".join(items)

    @property
    def trusted_proxy_list(self) -> list[str]:
        return self.trusted_proxies.split(",") if self.trusted_proxies else []

    @property
    def secrets_path(self) -> Path:
        """The secrets folder of the whole installation; each process reads only its own part, `own_secrets_path`."""
        return self.secrets_dir or self.state_dir / "secrets"

    @property
    def own_secrets_path(self) -> Path:
        return self.secrets_path / self.process_name

    @property
    def transit_key_name(self) -> str:
        return self.openbao_transit_key or f"rehab-{self.process_name}"

    @property
    def public_key_path(self) -> Path:
        return self.token_public_key_file or self.own_secrets_path / secret_files.TOKEN_PUBLIC_KEY_FILE

    @property
    def audit_signing_key_path(self) -> Path:
        default = secret_files.AUDIT_SIGNING_KEY_FILES.get(self.process_name, f"{self.process_name}/audit_signing.pem")
        return self.audit_signing_key_file or self.secrets_path / default

    def sqlite_url(self, name: str) -> str:
        return f"sqlite:///{(self.state_dir / f'{name}.db').resolve()}"


class ServiceSettings(ProcessSettings):
    """A domain service: its own database, its own port, and the keys for field encryption and audit."""

    database_url: str | None = None
    port: int = 0
    kek_file: Path | None = None
    blind_index_key_file: Path | None = None
    audit_key_file: Path | None = None
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_ack_wait_seconds: float = 30.0
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # How long Idempotency-Key answers and fingerprints are kept (SPEC §4: at least 24 hours), and how often the
    # expired ones are deleted (also once at start).
    idempotency_retention_hours: float = Field(default=48, ge=24)
    idempotency_purge_interval_seconds: float = Field(default=300, gt=0)
    # A claim on an Idempotency-Key left by a process that died before answering is taken over after this long: until
    # then a retry is answered 409 "still being processed" (it may still be running elsewhere).
    idempotency_lease_seconds: float = Field(default=30, ge=5)
    # Ended sessions (kit.revocation) are refused for as long as one of their access tokens could be unexpired: a
    # day covers the gateway's longest token lifetime (an hour) many times over. Other replicas' rows are taken up
    # every `revocation_refresh_seconds`.
    revocation_retention_seconds: int = Field(default=86400, ge=3600)
    revocation_refresh_seconds: float = Field(default=1.0, gt=0, le=2)
    # The NATS nkey seed this service logs in with (kit.nats_auth). Unset: the service's own seed file under the
    # secrets folder when there is one (`rehab up` creates it and names it here); else nothing beyond what
    # `nats_url` itself carries (a server without auth, or user:password in the URL, as the deployments do).
    nats_nkey_seed_file: Path | None = None

    @property
    def db_url(self) -> str:
        return self.database_url or self.sqlite_url(self.process_name)

    @property
    def nats_seed_path(self) -> Path | None:
        if self.nats_nkey_seed_file is not None:
            return self.nats_nkey_seed_file
        name = secret_files.NATS_SEED_FILES.get(self.process_name)
        own = self.secrets_path / name if name else None
        return own if own is not None and own.is_file() else None

    @property
    def kek_path(self) -> Path:
        return self.kek_file or self.own_secrets_path / secret_files.KEK_FILE

    @property
    def blind_index_key_path(self) -> Path:
        return self.blind_index_key_file or self.own_secrets_path / secret_files.BLIND_INDEX_KEY_FILE

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.own_secrets_path / secret_files.AUDIT_KEY_FILE
