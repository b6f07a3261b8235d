"""The `webhooks` part (issue #18): how long after a referral is sent its partner's webhook arrives, at 50 referrals a
second, and proof that a receiver that hangs does not delay another partner's deliveries.

The system starts as in the other parts (`bench.system`), with `WEBHOOK_ALLOW_PRIVATE=true` (the receivers are on
127.0.0.1, over http) and nothing else changed: the courier's limits (3 s to connect, 10 s an attempt, 2 attempts in
flight per partner, 32 in all) and its retry schedule are production's.

The receivers are one aiohttp server in this process, on an event loop in a thread of its own, a path per partner:
each request's arrival (CLOCK_MONOTONIC, the load generator's clock too), `webhook-id` and body are kept, and it is
answered 204 at once, or, while its partner's receiver hangs, after `hang_seconds` (30). Every signature is checked
after each phase with the `standardwebhooks` package and the secret shown when the webhook was set. The same loop
holds a NATS subscriber of `rehab.referrals.referral.sent` (the operator's key: the embedded NATS lets nobody in
without one).

Referrals are created through the gateway by the load generator (`bench.load`, its own process) on a schedule: open
loop, `rate` a second whatever the answers, each timed from when it was due.

1. **Delivery** (`delivery`): 50 referrals/s for 20 s over 4 partners, each with a webhook subscribed to
   `referral.sent`; for each referral, the time from when its POST was due to the arrival of its webhook (and from
   the POST's answer: negative when the webhook came first). The baseline, in the same run and at the same rate, is
   the event path every consumer of `referral.sent` takes, with no webhook subscribed: due → the event's arrival at
   the NATS subscriber (outbox row in the referral's transaction, the relay, JetStream). The ratio of the two says
   what the webhook path (a delivery row in the same transaction, the courier's claim, the signed POST, the
   attempt's record) costs against it. The subscriber listens in the webhook phase too, so each referral's two
   arrivals are also set side by side (webhook − event).
2. **Isolation** (`isolation`): partners A and B, 10 referrals/s each for 20 s, alternating; once with both
   receivers answering at once, once with A's holding every request 30 s (past the courier's 10 s timeout). B's
   delivery p50/p99 with A hanging against A healthy; A's deliveries as the admin API lists them right after the
   hanging phase (by state, attempts, last error: pending, none lost); then A's receiver answers again, and every
   one of A's referrals must arrive (after how long is reported).

Each part `rounds` times, interleaved (the order reversed every other round); of each phase the round with the
lowest p99 counts, every round's p99 listed beside it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from bench import api, report, scenarios
from bench.harness import run_load, wait_for
from bench.load_spec import LoadResult, LoadSpec, percentile
from bench.population import People
from bench.system import ADMIN_PASSWORD, Backing, System

RATE = 50.0  # referrals per second, all partners together
SECONDS = 20.0
PARTNERS = 4
ISOLATION_RATE = 10.0  # referrals per second to each of A and B
HANG_SECONDS = 30.0
CASES = 20  # consented cases the referrals are spread over
IN_FLIGHT = 64  # the load generator's bound on POSTs in flight
ARRIVAL_TIMEOUT = 90.0  # every webhook of a phase must arrive within this long after its last POST
RECOVERY_TIMEOUT = 180.0
SUBJECT = "rehab.referrals.referral.sent"
EVENTS = ["referral.sent"]
# Referrals may send webhooks to http on 127.0.0.1 (SPEC's name of the setting); nothing else is changed.
ENVIRONMENT = {"WEBHOOK_ALLOW_PRIVATE": "true"}
BASELINE, WEBHOOKS = report.WEBHOOK_BASELINE, report.WEBHOOK_DELIVERY
HEALTHY, HANGING = report.WEBHOOK_HEALTHY, report.WEBHOOK_HANGING


# ---- the receivers and the NATS subscriber -------------------------------------------------------------------------

@dataclass(frozen=True)
class Arrival:
    partner: str  # the receiver's path: one per partner
    webhook_id: str
    referral_id: str
    at: float  # time.monotonic() when the request reached the handler
    headers: dict[str, str]  # the webhook-… ones
    body: bytes
    held: bool  # the receiver was hanging: no timely answer


class Receivers:
    """Partners' receivers (an aiohttp server, a path each) and a NATS subscriber, on an event loop in a thread of
    this process, so that the harness's waiting does not delay them."""

    def __init__(self, hang_seconds: float) -> None:
        self.hang_seconds = hang_seconds
        self.arrivals: list[Arrival] = []
        self.events: list[tuple[str, float]] = []  # (the event's referral, when it arrived)
        self.hanging: set[str] = set()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-receivers", daemon=True)
        self._runner: Any = None
        self._nats: Any = None

    def url(self, partner: str) -> str:
        return f"http://127.0.0.1:{self.port}/{partner}"

    def start(self) -> None:
        self._thread.start()
        self.port = self._call(self._serve())

    def subscribe(self, nats_url: str, seed: Path | None) -> None:
        self._call(self._subscribe(nats_url, seed))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close(), timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def _call(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_post("/{partner}", self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _receive(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.read()
        partner = request.match_info["partner"]
        held = partner in self.hanging
        signed = {name.lower(): value for name, value in request.headers.items()
                  if name.lower().startswith("webhook-")}
        referral_id = json.loads(body)["data"]["referral_id"]
        self.arrivals.append(Arrival(partner, signed.get("webhook-id", ""), referral_id, at, signed, body, held))
        if held:
            await asyncio.sleep(self.hang_seconds)
        return web.Response(status=204)

    async def _subscribe(self, nats_url: str, seed: Path | None) -> None:
        self._nats = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False,
                                        **({"nkeys_seed": str(seed)} if seed else {}))

        async def arrived(message: Any) -> None:
            at = time.monotonic()
            self.events.append((json.loads(message.data)["subject"], at))  # the envelope's subject: the referral

        await self._nats.subscribe(SUBJECT, cb=arrived)
        await self._nats.flush()

    async def _close(self) -> None:
        if self._nats is not None:
            await self._nats.close()
        if self._runner is not None:
            await self._runner.cleanup()
        held = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]  # hanging answers
        for task in held:
            task.cancel()
        await asyncio.gather(*held, return_exceptions=True)

    def event_times(self, since: int = 0) -> dict[str, float]:
        """The first arrival of each referral's `referral.sent` event."""
        times: dict[str, float] = {}
        for referral_id, at in self.events[since:]:
            times.setdefault(referral_id, at)
        return times

    def first_answered(self, partner: str, since: int = 0) -> dict[str, Arrival]:
        """The first arrival of each referral's webhook at `partner`'s receiver that was answered at once."""
        found: dict[str, Arrival] = {}
        for arrival in self.arrivals[since:]:
            if arrival.partner == partner and not arrival.held:
                found.setdefault(arrival.referral_id, arrival)
        return found


# ---- one phase: referrals on a schedule ----------------------------------------------------------------------------

@dataclass
class Sent:
    """A referral whose POST was answered 201: when it was due and answered, to which partner's receiver."""

    due: float
    answered: float
    partner: str


@dataclass
class Phase:
    load: LoadResult
    sent: dict[str, Sent]  # referral id → …
    arrivals_from: int  # where this phase's arrivals and events begin in the receivers' lists
    events_from: int
    load_average: float


@dataclass
class Bench:
    """What both parts work with."""

    system: System
    receivers: Receivers
    admin: api.Client
    caseworker: api.Client
    case_ids: list[str]
    progress: Callable[[str], None]
    secrets: dict[str, str] = field(default_factory=dict)  # receiver → its webhook's current secret
    partner_ids: dict[str, str] = field(default_factory=dict)  # receiver → partner id

    def subscribe(self, partner: str) -> None:
        answer = self.admin.call("PUT", f"/api/referrals/partners/{self.partner_ids[partner]}/webhook",
                                 json={"url": self.receivers.url(partner), "events": EVENTS})
        self.secrets[partner] = answer["secret"]

    def unsubscribe(self, partner: str) -> None:
        self.admin.call("DELETE", f"/api/referrals/partners/{self.partner_ids[partner]}/webhook", expect=(204,))
        self.secrets.pop(partner, None)

    def send(self, partners: list[str], rate: float, seconds: float) -> Phase:
        """`rate × seconds` referrals through the gateway on the schedule, to `partners` in turn (and cases in
        turn): what each POST's answer said, and when."""
        count = max(1, round(rate * seconds))
        auth = self.caseworker.auth
        targets = [(self.case_ids[i % len(self.case_ids)], partners[i % len(partners)]) for i in range(count)]
        requests = [scenarios._post("/api/referrals/referrals", {
            "case_id": case_id, "partner_id": self.partner_ids[partner], "need_category": "medical",
            "packet": {"display_name": "A. B.", "language": "be"}}, auth) for case_id, partner in targets]
        arrivals_from, events_from = len(self.receivers.arrivals), len(self.receivers.events)
        load_average = report.load_average()
        load = run_load(LoadSpec(base_url=self.system.url, requests=requests, cycle=False, concurrency=IN_FLIGHT,
                                 rate=rate, duration=seconds + 30, timeout=30, collect="id", timeline=True))
        sent = {referral_id: Sent(due, answered, targets[index][1])
                for referral_id, due, answered, index in load.collected}
        if not sent:
            raise RuntimeError(f"no referral was created: {load.statuses} {load.error_samples}")
        return Phase(load, sent, arrivals_from, events_from, load_average)

    def await_webhooks(self, phase: Phase, partners: list[str], timeout: float = ARRIVAL_TIMEOUT) -> None:
        """Until every referral sent to `partners` has arrived at its receiver (answered), or `timeout`."""
        wanted = {p: {r for r, s in phase.sent.items() if s.partner == p} for p in partners}

        def all_arrived() -> bool:
            return all(ids <= set(self.receivers.first_answered(p, phase.arrivals_from)) for p, ids in wanted.items())

        try:
            wait_for(all_arrived, timeout=timeout, interval=0.2, what="every webhook")
        except TimeoutError:
            pass  # reported as fewer arrived than sent

    def await_events(self, phase: Phase, timeout: float = ARRIVAL_TIMEOUT) -> None:
        try:
            wait_for(lambda: set(phase.sent) <= set(self.receivers.event_times(phase.events_from)), timeout=timeout,
                     interval=0.2, what="every referral.sent event")
        except TimeoutError:
            pass

    def webhook_figures(self, phase: Phase, partners: list[str]) -> dict[str, Any]:
        """Due → arrival and answer → arrival of the webhooks of the referrals sent to `partners`; how many arrived,
        more than once, with a signature that verifies."""
        sent = {r: s for r, s in phase.sent.items() if s.partner in partners}
        first: dict[str, Arrival] = {}
        for partner in partners:
            first.update({r: a for r, a in self.receivers.first_answered(partner, phase.arrivals_from).items()
                          if r in sent})
        answered = [a for a in self.receivers.arrivals[phase.arrivals_from:] if a.partner in partners and not a.held]
        repeats = sum(n - 1 for n in Counter(a.webhook_id for a in answered).values())
        valid = 0
        for arrival in answered:
            try:
                Webhook(self.secrets[arrival.partner]).verify(arrival.body, arrival.headers)
                valid += 1
            except WebhookVerificationError:  # counted as not valid
                continue
        return {"sent": len(sent), "arrived": len(first), "repeated": repeats,
                "signatures": {"checked": len(answered), "valid": valid},
                "from_due": summary([(a.at - sent[r].due) * 1000 for r, a in first.items()]),
                "from_answer": summary([(a.at - sent[r].answered) * 1000 for r, a in first.items()])}

    def event_figures(self, phase: Phase) -> dict[str, Any]:
        events = self.receivers.event_times(phase.events_from)
        arrived = {r: events[r] for r in phase.sent if r in events}
        return {"sent": len(phase.sent), "arrived": len(arrived),
                "from_due": summary([(at - phase.sent[r].due) * 1000 for r, at in arrived.items()]),
                "from_answer": summary([(at - phase.sent[r].answered) * 1000 for r, at in arrived.items()])}

    def deliveries(self, partner: str, referral_ids: set[str]) -> list[dict[str, Any]]:
        """The partner's deliveries of these referrals, as the admin API lists them."""
        found, cursor = [], None
        while True:
            page = self.admin.call("GET", f"/api/referrals/partners/{self.partner_ids[partner]}/webhook/deliveries",
                                   params={"limit": 200, **({"cursor": cursor} if cursor else {})})
            found += [d for d in page["items"] if d["referral_id"] in referral_ids]
            cursor = page["next_cursor"]
            if not cursor:
                return found


def summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {"count": len(ordered), **{name: round(percentile(ordered, q), 2) for name, q in
                                      (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))},
            "max": round(ordered[-1], 2) if ordered else 0.0}


