"""Admins manage a partner's webhook (SPEC §4): set it with a secret shown once and kept sealed, read it without the
secret, rotate, remove it; URLs that lead anywhere but a public https address are refused (422) unless
`WEBHOOK_ALLOW_PRIVATE`. No referral is sent here, so nothing is ever delivered (the public address below is never
connected to)."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.referrals import vault
from services.referrals.models import Webhook

pytestmark = pytest.mark.integration

PUBLIC = "https://93.184.215.14/hooks/rehab"  # a public address literal: registered without any lookup


def webhook_path(partner_id: str, tail: str = "") -> str:
    return f"/api/referrals/partners/{partner_id}/webhook{tail}"


@pytest.mark.parametrize(("url", "kind", "says"), [
    ("https://127.0.0.1/", "webhook-target-refused", "loopback"),
    ("https://10.0.0.1/", "webhook-target-refused", "private"),
    ("https://[::1]/", "webhook-target-refused", "loopback"),
    ("https://[::ffff:127.0.0.1]/", "webhook-target-refused", "loopback"),
    ("https://169.254.169.254/latest/meta-data", "webhook-target-refused", "link-local"),
    ("https://localhost:8443/", "webhook-target-refused", "loopback"),  # a name: refused after resolving it
    ("http://example.org/", "webhook-https-required", "https"),
    ("https://user:password@93.184.215.14/", "webhook-url-invalid", "password"),
])
async def test_urls_that_do_not_lead_to_a_public_https_address_are_refused(desk, url: str, kind: str,
                                                                           says: str) -> None:
    partner_id = await desk.add_partner()
    response = await desk.client.put(webhook_path(partner_id), json={"url": url, "events": ["referral.sent"]},
                                     headers=desk.admin())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/" + kind)
    assert says in problem["detail"]
    assert (await desk.client.get(webhook_path(partner_id), headers=desk.admin())).status_code == 404


@pytest.mark.parametrize("body", [
    {"url": PUBLIC, "events": []},
    {"url": PUBLIC, "events": ["referral.accepted"]},
    {"url": PUBLIC},
    {"url": PUBLIC, "events": ["referral.sent"], "secret": "whsec_mine"},
])
async def test_bad_bodies_are_422(desk, body) -> None:
    partner_id = await desk.add_partner()
    response = await desk.client.put(webhook_path(partner_id), json=body, headers=desk.admin())
    assert response.status_code == 422, response.text


async def test_only_admins_manage_webhooks(desk) -> None:
    partner_id = await desk.add_partner()
    body = {"url": PUBLIC, "events": ["referral.sent"]}
    for headers in (desk.caseworker(), desk.staff("auditor"), desk.partner(partner_id)):
        assert (await desk.client.put(webhook_path(partner_id), json=body, headers=headers)).status_code in (401, 403)
        assert (await desk.client.get(webhook_path(partner_id, "/deliveries"), headers=headers)).status_code in (
            401, 403)
    assert (await desk.client.put(webhook_path(partner_id), json=body)).status_code == 401
    unknown = "00000000-0000-4000-8000-000000000000"
    assert (await desk.client.put(webhook_path(unknown), json=body, headers=desk.admin())).status_code == 404
    # said before its URL is looked at (an outside review's find: a refused URL answered first, after a lookup)
    private = await desk.client.put(webhook_path(unknown), json={**body, "url": "https://10.0.0.5/hook"},
                                    headers=desk.admin())
    assert (private.status_code, private.json()["type"].rsplit("/", 1)[1]) == (404, "partner-unknown")
    assert (await desk.client.get(webhook_path(unknown, "/deliveries"), headers=desk.admin())).status_code == 404


async def test_set_read_rotate_remove(desk) -> None:
    partner_id = await desk.add_partner()
    admin = desk.admin()
    created = await desk.client.put(webhook_path(partner_id), headers=admin,
                                    json={"url": PUBLIC, "events": ["referral.sent", "referral.cancelled",
                                                                    "referral.sent", "referral.cancelled",
                                                                    "referral.sent"]})  # repeats fold, past 3
    assert created.status_code == 201, created.text
    first = created.json()["secret"]
    assert set(created.json()) == {"secret"}
    assert first.startswith("whsec_") and len(base64.b64decode(first.removeprefix("whsec_"))) == 32

    shown = (await desk.client.get(webhook_path(partner_id), headers=admin)).json()
    assert shown["url"] == PUBLIC and shown["events"] == ["referral.sent", "referral.cancelled"]
    assert shown["rotated_at"] is None and shown["previous_secret_valid_until"] is None
    assert "secret" not in shown

    replaced = await desk.client.put(webhook_path(partner_id), headers=admin,
                                     json={"url": PUBLIC + "/v2", "events": ["referral.message"]})
    assert replaced.status_code == 200
    second = replaced.json()["secret"]
    assert second != first

    rotated = await desk.client.post(webhook_path(partner_id, "/rotate"), headers=admin)
    assert rotated.status_code == 200
    third = rotated.json()["secret"]
    assert third not in (first, second)
    shown = (await desk.client.get(webhook_path(partner_id), headers=admin)).json()
    assert shown["previous_secret_valid_until"] == rotated.json()["previous_valid_until"]
    # The worker signs with the new secret and the one it replaced (not the one a PUT replaced outright).
    hook = await desk.runtime.uow.run(lambda session: session.get(Webhook, partner_id))
    assert vault.open_webhook_secrets(desk.runtime.keyring, hook, datetime.now(UTC)) == [third, second]

    # Secrets are sealed: not one of them, nor its key bytes, is in the database file.
    db = desk.runtime.engine.url.database
    if desk.runtime.engine.dialect.name == "sqlite" and db:
        desk.runtime.engine.dispose()
        raw = b"".join(Path(f).read_bytes() for f in (db, db + "-wal") if os.path.exists(f))
        for secret in (first, second, third):
            assert secret.encode() not in raw
            assert base64.b64decode(secret.removeprefix("whsec_")) not in raw

    assert (await desk.client.delete(webhook_path(partner_id), headers=admin)).status_code == 204
    assert (await desk.client.get(webhook_path(partner_id), headers=admin)).status_code == 404
    assert (await desk.client.post(webhook_path(partner_id, "/rotate"), headers=admin)).status_code == 404
    assert (await desk.client.delete(webhook_path(partner_id), headers=admin)).status_code == 404
    page = (await desk.client.get(webhook_path(partner_id, "/deliveries"), headers=admin)).json()
    assert page == {"items": [], "next_cursor": None}

    trail = await desk.audit_trail(partner_id)
    assert [action for _actor, action in trail] == [
        "partner.create", "partner.webhook.set", "partner.webhook.set", "partner.webhook.rotate",
        "partner.webhook.delete"]

