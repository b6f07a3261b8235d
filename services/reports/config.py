from pydantic import Field

from kit.settings import ServiceSettings


class ReportsSettings(ServiceSettings):
    process_name = "reports"

    database_url: str | None = Field(None, validation_alias="REHAB_REPORTS_DATABASE_URL")
    port: int = Field(8104, validation_alias="REHAB_REPORTS_PORT")
