from pathlib import Path

from pydantic import Field, SecretStr

from kit import secrets as secret_files
from kit.settings import ProcessSettings


class GatewaySettings(ProcessSettings):
    """The public door: its own database, the signing key, the backends it forwards to, and its limits."""

    process_name = "gateway"

    port: int = Field(8000, validation_alias="REHAB_GATEWAY_PORT")
    database_url: str | None = Field(None, validation_alias="REHAB_GATEWAY_DATABASE_URL")

    # Where each service answers: one URL, or several replicas comma-separated (gateway.replicas).
    intake_url: str = Field("http://127.0.0.1:8101", validation_alias="REHAB_INTAKE_URL")
    referrals_url: str = Field("http://127.0.0.1:8102", validation_alias="REHAB_REFERRALS_URL")
    funds_url: str = Field("http://127.0.0.1:8103", validation_alias="REHAB_FUNDS_URL")
    reports_url: str = Field("http://127.0.0.1:8104", validation_alias="REHAB_REPORTS_URL")

    # People reach the gateway over HTTPS only, through a proxy that ends TLS (`deploy/`): the console's cookies are
    # `Secure` whatever scheme the proxy's connection had (a proxy whose X-Forwarded-Proto is not believed, or an
    # ingress unnamed in REHAB_TRUSTED_PROXIES, made them plain). Off for `make run`, plain HTTP on loopback.
    served_over_https: bool = False
    token_private_key_file: Path | None = None
    token_ttl_seconds: int = Field(600, ge=60, le=3600)
    # Who must have a second factor (comma-separated roles; SPEC §3: every staff role and partner staff). A user
    # holding one of them who has none gets a token that opens only enrolment.
    mfa_required_roles: str = "admin,caseworker,supervisor,finance,auditor,coordinator,partner_staff"
    # Idempotency-Key answers of the gateway's own POSTs (a staff account, a partner API client), as at the services:
    # kept this long (at least 24 hours), expired ones deleted this often, a dead request's claim taken over after.
    idempotency_retention_hours: float = Field(default=48, ge=24)
    idempotency_purge_interval_seconds: float = Field(default=300, gt=0)
    idempotency_lease_seconds: float = Field(default=30, ge=5)
    # A session ends when its refresh token goes unused this long (idle), and in any case this long after sign-in.
    session_idle_seconds: int = Field(1800, ge=60)
    session_max_seconds: int = Field(43200, ge=300)
    # A refresh token used again within this many seconds of its renewal, at the same gateway, gets that renewal's
    # answer (two tabs renewing at once), not a revoked session.
    refresh_reuse_grace_seconds: float = Field(10, ge=0, le=60)
    audit_key_file: Path | None = None
    # The first admin's password; without it one is generated and written owner-only under the secrets folder.
    admin_password: SecretStr | None = None

    # Argon2id cost (argon2-cffi's default is RFC 9106's low-memory profile); at most this many hashes at once.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=19456)
    argon2_parallelism: int = Field(4, ge=1)
    concurrent_password_checks: int = Field(2, ge=1)
    # At most this many sign-ins wait for those slots; one more is refused at once (503 `sign-in-busy`, Retry-After)
    # rather than queued: about 2 s of work at the default cost on two cores. A line without end let many addresses,
    # each within its own rate, make everyone wait a minute (and a one-time code expire meanwhile).
    password_checks_waiting: int = Field(16, ge=0)

    # Sign-in (domain.SignInPolicy): after each failure a user name waits longer from that address; at
    # `lockout_after_failures` it locks there for a while; at `lockout_everywhere_after_failures` from all
    # addresses together it locks everywhere. Counts are forgotten after `signin_failures_kept_seconds`.
    signin_backoff_seconds: float = Field(1.0, ge=0)
    lockout_after_failures: int = Field(5, ge=1)
    lockout_seconds: int = Field(900, ge=1)
    lockout_everywhere_after_failures: int = Field(50, ge=1)
    # Wrong one-time codes after the right password, from any address: whoever sends them knows the password, and
    # at this many the code is not checked again for `lockout_seconds` after each further try (see SignInPolicy).
    lockout_codes_after_failures: int = Field(10, ge=1)
    signin_failures_kept_seconds: int = Field(86400, ge=60)
    signin_rate_limit: str = "20/minute"  # per client address, on /auth/token: passwords and client secrets
    # Renewals with a refresh token (a 256-bit secret: nothing to guess) have a budget of their own per address, so
    # that the clients behind one address renewing their tokens do not use up the sign-ins' budget.
    refresh_rate_limit: str = "300/minute"
    api_rate_limit: str = "600/minute"  # per principal, on /api/*
    # How long the gateway trusts "this user is enabled / this client is not revoked" before asking its database.
    principal_check_seconds: float = Field(1.0, ge=0, le=5)

    # Each backend may name several replicas, comma-separated (gateway.replicas): requests go round-robin to the
    # healthy ones; a replica whose connection fails, or whose /readyz answers 502/503, is left out this long, and
    # every replica of such a backend is probed this often.
    backend_eject_seconds: float = Field(5.0, gt=0)
    backend_probe_seconds: float = Field(1.0, gt=0)
    backend_connect_timeout_seconds: float = Field(1.0, gt=0)
    backend_timeout_seconds: float = Field(10.0, gt=0)
    backend_connections: int = Field(100, ge=1)  # to each replica of each service, apart (gateway.forward)
    readiness_timeout_seconds: float = Field(2.0, gt=0)
    openapi_refresh_seconds: float = Field(60.0, ge=0)

    # The gateway publishes who the staff are (SPEC §5, stream GATEWAY) through its outbox, on `nats_url`; it
    # consumes nothing, and its readiness never waits for NATS (the outbox keeps the events until NATS is there).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # The nkey seed it logs in to NATS with (kit.nats_auth). Unset: its own seed file under the secrets folder when
    # there is one (`rehab up` creates it and names it here); else only what `nats_url` carries.
    nats_nkey_seed_file: Path | None = None

    @property
    def mfa_roles(self) -> frozenset[str]:
        return frozenset(role.strip() for role in self.mfa_required_roles.split(",") if role.strip())

    @property
    def db_url(self) -> str:
        return self.database_url or self.sqlite_url(self.process_name)

    @property
    def nats_seed_path(self) -> Path | None:
        if self.nats_nkey_seed_file is not None:
            return self.nats_nkey_seed_file
        own = self.secrets_path / secret_files.NATS_SEED_FILES[self.process_name]
        return own if own.is_file() else None

    @property
    def private_key_path(self) -> Path:
        return self.token_private_key_file or self.secrets_path / secret_files.TOKEN_PRIVATE_KEY_FILE

    @property
    def audit_key_path(self) -> Path:
        return self.audit_key_file or self.own_secrets_path / secret_files.AUDIT_KEY_FILE

    @property
    def admin_password_path(self) -> Path:
        return self.secrets_path / "admin-password.txt"

    @property
    def backends(self) -> dict[str, str]:
        return {"intake": self.intake_url, "referrals": self.referrals_url, "funds": self.funds_url,
                "reports": self.reports_url}
