"""Settings shared by every process; each process subclasses `ProcessSettings` once.

Every value comes from `REHAB_`-prefixed environment variables (or `.env`). Secrets are files under the state
folder (created by the supervisor), or paths set by the operator in production.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit import secrets as secret_files


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

    @property
    def secrets_path(self) -> Path:
        return self.secrets_dir or self.state_dir / "secrets"

    @property
    def public_key_path(self) -> Path:
        return self.token_public_key_file or self.secrets_path / secret_files.TOKEN_PUBLIC_KEY_FILE

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

    @property
    def db_url(self) -> str:
        return self.database_url or self.sqlite_url(self.process_name)

    @property
    def kek_path(self) -> Path:
        return self.kek_file or self.secrets_path / secret_files.KEK_FILE

    @property
    def blind_index_key_path(self) -> Path:
        return self.blind_index_key_file or self.secrets_path / secret_files.BLIND_INDEX_KEY_FILE

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.secrets_path / secret_files.AUDIT_KEY_FILE
