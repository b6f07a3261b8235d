"""Intake's HTTP routes (SPEC §4, caseworkers; supervisors for the caseload and assignment): parse, call one use
case, shape the answer.

Need-to-know: every route under `/cases/{case_id}` opens the case only for a caseworker it is assigned to, or one who
states why in the `Access-Reason` header (the use cases apply `domain.case_access`; the caller is a `domain.Caller`).

Every route runs its use case through `runtime.uow` (kit.db.UnitOfWork): it commits together with the other
requests of the moment, off the event loop, and answers once that commit is on disk. Reading a case's data or
searching by name leaves an audit entry, so those reads are units of work too."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import StreamingResponse

from kit import need_to_know
from kit.auth import Principal, require_roles
from kit.idempotency import HEADER as IDEMPOTENCY_KEY
from kit.need_to_know import AccessReason
from kit.openapi import HONOURS_KEY
from kit.pagination import Page, page_size
from kit.problems import Problem
from kit.http import BodyLimit
from kit.service import RuntimeDep
from kit.uploads import read_multipart
from services.intake import assignment, cases, casework, documents, domain, files, referrals_told, search
from services.intake.models import (
    AssigneeAdded,
    AssigneesSet,
    CaseCreate,
    CaseCreated,
    CaseListItem,
    CaseOutline,
    CasePublic,
    CaseSearch,
    CaseStatus,
    CaseSummary,
    CaseworkerLoad,
    CaseUpdate,
    ConsentPublic,
    ConsentSet,
    ConsentView,
    DuplicateCheck,
    DocumentKind,
    DocumentPublic,
    DuplicateOf,
    DuplicatesFound,
    ErasedCase,
    MyTask,
    NeedCreate,
    NeedPublic,
    NoteCreate,
    NotePublic,
    Removal,
    TaskChange,
    TaskCreate,
    TaskPublic,
    TaskStatus,
    NeedStatusSet,
    OpenedElsewhere,
    TimelineEntryPublic,
)
from services.intake.protection import CaseVault

router = APIRouter(prefix="/api/intake", tags=["intake"])

Caseworker = Annotated[Principal, Depends(require_roles(domain.CASEWORKER))]
Staff = Annotated[Principal, Depends(require_roles(domain.CASEWORKER, domain.SUPERVISOR))]
CaseId = Annotated[str, Path(max_length=36)]
Limit = page_size(200)

def caller_of(principal: Principal, reason: str | None = None) -> domain.Caller:
    """The caller as intake's rules see them: the token's subject, its `username` claim (the gateway's staff
    handle; the subject where a token has none), roles, and a stated reason."""
    return domain.Caller(user_id=principal.sub, username=str(principal.claims.get("username") or principal.sub),
                         roles=principal.roles, reason=reason)


async def case_caller(principal: Caseworker, access_reason: AccessReason = None) -> domain.Caller:
    return caller_of(principal, access_reason)


CaseCaller = Annotated[domain.Caller, Depends(case_caller)]


async def get_vault(request: Request) -> CaseVault:
    return request.app.state.runtime.extras["vault"]


VaultDep = Annotated[CaseVault, Depends(get_vault)]


@router.post("/cases", status_code=201, response_model=CaseCreated, openapi_extra=HONOURS_KEY)
async def create_case(
    body: CaseCreate, request: Request, response: Response, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> Any:
    """Open a case, assigned to you. Creation is never refused for a duplicate: `possible_duplicates` names the
    likely ones, and who holds them.

    Its answer is a duplicate check (`POST /cases/duplicates`), and counts in the same budget: a case opened with
    a name and a guessed date of birth, then erased, would otherwise find the birth date of a case that is not the
    caller's, date after date."""
    await _budget_duplicate_check(runtime, vault, body, principal)

    def open_case(session: Any) -> CaseCreated:
        return cases.open_case(session=session, vault=vault, audit=runtime.audit, case_in=body,
                               caller=caller_of(principal))

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


