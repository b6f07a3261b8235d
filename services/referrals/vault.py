"""Sealing what a referral holds about a person, and destroying it (crypto-shredding).

Each referral has two data keys, wrapped by the KEK and stored beside the ciphertexts:
- the packet key, for the packet the caseworker wrote for the partner and for the messages the two sides write on the
  referral (`referral_messages`, each text bound to its message id); destroyed when consent stops covering it
  or the case is erased, after which the packet cannot be read by anyone, even with the KEK, and the messages' rows
  are deleted in the same transaction;
- the reply key, for what the partner wrote back (decline reason, outcome); destroyed only by erasure.
Associated data binds each ciphertext to this table, its column and its referral id (a message's text: to its
table and the message's id). The keyring is the kit's
(`runtime.keyring`), re-read when `rehab keys rotate` adds a KEK; `models.WRAPPED_KEYS` names both key columns, so
the rotation re-wraps them and `rehab keys retire` counts them.

A partner's webhook secrets are no personal data but credentials (whoever holds one can forge deliveries): sealed the
same way, under a data key of the webhook's own (`models.WRAPPED_KEYS` names it too).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session

from kit.crypto import Keyring, WrappedKey, aad, open_sealed, seal
from kit.db import scrub_after_commit
from kit.idempotency import StoredAnswers
from services.referrals.models import MessageMark, Packet, Referral, ReferralMessage, Webhook, kit_tables

TABLE = "referrals"
STORED_ANSWERS = StoredAnswers(kit_tables)  # found by the referral id beside them: no key needed to delete them
MESSAGES = "referral_messages"
WEBHOOKS = "webhooks"
REPLY_COLUMNS = ("decline_reason", "outcome")


def seal_packet(keyring: Keyring, referral: Referral, packet: Packet) -> None:
    key, wrapped = keyring.new_wrapped_data_key()
    referral.packet_kid, referral.packet_key = wrapped.kid, wrapped.blob
    plaintext = packet.model_dump_json(exclude_none=True).encode()
    referral.packet = seal(key, plaintext, aad(TABLE, "packet", referral.id))


def open_packet(keyring: Keyring, referral: Referral) -> Packet | None:
    if referral.packet_key is None or referral.packet is None or referral.packet_kid is None:
        return None
    key = keyring.unwrap(WrappedKey(referral.packet_kid, referral.packet_key))
    return Packet.model_validate_json(open_sealed(key, referral.packet, aad(TABLE, "packet", referral.id)))


def drop_packet(session: Session, referral: Referral, *, reason: str, now: datetime) -> None:
    """Delete the packet's contents — the name it gives, the contact, the health summary, the note — but keep its
    key, under which the referral's messages are sealed. Once committed, the old bytes also leave SQLite's
    write-ahead log (`scrub_after_commit`)."""
    referral.packet = None
    referral.packet_withdrawn = reason
    referral.packet_withdrawn_at = now
    scrub_after_commit(session)


def shred_packet(session: Session, referral: Referral, *, reason: str, now: datetime) -> None:
    """Destroy the packet's key (and the ciphertext with it): nobody can read this packet again. The messages sealed
    under it are deleted in the same transaction, with how far each side had read them, and so are the stored
    Idempotency-Key answers that repeat a message's text (linked to the referral). Once that is committed, the old
    bytes also leave SQLite's write-ahead log (`scrub_after_commit`)."""
    referral.packet_key = None
    referral.packet_kid = None
    referral.packet = None
    referral.packet_withdrawn = reason
    referral.packet_withdrawn_at = now
    session.execute(delete(ReferralMessage).where(ReferralMessage.referral_id == referral.id))  # type: ignore[arg-type]
    session.execute(delete(MessageMark).where(MessageMark.referral_id == referral.id))  # type: ignore[arg-type]
    STORED_ANSWERS.forget(session, referral.id)
    scrub_after_commit(session)


def seal_message(keyring: Keyring, referral: Referral, message_id: str, text: str) -> bytes:
    """A message's text sealed under the referral's packet key, bound to the message's id. The caller has checked
    that the key is there (`domain.message_refusal`)."""
    assert referral.packet_key is not None and referral.packet_kid is not None
    key = keyring.unwrap(WrappedKey(referral.packet_kid, referral.packet_key))
    return seal(key, text.encode(), aad(MESSAGES, "text", message_id))


def open_messages(keyring: Keyring, referral: Referral, messages: Sequence[ReferralMessage]) -> list[str]:
    """The texts of some of a referral's messages, in their order; the packet key is unwrapped once for them all.
    None of them once the key is gone (their rows go with it: this is only the moment in between)."""
    if not messages or referral.packet_key is None or referral.packet_kid is None:
        return []
    key = keyring.unwrap(WrappedKey(referral.packet_kid, referral.packet_key))
    return [open_sealed(key, m.text, aad(MESSAGES, "text", m.id)).decode() for m in messages]


def seal_reply(keyring: Keyring, referral: Referral, column: str, text: str) -> None:
    assert column in REPLY_COLUMNS
    if referral.reply_key is None or referral.reply_kid is None:
        key, wrapped = keyring.new_wrapped_data_key()
        referral.reply_kid, referral.reply_key = wrapped.kid, wrapped.blob
    else:
        key = keyring.unwrap(WrappedKey(referral.reply_kid, referral.reply_key))
    setattr(referral, column, seal(key, text.encode(), aad(TABLE, column, referral.id)))


def open_reply(keyring: Keyring, referral: Referral, column: str) -> str | None:
    assert column in REPLY_COLUMNS
    blob = getattr(referral, column)
    if blob is None or referral.reply_key is None or referral.reply_kid is None:
        return None
    key = keyring.unwrap(WrappedKey(referral.reply_kid, referral.reply_key))
    return open_sealed(key, blob, aad(TABLE, column, referral.id)).decode()


def shred_replies(session: Session, referral: Referral) -> None:
    referral.reply_key = None
    referral.reply_kid = None
    referral.decline_reason = None
    referral.outcome = None
    scrub_after_commit(session)


def seal_webhook_secrets(keyring: Keyring, webhook: Webhook, secret: str, previous: str | None = None) -> None:
    """Seal the webhook's signing secret (and the one it replaces, during a rotation) under a fresh data key."""
    key, wrapped = keyring.new_wrapped_data_key()
    webhook.secret_kid, webhook.secret_key = wrapped.kid, wrapped.blob
    webhook.secret = seal(key, secret.encode(), aad(WEBHOOKS, "secret", webhook.partner_id))
    webhook.previous_secret = None if previous is None else seal(
        key, previous.encode(), aad(WEBHOOKS, "previous_secret", webhook.partner_id))


def open_webhook_secrets(keyring: Keyring, webhook: Webhook, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, then the previous one while its overlap lasts."""
    key = keyring.unwrap(WrappedKey(webhook.secret_kid, webhook.secret_key))
    secrets = [open_sealed(key, webhook.secret, aad(WEBHOOKS, "secret", webhook.partner_id)).decode()]
    if webhook.previous_secret is not None and webhook.previous_until is not None and webhook.previous_until > now:
        secrets.append(open_sealed(key, webhook.previous_secret,
                                   aad(WEBHOOKS, "previous_secret", webhook.partner_id)).decode())
    return secrets
