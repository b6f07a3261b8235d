"""Idempotency-Key for POSTs (draft-ietf-httpapi-idempotency-key-header), keyed per caller.

- same key, same request → the first response again (same status, same body), nothing done again;
- same key, another request → 422; the first request still in flight → 409;
- the stored result commits in the same transaction as the effect, so a crash can never leave an effect
  without its record (a claim left by a crash expires after a lease and the request may then run again);
- nothing is stored when the request is refused as invalid (400/422) or fails (5xx);
- stored responses are sealed (they may contain personal data) and kept for `retention`, at least 24 hours.
"""

from __future__ import annotations

import hashlib
import json
import random
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
Action = Callable[[Session], tuple[int, Any]]


class Idempotency:
    def __init__(
        self, tables: KitTables, sealing_keys: list[bytes], *, lease: timedelta = timedelta(minutes=5),
        retention: timedelta = timedelta(hours=48),
    ) -> None:
        self.table = tables.idempotency
        self._keys = sealing_keys  # the first seals; all are tried when opening (answers stored before a KEK rotation)
        self.lease = lease
        self.retention = retention

    async def run(
        self, request: Request, *, principal: str, session_factory: sessionmaker[Session], required: bool,
        action: Action, after_commit: Callable[[], None] | None = None,
    ) -> Response:
        """Run `action(session)` once per (caller, key); it returns (status, body) and must not commit."""
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
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.url.path.encode() + b"\n" + await request.body()
        ).hexdigest()

        replay = self._claim(session_factory, principal, key, fingerprint)
        if replay is not None:
            return replay
        try:
            with transaction(session_factory) as session:
                status, body = action(session)
                encoded = jsonable_encoder(body)
                self._complete(session, principal, key, status, encoded)
        except Problem as problem:
            if problem.status in (400, 422) or problem.status >= 500:
                self._release(session_factory, principal, key)
            else:
                with transaction(session_factory) as session:
                    doc = {"type": "https://rehab.support/problems/" + problem.kind, "title": problem.title,
                           "status": problem.status, "detail": problem.detail, **problem.extra}
                    self._complete(session, principal, key, problem.status, doc)
            raise
        except BaseException:
            self._release(session_factory, principal, key)
            raise
        if after_commit:
            after_commit()
        return JSONResponse(encoded, status_code=status)

    def _claim(self, factory: sessionmaker[Session], principal: str, key: str, fingerprint: str) -> Response | None:
        now = datetime.now(UTC)
        try:
            with transaction(factory) as session:
                if random.random() < 0.01:
                    session.execute(delete(self.table).where(self.table.c.created_at < now - self.retention))
                session.execute(insert(self.table).values(
                    principal=principal, key=key, fingerprint=fingerprint, state="in_flight", created_at=now))
            return None
        except IntegrityError:
            pass
        with transaction(factory) as session:
            row = session.execute(
                select(self.table).where(self.table.c.principal == principal, self.table.c.key == key)
            ).mappings().first()
            if row is None:  # released between our insert and this read: try once more
                session.execute(insert(self.table).values(
                    principal=principal, key=key, fingerprint=fingerprint, state="in_flight", created_at=now))
                return None
            if row["fingerprint"] != fingerprint:
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

    def _complete(self, session: Session, principal: str, key: str, status: int, body: Any) -> None:
        sealed = crypto.seal(self._keys[0], json.dumps(body).encode(), f"{principal}|{key}".encode())
        session.execute(update(self.table).where(
            self.table.c.principal == principal, self.table.c.key == key
        ).values(state="done", status_code=status, body=sealed))

    def _release(self, factory: sessionmaker[Session], principal: str, key: str) -> None:
        with transaction(factory) as session:
            session.execute(delete(self.table).where(
                self.table.c.principal == principal, self.table.c.key == key, self.table.c.state == "in_flight"))
