"""An append-only, hash-chained audit trail in each service's own database.

Each entry's hash is an HMAC (key outside the database) over the previous entry's hash and the entry's fields,
so editing, deleting or reordering a stored entry breaks the chain at that entry, and the chain cannot be
recomputed by someone who only has the database. Entries hold who, what, when, which record and the request id:
never the values.
"""

import base64
import hashlib
import hmac
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, insert, select
from sqlmodel import Session

from kit import context, logs, problems
from kit.auth import Principal, require_roles
from kit.db import UnitOfWork, lock_for_chain, write_at_commit
from kit.errors import DomainError, RefusalEntry, Refused
from kit.pagination import Page, keyset_page, page_size
from kit.tables import KitTables

GENESIS = "0" * 64
_AUDIT_CHAIN_LOCK = 0x0A0D17


def _digest(key: bytes, prev: str, entry_id: str, at: datetime, actor: str, action: str, target: str | None, rid: str | None) -> str:
    at_utc = at if at.tzinfo else at.replace(tzinfo=UTC)
    material = "\x1f".join([prev, entry_id, at_utc.astimezone(UTC).isoformat(), actor, action, target or "", rid or ""])
    return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()


# Set on a unit's session by `record` for an action signed at once: once the unit is committed, the checkpointer is
# woken to sign the trail's new head (`Checkpointer.soon`).
SIGN_SOON = "kit.audit.sign_soon"
# Set on a unit's session by `record`: its entry, which `_append` gives its sequence and hash at the COMMIT. Once the
# unit is committed the checkpointer is told of it (`Checkpointer.wrote`): an entry this process wrote that later
# goes missing from the database, before any checkpoint covered it, is then still seen (kit.checkpoints).
WRITTEN = "kit.audit.written"


def tell_of_commits(uow: UnitOfWork, checkpointer: Any) -> None:
    """Once each unit is committed, the process's checkpointer (kit.checkpoints) is told of the newest entry the unit
    wrote (`WRITTEN`), and woken at once when that was an action signed at once (`SIGN_SOON`)."""

    def told(session: Session) -> None:
        entry = session.info.pop(WRITTEN, None)
        if entry is not None and "seq" in entry:  # no seq: the unit took its own work back before the COMMIT
            checkpointer.wrote(entry["seq"], entry["hash"])
        if session.info.pop(SIGN_SOON, False):
            checkpointer.soon()

    uow.on_commit(told)


