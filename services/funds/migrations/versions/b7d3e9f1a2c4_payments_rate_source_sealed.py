"""payments: the rate's source sealed under the case's data key (fx_source_sealed); fx_source in clear stays only for
payments made before

Revision ID: b7d3e9f1a2c4
Revises: 4f2b8c91d0a7
Create Date: 2026-12-05 08:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b7d3e9f1a2c4'
down_revision: Union[str, None] = '4f2b8c91d0a7'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHECK = "ck_payments_fx_whole"
# models.Payment's rule, the source either in clear (before this revision) or sealed.
WHOLE = ("(paid_currency IS NULL AND paid_amount_minor IS NULL AND fx_rate IS NULL "
         "AND fx_source IS NULL AND fx_source_sealed IS NULL AND converted_minor IS NULL "
         "AND difference_minor IS NULL AND difference_decision IS NULL) OR "
         "(paid_currency IS NOT NULL AND paid_amount_minor > 0 AND fx_rate IS NOT NULL "
         "AND (fx_source IS NOT NULL OR fx_source_sealed IS NOT NULL) AND converted_minor > 0 "
         "AND difference_minor IS NOT NULL)")
# The rule before it (4f2b8c91d0a7).
WHOLE_BEFORE = ("(paid_currency IS NULL AND paid_amount_minor IS NULL AND fx_rate IS NULL "
                "AND fx_source IS NULL AND converted_minor IS NULL AND difference_minor IS NULL "
                "AND difference_decision IS NULL) OR "
                "(paid_currency IS NOT NULL AND paid_amount_minor > 0 AND fx_rate IS NOT NULL "
                "AND fx_source IS NOT NULL AND converted_minor > 0 AND difference_minor IS NOT NULL)")


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch copy: on SQLite a copy would drop the payments' append-only triggers.
    op.add_column('payments', sa.Column('fx_source_sealed', sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # SQLite has no CHECK on this table (4f2b8c91d0a7)
        op.drop_constraint(CHECK, 'payments', type_='check')
        op.create_check_constraint(CHECK, 'payments', WHOLE)


def downgrade() -> None:
    # A payment whose source is sealed has no clear one to go back to: the downgrade refuses rather than lose it.
    if op.get_bind().execute(sa.text("SELECT 1 FROM payments WHERE fx_source_sealed IS NOT NULL LIMIT 1")).first():
        raise RuntimeError("payments hold sealed rate sources; downgrading would lose them")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(CHECK, 'payments', type_='check')
        op.create_check_constraint(CHECK, 'payments', WHOLE_BEFORE)
        op.drop_column('payments', 'fx_source_sealed')
    else:
        op.execute("ALTER TABLE payments DROP COLUMN fx_source_sealed")
