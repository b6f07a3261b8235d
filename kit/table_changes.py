"""Changes to the kit's own tables (kit.tables: outbox, inbox, dead letters, audit, idempotency keys), which live in
every service's database: each service's Alembic revision calls the step here, so the change is written once.

Run inside a migration (they use `alembic.op`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def idempotency_subject_id_upgrade() -> None:
    """`idempotency_keys.subject_id` (indexed): the case a stored Idempotency-Key answer is about, in clear, so that
    erasing the case deletes the answer and its fingerprint without opening anything. Fingerprints become keyed
    HMACs. Every row stored before is deleted: its fingerprint is a plain hash of the request (a name and a birth
    date recomputable from any public list), and its answer cannot be linked to a case without opening it. They are
    at most the retention (48 hours) of replay protection: a retry of an older request is treated as new."""
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_idempotency_keys_subject_id"), ["subject_id"], unique=False)


def idempotency_subject_id_downgrade() -> None:
    # The older code compares plain hashes: the keyed fingerprints stored since would only answer 422.
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_subject_id"))
        batch_op.drop_column("subject_id")


def revoked_access_upgrade() -> None:
    """`revoked_access`: the ended sessions a service refuses (kit.revocation), kept across restarts."""
    op.create_table(
        "revoked_access",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "subject"),
    )
    op.create_index(op.f("ix_revoked_access_revoked_at"), "revoked_access", ["revoked_at"], unique=False)
    op.create_index(op.f("ix_revoked_access_recorded_at"), "revoked_access", ["recorded_at"], unique=False)


def revoked_access_downgrade() -> None:
    op.drop_index(op.f("ix_revoked_access_recorded_at"), table_name="revoked_access")
    op.drop_index(op.f("ix_revoked_access_revoked_at"), table_name="revoked_access")
    op.drop_table("revoked_access")
