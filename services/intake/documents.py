"""A case's documents (SPEC §4): added, listed, read back piece by piece.

The bytes arrive already judged and cleaned (`files.cleaned`: PDF, JPEG, PNG or UTF-8 text, without metadata); here
they are cut into pieces of `CHUNK_BYTES`, each sealed under the case's data key with the document and the piece's
number in its associated data, and stored in intake's own database (`documents`, `document_chunks`): no second
storage system, and erasure (destroying the case's key, deleting the rows) takes them with the case. The file name
and the SHA-256 are sealed too; the audit trail and the timeline say that a document of some kind was added, by whom
and when, never its name.

Need-to-know as for every route of a case: a document is opened through its case (`cases._admitted`).

A document added in error (another person's passport scan in the wrong case) is removed by one of the case's
assignees with a fixed reason (`remove_document`, as a note is: `casework.remove_note`): its pieces are deleted, its
sealed name and hash cleared, and so are the stored Idempotency-Key answers that repeat them; the row stays as a
tombstone (its kind, who added it and when, who removed it, when and why)."""

from __future__ import annotations

import hashlib
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from kit.audit import AuditTrail
from kit.crypto import DecryptionError
from kit.errors import NotFound
from kit.pagination import Page, keyset_page
from services.intake import casework, cases, domain, queries
from services.intake.files import Cleaned
from services.intake.models import Document, DocumentChunk, DocumentPublic, Removal
from services.intake.protection import CaseVault, forget_in_stored_answers

CHUNK_BYTES = 256 * 1024
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024  # 20 MiB, as received (before its metadata is removed)
DOCUMENTS, CHUNKS = "documents", "document_chunks"  # tables named in a ciphertext's associated data
DOCUMENT_REMOVED = "document.removed"  # timeline kind
MAX_FILENAME = 200
INSERT_CHUNKS = insert(DocumentChunk.__table__)


@dataclass(frozen=True)
class Opened:
    """A document the caller may read: what it is, and the key to open its pieces with (never leaves the process)."""

    document: DocumentPublic
    chunks: int
    data_key: bytes


def safe_filename(name: str) -> str:
    """The name as sent, without a path, control characters or surrounding blanks; `document` when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:MAX_FILENAME] or "document"


def add_document(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, kind: str, filename: str,
    content: Cleaned, caller: domain.Caller,
) -> DocumentPublic:
    """Keep a cleaned document of an open case, sealed in pieces; the timeline says a document of this kind came."""
    case = cases._admitted(session, vault, audit, case_id, caller, lock=True)
    domain.ensure_changeable(case.status)
    data_key = cases._data_key(session, vault, case)
    now = datetime.now(UTC)
    document_id = str(uuid.uuid4())
    data, name = content.data, safe_filename(filename)
    digest = hashlib.sha256(data).hexdigest()
    pieces = [data[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    document = Document(id=document_id, case_id=case.id, kind=kind, content_type=content.content_type,
                        size=len(data), chunks=len(pieces), created_at=now, created_by=caller.username)
    document.filename_sealed = vault.seal(data_key, DOCUMENTS, "filename_sealed", document_id, name)
    document.sha256_sealed = vault.seal(data_key, DOCUMENTS, "sha256_sealed", document_id, digest)
    session.add(document)
    session.flush()  # the document's row before the pieces that point at it
    session.execute(INSERT_CHUNKS, [
        {"document_id": document_id, "seq": seq, "case_id": case.id,
         "data_sealed": vault.seal_bytes(data_key, CHUNKS, "data_sealed", _piece(document_id, seq), piece)}
        for seq, piece in enumerate(pieces)])
    queries.add_timeline_entry(session, case.id, now, "document.added",
                               {"document_id": document_id, "kind": kind, "by": caller.username})
    audit.record(session, actor=caller.user_id, action="document.add", target_id=case.id)
    return _public(document, name, digest)


def list_documents(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, caller: domain.Caller, limit: int,
    cursor: str | None,
) -> Page[DocumentPublic]:
    """A case's documents, oldest first, their names decrypted."""
    case = cases._admitted(session, vault, audit, case_id, caller)
    documents, next_cursor = keyset_page(session, select(Document).where(Document.case_id == case.id),
                                         order=[Document.created_at, Document.id], limit=limit, cursor=cursor)
    items = []
    if documents:
        data_key = cases._data_key(session, vault, case)
        items = [_public(d, None, None) if d.removed_at else _public(d, *_opened_fields(vault, data_key, d, case))
                 for d in documents]
    if case.status != domain.ERASED:
        audit.record(session, actor=caller.user_id, action="documents.read", target_id=case.id)
    return Page[DocumentPublic](items=items, next_cursor=next_cursor)


