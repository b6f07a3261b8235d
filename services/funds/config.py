from pydantic import Field

from kit.settings import ServiceSettings


class FundsSettings(ServiceSettings):
    process_name = "funds"

    database_url: str | None = Field(None, validation_alias="REHAB_FUNDS_DATABASE_URL")
    port: int = Field(8103, validation_alias="REHAB_FUNDS_PORT")
    # Intake, which keeps a break-glass reason stated here (kit.need_to_know.ReasonKeeper); comma-separated replicas.
    intake_url: str = Field("http://127.0.0.1:8101", validation_alias="REHAB_INTAKE_URL")
    # How long after a month ends the donor report may state it (reports.SETTLING). Negative: the month under way may
    # be stated, which a reader reading twice can difference; for a demonstration or a test only.
    settling_days: float = Field(2, validation_alias="REHAB_FUNDS_SETTLING_DAYS", ge=-400, le=60)