def _http(load: LoadResult, rate: float) -> dict[str, Any]:
    return {"rate": rate, "achieved_rate": round(load.ok / load.seconds, 1) if load.seconds else 0.0,
            **load.model_dump(exclude={"collected"})}


# ---- the part ------------------------------------------------------------------------------------------------------

def webhooks(run: scenarios.Run, workdir: Path, backing_for: Callable[[], Backing],
             progress: Callable[[str], None] = lambda _message: None, *, rate: float = RATE, seconds: float = SECONDS,
             partners: int = PARTNERS, isolation_rate: float = ISOLATION_RATE, hang_seconds: float = HANG_SECONDS,
             extra_env: dict[str, str] | None = None) -> None:
    """Start a system and the receivers, measure both parts in `rounds` rounds each, stop; the figures go to
    `run.results["webhooks"]`. A smoke test asks for a low rate, short phases and (`extra_env`) a short courier
    timeout, so that a hanging receiver costs it seconds, not minutes."""
    rounds = run.settings.rounds
    system = System(workdir / "webhooks", backing_for(), extra_env={**ENVIRONMENT, **(extra_env or {})})
    receivers = Receivers(hang_seconds)
    try:
        system.start()
        receivers.start()
        nats_url = system.backing.nats_url or f"nats://127.0.0.1:{system.ports['nats']}"
        seed = None if system.backing.nats_url else system.state_dir / "secrets" / "ops" / "nats.nk"
        receivers.subscribe(nats_url, seed)
        signed_in = api.staff(system.url, ADMIN_PASSWORD, {"casey": ["caseworker"]})
        names = [f"p{i + 1}" for i in range(partners)] + ["a", "b"]
        bench = Bench(system, receivers, signed_in["admin"], signed_in["casey"], [], progress,
                      partner_ids={name: api.clinic(signed_in["admin"])["id"] for name in names})
        bench.case_ids = _consented_cases(bench, CASES)
        delivery = _delivery(bench, names[:partners], rate, seconds, rounds)
        isolation = _isolation(bench, rate=isolation_rate, seconds=seconds, rounds=rounds)
        for client in signed_in.values():
            client.close()
    finally:
        receivers.stop()
        system.stop()
        system.backing.drop_databases()
    run.results["webhooks"] = {
        "rate": rate, "seconds": seconds, "partners": partners, "isolation_rate": isolation_rate,
        "hang_seconds": hang_seconds, "rounds": rounds, "cases": CASES,
        "settings": {**ENVIRONMENT, **(extra_env or {})}, "delivery": delivery, "isolation": isolation,
    }


