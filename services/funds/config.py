from pydantic import Field

from kit.settings import ServiceSettings


class FundsSettings(ServiceSettings):
    process_name = "funds"

    database_url: str | None = Field(None, validation_alias="REHAB_FUNDS_DATABASE_URL")
    port: int = Field(8103, validation_alias="REHAB_FUNDS_PORT")
