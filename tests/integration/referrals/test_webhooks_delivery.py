"""Partners' webhooks delivered for real: the referrals app (real NATS, real database) and its worker POST to a
receiver that is a real HTTP server on 127.0.0.1 (so `WEBHOOK_ALLOW_PRIVATE` is on, and http allowed), which checks
every signature with the `standardwebhooks` package as a partner would."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import REGISTRY
from sqlmodel import select
from standardwebhooks import Webhook as StandardWebhook

from services.referrals import webhook_delivery, webhooks
from services.referrals.config import ReferralsSettings
from services.referrals.models import WebhookDelivery
from services.referrals.webhook_delivery import Outcome
from services.referrals.webhook_rules import RetryPolicy, WebhookEvent
from tests.integration.referrals.desk import Desk, open_desk
from tests.support.loopback import serving
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration

EVENTS = ["referral.sent", "referral.cancelled"]
# A packet no webhook may carry a byte of: each value is searched for in everything the receiver got.
PACKET = {
    "display_name": "Ales Webhookievich Zaslaŭski",
    "language": "be",
    "note": "PACKET-NOTE-7f3a91 lives with her sister near Hrodna",
    "contact": "+375 29 555 01 99 / signal @zaslauski_a",
    "health_summary": "PACKET-HEALTH-2b8e44 insomnia after 3 years in Shklou colony",
}
SECRET_WORDS = ["Webhookievich", "Zaslaŭski", "Zasla", "PACKET-NOTE-7f3a91", "Hrodna", "555 01 99", "zaslauski",
                "PACKET-HEALTH-2b8e44", "insomnia", "Shklou"]


# ---- the receiver: a partner's server on 127.0.0.1 -----------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes  # the request's header lines and body, as they came
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Answers each path's planned statuses in turn ("hang": no answer until released), then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.plans: dict[str, list[int | str]] = {}
        self.released = asyncio.Event()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def plan(self, path: str, *answers: int | str) -> str:
        self.plans[path] = list(answers)
        return self.url(path)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        lines = b"".join(k + b": " + v + b"\r\n" for k, v in request.raw_headers)
        self.received.append(Received(request.path, {k.lower(): v for k, v in request.headers.items()},
                                      lines + b"\r\n" + body, body, time.monotonic()))
        plan = self.plans.get(request.path) or []
        answer = plan.pop(0) if plan else 200
        if answer == "hang":
            await self.released.wait()
            return web.Response(status=200)
        assert isinstance(answer, int)
        if 300 <= answer < 400:
            return web.Response(status=answer, headers={"Location": self.url("/redirected")})
        return web.Response(status=answer, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    async with serving(got.handle) as got.port:
        try:
            yield got
        finally:
            got.released.set()  # a request still hanging ends before the server stops


def hook_settings(settings: ReferralsSettings, **overrides: Any) -> ReferralsSettings:
    """The service's settings with private targets allowed (the receiver is on 127.0.0.1) and quick retries."""
    return settings.model_copy(update={
        "webhook_allow_private": True, "webhook_backoff_base_seconds": 0.05, "webhook_backoff_cap_seconds": 0.2,
        "webhook_poll_seconds": 0.05, **overrides})


@asynccontextmanager
async def hooked_desk(settings: ReferralsSettings, issuer: Any, **overrides: Any) -> AsyncIterator[Desk]:
    async with open_desk(hook_settings(settings, **overrides), issuer) as desk:
        yield desk


async def subscribe(desk: Desk, partner_id: str, url: str, events: list[str] = EVENTS) -> str:
    response = await desk.client.put(f"/api/referrals/partners/{partner_id}/webhook",
                                     json={"url": url, "events": events}, headers=desk.admin())
    assert response.status_code == 201, response.text
    return response.json()["secret"]


async def deliveries(desk: Desk, partner_id: str, query: str = "") -> list[dict[str, Any]]:
    response = await desk.client.get(f"/api/referrals/partners/{partner_id}/webhook/deliveries{query}",
                                     headers=desk.admin())
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def delivered(desk: Desk, partner_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]] | None:
        found = await deliveries(desk, partner_id, "?state=delivered")
        return found if len(found) >= count else None

    deadline = time.monotonic() + 15
    while (found := await check()) is None:
        assert time.monotonic() < deadline, "not delivered in time"
        await asyncio.sleep(0.05)
    return found


