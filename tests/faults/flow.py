"""A working day on the running system, for the fault tests: caseworkers register people and refer them, a clinic
works through its referrals, finance pays aid. Every call is timed and kept; afterwards `Reckoning` reads the
services' own databases to tell whether any event was lost or any effect applied twice.

All traffic goes to the system's own processes on 127.0.0.1, in bounded loops that stop by themselves.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tests.support.shared import NAME_VARIANTS
from tests.support.system import ADMIN_PASSWORD, STAFF_PASSWORD, System, activated, sign_in

NAMES_CSV = NAME_VARIANTS
SLOW_SECONDS = 5.0  # an answer slower than this counts as the API not staying up
UNAVAILABLE = {502, 503, 504}  # what the gateway answers for a service that is down, or died mid-request
BACKOFF_SECONDS = 0.25
# Refusals that mean "not yet": the service has not heard of the case (409), or of who it is assigned to (403
# need-to-know), as events are on their way.
NOT_YET = {403, 409}


def people() -> list[str]:
    with NAMES_CSV.open(encoding="utf-8") as f:
        return [row[column] for row in csv.DictReader(f) for column in ("belarusian", "latin_passport")]


@dataclass
class Call:
    op: str
    status: int  # 0: no answer at all (the gateway itself did not answer)
    seconds: float
    at: float
    problem: bool  # the body was application/problem+json

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def acceptable(self) -> bool:
        """Success, a business refusal, or a fast problem saying 'not now'."""
        if self.seconds > SLOW_SECONDS:
            return False
        if self.ok or (400 <= self.status < 500 and self.problem):
            return True
        return self.status in UNAVAILABLE and self.problem


def still_in_flight(answer: httpx.Response | None) -> bool:
    """409 "still being processed": the key's first request has not finished. Asked again under the same key."""
    if answer is None or answer.status_code != 409:
        return False
    try:
        kind = answer.json().get("type", "")
    except ValueError:
        return False
    return kind.endswith("/idempotency-key-in-flight")


def refused_for_now(answer: httpx.Response | None) -> bool:
    """A refusal a later try may not meet (the case, or who it is assigned to, not yet learned from intake's
    events). Asked again later under a new key: the refusal is the first key's answer for good (SPEC §4)."""
    return answer is not None and answer.status_code in NOT_YET and not still_in_flight(answer)


@dataclass
class Referral:
    id: str
    case_id: str
    status: str = "sent"
    uncertain: bool = False  # the last step got no usable answer: read the status before the next one


@dataclass
class Desk:
    """The signed-in staff and partner, and the reference data a working day needs."""

    system: System
    caseworker: httpx.Client
    finance: httpx.Client
    partner: httpx.Client
    partner_id: str
    grant_id: str

    @classmethod
    def open(cls, system: System) -> Desk:
        admin = sign_in(system.url, grant_type="password", username="admin", password=ADMIN_PASSWORD)
        suffix = uuid.uuid4().hex[:6]
        for username, roles in [(f"cw-{suffix}", ["caseworker"]), (f"fin-{suffix}", ["finance"])]:
            made = admin.post("/api/admin/users", json={"username": username, "password": STAFF_PASSWORD, "roles": roles})
            assert made.status_code == 201, made.text
        caseworker = sign_in(system.url, grant_type="password", username=f"cw-{suffix}", password=STAFF_PASSWORD)
        finance = sign_in(system.url, grant_type="password", username=f"fin-{suffix}", password=STAFF_PASSWORD)
        clinic = admin.post("/api/referrals/partners", json={
            "name": f"Clinic {suffix}", "category": "medical", "countries": ["LT"], "cities": ["Vilnius"],
            "languages": ["be", "ru"], "contact_email": "intake@clinic.example"})
        assert clinic.status_code == 201, clinic.text
        client = admin.post("/api/admin/clients", json={"partner_id": clinic.json()["id"], "name": "clinic api"})
        assert client.status_code == 201, client.text
        partner = sign_in(system.url, grant_type="client_credentials", **activated(system.url, client.json()))
        grant = finance.post("/api/funds/grants", json={
            "donor": "Solidarity Fund", "code": f"F-{suffix}", "currency": "EUR", "amount": "1000000.00",
            "starts_on": "2026-01-01", "ends_on": "2030-12-31", "categories": ["medical"]})
        assert grant.status_code == 201, grant.text
        return cls(system, caseworker.http, finance.http, partner.http, clinic.json()["id"], grant.json()["id"])