def _consented_cases(bench: Bench, count: int) -> list[str]:
    """Cases whose consent covers medical referrals, once the referrals service has learned them from intake's
    events (a referral to each, before any webhook is subscribed, answers 201)."""
    people = People(seed=18)
    caseworker = bench.caseworker
    case_ids = [caseworker.call("POST", "/api/intake/cases", json=people.case())["id"] for _ in range(count)]
    for case_id in case_ids:
        caseworker.call("PUT", f"/api/intake/cases/{case_id}/consent", json=api.MEDICAL_CONSENT)
    first_partner = next(iter(bench.partner_ids.values()))

    def known(case_id: str) -> bool:
        return caseworker.http.post("/api/referrals/referrals", json={
            "case_id": case_id, "partner_id": first_partner, "need_category": "medical",
            "packet": {"display_name": "A. B."}}).status_code == 201

    for case_id in case_ids:
        wait_for(lambda: known(case_id), timeout=60, interval=0.2,  # noqa: B023 - called before the loop moves on
                 what="the referrals service learning the consents")
    return case_ids


def _delivery(bench: Bench, partners: list[str], rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    """Part 1: the baseline (no webhook, the event to the NATS subscriber) and the webhooks, in `rounds` rounds."""
    measured: dict[str, list[dict[str, Any]]] = {BASELINE: [], WEBHOOKS: []}
    for round_number in range(rounds):
        order = [BASELINE, WEBHOOKS] if round_number % 2 == 0 else [WEBHOOKS, BASELINE]
        for what in order:
            bench.progress(f"webhooks: round {round_number + 1} of {rounds}, {what}: {rate:g} referrals/s for "
                           f"{seconds:g} s (load average {report.load_average()})")
            if what == BASELINE:
                phase = bench.send(partners, rate, seconds)
                bench.await_events(phase)
                figures = {"http": _http(phase.load, rate), "event": bench.event_figures(phase)}
            else:
                for partner in partners:
                    bench.subscribe(partner)
                phase = bench.send(partners, rate, seconds)
                bench.await_webhooks(phase, partners)
                bench.await_events(phase, timeout=10)
                figures = {"http": _http(phase.load, rate), "webhook": bench.webhook_figures(phase, partners),
                           "event": bench.event_figures(phase), "after_event": _after_event(bench, phase, partners)}
                for partner in partners:  # every delivery has arrived (or is reported missing): none is dropped
                    bench.unsubscribe(partner)
            measured[what].append({"load_average": phase.load_average, **figures})
    return {what: {"best": min(results, key=lambda r: _p99(r, what)), "rounds": [_p99(r, what) for r in results]}
            for what, results in measured.items()}


def _p99(figures: dict[str, Any], what: str) -> float:
    return (figures["event"] if what == BASELINE else figures["webhook"])["from_due"]["p99"]


def _after_event(bench: Bench, phase: Phase, partners: list[str]) -> dict[str, float]:
    """Per referral: its webhook's arrival less its event's arrival at the NATS subscriber."""
    events = bench.receivers.event_times(phase.events_from)
    gaps = []
    for partner in partners:
        for referral_id, arrival in bench.receivers.first_answered(partner, phase.arrivals_from).items():
            if referral_id in events and referral_id in phase.sent:
                gaps.append((arrival.at - events[referral_id]) * 1000)
    return summary(gaps)


def _isolation(bench: Bench, *, rate: float, seconds: float, rounds: int) -> dict[str, Any]:
    """Part 2: A and B at `rate` each, A healthy and A hanging, in `rounds` rounds; A's deliveries after hanging."""
    for partner in ("a", "b"):
        bench.subscribe(partner)
    measured: dict[str, list[dict[str, Any]]] = {HEALTHY: [], HANGING: []}
    for round_number in range(rounds):
        order = [HEALTHY, HANGING] if round_number % 2 == 0 else [HANGING, HEALTHY]
        for what in order:
            bench.progress(f"webhooks: round {round_number + 1} of {rounds}, A {what}: {rate:g} referrals/s each "
                           f"to A and B for {seconds:g} s (load average {report.load_average()})")
            if what == HANGING:
                bench.receivers.hanging.add("a")
            phase = bench.send(["a", "b"], rate * 2, seconds)
            bench.await_webhooks(phase, ["b"] if what == HANGING else ["a", "b"])
            figures: dict[str, Any] = {"load_average": phase.load_average, "http": _http(phase.load, rate * 2),
                                       "b": bench.webhook_figures(phase, ["b"])}
            if what == HEALTHY:
                figures["a"] = bench.webhook_figures(phase, ["a"])
            else:
                figures["a_after"] = _recovery(bench, phase)
            measured[what].append(figures)
    for partner in ("a", "b"):
        bench.unsubscribe(partner)
    return {**{what: {"best": min(results, key=lambda r: r["b"]["from_due"]["p99"]),
                      "rounds": [r["b"]["from_due"]["p99"] for r in results]} for what, results in measured.items()},
            "a_after": [r["a_after"] for r in measured[HANGING]]}


def _recovery(bench: Bench, phase: Phase) -> dict[str, Any]:
    """A's deliveries of the hanging phase as the admin API lists them at once (state, attempts, last error); then
    A's receiver answers again: until every one of A's referrals has arrived, answered, and is `delivered`."""
    ids = {r for r, s in phase.sent.items() if s.partner == "a"}
    listed = bench.deliveries("a", ids)
    held = [a for a in bench.receivers.arrivals[phase.arrivals_from:] if a.partner == "a" and a.held]
    after = {"sent": len(ids), "listed": len(listed),
             "states": dict(Counter(d["state"] for d in listed)),
             "attempts": {str(k): v for k, v in sorted(Counter(d["attempts"] for d in listed).items())},
             "last_errors": dict(Counter(d["last_error"] for d in listed if d["last_error"])),
             "held_requests": len(held)}
    bench.receivers.hanging.discard("a")
    released = time.monotonic()
    bench.progress(f"webhooks: A answers again; waiting for its {len(ids)} deliveries")
    bench.await_webhooks(phase, ["a"], timeout=RECOVERY_TIMEOUT)
    arrived = set(bench.receivers.first_answered("a", phase.arrivals_from)) & ids
    after["arrived_after_release"] = len(arrived)
    after["seconds_to_all"] = round(time.monotonic() - released, 1) if arrived == ids else None
    try:
        final = wait_for(lambda: (got := bench.deliveries("a", ids)) and all(
            d["state"] == "delivered" for d in got) and len(got) == len(ids) and got, timeout=30, interval=0.5,
            what="A's deliveries recorded as delivered")
    except TimeoutError:
        final = bench.deliveries("a", ids)
    after["states_after_release"] = dict(Counter(d["state"] for d in final))
    figures = bench.webhook_figures(phase, ["a"])
    after["repeated"], after["signatures"] = figures["repeated"], figures["signatures"]
    return after
