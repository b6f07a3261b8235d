"""The rules of partners' webhooks as tables: the retry schedule, the addresses and URLs a delivery may go to, the
body and the signature. No I/O (but for `localhost`, resolved from the hosts file)."""

from __future__ import annotations

import json
import random
import socket
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from services.referrals import webhook_targets
from services.referrals.api import webhook_router
from services.referrals.domain import Status
from services.referrals.models import ReferralCancelledPayload, ReferralMessagePayload, ReferralSentPayload
from services.referrals.webhook_rules import (
    EVENT_OF_STATUS,
    RetryPolicy,
    TargetRefused,
    WebhookEvent,
    body,
    check_addresses,
    new_secret,
    parse_target,
    refused_address,
    signed_headers,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy()  # the defaults the service runs with: 5 s, 3 h, 24 h


# ---- the retry schedule ----------------------------------------------------------------------------------------


def _run_until_dead(policy: RetryPolicy, draw) -> tuple[int, timedelta]:
    """Fail every attempt, as a dead receiver would: how many attempts, and how long until the dead letter."""
    now, failures = T0, 0
    while True:
        failures += 1
        next_at = policy.next_attempt(created_at=T0, now=now, failures=failures, draw=draw)
        if next_at is None:
            return failures, now - T0
        assert next_at > now
        now = next_at


@pytest.mark.parametrize("draw", [lambda: 0.0, lambda: 1.0, lambda: 0.5, random.Random(18).random],
                         ids=["jitter-least", "jitter-most", "jitter-half", "random"])
def test_a_delivery_is_tried_for_at_least_24_hours_then_it_is_dead(draw) -> None:
    attempts, lasted = _run_until_dead(POLICY, draw)
    assert lasted >= timedelta(hours=24)
    assert lasted < timedelta(hours=24) + POLICY.cap + timedelta(seconds=1)  # the last wait ends it, no later
    assert attempts >= 2


def test_the_ceiling_doubles_from_base_up_to_the_cap() -> None:
    assert [POLICY.ceiling(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 80, 160]
    assert POLICY.ceiling(12) == timedelta(seconds=10240)
    assert POLICY.ceiling(13) == timedelta(hours=3)
    assert POLICY.ceiling(10_000) == timedelta(hours=3)  # no overflow however long it goes
    assert POLICY.ceiling(0) == POLICY.base


@pytest.mark.parametrize("failures", [1, 2, 5, 11, 12, 30])
def test_full_jitter_waits_between_base_and_the_ceiling(failures: int) -> None:
    rng = random.Random(failures)
    waits = [POLICY.wait(failures, rng.random) for _ in range(2000)]
    ceiling = POLICY.ceiling(failures)
    assert all(POLICY.base <= w <= ceiling for w in waits)
    if ceiling >= 4 * POLICY.base:  # jitter indeed spreads the waits over the range (not one fixed step)
        assert min(waits) < ceiling / 4 and max(waits) > ceiling * 3 / 4
    assert POLICY.wait(failures, lambda: 0.0) == POLICY.base
    assert POLICY.wait(failures, lambda: 1.0) == ceiling


def test_a_dead_receiver_costs_a_few_dozen_attempts_a_day() -> None:
    counts = [_run_until_dead(POLICY, random.Random(seed).random)[0] for seed in range(50)]
    assert 12 <= sum(counts) / len(counts) <= 40


def test_a_failure_inside_the_window_is_retried_and_after_it_is_dead() -> None:
    assert POLICY.next_attempt(created_at=T0, now=T0 + timedelta(hours=23, minutes=59), failures=20) is not None
    assert POLICY.next_attempt(created_at=T0, now=T0 + timedelta(hours=24), failures=20) is None


# ---- addresses a delivery may not reach -----------------------------------------------------------------------

# The kind named where every Python version agrees on it; None: refused, whichever kind the version calls it.
REFUSED = {
    "127.0.0.1": "loopback", "127.255.0.9": "loopback", "::1": "loopback",
    "10.0.0.1": "private", "172.16.5.4": "private", "192.168.1.1": "private", "fd00::1": "private",
    "169.254.169.254": "link-local", "fe80::1": "link-local",
    "224.0.0.1": "multicast", "ff02::1": "multicast",
    "0.0.0.0": "unspecified", "::": "unspecified",
    "240.0.0.1": None, "255.255.255.255": None, "0.1.2.3": None,
    "100.64.0.1": None,  # shared address space (carrier-grade NAT)
    "192.0.2.10": None, "2001:db8::1": None,  # documentation
    # IPv6 addresses that carry an IPv4 one are judged by it.
    "::ffff:127.0.0.1": "loopback", "::ffff:10.1.2.3": "private", "::ffff:169.254.169.254": "link-local",
    "64:ff9b::7f00:1": "loopback", "64:ff9b::a00:1": "private", "2002:7f00:1::": "loopback",
    "2002:a00:1::": "private",
    # Special-purpose blocks some Python versions call global.
    "fec0::1": None, "192.0.0.8": None, "192.88.99.1": None, "198.18.0.1": None, "100::1": None,
}


@pytest.mark.parametrize(("address", "reason"), sorted(REFUSED.items()))
def test_non_public_addresses_are_refused(address: str, reason: str | None) -> None:
    found = refused_address(address)
    assert found is not None
    if reason:
        assert found == reason
    with pytest.raises(TargetRefused):
        check_addresses([address], allow_private=False)
    check_addresses([address], allow_private=True)  # development and tests


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808"])
def test_public_addresses_pass(address: str) -> None:
    assert refused_address(address) is None
    check_addresses([address], allow_private=False)


def test_one_bad_address_among_good_ones_is_enough_to_refuse() -> None:
    with pytest.raises(TargetRefused) as refused:
        check_addresses(["93.184.215.14", "10.0.0.7"], allow_private=False)
    assert refused.value.reason == "private"
    assert "10.0.0.7" not in refused.value.detail  # the kind only: internal addresses are not told back
    with pytest.raises(TargetRefused):
        check_addresses([], allow_private=True)


# ---- URLs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "code"), [
    ("http://example.org/hook", "webhook-https-required"),
    ("ftp://example.org/hook", "webhook-https-required"),
    ("example.org/hook", "webhook-https-required"),
    ("https://user:pw@example.org/hook", "webhook-url-invalid"),
    ("https:///hook", "webhook-url-invalid"),
    ("https://example.org/hook#frag", "webhook-url-invalid"),
    ("https://example.org:99999/", "webhook-url-invalid"),
    ("https://example.org/" + "a" * 2048, "webhook-url-invalid"),
    ("https://93.184.216.34/\r\nX-Injected: 1", "webhook-url-invalid"),  # urlsplit would drop the CR LF silently
    ("https://example.org/a b", "webhook-url-invalid"),
    ("https://exam\tple.org/", "webhook-url-invalid"),
    ("https://127.0.0.1/", "webhook-target-refused"),
    ("https://10.0.0.1/", "webhook-target-refused"),
    ("https://[::1]/", "webhook-target-refused"),
    ("https://[::ffff:127.0.0.1]:8443/", "webhook-target-refused"),
])
def test_urls_refused(url: str, code: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        parse_target(url, allow_private=False)
    assert refused.value.code == code


def test_a_url_taken_apart_and_pinned_to_its_checked_address() -> None:
    target = parse_target("https://Hooks.Example.ORG./in/rehab?k=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path, target.literal) == (
        "https", "hooks.example.org", 443, "/in/rehab?k=1", False)
    assert target.host_header == "hooks.example.org"
    assert target.pinned_url("93.184.215.14") == "https://93.184.215.14:443/in/rehab?k=1"
    assert target.pinned_url("2606:4700::1") == "https://[2606:4700::1]:443/in/rehab?k=1"
    local = parse_target("http://[::1]:8080", allow_private=True)
    assert (local.host, local.port, local.path, local.literal, local.host_header) == ("::1", 8080, "/", True,
                                                                                      "[::1]:8080")
    assert parse_target("https://bücher.example/", allow_private=False).host == "xn--bcher-kva.example"


async def test_a_name_that_resolves_to_loopback_is_refused() -> None:
    target = parse_target("https://localhost:8443/hook", allow_private=False)
    with pytest.raises(TargetRefused) as refused:
        await webhook_targets.checked_address(target, allow_private=False, timeout=3)
    assert refused.value.reason == "loopback"
    assert await webhook_targets.checked_address(target, allow_private=True, timeout=3) in ("127.0.0.1", "::1")


async def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_answer(*_args, **_kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)  # no lookup leaves this machine
    target = parse_target("https://nothing-here.invalid/hook", allow_private=False)
    with pytest.raises(TargetRefused) as refused:
        await webhook_targets.checked_address(target, allow_private=False, timeout=3)
    assert refused.value.reason == "unresolved"


# ---- what is sent, and how it is signed ----------------------------------------------------------------------


def test_the_body_holds_the_type_a_timestamp_and_ids_only() -> None:
    sent = json.loads(body(WebhookEvent.SENT, "a1b2", Status.SENT, T0))
    assert sent == {"type": "referral.sent", "timestamp": "2026-12-01T09:00:00Z",
                    "data": {"referral_id": "a1b2", "status": "sent"}}
    assert EVENT_OF_STATUS == {Status.SENT: WebhookEvent.SENT, Status.CANCELLED: WebhookEvent.CANCELLED}


def test_every_body_sent_is_what_the_openapi_document_describes_for_its_event() -> None:
    """The document's `webhooks` (a body schema for each event) and what the worker sends must not drift apart; a
    partner building to the document learns which `type` each event's body carries."""
    described = {WebhookEvent.SENT: ReferralSentPayload, WebhookEvent.CANCELLED: ReferralCancelledPayload,
                 WebhookEvent.MESSAGE: ReferralMessagePayload}
    assert set(described) == set(WebhookEvent)
    for event, payload in described.items():
        sent = body(event, "a1b2", Status.IN_PROGRESS, T0)
        assert payload.model_validate_json(sent, strict=True).model_dump(mode="json") == json.loads(sent)
        for other in set(described.values()) - {payload}:
            with pytest.raises(ValidationError):
                other.model_validate_json(sent, strict=True)
    described_by = FastAPI()
    described_by.webhooks.include_router(webhook_router)  # as services.referrals.main does
    document = described_by.openapi()["webhooks"]
    for event, payload in described.items():
        schema = document[event.value]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith(f"/{payload.__name__}")


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    headers = signed_headers("msg_p5jXN8AQM9LWM0D4loKWxJek", '{"test": 2432232314}',
                             ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], 1614265330)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert headers["webhook-timestamp"] == "1614265330"


def test_during_a_rotation_both_secrets_sign_and_each_verifies() -> None:
    new, old = new_secret(), new_secret()
    assert new.startswith("whsec_") and new != old
    payload = body(WebhookEvent.CANCELLED, "r-1", Status.CANCELLED, T0).decode()
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers("msg_1", payload, [new, old], now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        assert StandardWebhook(secret).verify(payload, headers)["data"]["referral_id"] == "r-1"
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(new_secret()).verify(payload, headers)


def test_where_http_is_taken_a_refused_scheme_is_told_http_or_https() -> None:
    """An outside review's find: with REHAB_WEBHOOK_ALLOW_PRIVATE on, `ftp://` was told "must use https" while
    `http://` was taken. The kind stays `webhook-https-required`; the words say what this installation takes."""
    with pytest.raises(TargetRefused) as development:
        parse_target("ftp://x.example/", allow_private=True)
    with pytest.raises(TargetRefused) as production:
        parse_target("ftp://x.example/", allow_private=False)

    assert development.value.code == production.value.code == "webhook-https-required"
    assert "must use http or https" in development.value.detail
    assert "must use https:" in production.value.detail and "http or" not in production.value.detail
    assert parse_target("http://x.example/", allow_private=True).scheme == "http"
