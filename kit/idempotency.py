"""Idempotency-Key for POSTs (draft-ietf-httpapi-idempotency-key-header), keyed per caller.

- same key, same request → the first response again (same status, same body), nothing done again;
- same key, another request → 422; the first request still in flight → 409 with Retry-After, whichever process
  it runs in (SPEC §4; the web console waits and asks again itself, gateway.console.router.call);
- the same request is recognised by its JSON value, not its spelling: a retry that serialises the body again with
  other spacing or key order is the same request (a body that is not JSON is compared byte for byte);
- the stored result commits in the same transaction as the effect, so a crash can never leave an effect
  without its record. A claim left by a crash expires after a short lease (30 s by default: a retry is told how long
  to wait) and the request may then run again; each claim is known by when it was made, and an action completes
  only under its own claim, so a first request still running when a retry took its key over is rolled back, never
  done twice; a retry that took a key over and then fails gives the claim back to the request it took it from,
  which may still be running and must still be able to store its answer;
- nothing here commits on its own: the claim, the action with its stored answer, and the release are each a unit
  of the process's unit of work (`kit.db.UnitOfWork.run`), committed off the event loop with everything else;
- nothing is stored when the request is refused as invalid (400/422) or fails (5xx), nor when it is refused
  because its case is erased (`ERASED`): nothing about an erased person is kept, not even a keyed fingerprint of a
  request about them (SPEC §7.6), and a retry is simply refused again;
- stored responses are sealed (they may contain personal data) and kept for `retention`, at least 24 hours;
  `purge` deletes what is older, run on a schedule by kit.service;
- a request is recognised by a keyed HMAC of it (its fingerprint), never a plain hash: a plain hash of a body
  holding a name and a birth date is reversed offline from any list of released prisoners;
- each stored row carries, in clear, the id of the case it is about (`subject_id`), so that erasing the case
  deletes its stored answers and fingerprints (`forget`) without opening anything: a service that cannot open
  an answer (sealed before a KEK rotation and a restart) still finds and deletes it;
- the key itself is stored only as a keyed HMAC of (caller, key) (`_row_key`): a client may build its keys from what
  it knows of the person ("losik-ihar-1992-referral"), and a database dump must not hold that. The HMAC's key is
  derived from a secret that never rotates (the process's audit key, which key custody keeps with its KEKs): a KEK
  retired within the retention window must not make a retry miss its row and act twice. A row an earlier release
  stored under the key as sent is still found, and used as it is, for one retention after the process starts
  (`_legacy_until`: by then the purge has deleted every such row); an upgrade replaces every replica at once, since a
  replica of the earlier release would not find the rows named here.

A replay after `forget` finds nothing stored: like a key past its retention, the request is treated as new.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, insert, select, update
from sqlmodel import Session

from kit import crypto
from kit.audit import AuditTrail
from kit.db import UnitOfWork, dialect_insert
from kit.errors import DomainError, NotYet
from kit.problems import Problem, as_problem
from kit.tables import KitTables

HEADER = "Idempotency-Key"
# The kind of refusal every service gives a request about a case that was erased (see the module's docstring).
ERASED = "case-erased"
MAX_KEY_LENGTH = 200
QUICK = timedelta(seconds=2)  # how long a request usually takes at most: a claim older than this may be a crash's
REPLAYED = "request.replayed"  # the audit action of a stored answer given again
MIN_RETENTION = timedelta(hours=24)  # SPEC §4: keys are kept at least 24 hours
Action = Callable[[Session], tuple[int, Any]]
# Headers of a successful answer, computed from it (the first time and on every replay), e.g. a new case's Location.
AnswerHeaders = Callable[[Any], dict[str, str]]
# What a stored answer is about: the case id when the caller knows it from the request, or a function that reads it
# from what is stored (the answer's JSON, or the problem document of a refusal), e.g. `lambda answer: answer.get("id")`.
Subject = str | Callable[[Any], str | None] | None
Keys = list[bytes] | Callable[[], list[bytes]]
NAMED = "h:"  # how a stored key named by its HMAC begins (`_row_key`)


@dataclass(frozen=True)
class Claim:
    """A request's hold on its key, known by when it was made. `took_over`: the expired claim it replaced (a crash's,
    or a request still running past its lease), to give back if this one fails."""

    made: datetime
    took_over: datetime | None = None
    key: str = ""  # the name of the row claimed (`_row_key`, or the key as sent for a row of an earlier release)


class Idempotency:
    def __init__(
        self, tables: KitTables, sealing_keys: Keys, *, fingerprint_keys: Keys, naming_secret: Callable[[], bytes],
        lease: timedelta = timedelta(seconds=30), retention: timedelta = timedelta(hours=48),
        audit: AuditTrail | None = None,
    ) -> None:
        if retention < MIN_RETENTION:
            raise ValueError("stored answers must be kept at least 24 hours")
        self.table = tables.idempotency
        # A stored answer about a case given again is a read of what it holds (a new case's personal details, say):
        # it leaves an entry in the trail like any read (SPEC §7.5), `request.replayed` about its subject.
        self.audit = audit
        # Lists, or functions giving the current lists (`lambda: keyring.derived_keys(...)`), so that a running
        # process seals under a KEK rotated in meanwhile, not under the one of its start.
        self._sealing_keys = sealing_keys
        if (not callable(sealing_keys) and not sealing_keys) or (not callable(fingerprint_keys)
                                                                and not fingerprint_keys):
            # (functions are asked on use: the keys may be sealed now and unsealed later, kit.custody)
            raise ValueError("idempotency needs a sealing key and a fingerprint key")
        # Fingerprint keys are derived from the KEKs like the sealing keys (`Keyring.derived_keys`), the active one
        # first: it computes new fingerprints, and a stored one matches when it equals the request's HMAC under any
        # of them, so a replay still matches after a rotation and a restart. Why not a key that never rotates
        # (e.g. from the blind-index key file): that one sits in a plain file, while the KEKs are what key custody
        # protects (SPEC §8: sealed under a passphrase, forgotten on `rehab seal`); and a KEK retired within the
        # retention window loses nothing more than it does already (the answers sealed under it no longer open).
        self._fingerprint_key_source = fingerprint_keys
        # A function, asked on use like the keys above (kit.custody may be sealed now and unsealed later).
        self._naming_secret = naming_secret
        # Until when a row of an earlier release, stored under the key as sent, may still be found (see the module).
        self._legacy_until = datetime.now(UTC) + retention + timedelta(hours=1)
        self.lease = lease
        self.retention = retention

    async def run(
        self, request: Request, *, principal: str, uow: UnitOfWork, required: bool, action: Action,
        after_commit: Callable[[], None] | None = None, subject: Subject = None,
        headers: AnswerHeaders | None = None, body: bytes | None = None,
    ) -> Response:
        """Run `action(session)` once per (caller, key) as a unit of `uow`; it returns (status, body) and never
        commits. Without a key (allowed when not `required`) it simply runs once.

        `subject` links what is stored to the case it is about, so that erasing the case deletes it (`forget`).
        `headers(answer)` gives the headers of a successful answer (ETag, Location), on a replay too.
        `after_commit()` runs once the action's work is committed, not on a replay.
        `body`: what the request is, where its bytes are not (a multipart upload: its boundary differs on every
        send, and its body was read as it streamed).
        """
        sent = request.headers.getlist(HEADER)
        if len(sent) > 1:  # which one would a retry send? Acting on either could act twice
            raise Problem(400, f"Send one {HEADER} header, not {len(sent)}.", kind="idempotency-key-invalid")
        key = sent[0] if sent else None
        if key is None:
            if required:
                raise Problem(400, f"This request needs an {HEADER} header, so that a retry cannot act twice.",
                              kind="idempotency-key-missing")
            status, encoded = await uow.run(lambda session: _encoded(action(session)))
            return self._answer(status, encoded, headers, after_commit)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise Problem(400, f"The {HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", kind="idempotency-key-invalid")
        body = await request.body() if body is None else body
        signed = self._signed_request(request.method, request.url.path, _canonical(body), principal, key)
        raw = self._signed_request(request.method, request.url.path, body, principal, key)
        known = subject if isinstance(subject, str) else None
        # A second request with the key arriving while the first still runs, from this process or another, finds the
        # first's claim and is refused, 409 with Retry-After (SPEC §4): it does not wait here for the first. Once
        # claimed, the key is its row's name (`Claim.key`), never the key as sent (the fingerprints hold it, keyed).
        return await self._once(uow, principal, key, signed, known, action, subject, headers, after_commit, raw)

    async def honour(
        self, request: Request, *, principal: str, uow: UnitOfWork, action: Callable[[Session], Any],
        status: int = 200, subject: Subject = None, headers: AnswerHeaders | None = None, body: bytes | None = None,
    ) -> Response:
        """A POST that acts once per key when the caller sends one (SPEC §4: honoured on any POST that does), and
        simply runs otherwise: `action(session)` returns the answer's body; `subject` as for `run` (the case the
        stored answer is about, so that erasing the case deletes it)."""
        return await self.run(request, principal=principal, uow=uow, required=False,
                              action=lambda session: (status, action(session)), subject=subject, headers=headers,
                              body=body)

    async def _once(
        self, uow: UnitOfWork, principal: str, key: str, signed: bytes, known: str | None, action: Action,
        subject: Subject, headers: AnswerHeaders | None, after_commit: Callable[[], None] | None, raw: bytes,
    ) -> Response:
        claimed = await uow.run(lambda session: self._claim(session, principal, key, signed, known, raw=raw))
        if isinstance(claimed, Claim):
            key = claimed.key  # the row's name from here on, never the key as sent
        else:
            status, stored = claimed
            media = "application/problem+json" if status >= 400 else "application/json"
            extra = headers(stored) if headers is not None and status < 400 else {}
            return JSONResponse(stored, status_code=status, media_type=media,
                                headers={**extra, "Idempotent-Replayed": "true"})

        def act(session: Session) -> tuple[int, Any]:
            status, encoded = _encoded(action(session))
            if not self._complete(session, principal, key, claimed, status, encoded, _subject_of(subject, encoded)):
                raise Problem(409, f"This request took so long that a retry with its {HEADER} took over; nothing "
                                   "was done by this one.", kind="idempotency-key-in-flight")  # rolls the effect back
            return status, encoded

        try:
            status, encoded = await uow.run(act)
        except (Problem, DomainError) as refusal:
            problem = refusal if isinstance(refusal, Problem) else as_problem(refusal)
            if problem.status in (400, 422) or problem.status >= 500 or isinstance(refusal, NotYet) \
                    or problem.kind == ERASED:
                await uow.run(lambda session: self._release(session, principal, key, claimed))
            else:
                refused = problem.status
                doc = {"type": "https://rehab.support/problems/" + problem.kind, "title": problem.title,
                       "status": refused, "detail": problem.detail, **problem.extra}
                await uow.run(lambda session: self._complete(
                    session, principal, key, claimed, refused, doc, _subject_of(subject, doc)))
            raise
        except BaseException:
            await uow.run(lambda session: self._release(session, principal, key, claimed))
            raise
        return self._answer(status, encoded, headers, after_commit)

    @staticmethod
    def _answer(status: int, encoded: Any, headers: AnswerHeaders | None,
                after_commit: Callable[[], None] | None) -> Response:
        if after_commit:
            after_commit()
        return JSONResponse(encoded, status_code=status, headers=headers(encoded) if headers is not None else None)

    @property
    def _keys(self) -> list[bytes]:
        """The sealing keys in force: the first seals; all are tried when opening (answers from before a rotation)."""
        return _now(self._sealing_keys)

    @property
    def _fingerprint_keys(self) -> list[bytes]:
        return _now(self._fingerprint_key_source)

    def _row_key(self, principal: str, key: str) -> str:
        """The name a key's row is stored under: a keyed HMAC of the caller and the key as sent."""
        naming_key = hmac.new(self._naming_secret(), b"rehab idempotency key names", hashlib.sha256).digest()
        named = hmac.new(naming_key, json.dumps([principal, key]).encode(), hashlib.sha256).hexdigest()
        return NAMED + named

    def forget(self, session: Session, subject: str) -> int:
        """Delete every stored answer and fingerprint about `subject` (a case being erased), in the caller's
        transaction; found by the id stored beside them, never by opening them. How many rows went."""
        return session.execute(delete(self.table).where(self.table.c.subject_id == subject)).rowcount

    def rewrite(self, session: Session, subject: str, change: Callable[[Any], Any | None]) -> int:
        """Seal again, in the caller's transaction, each stored answer about `subject` for which `change(answer)`
        gives a new body (None: left as it is), keeping its status and fingerprint: what was removed from a case in
        error (a note's text) must not stay in an answer a replay would give back (SPEC §7.6), yet a replay of the
        request that added it must still not add it again. An answer that opens under no key held now is left (it
        can be read by nobody). How many were rewritten."""
        t = self.table
        rows = session.execute(select(t.c.principal, t.c.key, t.c.body).where(
            t.c.subject_id == subject, t.c.state == "done")).all()
        rewritten = 0
        for row in rows:
            bound = f"{row.principal}|{row.key}".encode()
            try:
                answer = json.loads(self._open(row.body, bound))
            except crypto.DecryptionError:
                continue
            if (new := change(answer)) is None:
                continue
            sealed = crypto.seal(self._keys[0], json.dumps(jsonable_encoder(new)).encode(), bound)
            session.execute(update(t).where(t.c.principal == row.principal, t.c.key == row.key).values(body=sealed))
            rewritten += 1
        return rewritten

    def purge(self, session: Session, *, now: datetime | None = None) -> int:
        """Delete the keys past their retention (answers, fingerprints, stale claims), in the caller's transaction;
        how many went."""
        cutoff = (now or datetime.now(UTC)) - self.retention
        return session.execute(delete(self.table).where(self.table.c.created_at < cutoff)).rowcount

    # ---- fingerprints --------------------------------------------------------------------------------------------

    @staticmethod
    def _signed_request(method: str, path: str, body: bytes, principal: str, key: str) -> bytes:
        # The caller and the key are part of what is signed: two rows holding the same body do not show it by
        # holding the same fingerprint.
        head = json.dumps(["rehab.idempotency.v1", principal, key, method, path]).encode()
        return head + b"\n" + body

    def _fingerprint(self, signed: bytes, key: bytes) -> str:
        return hmac.new(key, signed, hashlib.sha256).hexdigest()

    def _same_request(self, stored: str, *signed: bytes) -> bool:
        """Whether `stored` is the fingerprint of any of the `signed` forms of the request, under any fingerprint key.
        Two forms: the canonical one (what new claims store), and the body's bytes as sent, which is what rows
        claimed before fingerprints were canonical hold; they are kept for the retention (48 h), and a retry of one
        of those must still be recognised, not refused as another request (422). The raw form can go once no row
        older than the change is left."""
        return any(hmac.compare_digest(stored, self._fingerprint(form, k))
                   for form in dict.fromkeys(signed) for k in self._fingerprint_keys)

    # ---- the stored rows -----------------------------------------------------------------------------------------

    def _claim(self, session: Session, principal: str, sent: str, signed: bytes,
               subject: str | None, *, raw: bytes | None = None) -> tuple[int, Any] | Claim:
        """Claim the key `sent` for this request, or the stored (status, answer) to replay; 422 for another request
        under the same key, 409 while the first is still in flight. `signed`: the request with its body canonical
        (stored); `raw`: with its body as sent, also matched against a stored fingerprint (`_same_request`). The
        claim names the row it holds (`Claim.key`): the key's HMAC name, or the key as sent where an earlier release
        stored it so (see the module)."""
        now = datetime.now(UTC)
        key = self._row_key(principal, sent)
        fingerprint = self._fingerprint(signed, self._fingerprint_keys[0])  # under the active KEK's key
        claim = {"principal": principal, "key": key, "fingerprint": fingerprint, "state": "in_flight",
                 "created_at": now, "subject_id": subject}
        row = self._stored_as_sent(session, principal, sent, now)
        if row is not None:  # an earlier release's row: this request goes on under its name
            key = sent
        else:
            claim_once = dialect_insert(session.get_bind().dialect.name)(self.table).values(**claim)
            if session.execute(claim_once.on_conflict_do_nothing().returning(self.table.c.key)).first() is not None:
                return Claim(now, key=key)  # claimed: no row was there
            row = session.execute(
                select(self.table).where(self.table.c.principal == principal, self.table.c.key == key)
            ).mappings().first()
            if row is None:  # released (or forgotten) between our insert and this read (another replica): claim it
                session.execute(insert(self.table).values(**claim))
                return Claim(now, key=key)
        if not self._same_request(row["fingerprint"], signed, raw or signed):
            raise Problem(422, f"This {HEADER} was already used with a different request.",
                          kind="idempotency-key-reused")
        if row["state"] == "in_flight":
            created = row["created_at"] if row["created_at"].tzinfo else row["created_at"].replace(tzinfo=UTC)
            age = now - created
            if age < self.lease:
                # A request is usually done within a second; an older claim may be one a crash left, which only the
                # end of its lease frees: the retry is told to wait for that, not to knock every second.
                wait = 1 if age < QUICK else math.ceil((self.lease - age).total_seconds())
                raise Problem(409, f"A request with this {HEADER} is still being processed.",
                              kind="idempotency-key-in-flight", headers={"Retry-After": str(max(wait, 1))})
            session.execute(update(self.table).where(
                self.table.c.principal == principal, self.table.c.key == key).values(created_at=now))
            return Claim(now, took_over=created, key=key)
        try:
            answer = row["status_code"], json.loads(self._open(row["body"], f"{principal}|{key}".encode()))
            if self.audit is not None and row["subject_id"] is not None:
                self.audit.record(session, actor=principal, action=REPLAYED, target_id=row["subject_id"])
            return answer
        except crypto.DecryptionError:
            # Sealed under a KEK retired since (`rehab keys retire` within the retention window): running the request
            # again could act twice, so it is refused, clearly, rather than failing as a 500.
            raise Problem(409, f"The first answer to this {HEADER} can no longer be read (its key was retired); check "
                               "whether the first request took effect before sending it again with a new key.",
                          kind="idempotency-answer-unreadable") from None

    def _stored_as_sent(self, session: Session, principal: str, sent: str, now: datetime) -> Any:
        """The row an earlier release stored under the key as sent, while one may be left (`_legacy_until`)."""
        if now >= self._legacy_until:
            return None
        return session.execute(select(self.table).where(
            self.table.c.principal == principal, self.table.c.key == sent)).mappings().first()

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        for candidate in self._keys:
            try:
                return crypto.open_sealed(candidate, blob, aad)
            except crypto.DecryptionError:
                continue
        raise crypto.DecryptionError("stored answer opens under no known key")

    def _complete(self, session: Session, principal: str, key: str, claimed: Claim, status: int, body: Any,
                  subject: str | None) -> bool:
        """Store the answer under this request's own claim. False when the claim is no longer its own: its lease
        ended and a retry claimed the key anew (and may have completed it); the caller must not keep its effect."""
        sealed = crypto.seal(self._keys[0], json.dumps(body).encode(), f"{principal}|{key}".encode())
        values: dict[str, Any] = {"state": "done", "status_code": status, "body": sealed}
        if subject is not None:  # else keep what the claim knew
            values["subject_id"] = subject
        if session.execute(update(self.table).where(*self._own(principal, key, claimed)).values(**values)).rowcount:
            return True
        # No row when the case was erased while this request ran (its claim deleted): nothing is stored then. (A
        # retry that took the key over and failed gave the claim back, so this request's own row is found above.)
        return session.execute(select(self.table.c.key).where(
            self.table.c.principal == principal, self.table.c.key == key)).first() is None

    def _release(self, session: Session, principal: str, key: str, claimed: Claim) -> None:
        """Free the key after a failure: delete this request's claim, or give a taken-over claim back to the request
        it was taken from. That one, if it still runs, then stores its answer; if it crashed, its lease has ended
        and the next retry takes the key over at once, as it would have found it free."""
        own = delete(self.table) if claimed.took_over is None else update(self.table).values(
            created_at=claimed.took_over)
        session.execute(own.where(*self._own(principal, key, claimed)))

    def _own(self, principal: str, key: str, claimed: Claim) -> tuple[Any, ...]:
        """The key's row while it is still this request's claim (made at `claimed.made`, not done)."""
        return (self.table.c.principal == principal, self.table.c.key == key, self.table.c.state == "in_flight",
                self.table.c.created_at == claimed.made)


