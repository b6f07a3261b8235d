from pydantic import Field

from kit.settings import ServiceSettings


class ReferralsSettings(ServiceSettings):
    process_name = "referrals"

    database_url: str | None = Field(None, validation_alias="REHAB_REFERRALS_DATABASE_URL")
    port: int = Field(8102, validation_alias="REHAB_REFERRALS_PORT")
    # A referral still `sent` after this long is flagged overdue in lists and counted on rehab_referrals_overdue.
    overdue_after_hours: float = Field(72, gt=0, validation_alias="REHAB_REFERRALS_OVERDUE_AFTER_HOURS")
    # How often the overdue gauge is refreshed and packets under expired consent are destroyed.
    watch_interval_seconds: float = Field(60, gt=0, validation_alias="REHAB_REFERRALS_WATCH_INTERVAL_SECONDS")
