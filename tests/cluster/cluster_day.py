"""A working day through both gateways of a cluster, from clients that retry as a careful client must: every write
carries an Idempotency-Key, and a write without a definite answer (no answer, 500, 502/503/504, 409 "still being
processed") is sent again with the same key, to the other gateway. A definite refusal (409 "case not known yet")
is a new request later, with a new key. Every attempt is kept, so each fault's failed requests can be counted.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.flow import NOT_YET, Desk, people, still_in_flight

UNCERTAIN = {0, 500, 502, 503, 504, 429}  # the write may or may not have happened: the same key again
RETRY_PAUSE = 0.3
GIVE_UP_AFTER = 90.0  # seconds of retrying one request before it counts as unfinished (it never has, so far)


@dataclass
class Attempt:
    op: str
    status: int  # 0: no answer at all
    at: float
    gateway: int

    @property
    def failed(self) -> bool:
        return self.status in UNCERTAIN


@dataclass
class Day:
    urls: list[str]
    desk: Desk
    workers: int = 2
    attempts: list[Attempt] = field(default_factory=list)
    cases: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → case id
    referrals: dict[str, str] = field(default_factory=dict)
    disbursements: dict[str, str] = field(default_factory=dict)
    paid: dict[str, str] = field(default_factory=dict)  # Idempotency-Key → disbursement id
    completed: set[str] = field(default_factory=set)  # referral ids
    unfinished: list[str] = field(default_factory=list)  # writes that never got a definite answer
    unexpected: list[tuple[str, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self._http = [httpx.Client(base_url=url, timeout=10) for url in self.urls]
        self._turns = itertools.count()
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, args=(number,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=GIVE_UP_AFTER + 30)
        for client in self._http:
            client.close()

    # ---- one request, until it has a definite answer -------------------------------------------------------------

    def call(self, op: str, who: httpx.Client, method: str, path: str, *, key: str | None = None,
             json: Any = None) -> httpx.Response | None:
        headers = {"Authorization": who.headers["Authorization"]}
        if key is not None:
            headers["Idempotency-Key"] = key
        give_up = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < give_up:
            with self._lock:
                gateway = next(self._turns) % len(self._http)  # each attempt to the next gateway in turn
            started = time.monotonic()
            try:
                answer: httpx.Response | None = self._http[gateway].request(method, path, headers=headers, json=json)
            except httpx.HTTPError:
                answer = None
            status = answer.status_code if answer is not None else 0
            with self._lock:
                self.attempts.append(Attempt(op, status, started, gateway))
            if status in UNCERTAIN or still_in_flight(answer):
                time.sleep(RETRY_PAUSE)
                continue
            return answer
        with self._lock:
            self.unfinished.append(op)
        return None

    def _write_until(self, op: str, who: httpx.Client, path: str, body: Any, wanted: int) -> httpx.Response | None:
        """A POST that may be refused for now (NOT_YET: the service has not heard of the case yet): asked again
        later with a new key (a refusal is stored under its key)."""
        give_up = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < give_up and not self._stop.is_set():
            key = f"{op.replace(' ', '-')}-{uuid.uuid4()}"
            answer = self.call(op, who, "POST", path, key=key, json=body)
            if answer is None:
                return None
            if answer.status_code == wanted:
                return answer
            if answer.status_code not in NOT_YET:
                self._unexpected(op, answer)
                return None
            time.sleep(RETRY_PAUSE)
        return None

    def _unexpected(self, op: str, answer: httpx.Response) -> None:
        with self._lock:
            self.unexpected.append((op, answer.status_code, answer.text[:300]))

    # ---- one worker's day ------------------------------------------------------------------------------------

    def _work(self, number: int) -> None:
        rng = random.Random(number)
        names = people()
        desk = self.desk
        for _turn in range(200):  # bounded, whatever happens
            if self._stop.is_set():
                return
            key = f"case-{uuid.uuid4()}"
            made = self.call("create case", desk.caseworker, "POST", "/api/intake/cases", key=key,
                             json={"full_name": rng.choice(names), "country": "LT"})
            if made is None or made.status_code != 201:
                made is not None and self._unexpected("create case", made)
                continue
            case_id = made.json()["id"]
            with self._lock:
                self.cases[key] = case_id
            consent = self.call("record consent", desk.caseworker, "PUT", f"/api/intake/cases/{case_id}/consent",
                                json={"categories": ["medical"], "share_contact": False, "share_health": False,
                                      "method": "written", "expires_on": None})
            if consent is None or consent.status_code not in (200, 201):
                consent is not None and self._unexpected("record consent", consent)
                continue
            referral = self._write_until("refer", desk.caseworker, "/api/referrals/referrals", {
                "case_id": case_id, "partner_id": desk.partner_id, "need_category": "medical",
                "packet": {"display_name": "A. B.", "language": "be", "note": "prefers mornings"}}, 201)
            if referral is None:
                continue
            referral_id = referral.json()["id"]
            with self._lock:
                self.referrals[referral.request.headers["Idempotency-Key"]] = referral_id
            steps_done = True
            for step, body in (("accept", None), ("start", None), ("complete", {"outcome": "treated",
                                                                                "cost_estimate": None})):
                answer = self.call(f"partner {step}", desk.partner, "POST",
                                   f"/api/partner/referrals/{referral_id}/{step}", key=f"{step}-{referral_id}",
                                   json=body)
                if answer is None or answer.status_code != 200:
                    answer is not None and self._unexpected(f"partner {step}", answer)
                    steps_done = False
                    break
            if steps_done:
                with self._lock:
                    self.completed.add(referral_id)
            requested = self._write_until("request aid", desk.caseworker, "/api/funds/disbursements", {
                "case_id": case_id, "grant_id": desk.grant_id, "category": "medical", "amount": "10.00",
                "currency": "EUR", "purpose": "clinic visit"}, 201)
            if requested is None:
                continue
            disbursement = requested.json()["id"]
            with self._lock:
                self.disbursements[requested.request.headers["Idempotency-Key"]] = disbursement
            approved = self.call("approve aid", desk.finance, "POST",
                                 f"/api/funds/disbursements/{disbursement}/approve", key=f"approve-{disbursement}")
            if approved is None or approved.status_code != 200:
                approved is not None and self._unexpected("approve aid", approved)
                continue
            pay_key = f"pay-{disbursement}"
            paid = self.call("pay aid", desk.finance, "POST", f"/api/funds/disbursements/{disbursement}/pay",
                             key=pay_key, json={"method": "bank_transfer", "reference": f"TX-{disbursement[:8]}"})
            if paid is None or paid.status_code != 200:
                paid is not None and self._unexpected("pay aid", paid)
                continue
            with self._lock:
                self.paid[pay_key] = disbursement

    # ---- what happened ---------------------------------------------------------------------------------------

    def failed_between(self, start: float, end: float) -> dict[str, Any]:
        window = [attempt for attempt in self.attempts if start <= attempt.at < end]
        failed = [attempt for attempt in window if attempt.failed]
        return {"requests": len(window), "failed": len(failed),
                "failed_by_status": dict(sorted(Counter(attempt.status for attempt in failed).items()))}

    def summary(self) -> dict[str, Any]:
        return {"requests": len(self.attempts), "failed": sum(attempt.failed for attempt in self.attempts),
                "by_gateway": dict(Counter(attempt.gateway for attempt in self.attempts)),
                "cases": len(self.cases), "referrals": len(self.referrals), "completed": len(self.completed),
                "disbursements": len(self.disbursements), "paid": len(self.paid),
                "unfinished": len(self.unfinished), "unexpected": len(self.unexpected)}
