from pydantic import Field

from kit.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    process_name = "reports"

    database_url: str | None = Field(None, validation_alias="REHAB_REPORTS_DATABASE_URL")
    port: int = Field(8104, validation_alias="REHAB_REPORTS_PORT")
    # How long after a month ends its figures are published (domain.unsettled). Negative: months still under way are
    # published as they change, which a reader reading twice can difference; for a demonstration or a test only.
    settling_days: float = Field(2, validation_alias="REHAB_REPORTS_SETTLING_DAYS", ge=-400, le=60)
