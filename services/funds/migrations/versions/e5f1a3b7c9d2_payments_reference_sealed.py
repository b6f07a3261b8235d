"""payments: the reference sealed under the case's data key (reference_sealed); reference in clear stays only for
payments made before ("" for those after, and for a payment whose case was erased before it: it keeps none)

Revision ID: e5f1a3b7c9d2
Revises: d4e8a2c6f1b3
Create Date: 2026-12-05 14:20:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5f1a3b7c9d2'
down_revision: str | None = 'd4e8a2c6f1b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch copy: on SQLite a copy would drop the payments' append-only triggers.
    op.add_column('payments', sa.Column('reference_sealed', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # A payment whose reference is sealed has no clear one to go back to: the downgrade refuses rather than lose it.
    if op.get_bind().execute(sa.text("SELECT 1 FROM payments WHERE reference_sealed IS NOT NULL LIMIT 1")).first():
        raise RuntimeError("payments hold sealed references; downgrading would lose them")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_column('payments', 'reference_sealed')
    else:  # SQLite (3.35+) drops a plain column in place
        op.execute("ALTER TABLE payments DROP COLUMN reference_sealed")