def _now(keys: Keys) -> list[bytes]:
    """The keys in force: the list given, or what the function given answers now (the live keyring's)."""
    return keys() if callable(keys) else keys


def _canonical(body: bytes) -> bytes:
    """A JSON body spelled one way for its value (keys sorted, no spaces), so that a client that serialises the same
    JSON again for its retry (other spacing, other key order) is recognised as sending the same request. A body that
    is not JSON (or is empty) is kept as it is."""
    if not body:
        return body
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # not JSON (not UTF-8 either: UnicodeDecodeError is a ValueError)
        return body
    # ("surrogatepass": a lone surrogate escaped in the JSON, "\ud800", is a value too, and must not fail here)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _subject_of(subject: Subject, stored: Any) -> str | None:
    if subject is None or isinstance(subject, str):
        return subject
    found = subject(stored) if isinstance(stored, dict) else None
    return str(found) if found is not None else None


def _encoded(answer: tuple[int, Any]) -> tuple[int, Any]:
    status, body = answer
    return status, jsonable_encoder(body)


class StoredAnswers:
    """A service's stored answers as an erasure sees them: deleted by the case id beside them, with no key at all.
    For erasures re-applied from the ledger by a command-line process (`manage erasures apply`), which must erase
    even where it can not open a key (a sealed keyring, an OpenBao away)."""

    def __init__(self, tables: KitTables) -> None:
        self.table = tables.idempotency

    forget = Idempotency.forget