async def _honoured(request: Request, runtime: Any, caller: domain.Caller, case_id: Any,
                    action: Callable[[Any], Any], *, status: int = 200) -> Any:
    """A change to one case that acts once per Idempotency-Key when one is sent; the stored answer (a note's text,
    say) is linked to the case, so that erasing the case deletes it."""
    return await runtime.idempotency.honour(request, principal=caller.user_id, uow=runtime.uow, action=action,
                                            status=status, subject=str(case_id))


@router.post("/cases/duplicates", response_model=DuplicatesFound)
async def find_duplicates(
    body: DuplicateCheck, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> DuplicatesFound:
    """The cases a new case with these names and birth date would be flagged against, before it is saved.

    A POST, not a GET: the name travels in the body, never in a URL that proxies and browsers keep. Each caseworker
    has a budget of checks an hour of names another caseworker's case holds (`REHAB_DUPLICATE_CHECK_RATE_LIMIT`,
    429 past it): one name tried with date after date would otherwise find the birth date of a case that is not
    theirs.
    """
    await _budget_duplicate_check(runtime, vault, body, principal)
    return DuplicatesFound(possible_duplicates=await runtime.uow.run(lambda session: search.find_duplicates(
        session=session, vault=vault, audit=runtime.audit, check=body, caller=caller_of(principal))))


async def _budget_duplicate_check(runtime: Any, vault: CaseVault, check: CaseCreate, principal: Principal) -> None:
    """One of the caller's duplicate checks spent (429 when none is left), when the names are of a case another
    caseworker holds (`search.another_holds`): a registration of someone new costs nothing."""
    caller = caller_of(principal)
    if await runtime.uow.reading(lambda session: search.another_holds(session=session, vault=vault, check=check,
                                                                      caller=caller)):
        await runtime.extras["duplicate_checks"].spend(principal.sub)


@router.get("/cases", response_model=Page[assignment.CaseloadItem],
            responses={403: {"description": "`assigned=any` is a supervisor's view."}})
async def list_cases(
    request: Request, runtime: RuntimeDep, principal: Staff,
    assigned: Literal["me", "any"] = "me", status: CaseStatus | None = None, limit: Limit = 50,
    cursor: str | None = None, unattended: bool = False,
) -> Page[assignment.CaseloadItem]:
    """Your cases (assigned to you) newest first, without personal data; `assigned=any` (a supervisor): the whole
    caseload; `unattended=true`: only the cases nobody who holds them can work (every assignee disabled or no longer
    a caseworker). Searching by name is `POST /cases/search`."""
    refuse_a_name_in_the_url(request)
    return await runtime.uow.run(lambda session: cases.list_cases(
        session=session, caller=caller_of(principal), everyone=assigned == "any", status=status, limit=limit,
        cursor=cursor, unattended=unattended))


def refuse_a_name_in_the_url(request: Request) -> None:
    """`?q=` once searched; ignoring it now would list every case and let a client go on putting names in URLs
    (browser history, proxy logs) unnoticed. Refusing it tells that client at once."""
    if "q" in request.query_params:
        raise Problem(400, "Search by name with POST /api/intake/cases/search and the name in the JSON body "
                           "(`q`); a name never goes in a URL.", kind="search-is-post-only")


@router.post("/cases/search", response_model=Page[CaseListItem | CaseOutline])
async def search_cases(
    body: CaseSearch, runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> Page[CaseListItem | CaseOutline]:
    """Find cases by a name in any script or spelling, through the blind index, newest first. Every case is found;
    one not assigned to you shows only its id, reference, status and assignees.

    A POST, not a GET: the name travels in the body, never in a URL that proxies and browsers keep. The audit
    trail records that a search was made, never the name: in the trail of each case it showed that is not yours,
    or without a target when it showed none. `next_cursor` holds a position only, never the name.

    A search that shows a case someone else holds spends one of your searches an hour
    (`REHAB_SEARCH_RATE_LIMIT`); past them, 429 with `Retry-After` (the search is still in the cases' trails).
    """
    page = await runtime.uow.run(lambda session: search.search_cases(
        session=session, vault=vault, audit=runtime.audit, caller=caller_of(principal), query=body.q, status=body.status,
        limit=body.limit, cursor=body.cursor))
    if search.others_shown(page):
        await runtime.extras["searches"].spend(principal.sub)
    return page


@router.get("/cases/{case_id}", response_model=CasePublic | ErasedCase, responses=need_to_know.ANSWERS)
async def read_case(
    case_id: CaseId, response: Response, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> CasePublic | ErasedCase:
    case, etag = await runtime.uow.run(lambda session: cases.read_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller))
    if etag:
        response.headers["ETag"] = etag
    return case


@router.patch("/cases/{case_id}", response_model=CasePublic, responses={
    **need_to_know.ANSWERS, 409: {"description": "The case is closed or erased: it takes no more changes."}})
async def update_case(
    case_id: CaseId, body: CaseUpdate, response: Response, runtime: RuntimeDep, vault: VaultDep,
    caller: CaseCaller, if_match: Annotated[str | None, Header()] = None,
) -> CasePublic:
    if if_match is None or if_match.strip() == "*":  # `*` matches any version: it would overwrite unseen changes
        raise Problem(428, "Send the case's ETag in If-Match (not `*`), so that you cannot overwrite a change you "
                           "have not seen.", kind="if-match-required")
    case, etag = await runtime.uow.run(lambda session: cases.update_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, changes=body, if_match=if_match,
        caller=caller))
    response.headers["ETag"] = etag
    return case


@router.get("/caseworkers", response_model=Page[CaseworkerLoad])
async def list_caseworkers(
    runtime: RuntimeDep, principal: Staff, limit: Limit = 200, cursor: str | None = None,
) -> Page[CaseworkerLoad]:
    """Whom a case can be given to: every enabled caseworker (by user name, A to Z) with the number of open cases
    they hold, for a supervisor choosing who has room. A staff directory is a few dozen accounts: the first page
    (200) is all of them in most organisations."""
    return await runtime.uow.reading(lambda session: assignment.caseworkers_page(session, limit=limit, cursor=cursor))


# What giving a case to caseworkers may answer besides the case: the same for a new list and for one more.
ASSIGNING = {
    403: {"description": "Only a caseworker the case is assigned to, or a supervisor, assigns it (`need-to-know`)."},
    409: {"description": "The case was erased."},
    422: {"description": "A username is not an enabled caseworker's (`not-an-enabled-caseworker`)."},
}


@router.put("/cases/{case_id}/assignees", response_model=CaseSummary, responses=ASSIGNING)
async def assign_case(case_id: CaseId, body: AssigneesSet, runtime: RuntimeDep, principal: Staff) -> CaseSummary:
    """Give the case to these caseworkers (usernames, the first listed first), in place of those who hold it."""
    return await runtime.uow.run(lambda session: assignment.set_assignees(
        session=session, audit=runtime.audit, case_id=case_id, wanted=body.usernames, caller=caller_of(principal)))


@router.post("/cases/{case_id}/assignees", response_model=CaseSummary, responses=ASSIGNING)
async def add_assignee(case_id: CaseId, body: AssigneeAdded, runtime: RuntimeDep, principal: Staff) -> CaseSummary:
    """Add a caseworker to those who hold the case (after them); one who holds it already changes nothing."""
    return await runtime.uow.run(lambda session: assignment.add_assignee(
        session=session, audit=runtime.audit, case_id=case_id, username=body.username, caller=caller_of(principal)))


@router.post("/cases/{case_id}/close", response_model=CaseSummary, openapi_extra=HONOURS_KEY, responses={
    **need_to_know.ANSWERS, 409: {"description": "The case was erased."}})
async def close_case(
    case_id: CaseId, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> CaseSummary:
    return await _honoured(request, runtime, caller, case_id, lambda session: cases.close_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller))


@router.post("/cases/{case_id}/reopen", response_model=CaseSummary, openapi_extra=HONOURS_KEY, responses={
    **need_to_know.ANSWERS, 409: {"description": "Only a closed case, or one marked a duplicate, reopens "
                                                 "(`case-not-closed`)."}})
async def reopen_case(
    case_id: CaseId, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> CaseSummary:
    """Open a closed case again, or undo the mark of a duplicate (only the case's own caseworkers)."""
    return await _honoured(request, runtime, caller, case_id, lambda session: cases.reopen_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller))


@router.post("/cases/{case_id}/duplicate-of", response_model=CaseSummary, openapi_extra=HONOURS_KEY, responses={
    **need_to_know.ANSWERS,
    409: {"description": "The case is erased or already a duplicate, or the case to keep does not exist, is erased, "
                         "is a duplicate, or is this case."}})
async def mark_duplicate(
    case_id: CaseId, body: DuplicateOf, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> CaseSummary:
    """Mark this case a duplicate of `case_id`, the case that is kept: status `duplicate`, out of the caseload."""
    return await _honoured(request, runtime, caller, case_id, lambda session: cases.mark_duplicate(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, kept_case_id=str(body.case_id),
        caller=caller))


@router.delete("/cases/{case_id}", response_model=ErasedCase, responses={
    403: {"description": "Only a caseworker the case is assigned to erases it (`need-to-know`): an Access-Reason "
                         "opens a case, it does not erase it."}})
async def erase_case(
    case_id: CaseId, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> ErasedCase:
    """Erase the person's data for good: the case's key is destroyed; only its reference and status remain. Only one
    of the case's own caseworkers erases it, never another by break-glass. The cases marked duplicates of it are the
    same person's and are erased with it. Referrals is told at once, so that partners stop seeing the person's packets
    now (`referrals_told`; of the duplicates, by their events)."""
    erased = await runtime.uow.run(lambda session: cases.erase_case(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller))
    await referrals_told.told(request).changed(request, case_id)
    return erased


@router.post("/cases/{case_id}/needs", status_code=201, response_model=NeedPublic, openapi_extra=HONOURS_KEY,
             responses={**need_to_know.ANSWERS, 409: {"description": "The case is closed or erased: it takes no more changes."}})
async def add_need(
    case_id: CaseId, body: NeedCreate, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> NeedPublic:
    return await _honoured(request, runtime, caller, case_id, status=201, action=lambda session: cases.add_need(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, need_in=body, caller=caller))


@router.get("/cases/{case_id}/needs", response_model=Page[NeedPublic], responses=need_to_know.ANSWERS)
async def list_needs(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[NeedPublic]:
    return await runtime.uow.run(lambda session: cases.list_needs(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, limit=limit,
        cursor=cursor))


@router.patch("/cases/{case_id}/needs/{need_id}", response_model=NeedPublic, responses={
    **need_to_know.ANSWERS,
    409: {"description": "A move the need's status does not allow (`need-transition`), or a case not open."}})
async def move_need(
    case_id: CaseId, need_id: Annotated[str, Path(max_length=36)], body: NeedStatusSet, runtime: RuntimeDep,
    vault: VaultDep, caller: CaseCaller,
) -> NeedPublic:
    """Move a need: `open` → `in_progress` → `met` | `dropped` (or `open` → `met` | `dropped`)."""
    return await runtime.uow.run(lambda session: cases.move_need(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, need_id=need_id, status=body.status,
        caller=caller))


@router.put("/cases/{case_id}/consent", response_model=ConsentPublic, openapi_extra=HONOURS_KEY, responses={
    **need_to_know.ANSWERS, 409: {"description": "The case is erased (`case-erased`), or closed or marked a "
                                                 "duplicate and the consent sent would widen the one in force "
                                                 "(`case-closed`, `case-duplicate`): there it may only be narrowed "
                                                 "or withdrawn."}})
async def set_consent(
    case_id: CaseId, body: ConsentSet, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> ConsentPublic:
    """Record the consent in force (empty `categories`: withdrawn). Referrals is told at once, so that partners stop
    seeing what it no longer covers now (`referrals_told`). A consent narrowed here narrows the consent of every case
    marked a duplicate of this one to what both allow (referrals learns those from their events). With an
    Idempotency-Key, a retry records it once: the history and the timeline say what the person agreed to when, not
    how often a request was sent."""
    consent = await _honoured(request, runtime, caller, case_id, lambda session: cases.set_consent(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, consent_in=body, caller=caller))
    await referrals_told.told(request).changed(request, case_id)
    return consent


@router.get("/cases/{case_id}/consent", response_model=ConsentView, responses=need_to_know.ANSWERS)
async def read_consent(case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller) -> ConsentView:
    return await runtime.uow.run(lambda session: cases.read_consent(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller))


@router.get("/cases/{case_id}/timeline", response_model=Page[TimelineEntryPublic], responses=need_to_know.ANSWERS)
async def read_timeline(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
    limit: Limit = 100, cursor: str | None = None,
) -> Page[TimelineEntryPublic]:
    return await runtime.uow.run(lambda session: cases.read_timeline(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, limit=limit,
        cursor=cursor))


# Internal: for referrals and funds, never through the gateway (gateway.routing.INTERNAL), so not in the document.
@router.post("/cases/{case_id}/openings", status_code=204, response_class=Response, include_in_schema=False)
async def keep_reason_stated_elsewhere(
    case_id: CaseId, body: OpenedElsewhere, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> Response:
    """Referrals and funds call this, with the caller's own token, when a caseworker opens there a case not assigned
    to them: the reason they stated (`Access-Reason`) is kept here, sealed with the case, audited and shown on the
    timeline with where the case was opened. Nothing is kept for an assignee."""
    await runtime.uow.run(lambda session: cases.keep_reason_stated_elsewhere(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, opened_in=body.opened_in))
    return Response(status_code=204)


# ---- documents ----------------------------------------------------------------------------------------------------

DOCUMENT_KINDS = get_args(DocumentKind)
# The one route whose body may pass the process's `max_body_bytes`: a document and the multipart around it.
UPLOAD_LIMIT = BodyLimit("POST", re.compile(r"/api/intake/cases/[^/]+/documents"),
                         documents.MAX_DOCUMENT_BYTES + 64 * 1024, what="A document")
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "kind"],
    "properties": {"file": {"type": "string", "format": "binary"},
                   "kind": {"type": "string", "enum": list(DOCUMENT_KINDS)}}}}}}}


@router.post("/cases/{case_id}/documents", status_code=201, response_model=DocumentPublic,
             openapi_extra={**_UPLOAD_BODY, **HONOURS_KEY},
             responses={**need_to_know.ANSWERS,
                        400: {"description": "The multipart body is broken (`multipart-invalid`), has no `file`, or "
                                             "a part's headers pass 4 KiB: a file name that long "
                                             "(`file-name-too-long`)."},
                        422: {"description": "`kind` is not one of the kinds, the file is empty, or the form has "
                                             "parts besides `file` and `kind` (`document-part-unknown`)."},
                        409: {"description": "The case is closed or erased: it takes no more changes."},
                        413: {"description": f"The file is larger than {documents.MAX_DOCUMENT_BYTES} bytes "
                                             f"(`content-too-large`), or past what a document may hold: an image "
                                             f"over {files.MAX_PNG_PIXELS // 1_000_000} million pixels (PNG) or "
                                             f"{files.MAX_JPEG_PIXELS // 1_000_000} million (JPEG), a PDF over "
                                             f"{files.MAX_PDF_OBJECTS} objects, or one whose cleaning takes more "
                                             f"memory or time than a document may (`document-too-complex`)."},
                        415: {"description": "The body is not multipart/form-data (`multipart-expected`); or the "
                                             "file's content is not PDF, JPEG, PNG or UTF-8 text (judged by its "
                                             "bytes, not its name or declared type: `unsupported-document-type`); "
                                             "or it is, but damaged or cut short (`document-damaged`), a PDF behind "
                                             "a password (`document-encrypted`), or it carries what cannot be "
                                             "cleaned: an attached file, an image inside a page's drawing, a text "
                                             "with a picture in it (`document-cannot-be-cleaned`)."},
                        503: {"description": "The cleaning was interrupted (another file's took too long): send it "
                                             "again."}})
async def add_document(
    case_id: CaseId, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> DocumentPublic:
    """Add a document (multipart: `file`, `kind`). Photos lose their EXIF (location, camera; the orientation alone is
    kept), XMP and PNG text chunks, PDFs their information dictionary and XMP, before anything is stored; `sha256` is
    of the bytes stored. Read in memory as it streams (never spooled to a temporary file), refused at 20 MiB."""
    form = await read_multipart(request, max_file_bytes=documents.MAX_DOCUMENT_BYTES,
                                too_large=f"A document may be at most {documents.MAX_DOCUMENT_BYTES // 2**20} MiB.")
    upload, kind = form.files.get("file"), form.fields.get("kind", "")
    if upload is None:
        raise Problem(400, "Send the document in the multipart field `file`.", kind="document-missing")
    if set(form.files) != {"file"} or set(form.fields) - {"kind"}:  # a second file would be dropped unseen
        raise Problem(422, "The form takes two parts, `file` (one document) and `kind`, and has others: send each "
                           "document on its own.", kind="document-part-unknown")
    if kind not in DOCUMENT_KINDS:
        raise Problem(422, f"`kind` must be one of: {', '.join(DOCUMENT_KINDS)}.", kind="document-kind-invalid")
    if not upload.data:
        raise Problem(422, "The file is empty: nothing was sent in it.", kind="document-empty")
    # With an Idempotency-Key, the request is known by what it sends (its boundary differs on every send): a retry of
    # the same file, kind and name adds nothing and answers the first answer again.
    sent = json.dumps([kind, upload.filename, hashlib.sha256(upload.data).hexdigest()]).encode()
    try:
        # in a worker process (cleaning), which refuses a PDF that comes out of it larger than a document may be
        content = await runtime.extras["cleaner"].cleaned(bytes(upload.data), documents.MAX_DOCUMENT_BYTES)
    except files.NotAccepted as refused:
        raise Problem(415, refused.detail, kind=refused.code) from None
    except files.TooComplex as refused:
        raise Problem(413, refused.detail, kind=refused.code) from None
    finally:
        upload.data.clear()
    return await runtime.idempotency.honour(
        request, principal=caller.user_id, uow=runtime.uow, status=201, subject=str(case_id), body=sent,
        action=lambda session: documents.add_document(
            session=session, vault=vault, audit=runtime.audit, case_id=case_id, kind=kind, filename=upload.filename,
            content=content, caller=caller))


@router.get("/cases/{case_id}/documents", response_model=Page[DocumentPublic], responses=need_to_know.ANSWERS)
async def list_documents(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[DocumentPublic]:
    return await runtime.uow.run(lambda session: documents.list_documents(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, limit=limit,
        cursor=cursor))


@router.get("/documents/{document_id}/content", response_class=StreamingResponse, responses={
    **need_to_know.ANSWERS, 200: {"description": "The document's bytes, as stored.",
                                  "content": {"application/octet-stream": {}}}})
async def read_document_content(
    document_id: Annotated[str, Path(max_length=36)], runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> StreamingResponse:
    """The document's bytes, streamed piece by piece as they are decrypted, as an attachment (never shown inline)."""
    opened = await runtime.uow.run(lambda session: documents.open_document(
        session=session, vault=vault, audit=runtime.audit, document_id=document_id, caller=caller))

    def piece(seq: int) -> bytes:
        with runtime.uow.read() as session:
            return documents.read_piece(session=session, vault=vault, opened=opened, seq=seq)

    async def pieces() -> AsyncIterator[bytes]:
        for seq in range(opened.chunks):
            yield await asyncio.to_thread(piece, seq)

    document = opened.document
    return StreamingResponse(pieces(), media_type=document.content_type, headers={
        "Content-Disposition": attachment(document.filename, document.content_type),
        "Content-Length": str(document.size), "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


# What removing something added in error may answer besides its tombstone: the same for a note and a document.
REMOVING = {
    403: {"description": "Only a caseworker the case is assigned to removes it (`need-to-know`): an Access-Reason "
                         "opens a case, it does not correct its record."},
    404: {"description": "No such note or document in this case (or the case was erased, and it with it)."},
    422: {"description": "`reason` is not one of `wrong_case`, `duplicate`, `mistake`."},
}


@router.post("/cases/{case_id}/documents/{document_id}/remove", response_model=DocumentPublic,
             openapi_extra=HONOURS_KEY, responses=REMOVING)
async def remove_document(
    case_id: CaseId, document_id: Annotated[str, Path(max_length=36)], body: Removal, request: Request,
    runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> DocumentPublic:
    """Remove a document added in error (another person's scan, a file sent twice), saying why (`reason`: a fixed
    word). Its bytes, name and hash are destroyed for good; what remains is its kind, who added it and when, and who
    removed it, when and why. Removing it again answers the same."""
    return await _honoured(request, runtime, caller_of(principal), case_id, lambda session: documents.remove_document(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, document_id=document_id, removal=body,
        caller=caller_of(principal)))


def attachment(filename: str, content_type: str) -> str:
    """RFC 6266: `attachment`, an ASCII `filename` for old clients and the real name in `filename*` (RFC 8187).
    The name ends in the extension of what the bytes are (`files.cleaned` judged them): text sent as `page.html` is
    saved as `page.html.txt`, so that opening the saved file never runs it as a web page."""
    extension = files.EXTENSIONS.get(content_type, "")
    if not filename.lower().endswith(files.NAME_ENDINGS.get(content_type, (extension,))):
        filename += extension
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    if fallback.strip("_.") == "" or fallback.strip("_.") == extension.strip("."):
        fallback = "document" + extension
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ---- notes and tasks (casework) ---------------------------------------------------------------------------------

@router.post("/cases/{case_id}/notes", status_code=201, response_model=NotePublic, openapi_extra=HONOURS_KEY,
             responses=need_to_know.ANSWERS)
async def add_note(
    case_id: CaseId, body: NoteCreate, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> NotePublic:
    """Write a note on the case (1–10,000 characters), signed with your handle; sealed under the case's key."""
    return await _honoured(request, runtime, caller, case_id, status=201, action=lambda session: casework.add_note(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, note_in=body, caller=caller))


@router.get("/cases/{case_id}/notes", response_model=Page[NotePublic], responses=need_to_know.ANSWERS)
async def list_notes(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
    limit: Limit = 50, cursor: str | None = None,
) -> Page[NotePublic]:
    """The case's notes, newest first."""
    return await runtime.uow.run(lambda session: casework.list_notes(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, limit=limit,
        cursor=cursor))


@router.post("/cases/{case_id}/notes/{note_id}/remove", response_model=NotePublic, openapi_extra=HONOURS_KEY,
             responses=REMOVING)
async def remove_note(
    case_id: CaseId, note_id: Annotated[str, Path(max_length=36)], body: Removal, request: Request,
    runtime: RuntimeDep, vault: VaultDep, principal: Caseworker,
) -> NotePublic:
    """Remove a note written in error (in the wrong case, naming someone else), saying why (`reason`: a fixed word).
    Its text is destroyed for good, in the stored answers too; what remains is its author and time, and who removed
    it, when and why. Removing it again answers the same."""
    return await _honoured(request, runtime, caller_of(principal), case_id, lambda session: casework.remove_note(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, note_id=note_id, removal=body,
        caller=caller_of(principal)))


@router.post("/cases/{case_id}/tasks", status_code=201, response_model=TaskPublic, openapi_extra=HONOURS_KEY,
             responses={
    **need_to_know.ANSWERS,
    422: {"description": "`assignee` is not one of the case's caseworkers (`not-an-assignee`), or the Access-Reason "
                         "is too short or too long."},
})
async def add_task(
    case_id: CaseId, body: TaskCreate, request: Request, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
) -> TaskPublic:
    """Give one of the case's caseworkers (you, unless `assignee` names another) a task due on `due_on`."""
    return await _honoured(request, runtime, caller, case_id, status=201, action=lambda session: casework.add_task(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, task_in=body, caller=caller))


@router.get("/cases/{case_id}/tasks", response_model=Page[TaskPublic], responses=need_to_know.ANSWERS)
async def list_case_tasks(
    case_id: CaseId, runtime: RuntimeDep, vault: VaultDep, caller: CaseCaller,
    status: TaskStatus | None = None, limit: Limit = 50, cursor: str | None = None,
) -> Page[TaskPublic]:
    """The case's tasks, soonest due first; of one status if asked."""
    return await runtime.uow.run(lambda session: casework.list_case_tasks(
        session=session, vault=vault, audit=runtime.audit, case_id=case_id, caller=caller, status=status,
        limit=limit, cursor=cursor))


@router.post("/tasks/{task_id}/done", response_model=TaskPublic, openapi_extra=HONOURS_KEY, responses={
    403: {"description": "Only a caseworker the task's case is assigned to marks it done (`need-to-know`)."},
    409: {"description": "The task was cancelled (`task-not-open`)."},
})
async def finish_task(
    task_id: Annotated[str, Path(max_length=36)], request: Request, runtime: RuntimeDep, vault: VaultDep,
    principal: Caseworker,
) -> TaskPublic:
    """Mark a task done; done again answers the same."""
    return await runtime.idempotency.honour(
        request, principal=principal.sub, uow=runtime.uow, subject=lambda answer: answer.get("case_id"),
        action=lambda session: casework.finish_task(session=session, vault=vault, audit=runtime.audit,
                                                    task_id=task_id, caller=caller_of(principal)))


@router.patch("/tasks/{task_id}", response_model=TaskPublic, responses={
    403: {"description": "Only a caseworker the task's case is assigned to changes it (`need-to-know`)."},
    409: {"description": "The task is done or cancelled (`task-not-open`), or its case is not open."},
    412: {"description": "The task changed since its ETag was read (`stale-etag`)."},
    422: {"description": "`assignee` is not one of the case's caseworkers (`not-an-assignee`), or nothing to change."},
    428: {"description": "No If-Match (or `*`)."}})
async def change_task(
    task_id: Annotated[str, Path(max_length=36)], body: TaskChange, response: Response, runtime: RuntimeDep,
    vault: VaultDep, principal: Caseworker, if_match: Annotated[str | None, Header()] = None,
) -> TaskPublic:
    """Change an open task's title, due date or assignee, on the version its ETag names (`If-Match`, as for a case):
    the answer carries the new ETag."""
    if if_match is None or if_match.strip() == "*":  # `*` matches any version: it would overwrite unseen changes
        raise Problem(428, "Send the task's ETag in If-Match (not `*`), so that you cannot overwrite a change you "
                           "have not seen.", kind="if-match-required")
    task = await runtime.uow.run(lambda session: casework.change_task(
        session=session, vault=vault, audit=runtime.audit, task_id=task_id, changes=body, if_match=if_match,
        caller=caller_of(principal)))
    response.headers["ETag"] = task.etag
    return task


@router.post("/tasks/{task_id}/cancel", response_model=TaskPublic, openapi_extra=HONOURS_KEY, responses={
    403: {"description": "Only a caseworker the task's case is assigned to cancels it (`need-to-know`)."},
    409: {"description": "The task is done (`task-not-open`)."},
})
async def cancel_task(
    task_id: Annotated[str, Path(max_length=36)], request: Request, runtime: RuntimeDep, vault: VaultDep,
    principal: Caseworker,
) -> TaskPublic:
    """Cancel an open task: no longer to be done, and not done either. Cancelled again answers the same."""
    return await runtime.idempotency.honour(
        request, principal=principal.sub, uow=runtime.uow, subject=lambda answer: answer.get("case_id"),
        action=lambda session: casework.cancel_task(session=session, vault=vault, audit=runtime.audit,
                                                    task_id=task_id, caller=caller_of(principal)))


@router.get("/tasks", response_model=Page[MyTask])
async def list_my_tasks(
    runtime: RuntimeDep, vault: VaultDep, principal: Caseworker, status: TaskStatus = "open",
    due_before: date | None = None, limit: Limit = 50, cursor: str | None = None,
) -> Page[MyTask]:
    """Your tasks on the cases you hold, soonest due first, each with its case's reference; `due_before`: only
    those due before that day (`due_before=` tomorrow: due today and overdue)."""
    return await runtime.uow.run(lambda session: casework.my_tasks(
        session=session, vault=vault, audit=runtime.audit, caller=caller_of(principal), status=status,
        due_before=due_before, limit=limit, cursor=cursor))
