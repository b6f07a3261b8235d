"""Reports' HTTP routes: the programme report for coordinators and finance, as JSON or CSV. Reads only, through a
read-only session; every number has passed the disclosure control (`service`, `disclosure`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from kit.auth import Principal, require_roles
from kit.service import ReadSession
from services.reports import domain, service

router = APIRouter(prefix="/api/reports", tags=["reports"])
# SPEC §2: coordinators and finance read programme reports; everyone else is refused (403).
Readers = Annotated[Principal, Depends(require_roles("coordinator", "finance"))]


class ProgrammeQuery(BaseModel):
    """What the programme report is asked with, and nothing else: a parameter it does not take (`category=medical`)
    is refused (422), never ignored, so nobody reads the whole programme's figures as filtered ones."""

    model_config = ConfigDict(extra="forbid")

    from_: str | None = Field(None, alias="from", description="The first month, YYYY-MM (UTC).", max_length=7)
    to: str | None = Field(None, description="The last month, YYYY-MM (UTC).", max_length=7)
    format: Literal["json", "csv"] = "json"


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
