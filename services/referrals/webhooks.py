"""Partners' webhooks (SPEC §4, Standard Webhooks): admins set, rotate and remove a partner's webhook and read its
deliveries; every use case that changes a referral a partner should hear of writes a delivery with `enqueue`.

A delivery is an outbox row: `enqueue` adds it in the caller's transaction, so it exists exactly when the change it
tells of was committed, and a process that dies loses none (the worker, `webhook_delivery.py`, finds it in the
database). Its body holds the referral's id and state only (`webhook_rules.body`).

The signing secret is shown once, when made, and kept sealed (`vault.seal_webhook_secrets`). A rotation makes a new
one and keeps the old one signing beside it (two signatures, space-separated) for `webhook_rotation_overlap_hours`.
A URL is checked before it is stored (`set_webhook`): https, and every address its host resolves to public, unless
`WEBHOOK_ALLOW_PRIVATE`.

Like every use case these never commit: `set_webhook` checks the URL, then runs `store_webhook` as a unit of
`runtime.uow`; the routes run the others the same way, or read through a read-only session.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, update
from sqlmodel import Session, select

from kit.audit import AuditTrail
from kit.db import get_or_raise
from kit.errors import Conflict, NotFound
from kit.pagination import keyset_page
from kit.service import Runtime
from services.referrals import vault, webhook_targets
from services.referrals.domain import Status
from services.referrals.models import (
    Partner,
    Referral,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSet,
)
from services.referrals.webhook_rules import (
    EVENT_OF_STATUS,
    DeliveryState,
    WebhookEvent,
    body,
    new_secret,
    parse_target,
)

# Set on a unit's session when it wrote a delivery: once committed, the worker is woken (`webhook_delivery`).
DELIVERIES_WRITTEN = "referrals.webhook_deliveries_written"


def no_partner() -> NotFound:
    return NotFound("There is no partner with this id in the directory.", code="partner-unknown")


def no_webhook() -> NotFound:
    return NotFound("This partner has no webhook.", code="webhook-not-found")


def no_delivery() -> NotFound:
    return NotFound("This partner's webhook has no delivery with this id.", code="webhook-delivery-not-found")


def _now() -> datetime:
    return datetime.now(UTC)


# ---- for admins ----------------------------------------------------------------------------------------------


async def set_webhook(*, runtime: Runtime, partner_id: str, webhook_in: WebhookSet, actor: str) -> tuple[str, bool]:
    """Check the URL (its scheme, then every address its host resolves to), then store the webhook with a new secret.
    The secret and whether the webhook is new."""
    settings: Any = runtime.settings
    allow_private = settings.webhook_allow_private
    # An unknown partner is said so before its URL is looked up (a name resolved for a partner that is not there).
    await runtime.uow.run(lambda session: get_or_raise(session, Partner, partner_id, no_partner()))
    target = parse_target(webhook_in.url, allow_private=allow_private)
    await webhook_targets.checked_address(target, allow_private=allow_private,
                                          timeout=settings.webhook_connect_timeout_seconds)
    return await runtime.uow.run(lambda session: store_webhook(
        session=session, runtime=runtime, partner_id=partner_id, webhook_in=webhook_in, actor=actor))


def store_webhook(*, session: Session, runtime: Runtime, partner_id: str, webhook_in: WebhookSet,
                  actor: str) -> tuple[str, bool]:
    """Create or replace the partner's webhook with a new secret (the old one, if any, stops signing at once: a
    rotation is the gentle way). Deliveries not yet made go to the new URL."""
    get_or_raise(session, Partner, partner_id, no_partner())
    now = _now()
    webhook = session.get(Webhook, partner_id, with_for_update=True)
    created = webhook is None
    if webhook is None:
        webhook = Webhook(partner_id=partner_id, created_at=now)
    webhook.url = webhook_in.url
    webhook.events = [str(event) for event in webhook_in.events]
    webhook.updated_at = now
    webhook.rotated_at = None
    webhook.previous_until = None
    secret = new_secret()
    vault.seal_webhook_secrets(runtime.keyring, webhook, secret)
    session.add(webhook)
    runtime.audit.record(session, actor=actor, action="partner.webhook.set", target_id=partner_id)
    return secret, created


def rotate_secret(*, session: Session, runtime: Runtime, partner_id: str, actor: str) -> tuple[str, datetime]:
    """A new secret; the current one keeps signing beside it for the overlap. A rotation during another's overlap
    drops the oldest. The new secret and until when the previous one signs."""
    webhook = get_or_raise(session, Webhook, partner_id, no_webhook(), lock=True)
    now = _now()
    current = vault.open_webhook_secrets(runtime.keyring, webhook, now)[0]
    secret = new_secret()
    vault.seal_webhook_secrets(runtime.keyring, webhook, secret, previous=current)
    hours = runtime.settings.webhook_rotation_overlap_hours  # type: ignore[attr-defined]
    webhook.previous_until = now + timedelta(hours=hours)
    webhook.rotated_at = webhook.updated_at = now
    session.add(webhook)
    runtime.audit.record(session, actor=actor, action="partner.webhook.rotate", target_id=partner_id)
    return secret, webhook.previous_until


def remove_webhook(*, session: Session, audit: AuditTrail, partner_id: str, actor: str) -> None:
    """Remove the partner's webhook; its deliveries not yet made are dropped (kept in the log as `dropped`)."""
    webhook = get_or_raise(session, Webhook, partner_id, no_webhook(), lock=True)
    now = _now()
    session.delete(webhook)
    pending = and_(WebhookDelivery.partner_id == partner_id, WebhookDelivery.state == DeliveryState.PENDING)
    session.execute(update(WebhookDelivery).where(pending).values(
        state=DeliveryState.DROPPED, finished_at=now, next_attempt_at=None, claimed_until=None, claim_token=None))
    audit.record(session, actor=actor, action="partner.webhook.delete", target_id=partner_id)