@dataclass
class Flow:
    """Two workers doing the day's work until `stop()`; every call kept in `calls`."""

    desk: Desk
    workers: int = 2
    calls: list[Call] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # created: 201
    paid: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _names: list[str] = field(default_factory=people)
    _aid_attempts: dict[str, int] = field(default_factory=dict)  # per case: refusals so far, a new key after each

    def start(self) -> None:
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)

    # ---- one worker ------------------------------------------------------------------------------------------

    def _work(self, number: int) -> None:
        rng = random.Random(number)
        to_refer: list[str] = []
        referrals: list[Referral] = []
        to_pay: list[str] = []
        for turn in itertools.count():
            if self._stop.is_set() or turn > 2000:  # bounded, whatever happens
                return
            case_id = self._new_case(rng)
            if case_id and self._consent(case_id):
                to_refer.append(case_id)
            if to_refer:
                referral = self._refer(to_refer[0])
                if referral is not None:
                    to_refer.pop(0)
                    referrals.append(referral)
            # One step of the clinic's work per turn: referrals move through their states as the day goes on.
            if referrals and self._advance(referrals[0]):
                to_pay.append(referrals.pop(0).case_id)
            if to_pay and turn % 2 == 0 and self._pay_aid(to_pay[0]):
                to_pay.pop(0)

    def _call(self, op: str, method: str, client: httpx.Client, path: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = client.request(method, path, timeout=10, **kwargs)
        except httpx.HTTPError:
            response = None
        seconds = time.monotonic() - started
        status = response.status_code if response is not None else 0
        problem = response is not None and response.headers.get("content-type", "").startswith("application/problem+json")
        with self._lock:
            self.calls.append(Call(op, status, seconds, started, problem))
        if status == 0 or status == 429 or status in UNAVAILABLE:
            time.sleep(BACKOFF_SECONDS)  # as a polite client does (Retry-After says 1 s; shorter keeps the clock fine)
        return response

    def _new_case(self, rng: random.Random) -> str | None:
        answer = self._call("create case", "POST", self.desk.caseworker, "/api/intake/cases",
                            json={"full_name": rng.choice(self._names), "country": "LT"})
        if answer is None or answer.status_code != 201:
            return None
        case_id = answer.json()["id"]
        with self._lock:
            self.cases.append(case_id)
        return case_id

    def _consent(self, case_id: str) -> bool:
        answer = self._call("record consent", "PUT", self.desk.caseworker, f"/api/intake/cases/{case_id}/consent",
                            json={"categories": ["medical"], "share_contact": False, "share_health": False,
                                  "method": "written", "expires_on": None})
        return answer is not None and answer.status_code in (200, 201)

    def _refer(self, case_id: str) -> Referral | None:
        """409 while referrals has not yet heard of the case or its consent (events in flight): tried again later."""
        answer = self._call("refer", "POST", self.desk.caseworker, "/api/referrals/referrals", json={
            "case_id": case_id, "partner_id": self.desk.partner_id, "need_category": "medical",
            "packet": {"display_name": "A. B.", "language": "be", "note": "prefers mornings"}})
        if answer is None or answer.status_code != 201:
            return None
        return Referral(answer.json()["id"], case_id)

    def _advance(self, referral: Referral) -> bool:
        """One step of the clinic's work on a referral; True once it is completed."""
        path = f"/api/partner/referrals/{referral.id}"
        if referral.uncertain:
            answer = self._call("partner reads referral", "GET", self.desk.partner, path)
            if answer is None or answer.status_code != 200:
                return False
            referral.status, referral.uncertain = answer.json()["status"], False
        step, body, after = {
            "sent": ("accept", None, "accepted"),
            "accepted": ("start", None, "in_progress"),
            "in_progress": ("complete", {"outcome": "treated", "cost_estimate": None}, "completed"),
        }.get(referral.status, (None, None, None))
        if step is None:
            return referral.status == "completed"
        answer = self._call(f"partner {step}", "POST", self.desk.partner, f"{path}/{step}", json=body)
        if answer is not None and answer.status_code == 200:
            referral.status = after
        else:
            referral.uncertain = True
        return referral.status == "completed"

    def _pay_aid(self, case_id: str) -> bool:
        """Request, approve and pay aid; a step that got no usable answer is sent again with the same
        Idempotency-Key, as a careful client does. A request refused (funds has not yet learned the case or who it
        is assigned to, after a restart) is asked again later under a new key: the key's answer is that refusal
        for good (SPEC §4). True when paid."""
        attempt = self._aid_attempts.get(case_id, 0)
        answer = self._call("request aid", "POST", self.desk.caseworker, "/api/funds/disbursements",
                            headers={"Idempotency-Key": f"aid-{case_id}-{attempt}"}, json={
                                "case_id": case_id, "grant_id": self.desk.grant_id, "category": "medical",
                                "amount": "10.00", "currency": "EUR", "purpose": "clinic visit"})
        if refused_for_now(answer):
            self._aid_attempts[case_id] = attempt + 1  # each case is one worker's: no other thread writes its entry
        if answer is None or answer.status_code != 201:
            return False
        disbursement = answer.json()["id"]
        for _ in range(5):
            approved = self._call("approve aid", "POST", self.desk.finance, f"/api/funds/disbursements/{disbursement}/approve")
            if approved is not None and (approved.status_code == 200 or approved.status_code == 409):
                break  # 409: approved by the try before, whose answer was lost
            time.sleep(0.3)
        for _ in range(5):
            paid = self._call("pay aid", "POST", self.desk.finance, f"/api/funds/disbursements/{disbursement}/pay",
                              headers={"Idempotency-Key": f"pay-{disbursement}"},
                              json={"method": "bank_transfer", "reference": f"TX-{disbursement[:8]}"})
            if paid is not None and paid.status_code == 200:
                with self._lock:
                    self.paid.append(disbursement)
                return True
            time.sleep(0.3)
        return True  # not paid in time: left as it is, the ledger must balance all the same

    # ---- what happened ---------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        statuses = Counter(call.status for call in self.calls)
        latencies = sorted(call.seconds for call in self.calls)
        return {
            "calls": len(self.calls),
            "ok": sum(call.ok for call in self.calls),
            "by_status": dict(sorted(statuses.items())),
            "max_seconds": round(latencies[-1], 3) if latencies else 0,
            "p99_seconds": round(latencies[int(len(latencies) * 0.99)], 3) if latencies else 0,
            "cases_created": len(self.cases),
            "aid_paid": len(self.paid),
        }

    def unacceptable(self) -> list[Call]:
        return [call for call in self.calls if not call.acceptable]

    def outage(self, since: float) -> float:
        """Seconds from `since` to the last 'not available' answer after it (0 when there was none)."""
        unavailable = [call.at + call.seconds for call in self.calls if call.at >= since and not call.ok
                       and (call.status in UNAVAILABLE or call.status == 0)]
        return round(max(unavailable) - since, 2) if unavailable else 0.0


class Reckoning:
    """What the services' own databases say, once the system is quiet: ids, states and counts only."""

    def __init__(self, system: System) -> None:
        self.system = system
        # A new connection per look: a pooled one would not survive the database restarts these tests cause.
        self.engines = {name: create_engine(system.database_url(name), poolclass=NullPool)
                        for name in ("intake", "referrals", "funds", "reports")}
        self._consumers: dict[str, tuple[str, set[str]]] | None = None

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def rows(self, service: str, sql: str, **params: Any) -> list[tuple]:
        with self.engines[service].connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), params)]

    def count(self, service: str, sql: str, **params: Any) -> int:
        return int(self.rows(service, sql, **params)[0][0])

    def consumers(self) -> dict[str, tuple[str, set[str]]]:
        """Each durable consumer: the stream's producer and the subjects it takes (asked of NATS once; a durable is
        named `<consuming service>-<producer>`)."""
        if self._consumers is None:
            self._consumers = asyncio.run(_consumer_filters(self.system))
        return self._consumers

    def lost(self) -> dict[str, Any]:
        """Everything that should have travelled but has not (yet): empty when the system has caught up."""
        cases = {row[0] for row in self.rows("intake", "SELECT id FROM cases")}
        gaps: dict[str, Any] = {}
        # Every event published is in the inbox of every consumer that takes it (consent changes included, which
        # leave no other trace that could be counted).
        published = {producer: dict(self.rows(producer, "SELECT subject, count(*) FROM outbox "
                                                        "WHERE published_at IS NOT NULL GROUP BY subject"))
                     for producer in {producer for producer, _ in self.consumers().values()}}
        for durable, (producer, subjects) in self.consumers().items():
            wanted = sum(count for subject, count in published[producer].items() if subject in subjects)
            consumer_service = durable.split("-", 1)[0]
            applied = self.count(consumer_service, "SELECT count(*) FROM inbox WHERE consumer = :durable",
                                 durable=durable)
            if applied < wanted:
                gaps[f"events not yet applied by {durable}"] = wanted - applied
        for service in ("referrals", "funds"):
            known = {row[0] for row in self.rows(service, "SELECT case_id FROM cases")}
            if cases - known:
                gaps[f"cases unknown to {service}"] = len(cases - known)
        for service in self.engines:
            unpublished = self.count(service, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            if unpublished:
                gaps[f"{service} outbox unpublished"] = unpublished
        # Every step referrals and funds recorded is on the intake timeline.
        for service, kind in (("referrals", "referral"), ("funds", "disbursement")):
            steps = self.count(service, f"SELECT count(*) FROM outbox WHERE subject LIKE 'rehab.{service}.{kind}.%'")
            on_timeline = self.count("intake", f"SELECT count(*) FROM timeline_entries WHERE kind LIKE '{kind}.%'")
            if on_timeline < steps:
                gaps[f"{kind} steps not on the timeline"] = steps - on_timeline
        return gaps

    def doubled(self) -> dict[str, Any]:
        """Effects applied more than once: timeline entries repeated for the same step of the same referral or
        disbursement, or a disbursement paid twice."""
        problems: dict[str, Any] = {}
        repeated = self.rows("intake", "SELECT case_id, kind, count(*) FROM timeline_entries "
                                       "WHERE source IN ('referrals', 'funds') "
                                       "GROUP BY case_id, kind, CAST(details AS TEXT) HAVING count(*) > 1")
        if repeated:
            problems["timeline steps repeated"] = len(repeated)
        paid_twice = self.rows("funds", "SELECT disbursement_id, count(*) FROM payments GROUP BY disbursement_id "
                                        "HAVING count(*) > 1")
        if paid_twice:
            problems["disbursements paid twice"] = len(paid_twice)
        parked = sum(self.count(service, "SELECT count(*) FROM dead_letters") for service in self.engines)
        if parked:
            problems["dead letters"] = parked
        return problems

    def events(self) -> dict[str, int]:
        """Events sent (outbox rows published) and delivered (inbox rows: applied once per consumer)."""
        sent = sum(self.count(service, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
                   for service in self.engines)
        delivered = sum(self.count(service, "SELECT count(*) FROM inbox") for service in self.engines)
        return {"events_sent": sent, "events_applied": delivered}

    def ledger_check(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.funds.manage", "ledger", "check"], env=self.system.env,
                              capture_output=True, text=True, timeout=60, check=False)


async def _consumer_filters(system: System) -> dict[str, tuple[str, set[str]]]:
    nc = await nats.connect(system.nats_url, **system.nats_options())
    try:
        js = nc.jetstream()
        found: dict[str, tuple[str, set[str]]] = {}
        for producer in ("intake", "referrals", "funds"):
            for info in await js.consumers_info(producer.upper()):
                subjects = set(info.config.filter_subjects or [info.config.filter_subject])
                found[info.config.durable_name] = (producer, subjects)
        return found
    finally:
        await nc.close()


def wait_until_caught_up(reckoning: Reckoning, timeout: float = 45.0) -> float:
    """Poll until nothing is missing; the seconds it took. Fails with what is still missing."""
    started = time.monotonic()
    gaps: dict[str, Any] = {}
    while time.monotonic() - started < timeout:
        gaps = reckoning.lost()
        if not gaps:
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"events lost or stuck after {timeout}s: {gaps}")


def wait_listening(system: System, name: str, old_pid: int, timeout: float = 30.0) -> float:
    """Seconds until a new process (not `old_pid`) listens on `name`'s port again."""
    from tests.support.system import pid_listening_on

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pid = pid_listening_on(system.ports[name])
        if pid is not None and pid != old_pid:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{name} did not come back within {timeout}s")
