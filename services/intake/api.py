"""Intake's HTTP routes (SPEC §4, caseworkers only): parse, call one use case, shape the answer.

Every route runs its use case through `runtime.uow` (kit.db.UnitOfWork): it commits together with the other
requests of the moment, off the event loop, and answers once that commit is on disk. Reading a case's data or
searching by name leaves an audit entry, so those reads are units of work too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from kit.auth import Principal, require_roles
from kit.idempotency import HEADER as IDEMPOTENCY_KEY
from kit.pagination import Page
from kit.problems import Problem
from kit.service import RuntimeDep
from services.intake import cases, domain, search
from services.intake.models import (
    CaseCreate,
    CaseCreated,
    CaseListItem,
    CasePublic,
    CaseSearch,
    CaseStatus,
    CaseSummary,
    CaseUpdate,
    ConsentPublic,
    ConsentSet,
    ConsentView,
    DuplicateCheck,
    DuplicatesFound,
    ErasedCase,
    NeedCreate,
    NeedPublic,
    TimelineEntryPublic,
)
from services.intake.protection import CaseVault

router = APIRouter(prefix="/api/intake", tags=["intake"])

Caseworker = Annotated[Principal, Depends(require_roles("caseworker"))]
CaseId = Annotated[str, Path(max_length=36)]
Limit = Annotated[int, Query(ge=1, le=200)]


async def get_vault(request: Request) -> CaseVault:
    return request.app.state.runtime.extras["vault"]


VaultDep = Annotated[CaseVault, Depends(get_vault)]


@router.post("/cases", status_code=201, response_model=CaseCreated)
async def create_case(
    body: CaseCreate, request: Request, response: Response, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> Any:
    """Open a case. Creation is never refused for a duplicate: `possible_duplicates` names the likely ones."""
    def open_case(session: Any) -> CaseCreated:
        return cases.open_case(session=session, vault=vault, audit=runtime.audit, case_in=body, actor=principal.sub)

    if IDEMPOTENCY_KEY in request.headers:  # honoured when sent: a retry returns the first answer, opens nothing
        return await runtime.idempotency.run(
            request, principal=principal.sub, uow=runtime.uow, required=False,
            action=lambda session: (201, open_case(session)),
            subject=lambda answer: answer.get("id"),  # the new case's id: erasing it deletes this stored answer
            headers=lambda answer: _created_headers(answer["id"]),
        )
    created = await runtime.uow.run(open_case)
    response.headers.update(_created_headers(created.id))
    return created


def _created_headers(case_id: str) -> dict[str, str]:
    return {"ETag": domain.etag(case_id, domain.FIRST_VERSION), "Location": f"{router.prefix}/cases/{case_id}"}


@router.post("/cases/duplicates", response_model=DuplicatesFound)
async def find_duplicates(
    body: DuplicateCheck, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> DuplicatesFound:
    """The cases a new case with these names and birth date would be flagged against, before it is saved.

    A POST, not a GET: the name travels in the body, never in a URL that proxies and browsers keep.
    """
    return DuplicatesFound(possible_duplicates=await runtime.uow.run(lambda session: search.find_duplicates(
        session=session, vault=vault, audit=runtime.audit, check=body, actor=principal.sub)))


@router.get("/cases", response_model=Page[CaseListItem])
async def list_cases(
    request: Request, runtime: RuntimeDep, principal: Caseworker,
    status: CaseStatus | None = None, limit: Limit = 50, cursor: str | None = None,
) -> Page[CaseListItem]:
    """The cases newest first, without personal data. Searching by name is `POST /cases/search`."""
    refuse_a_name_in_the_url(request)
    return await runtime.uow.run(lambda session: cases.list_cases(
        session=session, status=status, limit=limit, cursor=cursor))


def refuse_a_name_in_the_url(request: Request) -> None:
    """`?q=` once searched; ignoring it now would list every case and let a client go on putting names in URLs
    (browser history, proxy logs) unnoticed. Refusing it tells that client at once."""
    if "q" in request.query_params:
        raise Problem(400, "Search by name with POST /api/intake/cases/search and the name in the JSON body "
                           "(`q`); a name never goes in a URL.", kind="search-is-post-only")


@router.post("/cases/search", response_model=Page[CaseListItem])
async def search_cases(
    body: CaseSearch, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> Page[CaseListItem]:
    """Find cases by a name in any script or spelling, through the blind index, newest first.

    A POST, not a GET: the name travels in the body, never in a URL that proxies and browsers keep. The audit
    trail records that a search was made, never the name; `next_cursor` holds a position only, never the name.
    """
    return await runtime.uow.run(lambda session: search.search_cases(
        session=session, vault=vault, audit=runtime.audit, actor=principal.sub, query=body.q, status=body.status,
        limit=body.limit, cursor=body.cursor))


@router.get("/cases/{case_id}", response_model=CasePublic | ErasedCase)
async def read_case(
    case_id: CaseId, response: Response, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> CasePublic | ErasedCase:
    case, etag = await runtime.uow.run(lambda session: cases.read_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, actor=principal.sub))
    if etag:
        response.headers["ETag"] = etag
    return case


@router.patch("/cases/{case_id}", response_model=CasePublic)
async def update_case(
    case_id: CaseId, body: CaseUpdate, response: Response, runtime: RuntimeDep, vault: VaultDep,
    principal: Caseworker, if_match: Annotated[str | None, Header()] = None,
) -> CasePublic:
    if if_match is None:
        raise Problem(428, "Send the case's ETag in If-Match, so that you cannot overwrite a change you have not seen.",
                      kind="if-match-required")
    case, etag = await runtime.uow.run(lambda session: cases.update_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, changes=body, if_match=if_match,
        actor=principal.sub))
    response.headers["ETag"] = etag
    return case


@router.post("/cases/{case_id}/close", response_model=CaseSummary)
async def close_case(case_id: CaseId, runtime: RuntimeDep, principal: Caseworker) -> CaseSummary:
    return await runtime.uow.run(lambda session: cases.close_case(
        session=session, audit=runtime.audit, case_id=case_id, actor=principal.sub))


@router.delete("/cases/{case_id}", response_model=ErasedCase)
async def erase_case(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> ErasedCase:
    """Erase the person's data for good: the case's key is destroyed; only its reference and status remain."""
    return await runtime.uow.run(lambda session: cases.erase_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, actor=principal.sub))


@router.post("/cases/{case_id}/needs", status_code=201, response_model=NeedPublic)
async def add_need(
    case_id: CaseId, body: NeedCreate, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> NeedPublic:
    return await runtime.uow.run(lambda session: cases.add_need(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, need_in=body, actor=principal.sub))


@router.get("/cases/{case_id}/needs", response_model=Page[NeedPublic])
async def list_needs(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[NeedPublic]:
    return await runtime.uow.run(lambda session: cases.list_needs(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, actor=principal.sub, limit=limit,
        cursor=cursor))


@router.put("/cases/{case_id}/consent", response_model=ConsentPublic)
async def set_consent(
    case_id: CaseId, body: ConsentSet, runtime: RuntimeDep, principal: Caseworker,
) -> ConsentPublic:
    return await runtime.uow.run(lambda session: cases.set_consent(
        session=session, audit=runtime.audit, case_id=case_id, consent_in=body, actor=principal.sub))


@router.get("/cases/{case_id}/consent", response_model=ConsentView)
async def read_consent(case_id: CaseId, runtime: RuntimeDep, principal: Caseworker) -> ConsentView:
    return await runtime.uow.run(lambda session: cases.read_consent(
        session=session, audit=runtime.audit, case_id=case_id, actor=principal.sub))


@router.get("/cases/{case_id}/timeline", response_model=Page[TimelineEntryPublic])
async def read_timeline(
    case_id: CaseId, runtime: RuntimeDep, principal: Caseworker,
    limit: Limit = 100, cursor: str | None = None,
) -> Page[TimelineEntryPublic]:
    return await runtime.uow.run(lambda session: cases.read_timeline(
        session=session, audit=runtime.audit, case_id=case_id, actor=principal.sub, limit=limit, cursor=cursor))