class AuditTrail:
    def __init__(self, tables: KitTables, key: bytes | Callable[[], bytes], *,
                 signed_at_once: tuple[str, ...] = ()) -> None:
        self.table = tables.audit
        # Actions (by prefix) whose entry is signed into a checkpoint as soon as it is committed, not within the
        # minute: a money movement's entry removed from the database before the next checkpoint would leave no
        # trace (`SIGN_SOON`, kit.service wires it to the process's Checkpointer).
        self.signed_at_once = signed_at_once
        # A function when the key is in a sealable custody (kit.custody): asked for on each use, never copied here,
        # so a seal leaves nothing behind and a sealed process refuses to write an unverifiable entry.
        self._key_source = key if callable(key) else (lambda: key)
        # Built once: `record` runs in almost every request, and building a statement costs more than running it.
        self._last_hash = select(self.table.c.hash).order_by(self.table.c.seq.desc()).limit(1)
        # Each entry's sequence comes back in the same statement, in the entries' order (`WRITTEN`).
        self._insert = insert(self.table).returning(self.table.c.seq, sort_by_parameter_order=True)

    def recorded_in_this_request(self, session: Session, *, actor: str, action: str, target_id: str,
                                 within: timedelta = timedelta(minutes=1)) -> bool:
        """Whether this request (its request id) already left this entry, committed, lately: a service asking
        another back on the caller's behalf, with the caller's token and the same request id (referrals reading a
        consent from intake for a request intake already audited), is the same request, not a second one."""
        request_id = context.request_id()
        if not request_id:
            return False
        t = self.table.c
        return session.execute(select(t.seq).where(
            t.request_id == request_id, t.actor == actor, t.action == action, t.target_id == target_id,
            t.at >= datetime.now(UTC) - within).limit(1)).first() is not None

    def record(self, session: Session, *, actor: str, action: str, target_id: str | None = None) -> None:
        """Append an entry inside the caller's transaction: the entry commits with the change it describes.

        In a unit of work the entry is chained and written just before the COMMIT, with the other units' entries
        (`kit.db.write_at_commit`): the chain's lock, which every replica writing this database waits for, is held
        for those statements and the COMMIT, not for the whole batch of units. When the unit fails, its entry goes
        with it."""
        self._key_source()  # a sealed process refuses here, in the unit, rather than failing everyone's COMMIT
        entry = {"id": str(uuid.uuid4()), "at": datetime.now(UTC), "actor": actor, "action": action,
                 "target_id": target_id, "request_id": context.request_id()}
        if not write_at_commit(session, self._append, entry):
            self._append(session.connection(), [entry])
        session.info[WRITTEN] = entry
        if self.signed_at_once and action.startswith(self.signed_at_once):
            session.info[SIGN_SOON] = True

    def _append(self, conn: Connection, entries: list[dict[str, Any]]) -> None:
        """Chain `entries` onto the trail's last entry and insert them, under the chain's lock until COMMIT."""
        lock_for_chain(conn, _AUDIT_CHAIN_LOCK)
        prev = conn.execute(self._last_hash).scalar() or GENESIS
        key = self._key_source()
        for entry in entries:
            entry["prev_hash"] = prev
            entry["hash"] = prev = _digest(key, prev, entry["id"], entry["at"], entry["actor"], entry["action"],
                                           entry["target_id"], entry["request_id"])
        for entry, seq in zip(entries, conn.execute(self._insert, entries).scalars(), strict=True):
            entry["seq"] = seq

    def verify(self, session: Session) -> dict[str, Any]:
        """Walk the chain in order. Gaps in `seq` are not looked at: on PostgreSQL an entry rolled back with its
        transaction has used its number all the same. A deleted or moved entry breaks the link of the one after it,
        and deleted newest entries are caught by the signed checkpoints (kit.checkpoints)."""
        prev = GENESIS
        count = 0
        key = self._key_source()
        for row in session.execute(select(self.table).order_by(self.table.c.seq)).mappings():
            count += 1
            recomputed = _digest(key, prev, row["id"], row["at"], row["actor"], row["action"], row["target_id"], row["request_id"])
            if row["prev_hash"] != prev or not hmac.compare_digest(row["hash"], recomputed):
                return {"ok": False, "entries": count, "first_bad": row["id"]}
            prev = row["hash"]
        return {"ok": True, "entries": count, "first_bad": None}

    def page(self, session: Session, *, target_id: str | None, limit: int, cursor: str | None,
             action: str | None = None, newest_first: bool = False) -> dict[str, Any]:
        """One page of the trail in the chain's order (or newest first), about one record and of one action if
        asked. An action is found by walking the chain from the cursor (no index holds it): a rare one on a long
        trail takes a while, as an auditor's look may and no hot path does."""
        query = select(self.table)
        if target_id:
            query = query.where(self.table.c.target_id == target_id)
        if action:
            query = query.where(self.table.c.action == action)
        rows, next_cursor = keyset_page(session, query, order=[self.table.c.seq], limit=limit, cursor=cursor,
                                        descending=newest_first)
        items = [
            {"id": r.id, "at": (r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)).isoformat(),
             "actor": r.actor, "action": r.action, "target_id": r.target_id, "request_id": r.request_id}
            for r in rows
        ]
        return {"items": items, "next_cursor": next_cursor}


# ---- refused authorisations ------------------------------------------------------------------------------------

_log = logs.get("kit.audit")


@contextmanager
def refusal_recorded(*, actor: str, action: str, target_id: str | None,
                     of: tuple[type[DomainError], ...] = (Refused,)) -> Iterator[None]:
    """A refusal (kit.errors.Refused, 403) raised inside is to leave this entry in the trail: BACKBONE, Audit, every
    refused authorisation, so that a stolen session probing records leaves a trace. Refusals are raised inside a unit
    of work, which rolls back with every entry written in it; so the entry travels on the refusal, and
    `answer_refusal` writes it in a unit of its own once the refused one is gone. Where refusals nest, the innermost
    names what was refused. Only who, the word and the record's id: never what the refused request carried, nor a
    "record id" that is no id (a caller's own text where an id goes, refused before it named a record: no target).
    `of`: the refusals that leave it (a 409 `Conflict` too where a try must be seen: paying what is paid)."""
    try:
        yield
    except of as refused:
        if refused.audit_entry is None:
            refused.audit_entry = RefusalEntry(actor, action, _an_id(target_id))
        raise


async def record_refusal(runtime: Any, entry: RefusalEntry) -> None:
    """Writes a refusal's entry in the process's trail (the gateway's or a service's `runtime`: its unit of work and
    trail), in one short unit of its own, batched with the moment's others and no call to anything else: a flood of
    refused requests costs what as many small writes do. An entry that cannot be written (the database away, the keys
    sealed) is logged as missing, and the refusal is answered all the same: turning it into a 500 would tell the
    caller nothing more and keep nothing more."""
    try:
        await runtime.uow.run(lambda session: runtime.audit.record(
            session, actor=entry.actor, action=entry.action, target_id=entry.target_id))
    except Exception as exc:
        _log.warning("refusal not audited", action=entry.action, error_type=type(exc).__name__)


def _an_id(target_id: str | None) -> str | None:
    """The record's id as the trails hold ids (a UUID, as every record's is), or None for anything else."""
    try:
        return str(uuid.UUID(target_id)) if target_id else None
    except ValueError:
        return None


