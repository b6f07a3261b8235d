"""kit.idempotency: request fingerprints are keyed HMACs that survive a KEK rotation, stored answers are linked to
the case they are about and deleted with it, expired keys are purged by a clock, not by chance, and every step runs
as a unit of the process's unit of work (claim, action with its stored answer, release). A request whose key is still
in flight is 409 in the first one's process too; a JSON body is recognised by its value, not its spelling."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from kit import problems
from kit.crypto import Keyring, seal
from kit.db import UnitOfWork, make_engine, make_session_factory, transaction
from kit.idempotency import Claim, Idempotency, _canonical
from kit.problems import Problem
from kit.settings import ServiceSettings
from kit.tables import KitTables

metadata = MetaData()
tables = KitTables(metadata)
T = tables.idempotency
effects = Table("effects", metadata, Column("n", Integer, primary_key=True), Column("case_id", String(64)))
BODY = b'{"full_name":"Ales Bialiatski","date_of_birth":"1962-09-25"}'
NAMING = os.urandom(32)  # the secret a key's row is named by (the process's audit key, in kit.service)


@pytest.fixture
def factory(tmp_path) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def idempotency(ring: Keyring) -> Idempotency:
    """As kit.service builds it: both keys derived from the service's KEKs, for their own purpose each."""
    return Idempotency(tables, ring.derived_keys("idempotency"),
                       fingerprint_keys=ring.derived_keys("idempotency-fingerprint"), naming_secret=lambda: NAMING)


def named(key: str, principal: str = "cw") -> str:
    """The name the row of `key`, sent by `principal`, is stored under."""
    return idempotency(ring_of("k1"))._row_key(principal, key)


class Held:
    """The unit of work of a request sent with `x-hold`: its claim is committed, then its action waits until the test
    lets it `go`. Units run on the event loop (kit.db.UnitOfWork), so the action is held before its unit, by an
    asyncio event: blocking inside the action would stop the loop, and the second request with it."""

    def __init__(self) -> None:
        self.claimed, self.go = asyncio.Event(), asyncio.Event()
        self.units = 0
        self.uow: UnitOfWork | None = None

    def over(self, uow: UnitOfWork) -> Held:
        self.uow = uow
        return self

    async def run(self, work: Any) -> Any:
        assert self.uow is not None
        self.units += 1
        if self.units == 2:  # the action's unit, once the claim's is committed
            self.claimed.set()
            await self.go.wait()
        return await self.uow.run(work)


def app_for(idem: Idempotency, factory: Any, *, required: bool = True, held: Held | None = None) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    uow = UnitOfWork(factory.kw["bind"], factory)

    @app.post("/cases")
    async def create(request: Request) -> Any:
        case_id = request.headers.get("x-case", "case-1")

        def action(session: Any) -> tuple[int, Any]:
            if request.headers.get("x-refuse"):
                raise Problem(int(request.headers["x-refuse"]), "refused", kind="refused")
            session.execute(insert(effects).values(case_id=case_id))  # the effect commits with the stored answer
            return 201, {"id": case_id, "full_name": "Ales Bialiatski"}

        subject = request.headers.get("x-subject") or (lambda answer: answer.get("id"))
        unit: Any = held.over(uow) if held is not None and request.headers.get("x-hold") else uow
        return await idem.run(request, principal="cw", uow=unit, required=required, action=action, subject=subject,
                              headers=lambda answer: {"Location": f"/cases/{answer['id']}"})

    return app


