"""Idempotency-Key for POSTs (draft-ietf-httpapi-idempotency-key-header), keyed per caller.

- same key, same request → the first response again (same status, same body), nothing done again;
- same key, another request → 422; the first request still in flight → 409;
- the stored result commits in the same transaction as the effect, so a crash can never leave an effect
  without its record (a claim left by a crash expires after a lease and the request may then run again);
- nothing is stored when the request is refused as invalid (400/422) or fails (5xx);
- stored responses are sealed (they may contain personal data) and kept for `retention`, at least 24 hours;
  `purge` deletes what is older, run on a schedule by kit.service;
- a request is recognised by a keyed HMAC of it (its fingerprint), never a plain hash: a plain hash of a body
  holding a name and a birth date is reversed offline from any list of released prisoners;
- each stored row carries, in clear, the id of the case it is about (`subject_id`), so that erasing the case
  deletes its stored answers and fingerprints (`forget`) without opening anything: a service that cannot open
  an answer (sealed before a KEK rotation and a restart) still finds and deletes it.

A replay after `forget` finds nothing stored: like a key past its retention, the request is treated as new.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from kit import crypto
from kit.db import transaction
from kit.problems import Problem
from kit.tables import KitTables

HEADER = "Idempotency-Key"
MIN_RETENTION = timedelta(hours=24)  # SPEC §4: keys are kept at least 24 hours
Action = Callable[[Session], tuple[int, Any]]
# What a stored answer is about: the case id when the caller knows it from the request, or a function that reads it
# from what is stored (the answer's JSON, or the problem document of a refusal), e.g. `lambda answer: answer.get("id")`.
Subject = str | Callable[[Any], str | None] | None


class Idempotency:
    def __init__(
        self, tables: KitTables, sealing_keys: list[bytes], *, fingerprint_keys: list[bytes],
        lease: timedelta = timedelta(minutes=5), retention: timedelta = timedelta(hours=48),
    ) -> None:
        if retention < MIN_RETENTION:
            raise ValueError("stored answers must be kept at least 24 hours")
        if not sealing_keys or not fingerprint_keys:
            raise ValueError("idempotency needs a sealing key and a fingerprint key")
        self.table = tables.idempotency
        self._keys = sealing_keys  # the first seals; all are tried when opening (answers stored before a KEK rotation)
        # Fingerprint keys are derived from the KEKs like the sealing keys (`Keyring.derived_keys`), the active one
        # first: it computes new fingerprints, and a stored one matches when it equals the request's HMAC under any
        # of them, so a replay still matches after a rotation and a restart. Why not a key that never rotates
        # (e.g. from the blind-index key file): that one sits in a plain file, while the KEKs are what key custody
        # protects (SPEC §8: sealed under a passphrase, forgotten on `rehab seal`); and a KEK retired within the
        # retention window loses nothing more than it does already (the answers sealed under it no longer open).
        self._fingerprint_keys = fingerprint_keys
        self.lease = lease
        self.retention = retention

    async def run(
        self, request: Request, *, principal: str, session_factory: sessionmaker[Session], required: bool,
        action: Action, after_commit: Callable[[], None] | None = None, subject: Subject = None,
    ) -> Response:
        """Run `action(session)` once per (caller, key); it returns (status, body) and must not commit.

        `subject` links what is stored to the case it is about, so that erasing the case deletes it (`forget`).
        """
        key = request.headers.get(HEADER)
        if key is None:
            if required:
                raise Problem(400, f"This request needs an {HEADER} header, so that a retry cannot act twice.",
                              kind="idempotency-key-missing")
            with transaction(session_factory) as session:
                status, body = action(session)
            if after_commit:
                after_commit()
            return JSONResponse(jsonable_encoder(body), status_code=status)
        key = key.strip()
        if not key or len(key) > 200:
            raise Problem(400, f"The {HEADER} must be 1 to 200 characters.", kind="idempotency-key-invalid")
        signed = self._signed_request(request.method, request.url.path, await request.body(), principal, key)
        known = subject if isinstance(subject, str) else None

        replay = self._claim(session_factory, principal, key, signed, known)
        if replay is not None:
            return replay
        try:
            with transaction(session_factory) as session:
                status, body = action(session)
                encoded = jsonable_encoder(body)
                self._complete(session, principal, key, status, encoded, _subject_of(subject, encoded))
        except Problem as problem:
            if problem.status in (400, 422) or problem.status >= 500:
                self._release(session_factory, principal, key)
            else:
                with transaction(session_factory) as session:
                    doc = {"type": "https://rehab.support/problems/" + problem.kind, "title": problem.title,
                           "status": problem.status, "detail": problem.detail, **problem.extra}
                    self._complete(session, principal, key, problem.status, doc, _subject_of(subject, doc))
            raise
        except BaseException:
            self._release(session_factory, principal, key)
            raise
        if after_commit:
            after_commit()
        return JSONResponse(encoded, status_code=status)

    def forget(self, session: Session, subject: str) -> int:
        """Delete every stored answer and fingerprint about `subject` (a case being erased), in the caller's
        transaction; found by the id stored beside them, never by opening them. How many rows went."""
        return session.execute(delete(self.table).where(self.table.c.subject_id == subject)).rowcount

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

    def _same_request(self, stored: str, signed: bytes) -> bool:
        return any(hmac.compare_digest(stored, self._fingerprint(signed, k)) for k in self._fingerprint_keys)

    # ---- the stored rows -----------------------------------------------------------------------------------------

    def _claim(self, factory: sessionmaker[Session], principal: str, key: str, signed: bytes,
               subject: str | None) -> Response | None:
        now = datetime.now(UTC)
        fingerprint = self._fingerprint(signed, self._fingerprint_keys[0])  # under the active KEK's key
        claim = {"principal": principal, "key": key, "fingerprint": fingerprint, "state": "in_flight",
                 "created_at": now, "subject_id": subject}
        try:
            with transaction(factory) as session:
                session.execute(insert(self.table).values(**claim))
            return None
        except IntegrityError:
            pass
        with transaction(factory) as session:
            row = session.execute(
                select(self.table).where(self.table.c.principal == principal, self.table.c.key == key)
            ).mappings().first()
            if row is None:  # released (or forgotten) between our insert and this read: try once more
                session.execute(insert(self.table).values(**claim))
                return None
            if not self._same_request(row["fingerprint"], signed):
                raise Problem(422, f"This {HEADER} was already used with a different request.",
                              kind="idempotency-key-reused")
            if row["state"] == "in_flight":
                created = row["created_at"] if row["created_at"].tzinfo else row["created_at"].replace(tzinfo=UTC)
                if now - created < self.lease:
                    raise Problem(409, f"A request with this {HEADER} is still being processed.",
                                  kind="idempotency-key-in-flight", headers={"Retry-After": "1"})
                session.execute(update(self.table).where(
                    self.table.c.principal == principal, self.table.c.key == key).values(created_at=now))
                return None
            body = json.loads(self._open(row["body"], f"{principal}|{key}".encode()))
            media = "application/problem+json" if row["status_code"] >= 400 else "application/json"
            return JSONResponse(body, status_code=row["status_code"], media_type=media,
                                headers={"Idempotent-Replayed": "true"})

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        for candidate in self._keys:
            try:
                return crypto.open_sealed(candidate, blob, aad)
            except crypto.DecryptionError:
                continue
        raise crypto.DecryptionError("stored answer opens under no known key")

    def _complete(self, session: Session, principal: str, key: str, status: int, body: Any,
                  subject: str | None) -> None:
        sealed = crypto.seal(self._keys[0], json.dumps(body).encode(), f"{principal}|{key}".encode())
        values: dict[str, Any] = {"state": "done", "status_code": status, "body": sealed}
        if subject is not None:  # else keep what the claim knew
            values["subject_id"] = subject
        # No row when the case was erased while this request ran (its claim deleted): nothing is stored then.
        session.execute(update(self.table).where(
            self.table.c.principal == principal, self.table.c.key == key
        ).values(**values))

    def _release(self, factory: sessionmaker[Session], principal: str, key: str) -> None:
        with transaction(factory) as session:
            session.execute(delete(self.table).where(
                self.table.c.principal == principal, self.table.c.key == key, self.table.c.state == "in_flight"))


def _subject_of(subject: Subject, stored: Any) -> str | None:
    if subject is None or isinstance(subject, str):
        return subject
    found = subject(stored) if isinstance(stored, dict) else None
    return str(found) if found is not None else None