def open_document(
    *, session: Session, vault: CaseVault, audit: AuditTrail, document_id: str, caller: domain.Caller,
) -> Opened:
    """A document to read, once its case admits the caller; audited (the case, never the name)."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound("There is no document with this id.", code="document-not-found")
    case = cases._admitted(session, vault, audit, document.case_id, caller)
    if document.removed_at is not None:
        raise NotFound("This document was removed from its case; its content is gone.", code="document-removed")
    data_key = cases._data_key(session, vault, case)
    audit.record(session, actor=caller.user_id, action="document.download", target_id=case.id)
    return Opened(_public(document, *_opened_fields(vault, data_key, document, case)), document.chunks, data_key)


def remove_document(
    *, session: Session, vault: CaseVault, audit: AuditTrail, case_id: str, document_id: str, removal: Removal,
    caller: domain.Caller,
) -> DocumentPublic:
    """Remove a document added in error (one of its case's assignees; a closed case's too): its pieces deleted, its
    name and hash cleared, here and in the stored answers that repeat them; the tombstone says who removed it, when
    and why. Removing it again changes nothing and answers the same tombstone."""
    document = session.get(Document, document_id, with_for_update=True)
    if document is None or document.case_id != case_id:
        raise NotFound("There is no document with this id in this case.", code="document-not-found")
    casework.ensure_holds(session, document.case_id, caller, "Only a caseworker the case is assigned to removes a "
                          "document from it: a stated reason opens a case, it does not correct its record.")
    if document.removed_at is None:
        now = datetime.now(UTC)
        session.execute(delete(DocumentChunk).where(DocumentChunk.document_id == document.id))
        document.filename_sealed = document.sha256_sealed = None
        document.size = document.chunks = 0
        document.removed_at, document.removed_by, document.removal_reason = now, caller.username, removal.reason
        queries.add_timeline_entry(session, document.case_id, now, DOCUMENT_REMOVED, {
            "document_id": document.id, "kind": document.kind, "by": caller.username, "reason": removal.reason})
        audit.record(session, actor=caller.user_id, action="document.removed", target_id=document.case_id)
        tombstone = _public(document, None, None).model_dump(mode="json")
        forget_in_stored_answers(session, vault, document.case_id, document.id, lambda answer: tombstone)
    return _public(document, None, None)


def read_piece(*, session: Session, vault: CaseVault, opened: Opened, seq: int) -> bytes:
    """One piece of an opened document, decrypted; `NotFound` when it is gone (the case was erased meanwhile),
    `Sealed` once the keys were sealed meanwhile (the download stops short of its length)."""
    vault.still_unsealed()
    document_id = opened.document.id
    blob = session.execute(select(DocumentChunk.data_sealed).where(
        DocumentChunk.document_id == document_id, DocumentChunk.seq == seq)).scalar_one_or_none()
    if blob is None:
        raise NotFound("The document is no longer there.", code="document-not-found")
    try:
        return vault.open_bytes(opened.data_key, CHUNKS, "data_sealed", _piece(document_id, seq), blob)
    except DecryptionError:
        raise cases._unreadable(SimpleNamespace(id=opened.document.case_id)) from None


def _piece(document_id: str, seq: int) -> str:
    return f"{document_id}:{seq}"


def _opened_fields(vault: CaseVault, data_key: bytes, document: Document, case: object) -> tuple[str, str]:
    return (cases._open(vault, data_key, DOCUMENTS, "filename_sealed", document.id, document.filename_sealed, case),
            cases._open(vault, data_key, DOCUMENTS, "sha256_sealed", document.id, document.sha256_sealed, case))


def _public(document: Document, filename: str | None, sha256: str | None) -> DocumentPublic:
    return DocumentPublic(id=document.id, case_id=document.case_id, kind=document.kind, filename=filename,
                          content_type=document.content_type, size=document.size, sha256=sha256,
                          created_at=document.created_at, created_by=document.created_by,
                          removed_at=document.removed_at, removed_by=document.removed_by,
                          removal_reason=document.removal_reason)
