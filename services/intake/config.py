from pydantic import Field

from kit.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    process_name = "intake"

    database_url: str | None = Field(None, validation_alias="REHAB_INTAKE_DATABASE_URL")
    port: int = Field(8101, validation_alias="REHAB_INTAKE_PORT")
    # Told at once when a case's consent narrows or the case is erased (services/intake/referrals_told.py); its
    # replicas comma-separated. Empty: only the event tells it.
    referrals_url: str = Field("http://127.0.0.1:8102", validation_alias="REHAB_REFERRALS_URL")
    # A duplicate check answers `high` only for a case with the same date of birth: asked again and again with one
    # name and date after date, it would tell a caseworker the birth date of a case that is not theirs. A
    # registration asks it once or twice; a budget far above that is far below a search of the calendar.
    duplicate_check_rate_limit: str = Field("60/hour", validation_alias="REHAB_DUPLICATE_CHECK_RATE_LIMIT")
    search_rate_limit: str = Field("120/hour", validation_alias="REHAB_SEARCH_RATE_LIMIT")
