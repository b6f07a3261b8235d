"""idempotency keys: subject_id, keyed fingerprints

- `idempotency_keys.subject_id` (indexed): the id of the case a stored Idempotency-Key answer is about, in clear,
  so that erasing the case deletes the answer and its request fingerprint without opening anything (an answer
  sealed before a KEK rotation and a restart no longer opens under the keys the service derives).
- Fingerprints become keyed HMACs (kit.idempotency) instead of plain SHA-256 hashes of the request, which anyone
  with a list of released prisoners could recompute offline from a name and a birth date.
- Every row already stored is deleted: its fingerprint is such a plain hash, and its answer cannot be linked to
  a case without opening it. They are at most 48 hours (the retention) of replay protection: a client retrying
  a request sent before the upgrade with the same key gets it treated as new.

Revision ID: 03288c403fd9
Revises: 95a19d0ce372
Create Date: 2026-12-02 13:31:45.142910
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '03288c403fd9'
down_revision: Union[str, None] = '95a19d0ce372'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Nothing stored before is kept (see above).
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_idempotency_keys_subject_id'), ['subject_id'], unique=False)


def downgrade() -> None:
    # The older code compares plain hashes: the keyed fingerprints stored since would only answer 422.
    op.execute("DELETE FROM idempotency_keys")
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_subject_id'))
        batch_op.drop_column('subject_id')
