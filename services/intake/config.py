from pydantic import Field

from kit.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    process_name = "intake"

    database_url: str | None = Field(None, validation_alias="REHAB_INTAKE_DATABASE_URL")
    port: int = Field(8101, validation_alias="REHAB_INTAKE_PORT")
