"""kit.idempotency: request fingerprints are keyed HMACs that survive a KEK rotation, stored answers are linked to
the case they are about and deleted with it, and expired keys are purged by a clock, not by chance."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from sqlalchemy import MetaData, insert, select

from kit import problems
from kit.crypto import Keyring
from kit.db import make_engine, make_session_factory, transaction
from kit.idempotency import Idempotency
from kit.problems import Problem
from kit.settings import ServiceSettings
from kit.tables import KitTables

metadata = MetaData()
tables = KitTables(metadata)
T = tables.idempotency
BODY = b'{"full_name":"Ales Bialiatski","date_of_birth":"1962-09-25"}'


@pytest.fixture
def factory(tmp_path) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def idempotency(ring: Keyring) -> Idempotency:
    """As kit.service builds it: both keys derived from the service's KEKs, for their own purpose each."""
    return Idempotency(tables, ring.derived_keys("idempotency"),
                       fingerprint_keys=ring.derived_keys("idempotency-fingerprint"))


def app_for(idem: Idempotency, factory: Any) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/cases")
    async def create(request: Request) -> Any:
        case_id = request.headers.get("x-case", "case-1")

        def action(_session: Any) -> tuple[int, Any]:
            if request.headers.get("x-refuse"):
                raise Problem(409, "refused", kind="refused")
            return 201, {"id": case_id, "full_name": "Ales Bialiatski"}

        subject = request.headers.get("x-subject") or (lambda answer: answer.get("id"))
        return await idem.run(request, principal="cw", session_factory=factory, required=True, action=action,
                              subject=subject)

    return app


async def post(app: FastAPI, key: str, body: bytes = BODY, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/cases", content=body, headers={"Idempotency-Key": key, **headers})


def rows(factory: Any) -> list[dict[str, Any]]:
    with transaction(factory) as session:
        return [dict(r) for r in session.execute(select(T).order_by(T.c.key)).mappings()]


def ring_of(*kids: str) -> Keyring:
    """Fresh KEKs, the last one active."""
    return Keyring({kid: os.urandom(32) for kid in kids}, kids[-1])


async def test_a_fingerprint_is_a_keyed_hmac_not_a_plain_hash_of_the_request(factory, tmp_path):
    await post(app_for(idempotency(ring_of("k1")), factory), "a")
    [row] = rows(factory)
    plain = hashlib.sha256(b"POST /cases\n" + BODY).hexdigest()
    assert row["fingerprint"] != plain and len(row["fingerprint"]) == 64

    # Another service (another KEK) fingerprints the very same request differently.
    other = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    metadata.create_all(other.kw["bind"])
    await post(app_for(idempotency(ring_of("k1")), other), "a")
    assert rows(other)[0]["fingerprint"] not in (row["fingerprint"], plain)


async def test_a_replay_after_a_kek_rotation_still_matches_and_another_body_still_does_not(factory):
    k1, k2 = os.urandom(32), os.urandom(32)
    first = await post(app_for(idempotency(Keyring({"k1": k1}, "k1")), factory), "a")
    assert first.status_code == 201

    # `rehab keys rotate`, then a restart: every key is now derived from k2 first, k1 is still in the keyring.
    app = app_for(idempotency(Keyring({"k1": k1, "k2": k2}, "k2")), factory)
    replay = await post(app, "a")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert (await post(app, "a", body=BODY.replace(b"1962", b"1963"))).status_code == 422


async def test_answers_and_refusals_are_linked_to_their_case_and_forgotten_with_it(factory):
    idem = idempotency(ring_of("k1"))
    app = app_for(idem, factory)
    assert (await post(app, "created", **{"x-case": "case-1"})).status_code == 201  # linked by the answer's id
    assert (await post(app, "refused", **{"x-refuse": "1", "x-subject": "case-1"})).status_code == 409  # by the caller
    assert (await post(app, "other", **{"x-case": "case-2"})).status_code == 201
    assert {r["key"]: r["subject_id"] for r in rows(factory)} == {
        "created": "case-1", "refused": "case-1", "other": "case-2"}

    with transaction(factory) as session:
        assert idem.forget(session, "case-1") == 2
    assert [r["key"] for r in rows(factory)] == ["other"]
    again = await post(app, "created", **{"x-case": "case-3"})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers  # a new request now


async def test_the_purge_deletes_what_is_past_its_retention_by_the_clock(factory):
    idem = Idempotency(tables, [os.urandom(32)], fingerprint_keys=[os.urandom(32)], retention=timedelta(hours=30))
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with transaction(factory) as session:
        session.execute(insert(T), [
            {"principal": "cw", "key": k, "fingerprint": "0" * 64, "state": "done", "status_code": 201, "body": b"x",
             "created_at": now - age} for k, age in (("old", timedelta(hours=31)), ("young", timedelta(hours=29)))])
    with transaction(factory) as session:
        assert idem.purge(session, now=now) == 1
    assert [r["key"] for r in rows(factory)] == ["young"]
    with transaction(factory) as session:
        assert idem.purge(session, now=now + timedelta(hours=2)) == 1
    assert rows(factory) == []


def test_retention_is_a_setting_of_at_least_a_day():
    assert ServiceSettings().idempotency_retention_hours == 48
    with pytest.raises(ValidationError):
        ServiceSettings(idempotency_retention_hours=23)
    with pytest.raises(ValueError):
        Idempotency(tables, [os.urandom(32)], fingerprint_keys=[os.urandom(32)], retention=timedelta(hours=1))
