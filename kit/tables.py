"""The kit's own tables, declared into each service's metadata so each service's migrations own them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for long-lived sequences.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class KitTables:
    """Outbox, inbox, dead letters, audit trail and idempotency keys for one service's database; with
    `revocations`, also the ended sessions it refuses (kit.revocation: the domain services, not the gateway, which
    keeps the sessions themselves)."""

    def __init__(self, metadata: MetaData, *, revocations: bool = True) -> None:
        self.outbox = Table(
            "outbox",
            metadata,
            Column("seq", SeqType, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("subject", String(200), nullable=False),
            Column("aggregate_id", String(64), nullable=False),
            Column("envelope", Text, nullable=False),
            Column("headers", Text, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False),
            Column("published_at", DateTime(timezone=True), nullable=True, index=True),
            Column("attempts", Integer, nullable=False, default=0),
        )
        self.inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("event_id", String(36), primary_key=True),
            Column("subject", String(200), nullable=False),
            Column("applied_at", DateTime(timezone=True), nullable=False),
        )
        self.dead_letters = Table(
            "dead_letters",
            metadata,
            Column("id", SeqType, primary_key=True, autoincrement=True),
            Column("consumer", String(100), nullable=False),
            Column("event_id", String(64), nullable=False),
            Column("subject", String(200), nullable=False),
            Column("payload", Text, nullable=False),
            Column("error", Text, nullable=False),
            Column("deliveries", Integer, nullable=False),
            Column("parked_at", DateTime(timezone=True), nullable=False),
        )
        self.audit = Table(
            "audit_log",
            metadata,
            Column("seq", SeqType, primary_key=True, autoincrement=True),
            Column("id", String(36), nullable=False, unique=True),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("actor", String(200), nullable=False),
            Column("action", String(100), nullable=False),
            Column("target_id", String(64), nullable=True, index=True),
            Column("request_id", String(100), nullable=True),
            Column("prev_hash", String(64), nullable=False),
            Column("hash", String(64), nullable=False),
        )
        self.idempotency = Table(
            "idempotency_keys",
            metadata,
            Column("principal", String(200), primary_key=True),
            Column("key", String(200), primary_key=True),
            Column("fingerprint", String(64), nullable=False),
            Column("state", String(16), nullable=False),
            Column("status_code", Integer, nullable=True),
            Column("body", LargeBinary, nullable=True),
            Column("created_at", DateTime(timezone=True), nullable=False, index=True),
            # The case the stored answer is about, in clear (an id, no personal data): erasure deletes by it.
            Column("subject_id", String(64), nullable=True, index=True),
        )
        self.revoked_access = Table(
            "revoked_access",
            metadata,
            Column("kind", String(16), primary_key=True),  # "session" (a sid) or "user" (sid-less tokens)
            Column("subject", String(64), primary_key=True),
            Column("revoked_at", DateTime(timezone=True), nullable=False, index=True),
            Column("recorded_at", DateTime(timezone=True), nullable=False, index=True),
        ) if revocations else None