def verify(secret: str, got: Received) -> dict[str, Any]:
    """What a partner does with a delivery: verify it with its secret (raises if it does not verify)."""
    return StandardWebhook(secret).verify(got.body, got.headers)


# ---- the tests -----------------------------------------------------------------------------------------------


async def test_a_sent_and_a_cancelled_referral_reach_the_partner_signed_with_ids_only(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.url("/hooks/rehab"))
        assert secret.startswith("whsec_")
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id, packet=PACKET)
        await wait_for(lambda: len(receiver.received) == 1)
        cancelled = await desk.client.post(f"/api/referrals/referrals/{referral_id}/cancel",
                                           headers=desk.caseworker())
        assert cancelled.status_code == 200, cancelled.text
        await wait_for(lambda: len(receiver.received) == 2)

        sent, cancel = receiver.received
        assert verify(secret, sent) == json.loads(sent.body)
        assert json.loads(sent.body)["type"] == "referral.sent"
        assert json.loads(sent.body)["data"] == {"referral_id": referral_id, "status": "sent"}
        assert set(json.loads(sent.body)) == {"type", "timestamp", "data"}
        assert verify(secret, cancel)["data"] == {"referral_id": referral_id, "status": "cancelled"}
        assert verify(secret, cancel)["type"] == "referral.cancelled"
        assert sent.webhook_id != cancel.webhook_id
        assert sent.headers["content-type"] == "application/json"

        # Nothing about the person, nor intake's case id, in any header or body the partner's server received.
        everything = b"".join(r.raw for r in receiver.received)
        for word in [*SECRET_WORDS, case_id]:
            assert word.encode() not in everything, word
            assert word.encode("utf-8").lower() not in everything.lower(), word
        # Nor in the delivery rows kept for the log.
        with desk.session() as session:
            bodies = [d.body for d in session.exec(select(WebhookDelivery)).all()]
        assert len(bodies) == 2 and not any(word in b for b in bodies for word in [*SECRET_WORDS, case_id])

        log = await delivered(desk, partner_id, 2)
        assert {(d["type"], d["state"], d["attempts"], d["last_status_code"]) for d in log} == {
            ("referral.sent", "delivered", 1, 200), ("referral.cancelled", "delivered", 1, 200)}
        assert {d["id"] for d in log} == {sent.webhook_id, cancel.webhook_id}


async def test_only_subscribed_events_are_delivered(referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.url("/cancellations"), ["referral.cancelled"])
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id)
        await desk.client.post(f"/api/referrals/referrals/{referral_id}/cancel", headers=desk.caseworker())
        await wait_for(lambda: receiver.received)
        await asyncio.sleep(0.3)
        assert [verify(secret, r)["type"] for r in receiver.received] == ["referral.cancelled"]
        assert len(await deliveries(desk, partner_id)) == 1


async def test_a_caseworkers_message_reaches_the_partner_without_its_text_and_the_partners_own_does_not(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.url("/messages"), ["referral.message"])
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id, packet=PACKET)
        path = f"/api/referrals/referrals/{referral_id}/messages"
        written = await desk.client.post(path, json={"text": "PACKET-NOTE-7f3a91: call her after 6"},
                                         headers=desk.caseworker())
        assert written.status_code == 201, written.text
        await wait_for(lambda: len(receiver.received) == 1)
        assert verify(secret, receiver.received[0]) == {
            "type": "referral.message", "timestamp": json.loads(receiver.received[0].body)["timestamp"],
            "data": {"referral_id": referral_id, "status": "sent"}}
        assert b"PACKET-NOTE-7f3a91" not in receiver.received[0].raw

        answered = await desk.client.post(f"/api/partner/referrals/{referral_id}/messages",
                                          json={"text": "we will"}, headers=desk.partner(partner_id))
        assert answered.status_code == 201, answered.text
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1 and len(await deliveries(desk, partner_id)) == 1


