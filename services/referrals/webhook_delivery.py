"""The webhook worker, a background job of the referrals process (started and stopped with it, like the bus relay):
it takes due deliveries from the database and POSTs them, signed, to their partner's webhook.

- **Nothing lost.** A delivery is a row written with the change it tells of (`webhooks.enqueue`); its state, its
  attempts and when it is next due are in the database, so a restart picks up where the last process stopped.
- **Never twice at once.** A worker claims a row with one UPDATE that sets `claimed_until` (a lease) and its own
  `claim_token`, only while the row is due and unclaimed (on PostgreSQL a second replica's UPDATE waits for the
  first and then finds it claimed); an attempt is recorded only while the token is still the claimer's. A process
  that dies mid-attempt leaves a lease that runs out, and the row is tried again: at least once, with the same
  `webhook-id`.
- **Nobody waits for a slow receiver.** At most `webhook_per_partner` attempts per partner are in flight (a
  partner's rows beyond that are not even claimed) and `webhook_max_in_flight` in all; each attempt is bounded
  (`webhook_connect_timeout_seconds`, `webhook_request_timeout_seconds` for the whole request), each partner has an
  HTTP client of its own, and the requests are asynchronous: the API, and every other partner, go on meanwhile.
- **Retries.** A failure (no answer, a timeout, a status other than 2xx; a redirect is never followed and counts as
  a failure) is tried again after `webhook_rules.RetryPolicy.wait` (exponential, full jitter); one that still fails
  once `webhook_retry_hours` (24) have passed since it was written is a dead letter: state `dead`, kept for admins
  (`GET …/webhook/deliveries?state=dead`) and counted on `rehab_webhook_dead_letters_total`; so is, at once, one
  whose stored URL is itself refused (http, or an address written in it, once private targets are no longer
  allowed), which no retry could change. An admin sends dead letters again once the endpoint is mended
  (`webhooks.redeliver`).
- **SSRF.** Before every attempt the host is resolved again and every address checked
  (`webhook_targets.checked_address`); the request goes to that very address (the name kept for the Host header,
  TLS server name and certificate check), no proxy from the environment, no redirect.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import and_, delete, func, or_, update
from sqlmodel import Session, select

from kit import logs
from kit.crypto import Keyring
from kit.service import Runtime
from services.referrals import metrics, vault, webhook_targets
from services.referrals.models import Webhook, WebhookAttempt, WebhookDelivery
from services.referrals.webhook_rules import (
    DeliveryState,
    RetryPolicy,
    Target,
    TargetRefused,
    parse_target,
    signed_headers,
)
from services.referrals.webhooks import DELIVERIES_WRITTEN

log = logs.get("referrals")

# The most of a receiver's answer that is read (and thrown away), so its connection can be used again.
ANSWER_READ_LIMIT = 64 * 1024
TIDY_EVERY_SECONDS = 30.0
IDLE_CLIENT_SECONDS = 300.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    """One claimed delivery, with what its attempt needs (the secrets only in memory, for this attempt)."""

    delivery_id: str
    token: str
    partner_id: str
    url: str
    secrets: tuple[str, ...]
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    # No later attempt can succeed (the stored URL itself is refused): dead at once, not retried for a day.
    hopeless: bool = False

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# ---- the units of work (functions of a session; never commit) ------------------------------------------------

_D = WebhookDelivery


def _due(now: datetime):
    return and_(_D.state == DeliveryState.PENDING, _D.next_attempt_at <= now,  # type: ignore[operator]
                or_(_D.claimed_until.is_(None), _D.claimed_until < now))  # type: ignore[union-attr,operator]


def claim(session: Session, *, keyring: Keyring, now: datetime, lease: timedelta, token: str, limit: int,
          per_partner: int, room: Mapping[str, int], busy: Collection[str]) -> list[Job]:
    """Claim up to `limit` due deliveries, oldest due first, at most `per_partner` of a partner (`room[p]` for one
    with attempts in flight here; none of a `busy` one), each by an UPDATE that only a due, unclaimed row passes."""
    ranked = select(_D.id, _D.partner_id, _D.next_attempt_at, func.row_number().over(
        partition_by=_D.partner_id, order_by=(_D.next_attempt_at, _D.id)).label("rank")).where(_due(now))
    if busy:
        ranked = ranked.where(_D.partner_id.not_in(list(busy)))  # type: ignore[attr-defined]
    candidates = ranked.subquery()
    rows = session.execute(select(candidates.c.id, candidates.c.partner_id)
                           .where(candidates.c.rank <= per_partner)
                           .order_by(candidates.c.next_attempt_at, candidates.c.id).limit(limit)).all()
    taken: Counter[str] = Counter()
    claimed: list[str] = []
    for delivery_id, partner_id in rows:
        if taken[partner_id] >= room.get(partner_id, per_partner):
            continue
        won = session.execute(update(_D).where(_D.id == delivery_id, _due(now))  # type: ignore[arg-type]
                              .values(claimed_until=now + lease, claim_token=token)).rowcount
        if won == 1:
            claimed.append(delivery_id)
            taken[partner_id] += 1
    if not claimed:
        return []
    deliveries = session.exec(select(_D).where(_D.id.in_(claimed))).all()  # type: ignore[attr-defined]
    partners = {d.partner_id for d in deliveries}
    hooks = {w.partner_id: w for w in session.exec(
        select(Webhook).where(Webhook.partner_id.in_(partners))).all()}  # type: ignore[attr-defined]
    jobs = []
    for delivery in deliveries:
        webhook = hooks.get(delivery.partner_id)
        if webhook is None:  # removed meanwhile (its use case drops pending rows; this is the race)
            _finish(delivery, DeliveryState.DROPPED, now)
            session.add(delivery)
            continue
        try:
            secrets = vault.open_webhook_secrets(keyring, webhook, now)
        except Exception as exc:  # keys sealed, or out of reach: released, tried again next round
            log.warning("webhook secret could not be opened", partner_id=delivery.partner_id,
                        error_type=type(exc).__name__)
            delivery.claimed_until = delivery.claim_token = None
            session.add(delivery)
            continue
        jobs.append(Job(delivery_id=delivery.id, token=token, partner_id=delivery.partner_id, url=webhook.url,
                        secrets=tuple(secrets), body=delivery.body, created_at=delivery.created_at))
    return jobs


def record(session: Session, *, job: Job, outcome: Outcome, now: datetime, policy: RetryPolicy) -> str | None:
    """Record an attempt and decide what follows: delivered, due again later, or dead. None when the claim was lost
    meanwhile (its lease ran out and another worker took the row): then nothing is recorded."""
    delivery = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
    if delivery is None or delivery.claim_token != job.token or delivery.state != DeliveryState.PENDING:
        return None
    delivery.attempts += 1
    session.add(WebhookAttempt(delivery_id=delivery.id, attempt=delivery.attempts, at=now,
                               status_code=outcome.status_code, error=outcome.error,
                               duration_ms=outcome.duration_ms))
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.claimed_until = delivery.claim_token = None
    if outcome.delivered:
        _finish(delivery, DeliveryState.DELIVERED, now)
    else:
        next_at = None if outcome.hopeless else policy.next_attempt(created_at=delivery.created_at, now=now,
                                                                     failures=delivery.attempts)
        if next_at is None:
            _finish(delivery, DeliveryState.DEAD, now)
        else:
            delivery.next_attempt_at = next_at
    session.add(delivery)
    return delivery.state


def _finish(delivery: WebhookDelivery, state: DeliveryState, now: datetime) -> None:
    delivery.state = state
    delivery.finished_at = now
    delivery.next_attempt_at = None
    delivery.claimed_until = delivery.claim_token = None


def tidy(session: Session, *, now: datetime, retention: timedelta) -> int:
    """Delete finished deliveries older than `retention` with their attempts; forget previous secrets whose overlap
    is over. The number of deliveries still pending."""
    finished = and_(_D.state != DeliveryState.PENDING, _D.finished_at < now - retention)  # type: ignore[operator]
    session.execute(delete(WebhookAttempt).where(
        WebhookAttempt.delivery_id.in_(select(_D.id).where(finished))))  # type: ignore[attr-defined]
    session.execute(delete(_D).where(finished))
    session.execute(update(Webhook).where(Webhook.previous_secret.is_not(None),  # type: ignore[union-attr]
                                          Webhook.previous_until <= now)  # type: ignore[operator]
                    .values(previous_secret=None))
    return session.exec(select(func.count()).select_from(_D).where(_D.state == DeliveryState.PENDING)).one()


# ---- the worker ----------------------------------------------------------------------------------------------


class Courier:
    """Claims due deliveries and runs each attempt as a task of its own, within the concurrency bounds."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.allow_private: bool = settings.webhook_allow_private  # type: ignore[attr-defined]
        self.per_partner: int = settings.webhook_per_partner  # type: ignore[attr-defined]
        self.max_in_flight: int = settings.webhook_max_in_flight  # type: ignore[attr-defined]
        self.poll: float = settings.webhook_poll_seconds  # type: ignore[attr-defined]
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)  # type: ignore[attr-defined]
        self.retention = timedelta(days=settings.webhook_retention_days)  # type: ignore[attr-defined]
        self.connect_timeout: float = settings.webhook_connect_timeout_seconds  # type: ignore[attr-defined]
        self.request_timeout: float = settings.webhook_request_timeout_seconds  # type: ignore[attr-defined]
        self.policy = RetryPolicy(
            base=timedelta(seconds=settings.webhook_backoff_base_seconds),  # type: ignore[attr-defined]
            cap=timedelta(seconds=settings.webhook_backoff_cap_seconds),  # type: ignore[attr-defined]
            window=timedelta(hours=settings.webhook_retry_hours),  # type: ignore[attr-defined]
        )
        self.wake = asyncio.Event()
        self.in_flight: Counter[str] = Counter()
        self.tasks: set[asyncio.Task] = set()
        self.clients: dict[tuple[str, str, str, int], httpx.AsyncClient] = {}
        self.client_used: dict[tuple[str, str, str, int], float] = {}
        self.next_tidy = 0.0

    def _on_commit(self, session: Session) -> None:
        if session.info.get(DELIVERIES_WRITTEN):
            self.wake.set()

    async def run(self) -> None:
        self.runtime.uow.on_commit(self._on_commit)
        if self.allow_private:
            log.warning("webhooks may go to http and to loopback or private addresses (WEBHOOK_ALLOW_PRIVATE): "
                        "for development and tests only")
        try:
            while True:
                self.wake.clear()
                started = 0
                try:
                    started = await self._claim_and_start()
                    if time.monotonic() >= self.next_tidy:
                        await self._tidy()
                except Exception as exc:  # the database away for a moment: the next round tries again
                    log.warning("webhook worker round failed, retrying", error_type=type(exc).__name__)
                if started:
                    continue
                try:
                    await asyncio.wait_for(self.wake.wait(), self.poll)
                except TimeoutError:
                    pass
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for client in self.clients.values():
                await client.aclose()

    async def _claim_and_start(self) -> int:
        free = self.max_in_flight - len(self.tasks)
        if free <= 0:
            return 0
        busy = {p for p, n in self.in_flight.items() if n >= self.per_partner}
        room = {p: self.per_partner - n for p, n in self.in_flight.items() if n}
        token, now = str(uuid.uuid4()), _now()
        jobs = await self.runtime.uow.run(lambda session: claim(
            session, keyring=self.runtime.keyring, now=now, lease=self.lease, token=token, limit=free,
            per_partner=self.per_partner, room=room, busy=busy))  # type: ignore[arg-type]
        for job in jobs:
            self.in_flight[job.partner_id] += 1
            task = asyncio.create_task(self._attempt(job), name=f"webhook-{job.delivery_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return len(jobs)

    async def _tidy(self) -> None:
        self.next_tidy = time.monotonic() + TIDY_EVERY_SECONDS
        pending = await self.runtime.uow.run(lambda session: tidy(session, now=_now(), retention=self.retention))
        metrics.WEBHOOK_PENDING.set(pending)
        idle_since = time.monotonic() - IDLE_CLIENT_SECONDS
        for key in [k for k, used in self.client_used.items() if used < idle_since and not self.in_flight[k[0]]]:
            self.client_used.pop(key)
            await self.clients.pop(key).aclose()

    async def _attempt(self, job: Job) -> None:
        try:
            outcome = await self.send(job)
            state = await self.runtime.uow.run(lambda session: record(
                session, job=job, outcome=outcome, now=_now(), policy=self.policy))
            metrics.WEBHOOK_ATTEMPTS.labels("delivered" if outcome.delivered else "failed").inc()
            if state == DeliveryState.DELIVERED:
                metrics.WEBHOOK_LATENCY.observe((_now() - job.created_at).total_seconds())
            elif state == DeliveryState.DEAD:
                metrics.WEBHOOK_DEAD_LETTERS.inc()
                log.warning("webhook delivery dead after its retry window", delivery_id=job.delivery_id,
                            partner_id=job.partner_id)
        except Exception as exc:  # not recorded: the lease runs out and the row is tried again
            log.warning("webhook attempt not recorded", delivery_id=job.delivery_id, error_type=type(exc).__name__)
        finally:
            self.in_flight[job.partner_id] -= 1
            if self.in_flight[job.partner_id] <= 0:
                del self.in_flight[job.partner_id]
            self.wake.set()

    async def send(self, job: Job) -> Outcome:
        """One attempt: check where the URL leads now, then POST the body there, signed; the receiver's status."""
        started = time.monotonic()

        def outcome(status_code: int | None = None, error: str | None = None, hopeless: bool = False) -> Outcome:
            return Outcome(status_code, error, int((time.monotonic() - started) * 1000), hopeless)

        try:  # the URL itself (its scheme, an address written in it): refused now, refused on every retry
            target = parse_target(job.url, allow_private=self.allow_private)
        except TargetRefused as refused:
            return outcome(error=f"address-refused: {refused.reason}"[:64], hopeless=True)
        try:  # what its name resolves to now: another lookup may find another address
            address = await webhook_targets.checked_address(target, allow_private=self.allow_private,
                                                            timeout=self.connect_timeout)
        except TargetRefused as refused:
            return outcome(error=f"address-refused: {refused.reason}"[:64])
        headers = signed_headers(job.delivery_id, job.body, job.secrets, int(time.time()))
        headers["host"] = target.host_header
        client = self._client(job.partner_id, target)
        request = client.build_request("POST", target.pinned_url(address), content=job.body.encode(),
                                       headers=headers,
                                       extensions={} if target.literal else {"sni_hostname": target.host})
        try:
            async with asyncio.timeout(self.request_timeout):
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= ANSWER_READ_LIMIT:
                            break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return outcome(error="timeout")
        except httpx.ConnectError:
            return outcome(error="connect-failed")
        except httpx.HTTPError:
            return outcome(error="protocol-error")
        status = response.status_code
        if 200 <= status < 300:
            return outcome(status)
        return outcome(status, "redirect-not-followed" if 300 <= status < 400 else "http-status")

    def _client(self, partner_id: str, target: Target) -> httpx.AsyncClient:
        """A client per partner and host: its connections (and their TLS server name) serve that partner alone."""
        key = (partner_id, target.scheme, target.host, target.port)
        client = self.clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(self.request_timeout, connect=self.connect_timeout),
                limits=httpx.Limits(max_connections=self.per_partner, max_keepalive_connections=self.per_partner,
                                    keepalive_expiry=30),
            )
            self.clients[key] = client
        self.client_used[key] = time.monotonic()
        return client


async def deliver(runtime: Runtime) -> None:
    """The background job (main.SPEC.background): the worker, until the process stops."""
    await Courier(runtime).run()
