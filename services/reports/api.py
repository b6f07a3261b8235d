"""Reports' HTTP routes: the programme report for coordinators and finance, as JSON or CSV. Reads only, through a
read-only session; every number has passed the disclosure control (`service`, `disclosure`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from kit.auth import Principal, require_roles
from kit.service import ReadSession
from services.reports import domain, service

router = APIRouter(prefix="/api/reports", tags=["reports"])
# SPEC §2: coordinators and finance read programme reports; everyone else is refused (403).
Readers = Annotated[Principal, Depends(require_roles("coordinator", "finance"))]


_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")  # ASCII digits only (`[0-9]`, not `\d`), as domain.parse_month


class ProgrammeQuery(BaseModel):
    """What the programme report is asked with, and nothing else: a parameter it does not take (`category=medical`)
    is refused (422), never ignored, so nobody reads the whole programme's figures as filtered ones."""

    model_config = ConfigDict(extra="forbid")

    from_: str | None = Field(None, alias="from", description="The first month, YYYY-MM (UTC).", max_length=7)
    to: str | None = Field(None, description="The last month, YYYY-MM (UTC).", max_length=7)
    format: Literal["json", "csv"] = "json"

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _a_month(cls, value: object) -> object:
        # Before max_length: 2026-01-01 is told how a month is written, as 2026-13 is, not "at most 7 characters".
        # (An empty one is no month given, as the domain reads it: the default period.)
        if isinstance(value, str) and value and _MONTH.fullmatch(value) is None:
            raise PydanticCustomError("month_format", "must be a month written YYYY-MM, such as 2026-03")
        return value


@router.get("/programme", responses={200: {"content": {"text/csv": {}},
                                            "description": "JSON, or CSV (one line per number) with ?format=csv"}})
async def programme(request: Request, session: ReadSession, principal: Readers,
                    asked: Annotated[ProgrammeQuery, Query()]) -> Any:
    """Cases, needs, referrals and aid per month from `from` to `to` (both included; by default the last twelve
    months), with the period's totals; every count from 1 to 4 is "<5", and every figure of a month that has not
    settled yet (this one, and the last one for two days) "pending" (`pending_months`)."""
    months = domain.period(asked.from_, asked.to)
    settling = timedelta(days=request.app.state.runtime.settings.settling_days)
    report = service.programme_report(session=session, months=months, settling=settling)
    if asked.format == "csv":
        filename = f"programme-{months[0]}-{months[-1]}.csv"
        return Response(service.programme_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return report
