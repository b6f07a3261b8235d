from pydantic import AliasChoices, Field

from kit.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    process_name = "referrals"

    database_url: str | None = Field(None, validation_alias="REHAB_REFERRALS_DATABASE_URL")
    port: int = Field(8102, validation_alias="REHAB_REFERRALS_PORT")
    # Intake, which keeps a break-glass reason stated here (kit.need_to_know.ReasonKeeper); comma-separated replicas.
    intake_url: str = Field("http://127.0.0.1:8101", validation_alias="REHAB_INTAKE_URL")
    # A referral still `sent` after this long is flagged overdue in lists and counted on rehab_referrals_overdue.
    overdue_after_hours: float = Field(72, gt=0, validation_alias="REHAB_REFERRALS_OVERDUE_AFTER_HOURS")
    # How often the overdue gauge is refreshed and packets under expired consent are destroyed.
    watch_interval_seconds: float = Field(60, gt=0, validation_alias="REHAB_REFERRALS_WATCH_INTERVAL_SECONDS")

    # ---- partners' webhooks (webhooks.py, webhook_delivery.py) ----
    # Development and tests only: http and loopback, private, link-local… targets allowed (SPEC §4). SPEC's name is
    # accepted without the prefix too.
    webhook_allow_private: bool = Field(
        False, validation_alias=AliasChoices("REHAB_WEBHOOK_ALLOW_PRIVATE", "WEBHOOK_ALLOW_PRIVATE"))
    # One attempt: this long to connect, this long for the whole request (connect, send, status line).
    webhook_connect_timeout_seconds: float = Field(3, gt=0)
    webhook_request_timeout_seconds: float = Field(10, gt=0)
    # Attempts in flight at once: per partner (a slow receiver holds only its own slots) and in all, per replica.
    webhook_per_partner: int = Field(2, ge=1, le=16)
    webhook_max_in_flight: int = Field(32, ge=1, le=256)
    # Retries: the n-th wait is a random time up to min(cap, base × 2^(n-1)) (full jitter, at least `base`); a
    # delivery still failing once `retry_hours` have passed since it was written is dead (SPEC: at least 24 h; less
    # only in tests).
    webhook_backoff_base_seconds: float = Field(5, gt=0)
    webhook_backoff_cap_seconds: float = Field(3 * 3600, gt=0)
    webhook_retry_hours: float = Field(24, gt=0)
    # After a rotation the previous secret still signs (a second signature) for this long.
    webhook_rotation_overlap_hours: float = Field(24, gt=0)
    # The worker looks for due deliveries this often (and at once after a commit that wrote one); an attempt claims
    # its row this long (other replicas leave it alone meanwhile; longer than an attempt can take).
    webhook_poll_seconds: float = Field(1.0, gt=0)
    webhook_lease_seconds: float = Field(60, gt=0)
    # Finished deliveries (delivered, dead, dropped) and their attempts are kept this long.
    webhook_retention_days: float = Field(30, gt=0)