def get_webhook(*, session: Session, partner_id: str) -> Webhook:
    """The partner's webhook (never its secret: the answer leaves it out)."""
    return get_or_raise(session, Webhook, partner_id, no_webhook())


def list_deliveries(*, session: Session, partner_id: str, state: DeliveryState | None, limit: int,
                    cursor: str | None) -> tuple[list[WebhookDelivery], str | None]:
    """The partner's deliveries, newest first; with `state=dead`, its dead letters."""
    get_or_raise(session, Partner, partner_id, no_partner())
    query = select(WebhookDelivery).where(WebhookDelivery.partner_id == partner_id)
    if state:
        query = query.where(WebhookDelivery.state == state)
    return keyset_page(session, query, order=[WebhookDelivery.created_at, WebhookDelivery.id], limit=limit,
                       cursor=cursor, descending=True)


@dataclass
class DeliveryRead:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def read_delivery(*, session: Session, partner_id: str, delivery_id: str) -> DeliveryRead:
    """One delivery with each of its attempts, oldest first."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.partner_id != partner_id:
        raise no_delivery()
    attempts = session.exec(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
                            .order_by(WebhookAttempt.attempt)).all()  # type: ignore[arg-type]
    return DeliveryRead(delivery, list(attempts))


def redeliver(*, session: Session, audit: AuditTrail, partner_id: str, delivery_id: str,
              actor: str) -> WebhookDelivery:
    """Send a finished delivery again, to the webhook as it is now: a dead letter once the partner has mended its
    endpoint, a delivered one its receiver lost, or one dropped with an earlier webhook. It is pending and due at
    once, with its `webhook-id` and body (a receiver that did get it tells the repeat by the id). Its retries end
    where they would have, `webhook_retry_hours` after it was written: an old dead letter is tried once more."""
    webhook = get_or_raise(session, Webhook, partner_id, no_webhook())
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.partner_id != partner_id:
        raise no_delivery()
    if delivery.state == DeliveryState.PENDING:
        raise Conflict("This delivery is being made: it is tried again on its own until it succeeds or its retries "
                       "end.", code="webhook-delivery-pending")
    if delivery.event_type not in webhook.events:
        raise Conflict(f"The partner's webhook is no longer subscribed to {delivery.event_type}.",
                       code="webhook-event-not-subscribed")
    _due_again(session, [delivery], _now())
    audit.record(session, actor=actor, action="partner.webhook.redeliver", target_id=partner_id)
    return delivery


def redeliver_dead_letters(*, session: Session, audit: AuditTrail, partner_id: str, actor: str) -> int:
    """Send every dead letter of the partner again (`redeliver`), once its endpoint is mended; those of events
    its webhook is no longer subscribed to stay dead. How many are sent again."""
    webhook = get_or_raise(session, Webhook, partner_id, no_webhook(), lock=True)
    dead = session.exec(select(WebhookDelivery).where(
        WebhookDelivery.partner_id == partner_id, WebhookDelivery.state == DeliveryState.DEAD,
        WebhookDelivery.event_type.in_(webhook.events))  # type: ignore[attr-defined]
        .with_for_update()).all()
    _due_again(session, list(dead), _now())
    audit.record(session, actor=actor, action="partner.webhook.redeliver-dead", target_id=partner_id)
    return len(dead)


def _due_again(session: Session, deliveries: list[WebhookDelivery], now: datetime) -> None:
    for delivery in deliveries:
        delivery.state = DeliveryState.PENDING
        delivery.next_attempt_at = now
        delivery.finished_at = delivery.claimed_until = delivery.claim_token = None
        session.add(delivery)
    if deliveries:
        session.info[DELIVERIES_WRITTEN] = True  # the worker is woken once this commits


# ---- for the use cases that change referrals -----------------------------------------------------------------


def enqueue(session: Session, *, partner_id: str, referral_id: str, event: WebhookEvent, status: Status | str,
            now: datetime) -> WebhookDelivery | None:
    """Write a delivery of `event` about a referral for its partner, in the caller's transaction, if the partner
    has a webhook subscribed to it (None otherwise). Any use case may call it: a new message calls it with
    `WebhookEvent.MESSAGE` and the referral's current status."""
    webhook = session.get(Webhook, partner_id)
    if webhook is None or str(event) not in webhook.events:
        return None
    delivery = WebhookDelivery(
        id=f"msg_{uuid.uuid4().hex}", partner_id=partner_id, event_type=str(event), referral_id=referral_id,
        body=body(event, referral_id, status, now).decode(), state=DeliveryState.PENDING, attempts=0,
        created_at=now, next_attempt_at=now,
    )
    session.add(delivery)
    session.info[DELIVERIES_WRITTEN] = True
    return delivery


def enqueue_change(session: Session, referral: Referral, now: datetime) -> WebhookDelivery | None:
    """The delivery of the state the referral has just reached, when it is one its partner is told of
    (`webhook_rules.EVENT_OF_STATUS`: sent, cancelled)."""
    event = EVENT_OF_STATUS.get(Status(referral.status))
    if event is None:
        return None
    return enqueue(session, partner_id=referral.partner_id, referral_id=referral.id, event=event,
                   status=referral.status, now=now)