async def test_a_failed_delivery_is_retried_with_the_same_webhook_id_and_a_redirect_is_not_followed(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.plan("/flaky", 500, 302))
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id)
        (log,) = await delivered(desk, partner_id)

        attempts = receiver.at("/flaky")
        assert len(attempts) == 3
        assert len({a.webhook_id for a in attempts}) == 1 == len({a.body for a in attempts})
        for attempt in attempts:  # each attempt signed afresh, each verifies
            assert verify(secret, attempt)["data"]["referral_id"] == referral_id
        assert receiver.at("/redirected") == []  # the 302 was a failure, never followed
        assert (log["id"], log["attempts"], log["last_status_code"]) == (attempts[0].webhook_id, 3, 200)
        detail = (await desk.client.get(f"/api/referrals/partners/{partner_id}/webhook/deliveries/{log['id']}",
                                        headers=desk.admin())).json()
        assert [(h["attempt"], h["status_code"], h["error"]) for h in detail["history"]] == [
            (1, 500, "http-status"), (2, 302, "redirect-not-followed"), (3, 200, None)]


async def test_a_delivery_still_failing_after_the_retry_window_is_a_dead_letter(
        referrals_settings, token_issuer, receiver) -> None:
    dead_before = REGISTRY.get_sample_value("rehab_webhook_dead_letters_total") or 0
    # A window of about a second instead of 24 hours (the schedule itself: tests/unit/referrals).
    async with hooked_desk(referrals_settings, token_issuer, webhook_retry_hours=0.0003) as desk:
        partner_id = await desk.add_partner()
        await subscribe(desk, partner_id, receiver.plan("/down", *[503] * 1000))
        case_id = await desk.open_case(categories=["medical"])
        await desk.sent_referral(case_id, partner_id)

        async def dead() -> list[dict[str, Any]]:
            return await deliveries(desk, partner_id, "?state=dead")

        deadline = time.monotonic() + 15
        while not (letters := await dead()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        (letter,) = letters
        assert letter["attempts"] >= 2 and letter["last_status_code"] == 503 and letter["next_attempt_at"] is None
        assert letter["attempts"] == len(receiver.at("/down"))
        # Counted just after the row is committed as dead, so the API may show it a moment before the counter.
        while (REGISTRY.get_sample_value("rehab_webhook_dead_letters_total") or 0) < dead_before + 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert (REGISTRY.get_sample_value("rehab_webhook_dead_letters_total") or 0) == dead_before + 1
        await asyncio.sleep(0.3)
        assert letter["attempts"] == len(receiver.at("/down"))  # no more attempts once dead


async def test_a_hanging_receiver_delays_neither_another_partner_nor_the_api(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        stuck, fine = await desk.add_partner(), await desk.add_partner()
        await subscribe(desk, stuck, receiver.plan("/stuck", *["hang"] * 10))
        secret = await subscribe(desk, fine, receiver.url("/fine"))
        case_id = await desk.open_case(categories=["medical"])
        for _ in range(4):
            await desk.sent_referral(case_id, stuck)
        await wait_for(lambda: len(receiver.at("/stuck")) == 2)  # its two slots (webhook_per_partner) hang

        started = time.monotonic()
        referral_id = await desk.sent_referral(case_id, fine)
        api_took = time.monotonic() - started
        await wait_for(lambda: receiver.at("/fine"), timeout=5)
        took = receiver.at("/fine")[0].at - started
        assert api_took < 1.0, api_took
        assert took < 2.0, took  # the other partner's request hangs for up to 10 s meanwhile
        assert verify(secret, receiver.at("/fine")[0])["data"]["referral_id"] == referral_id
        assert len(receiver.at("/stuck")) == 2  # still hanging, and no more than its bound
        listed = await desk.client.get("/api/referrals/referrals", headers=desk.caseworker())
        assert listed.status_code == 200


async def test_during_a_rotation_both_secrets_sign_each_delivery(referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        old = await subscribe(desk, partner_id, receiver.url("/rotating"))
        once = {**desk.admin(), "Idempotency-Key": "rotate-after-the-leak"}
        rotated = await desk.client.post(f"/api/referrals/partners/{partner_id}/webhook/rotate", headers=once)
        assert rotated.status_code == 200, rotated.text
        new, until = rotated.json()["secret"], datetime.fromisoformat(rotated.json()["previous_valid_until"])
        # Its answer lost, the admin's retry gets the same secret: it rotated once, the old one still signs.
        retried = await desk.client.post(f"/api/referrals/partners/{partner_id}/webhook/rotate", headers=once)
        assert retried.json() == rotated.json() and retried.headers["idempotent-replayed"] == "true"
        assert new.startswith("whsec_") and new != old
        assert timedelta(hours=23, minutes=59) < until - datetime.now(UTC) <= timedelta(hours=24)
        shown = (await desk.client.get(f"/api/referrals/partners/{partner_id}/webhook", headers=desk.admin())).json()
        assert shown["previous_secret_valid_until"] is not None and shown["rotated_at"] is not None
        assert old not in json.dumps(shown) and new not in json.dumps(shown) and "secret\"" not in json.dumps(shown)

        case_id = await desk.open_case(categories=["medical"])
        await desk.sent_referral(case_id, partner_id)
        await wait_for(lambda: receiver.received)
        (got,) = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert verify(new, got) == verify(old, got)  # a partner still on the old secret, or already on the new


async def test_two_workers_never_hold_the_same_delivery_and_a_lost_lease_records_nothing(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        await subscribe(desk, partner_id, receiver.url("/leases"))
        runtime = desk.runtime
        later = datetime.now(UTC) + timedelta(hours=1)  # due then: the service's own worker leaves it alone now
        delivery = await runtime.uow.run(lambda session: webhooks.enqueue(
            session, partner_id=partner_id, referral_id=str(uuid.uuid4()), event=WebhookEvent.SENT, status="sent",
            now=later))
        assert delivery is not None
        lease = timedelta(seconds=60)

        def claim(token: str, now: datetime) -> list[webhook_delivery.Job]:
            return runtime.uow.run(lambda session: webhook_delivery.claim(
                session, keyring=runtime.keyring, now=now, lease=lease, token=token, limit=10, per_partner=2,
                room={}, busy=()))

        first, second = await asyncio.gather(claim("replica-a", later), claim("replica-b", later))
        assert [len(first), len(second)] in ([1, 0], [0, 1])
        holder = "replica-a" if first else "replica-b"
        assert (first or second)[0].delivery_id == delivery.id
        # The lease runs out (a replica died mid-attempt): another takes the row, and the first records nothing.
        taken = await claim("replica-c", later + lease + timedelta(seconds=1))
        assert [job.delivery_id for job in taken] == [delivery.id]
        lost = await runtime.uow.run(lambda session: webhook_delivery.record(
            session, job=(first or second)[0], outcome=Outcome(200, None, 5), now=later, policy=RetryPolicy()))
        assert lost is None and holder != "replica-c"
        kept = await runtime.uow.run(lambda session: webhook_delivery.record(
            session, job=taken[0], outcome=Outcome(200, None, 5), now=later, policy=RetryPolicy()))
        assert kept == "delivered"


async def test_deliveries_survive_a_restart(referrals_settings, token_issuer, receiver) -> None:
    settings = hook_settings(referrals_settings, webhook_lease_seconds=2)
    async with open_desk(settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.plan("/restart", *[500] * 1000))
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id)
        await wait_for(lambda: len(receiver.at("/restart")) >= 2)
    tried_before = len(receiver.at("/restart"))
    receiver.plans["/restart"] = []  # the partner's server is fixed while the service is down
    async with open_desk(settings, token_issuer) as desk:
        (log,) = await delivered(desk, partner_id)
        after = receiver.at("/restart")
        assert len(after) > tried_before
        assert {a.webhook_id for a in after} == {log["id"]}
        assert verify(secret, after[-1])["data"]["referral_id"] == referral_id


async def redeliver(desk: Desk, partner_id: str, delivery_id: str | None = None, headers: dict | None = None):
    path = f"/api/referrals/partners/{partner_id}/webhook/" + (
        f"deliveries/{delivery_id}/redeliver" if delivery_id else "dead-letters/redeliver")
    return await desk.client.post(path, headers=headers or desk.admin())


async def test_dead_letters_are_sent_again_once_the_partners_endpoint_is_mended(
        referrals_settings, token_issuer, receiver) -> None:
    """A partner's server was down past the retry window: once it is mended, an admin sends the dead letters again,
    with the same webhook-id and body, signed afresh; a delivered one a receiver lost can be sent again too."""
    async with hooked_desk(referrals_settings, token_issuer, webhook_retry_hours=0.0003) as desk:
        partner_id, other = await desk.add_partner(), await desk.add_partner()
        secret = await subscribe(desk, partner_id, receiver.plan("/down", *[503] * 1000))
        case_id = await desk.open_case(categories=["medical"])
        referral_id = await desk.sent_referral(case_id, partner_id)
        deadline = time.monotonic() + 15
        while not (letters := await deliveries(desk, partner_id, "?state=dead")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        (letter,) = letters
        tried = len(receiver.at("/down"))

        refused = [await redeliver(desk, partner_id, headers=desk.caseworker()),
                   await redeliver(desk, other, letter["id"]),                       # another partner's id: none
                   await redeliver(desk, partner_id, "msg_" + "0" * 32)]
        assert [r.status_code for r in refused] == [403, 404, 404]
        assert len(receiver.at("/down")) == tried  # nothing was sent by those

        receiver.plans["/down"] = []  # the partner's server is mended
        again = await redeliver(desk, partner_id)
        assert (again.status_code, again.json()) == (202, {"redelivered": 1})
        (log,) = await delivered(desk, partner_id)
        last = receiver.at("/down")[-1]
        assert (log["id"], last.webhook_id, log["attempts"]) == (letter["id"], letter["id"], tried + 1)
        assert last.body == receiver.at("/down")[0].body and verify(secret, last)["data"]["referral_id"] == referral_id
        assert (await redeliver(desk, partner_id)).json() == {"redelivered": 0}  # none dead any more

        receiver.plans["/down"] = ["hang"]
        one = await redeliver(desk, partner_id, letter["id"])  # the receiver lost it: once more
        assert one.status_code == 202 and one.json()["state"] == "pending"
        await wait_for(lambda: len(receiver.at("/down")) == tried + 2)
        assert receiver.at("/down")[-1].webhook_id == letter["id"]
        twice = await redeliver(desk, partner_id, letter["id"])  # its attempt is still under way
        assert (twice.status_code, twice.json()["type"].rsplit("/", 1)[1]) == (409, "webhook-delivery-pending")
        trail = [action for _actor, action in await desk.audit_trail(partner_id)]
        assert trail[-2:] == ["partner.webhook.redeliver-dead", "partner.webhook.redeliver"]


async def test_a_dead_letter_of_an_event_the_webhook_no_longer_asks_for_stays_dead(
        referrals_settings, token_issuer, receiver) -> None:
    async with hooked_desk(referrals_settings, token_issuer, webhook_retry_hours=0.0003) as desk:
        partner_id = await desk.add_partner()
        await subscribe(desk, partner_id, receiver.plan("/gone", *[503] * 1000))
        await desk.sent_referral(await desk.open_case(categories=["medical"]), partner_id)
        deadline = time.monotonic() + 15
        while not (letters := await deliveries(desk, partner_id, "?state=dead")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        narrowed = await desk.client.put(f"/api/referrals/partners/{partner_id}/webhook", headers=desk.admin(),
                                         json={"url": receiver.url("/ok"), "events": ["referral.message"]})
        assert narrowed.status_code == 200, narrowed.text

        every = await redeliver(desk, partner_id)
        one = await redeliver(desk, partner_id, letters[0]["id"])

        assert (every.status_code, every.json()) == (202, {"redelivered": 0})
        assert (one.status_code, one.json()["type"].rsplit("/", 1)[1]) == (409, "webhook-event-not-subscribed")
        assert [d["state"] for d in await deliveries(desk, partner_id)] == ["dead"] and receiver.at("/ok") == []


async def test_a_delivery_is_dead_at_once_when_its_url_is_no_longer_allowed_and_not_retried_for_a_day(
        referrals_settings, token_issuer, receiver) -> None:
    """An http webhook set while private targets were allowed, then the setting turned off: no retry could reach
    it, so its deliveries are dead letters at the first attempt, not tried for 24 hours."""
    async with hooked_desk(referrals_settings, token_issuer) as desk:
        partner_id = await desk.add_partner()
        await subscribe(desk, partner_id, receiver.url("/plain-http"))
    async with hooked_desk(referrals_settings, token_issuer, webhook_allow_private=False) as desk:
        case_id = await desk.open_case(categories=["medical"])
        await desk.sent_referral(case_id, partner_id)
        deadline = time.monotonic() + 15
        while not (letters := await deliveries(desk, partner_id, "?state=dead")):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        (letter,) = letters
        assert (letter["attempts"], letter["last_error"]) == (1, "address-refused: scheme")
        assert receiver.received == []