async def answer_refusal(request: Request, refused: DomainError) -> JSONResponse:
    """A service's answer to a refusal (403, or a 409 Conflict, as kit.problems answers it), once the entry it
    carries, if any (`refusal_recorded`, kit.auth's role checks), is in the process's trail (`record_refusal`)."""
    if refused.audit_entry is not None:
        await record_refusal(request.app.state.runtime, refused.audit_entry)
    problem = problems.as_problem(refused)
    return problems.problem_response(problem.status, problem.detail, kind=problem.kind, extra=problem.extra)


class AuditEntry(BaseModel):
    id: str
    at: datetime
    actor: str
    action: str
    target_id: str | None
    target_label: str | None = Field(None, description="The record as people name it, where this service names its "
                                                       "records so (intake: a case's reference); never personal data")
    request_id: str | None


# What a service calls the records its trail names (`{target_id: label}`), read in the auditor's session: a case's
# reference, say. Only labels that are not personal data.
TargetLabels = Callable[[Session, set[str]], dict[str, str]]


class AuditRestore(BaseModel):
    backup_made: str | None = Field(description="When the backup that was put back was made")
    at: str | None = Field(description="When the trail the restore put back was signed")


class AuditCheckpoint(BaseModel):
    """A signed head of the trail, as found on the stream AUDIT (the signature itself is not repeated)."""

    seq: int | None
    hash: str | None
    count: int | None
    at: str | None
    key: str | None = Field(description="Id of the process's signing key (SHA-256 of its public key, 16 hex digits)")
    last_restore: AuditRestore | None = Field(None, description=(
        "The newest restore of this trail from a backup, when there was one: entries written after the backup was "
        "made, up to the restore, were replaced by it and are not in the trail"))


class AuditVerification(BaseModel):
    ok: bool = Field(description="The chain is intact and agrees with the newest signed checkpoint (or there is "
                                 "none yet, the trail being younger than the checkpoint interval)")
    entries: int
    first_bad: str | None = Field(description="The first entry whose hash does not follow from the one before it")
    truncated: bool = Field(False, description="Entries that were signed in a checkpoint are gone from the trail")
    checkpoint: AuditCheckpoint | None = Field(None, description="The newest checkpoint found")
    checkpoint_status: Literal["matches", "none", "missing", "truncated", "diverged", "forged", "unavailable",
                               "no_key"] | None = Field(None, description=(
        "matches: the trail holds the signed entry; none: no checkpoint yet; missing: none though one is overdue; "
        "truncated: the trail ends below the checkpoint; diverged: another entry stands at the signed sequence; "
        "forged: not signed with this process's key; unavailable: NATS could not be asked; no_key: no key to check"))
    problem: str | None = Field(None, description="What is wrong, in a sentence, when something is")


# No `from __future__ import annotations` in this module: FastAPI must see the real types of the dependencies
# declared inside `audit_router`, which string annotations would hide from it.
def audit_router(trail_of: Any, session_dep: Any, checkpoints_of: Any = None,
                 labels: TargetLabels | None = None) -> APIRouter:
    """`GET /audit` and `GET /audit/verify` for auditors; `trail_of(request)` gives the process's AuditTrail, and
    `checkpoints_of(request)` its kit.checkpoints.Checkpointer (verify compares the chain with the newest signed
    checkpoint; without one, verify says the checkpoints could not be checked). `labels`: how the service names the
    records of a page's entries (`target_label`), for an auditor who reads "BY-2026-00042" sooner than a UUID."""
    router = APIRouter(tags=["audit"])
    Auditor = Annotated[Principal, Depends(require_roles("auditor"))]

    @router.get("/audit", response_model=Page[AuditEntry])
    async def list_audit(
        request: Request, session: session_dep, principal: Auditor,
        target_id: str | None = None, limit: page_size(500) = 100, cursor: str | None = None,
        action: Annotated[str | None, Query(max_length=100, description="Only entries of this action")] = None,
        order: Annotated[Literal["asc", "desc"], Query(
            description="asc: the chain's order; desc: newest first (a cursor goes on in its own order)")] = "asc",
    ) -> dict[str, Any]:
        page = trail_of(request).page(session, target_id=target_id, limit=limit, cursor=cursor, action=action,
                                      newest_first=order == "desc")
        if labels is not None:
            named = labels(session, {item["target_id"] for item in page["items"] if item["target_id"]})
            for item in page["items"]:
                item["target_label"] = named.get(item["target_id"])
        return page

    @router.get("/audit/verify", response_model=AuditVerification)
    async def verify_audit(request: Request, session: session_dep, principal: Auditor) -> dict[str, Any]:
        trail = trail_of(request)
        checkpoints = checkpoints_of(request) if checkpoints_of is not None else None
        if checkpoints is None:
            return {**trail.verify(session), "ok": False, "checkpoint_status": "no_key",
                    "problem": "audit checkpoints are not kept by this process"}
        # The checkpoint is read before the session's first read (kit.checkpoints.Checkpointer.verify).
        return await checkpoints.verify(trail.verify, session)

    return router


def key_from_b64(raw: bytes) -> bytes:
    return base64.b64decode(raw.strip())