async def post(app: FastAPI, key: str | None, body: bytes = BODY, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        sent = {"Idempotency-Key": key} if key is not None else {}
        return await client.post("/cases", content=body, headers={**sent, **headers})


def effects_done(factory: Any) -> list[str]:
    with transaction(factory) as session:
        return list(session.execute(select(effects.c.case_id)).scalars())


def rows(factory: Any) -> list[dict[str, Any]]:
    with transaction(factory) as session:
        return [dict(r) for r in session.execute(select(T).order_by(T.c.key)).mappings()]


def ring_of(*kids: str) -> Keyring:
    """Fresh KEKs, the last one active."""
    return Keyring({kid: os.urandom(32) for kid in kids}, kids[-1])


K = named("k")  # the row of the key "k", as the tests of the claim's steps below hold it


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
    assert (await post(app, "refused", **{"x-refuse": "409", "x-subject": "case-1"})).status_code == 409  # by the caller
    assert (await post(app, "other", **{"x-case": "case-2"})).status_code == 201
    assert {r["key"]: r["subject_id"] for r in rows(factory)} == {
        named("created"): "case-1", named("refused"): "case-1", named("other"): "case-2"}

    with transaction(factory) as session:
        assert idem.forget(session, "case-1") == 2
    assert [r["key"] for r in rows(factory)] == [named("other")]
    again = await post(app, "created", **{"x-case": "case-3"})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers  # a new request now


async def test_the_purge_deletes_what_is_past_its_retention_by_the_clock(factory):
    idem = Idempotency(tables, [os.urandom(32)], fingerprint_keys=[os.urandom(32)], naming_secret=lambda: NAMING,
                       retention=timedelta(hours=30))
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
        Idempotency(tables, [os.urandom(32)], fingerprint_keys=[os.urandom(32)], naming_secret=lambda: NAMING,
                       retention=timedelta(hours=1))


async def test_an_answer_is_given_once_and_replayed_with_its_headers_and_its_effect_done_once(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    first = await post(app, "a")
    assert first.status_code == 201 and first.headers["location"] == "/cases/case-1"
    assert "idempotent-replayed" not in first.headers
    replay = await post(app, "a")
    assert replay.status_code == 201 and replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true" and replay.headers["location"] == "/cases/case-1"
    assert effects_done(factory) == ["case-1"]
    [row] = rows(factory)
    assert row["state"] == "done" and row["status_code"] == 201


async def test_a_key_is_needed_when_required_and_must_be_well_formed(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    missing = await post(app, None)
    assert missing.status_code == 400 and missing.json()["type"].endswith("/idempotency-key-missing")
    for bad in (" ", "k" * 201):
        assert (await post(app, bad)).json()["type"].endswith("/idempotency-key-invalid")
    assert rows(factory) == [] and effects_done(factory) == []


async def test_without_a_key_when_not_required_the_action_runs_each_time_and_nothing_is_stored(factory):
    app = app_for(idempotency(ring_of("k1")), factory, required=False)
    for _ in range(2):
        answer = await post(app, None)
        assert answer.status_code == 201 and answer.headers["location"] == "/cases/case-1"
    assert effects_done(factory) == ["case-1", "case-1"] and rows(factory) == []


async def test_another_request_under_the_same_key_is_refused_and_one_in_flight_is_told_to_wait(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    await post(app, "a")
    other = await post(app, "a", body=BODY.replace(b"1962", b"1963"))
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")

    with transaction(factory) as session:  # as if the first request with key "a" were still running
        session.execute(update(T).values(state="in_flight", status_code=None, body=None))
    waiting = await post(app, "a")
    assert waiting.status_code == 409 and waiting.headers["retry-after"] == "1"
    assert effects_done(factory) == ["case-1"] and rows(factory)[0]["state"] == "in_flight"


async def test_a_claim_left_by_a_crash_expires_after_its_lease(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    await post(app, "a", **{"x-refuse": "503"})  # released: nothing stored
    assert rows(factory) == []
    idem = idempotency(ring_of("k1"))
    app = app_for(idem, factory)
    first = await post(app, "c")
    with transaction(factory) as session:  # as if the process died after its claim, long ago
        session.execute(update(T).values(state="in_flight", status_code=None, body=None,
                                         created_at=datetime.now(UTC) - idem.lease - timedelta(seconds=1)))
    again = await post(app, "c")
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers and again.json() == first.json()
    assert len(effects_done(factory)) == 2


async def test_a_retry_after_a_crash_is_told_to_wait_for_the_end_of_the_lease_not_every_second(factory):
    idem = idempotency(ring_of("k1"))
    app = app_for(idem, factory)
    await post(app, "c")
    claimed = datetime.now(UTC) - timedelta(seconds=10)  # a claim a process left when it died, 10 s ago
    with transaction(factory) as session:
        session.execute(update(T).values(state="in_flight", status_code=None, body=None, created_at=claimed))
    waiting = await post(app, "c")
    assert idem.lease == timedelta(seconds=30)  # short: a gateway gives up on a request after 10 s
    assert waiting.status_code == 409 and int(waiting.headers["retry-after"]) in (19, 20)


def test_a_request_whose_key_a_retry_took_over_completes_nothing_and_releases_nothing(factory):
    """The first request ran past its lease; a retry claimed the key anew (and may be done). The first one's answer
    is not stored (its transaction is then rolled back by the caller: `_once` raises), and its release leaves the
    retry's claim alone."""
    idem = idempotency(ring_of("k1"))
    signed = idem._signed_request("POST", "/cases", BODY, "cw", "k")
    with transaction(factory) as session:
        first = idem._claim(session, "cw", "k", signed, None)
    with transaction(factory) as session:  # its lease ends
        session.execute(update(T).values(created_at=first.made - idem.lease - timedelta(seconds=1)))
    first = Claim(first.made - idem.lease - timedelta(seconds=1), key=K)
    with transaction(factory) as session:  # a retry takes the key over
        retry = idem._claim(session, "cw", "k", signed, None)
    assert retry.took_over == first.made
    with transaction(factory) as session:
        assert idem._complete(session, "cw", K, first, 201, {"id": "case-1"}, None) is False
        idem._release(session, "cw", K, first)
    assert [(r["state"], r["created_at"].replace(tzinfo=UTC)) for r in rows(factory)] == [("in_flight", retry.made)]
    with transaction(factory) as session:  # the retry's own claim completes
        assert idem._complete(session, "cw", K, retry, 201, {"id": "case-1"}, None) is True
    assert rows(factory)[0]["state"] == "done"


def test_a_retry_that_took_a_key_over_and_failed_gives_it_back_to_the_request_still_running(factory):
    """The first request runs past its lease; a retry takes the key over and fails (a 5xx). Had the retry deleted the
    claim, the first request would find no row when it completes, keep its effect with no stored answer, and a third
    try would act again. The claim is given back: the first stores its answer, and the third try replays it."""
    idem = idempotency(ring_of("k1"))
    signed = idem._signed_request("POST", "/cases", BODY, "cw", "k")
    long_ago = datetime.now(UTC) - idem.lease - timedelta(seconds=1)
    with transaction(factory) as session:
        idem._claim(session, "cw", "k", signed, None)
        session.execute(update(T).values(created_at=long_ago))
    first = Claim(long_ago, key=K)  # still running, past its lease
    with transaction(factory) as session:
        retry = idem._claim(session, "cw", "k", signed, None)
    with transaction(factory) as session:  # the retry fails
        idem._release(session, "cw", K, retry)
    with transaction(factory) as session:
        assert idem._complete(session, "cw", K, first, 201, {"id": "case-1"}, None) is True
    with transaction(factory) as session:
        assert idem._claim(session, "cw", "k", signed, None) == (201, {"id": "case-1"})


def test_a_key_taken_over_from_a_crash_and_given_back_is_taken_over_again_at_once(factory):
    """Given back to a request that crashed long ago, the key is as free as if it had been deleted: the next retry
    claims it without waiting, and a retry that fails on a fresh claim still deletes it."""
    idem = idempotency(ring_of("k1"))
    signed = idem._signed_request("POST", "/cases", BODY, "cw", "k")
    with transaction(factory) as session:
        idem._claim(session, "cw", "k", signed, None)
        session.execute(update(T).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
    with transaction(factory) as session:
        retry = idem._claim(session, "cw", "k", signed, None)
        idem._release(session, "cw", K, retry)
    with transaction(factory) as session:
        again = idem._claim(session, "cw", "k", signed, None)
    assert isinstance(again, Claim) and again.took_over is not None
    with transaction(factory) as session:
        session.execute(delete(T))
        fresh = idem._claim(session, "cw", "k", signed, None)
        idem._release(session, "cw", K, fresh)
    assert rows(factory) == []


async def test_refusals_are_stored_and_replayed_but_invalid_requests_and_failures_are_not(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    refused = await post(app, "conflict", **{"x-refuse": "409"})
    replayed = await post(app, "conflict")  # the same request: the refusal again, the action not run
    assert refused.status_code == replayed.status_code == 409
    assert replayed.headers["idempotent-replayed"] == "true" and "location" not in replayed.headers
    assert replayed.headers["content-type"] == "application/problem+json" and replayed.json() == refused.json()
    for status in ("400", "422", "500"):
        assert (await post(app, f"not-{status}", **{"x-refuse": status})).status_code == int(status)
    assert [r["key"] for r in rows(factory)] == [named("conflict")] and effects_done(factory) == []
    retried = await post(app, "not-422")  # nothing was stored: the retry runs
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers


async def test_a_request_whose_key_is_in_flight_in_the_same_process_is_409_and_later_the_first_answer_replayed(
        factory):
    """SPEC §4: "a request still in flight with that key is 409", in the first one's own process too: the second is
    told to come back (Retry-After), not kept waiting for the first."""
    held = Held()
    app = app_for(idempotency(ring_of("k1")), factory, held=held)
    first_sent = asyncio.create_task(post(app, "same", **{"x-hold": "1"}))
    try:
        await asyncio.wait_for(held.claimed.wait(), 5)  # the first's claim is committed, its action not done
        second = await asyncio.wait_for(post(app, "same"), 5)
        assert second.status_code == 409 and second.json()["type"].endswith("/idempotency-key-in-flight")
        assert second.headers["retry-after"] == "1" and "idempotent-replayed" not in second.headers
        assert effects_done(factory) == []
    finally:
        held.go.set()
    first = await asyncio.wait_for(first_sent, 5)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    third = await post(app, "same")
    assert third.status_code == 201 and third.headers["idempotent-replayed"] == "true"
    assert third.json() == first.json() and third.headers["location"] == "/cases/case-1"
    assert effects_done(factory) == ["case-1"]


async def test_concurrent_requests_of_one_process_with_one_key_act_once_the_others_are_told_it_is_in_flight(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    answers = await asyncio.gather(*(post(app, "same") for _ in range(5)))
    done = [a for a in answers if a.status_code == 201]
    in_flight = [a for a in answers if a.status_code == 409]
    assert done and len(done) + len(in_flight) == 5 and len({a.text for a in done}) == 1
    assert all(a.json()["type"].endswith("/idempotency-key-in-flight") and a.headers["retry-after"] == "1"
               for a in in_flight)
    assert effects_done(factory) == ["case-1"]


async def test_the_same_json_spelled_otherwise_is_the_same_request_and_another_value_is_not(factory):
    """A client that serialises the body again for its retry (other spacing, other key order) sends the same request:
    its answer is replayed, not refused as another request (422)."""
    app = app_for(idempotency(ring_of("k1")), factory)
    first = await post(app, "a")
    respelled = json.dumps({"date_of_birth": "1962-09-25", "full_name": "Ales Bialiatski"}, indent=2).encode()
    assert respelled != BODY
    replay = await post(app, "a", body=respelled)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    other = await post(app, "a", body=respelled.replace(b"1962", b"1963"))
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert effects_done(factory) == ["case-1"]

    # A body that is not JSON is compared byte for byte.
    assert (await post(app, "text", body=b"not json")).status_code == 201
    assert (await post(app, "text", body=b"not json")).headers["idempotent-replayed"] == "true"
    assert (await post(app, "text", body=b"not  json")).status_code == 422


async def test_a_row_fingerprinted_over_the_body_as_sent_before_fingerprints_were_canonical_still_matches(factory):
    """Rows claimed before fingerprints were canonical hold the HMAC of the body's bytes as sent, and are kept for
    the retention (48 h): a retry of those bytes is still the same request. New claims store the canonical form."""
    idem = idempotency(ring_of("k1"))
    app = app_for(idem, factory)
    sent = b'{"full_name": "Ales Bialiatski",  "date_of_birth": "1962-09-25"}'
    canonical = json.dumps(json.loads(sent), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    first = await post(app, "old", body=sent)
    key = idem._fingerprint_keys[0]
    as_sent = idem._fingerprint(idem._signed_request("POST", "/cases", sent, "cw", "old"), key)
    [row] = rows(factory)
    assert row["fingerprint"] == idem._fingerprint(idem._signed_request("POST", "/cases", canonical, "cw", "old"), key)
    assert row["fingerprint"] != as_sent

    with transaction(factory) as session:  # as the code before stored it
        session.execute(update(T).values(fingerprint=as_sent))
    replay = await post(app, "old", body=sent)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert (await post(app, "old", body=sent.replace(b"1962", b"1963"))).status_code == 422
    assert effects_done(factory) == ["case-1"]


async def test_a_rotation_while_running_seals_new_answers_under_the_new_kek_and_a_retired_one_is_refused_clearly(
        factory, tmp_path):
    """The keys come from the live keyring: after a rotation picked up from the file, new answers are sealed under
    the new KEK (so retiring the old one loses nothing stored since); an answer whose KEK was retired is a clear
    refusal, never a 500 and never the request run again."""
    from kit.crypto import add_key_to_file, remove_key_from_file
    from kit.secrets import KEK_FILE, ensure_secrets

    ensure_secrets(tmp_path / "secrets")
    kek_file = tmp_path / "secrets" / "intake" / KEK_FILE
    ring = Keyring.from_file(kek_file)
    app = app_for(Idempotency(tables, lambda: ring.derived_keys("idempotency"),
                              fingerprint_keys=lambda: ring.derived_keys("idempotency-fingerprint"),
                              naming_secret=lambda: NAMING), factory)
    first = await post(app, "before", **{"x-case": "a"})
    old = ring.active
    new = add_key_to_file(kek_file)
    assert ring.active == new  # picked up without a restart
    second = await post(app, "after", **{"x-case": "b"})
    remove_key_from_file(kek_file, old)
    replay_after = await post(app, "after", **{"x-case": "b"})
    replay_before = await post(app, "before", **{"x-case": "a"})
    assert first.status_code == second.status_code == 201
    assert replay_after.status_code == 201 and replay_after.json() == second.json()
    assert replay_before.status_code in (409, 422)  # refused: never run twice, never a 500
    assert replay_before.headers["content-type"] == "application/problem+json"
    assert effects_done(factory) == ["a", "b"]


async def test_two_idempotency_keys_are_refused_not_one_of_them_chosen(factory):
    app = app_for(idempotency(ring_of("k1")), factory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/cases", content=BODY, headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
    assert answer.status_code == 400 and answer.json()["type"].endswith("/idempotency-key-invalid")
    assert effects_done(factory) == [] and rows(factory) == []


async def test_a_key_is_stored_only_as_a_keyed_hmac_of_caller_and_key_never_as_sent(factory, tmp_path):
    """A client may build its keys from what it knows of the person: a dump must not hold them (an outside review's
    find). Neither the key nor the caller joined to it is anywhere in the database file."""
    key = "bialiatski-ales-1962-09-25-referral"
    app = app_for(idempotency(ring_of("k1")), factory)
    assert (await post(app, key)).status_code == 201
    [row] = rows(factory)
    assert row["key"] == named(key) and row["key"].startswith("h:") and len(row["key"]) == 66
    assert named(key) != named(key, principal="another-caller")  # each caller's keys are its own
    factory.kw["bind"].dispose()
    written = b"".join(p.read_bytes() for p in tmp_path.glob("k.db*"))
    assert b"bialiatski" not in written.lower() and b"1962-09-25-referral" not in written
    replay = await post(app, key)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert effects_done(factory) == ["case-1"]


async def test_a_row_an_earlier_release_stored_under_the_key_as_sent_is_still_found_for_one_retention(factory):
    """Rows of the release before keys were named: a retry finds its answer (never acted twice), one still in flight
    is still in flight, and a key as sent that looks like a name (`h:…`) is found as well. No row is renamed: an
    earlier release's replica still running beside this one would miss it (an outside review's find)."""
    idem = idempotency(ring_of("k1"))
    app = app_for(idem, factory)
    assert (await post(app, "sent-before", **{"x-case": "a"})).status_code == 201
    with transaction(factory) as session:  # as the row was stored before keys were named: key as sent, its AAD too
        [row] = session.execute(select(T)).mappings().all()
        answer = idem._open(row["body"], f"cw|{row['key']}".encode())
        session.execute(update(T).where(T.c.key == row["key"]).values(
            key="sent-before", body=seal(idem._keys[0], answer, b"cw|sent-before")))
        running = idem._signed_request("POST", "/cases", _canonical(BODY), "cw", "h:running")
        session.execute(insert(T).values(principal="cw", key="h:running",
                                         fingerprint=idem._fingerprint(running, idem._fingerprint_keys[0]),
                                         state="in_flight", created_at=datetime.now(UTC), subject_id="b"))

    replay = await post(app, "sent-before", **{"x-case": "a"})
    running = await post(app, "h:running", **{"x-case": "a"})

    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert running.status_code == 409 and running.json()["type"].endswith("/idempotency-key-in-flight")
    assert effects_done(factory) == ["a"]
    assert sorted(r["key"] for r in rows(factory)) == ["h:running", "sent-before"]  # as they were
    idem._legacy_until = datetime.now(UTC)  # one retention later none is left: no more looked for
    later = await post(app, "sent-before", **{"x-case": "a"})
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
