"""The coordinator's page (SPEC §2): the programme report, once it lands (issue #20). Until then the page says, in the
coordinator's language, that it is coming and what it will show; it links nowhere else. `/` sends a coordinator here.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException

from gateway.console.router import VisitDep, render

router = APIRouter(include_in_schema=False)

PROGRAMME_PAGE = "/console/programme"


@router.get(PROGRAMME_PAGE, response_class=HTMLResponse)
async def programme_page(v: VisitDep) -> Response:
    if not v.can("coordinator"):
        raise HTTPException(403, "The programme report is the coordinator's.")
    return render(v.request, "programme.html", visit_=v)
