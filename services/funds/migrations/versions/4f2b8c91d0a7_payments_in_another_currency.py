"""payments in another currency than the grant's: what was paid, the rate, its source, the converted amount and how a
difference was decided (issue #20)

Revision ID: 4f2b8c91d0a7
Revises: 375afa01c9cf
Create Date: 2026-12-03 09:40:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '4f2b8c91d0a7'
down_revision: Union[str, None] = '375afa01c9cf'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ("paid_amount_minor", "paid_currency", "fx_rate", "fx_source", "converted_minor", "difference_minor",
           "difference_decision")
# The same rules as models.Payment's CHECK constraints.
CHECKS = {
    "ck_payments_fx_whole": "(paid_currency IS NULL AND paid_amount_minor IS NULL AND fx_rate IS NULL "
                            "AND fx_source IS NULL AND converted_minor IS NULL AND difference_minor IS NULL "
                            "AND difference_decision IS NULL) OR "
                            "(paid_currency IS NOT NULL AND paid_amount_minor > 0 AND fx_rate IS NOT NULL "
                            "AND fx_source IS NOT NULL AND converted_minor > 0 AND difference_minor IS NOT NULL)",
    "ck_payments_fx_decided": "(difference_minor IS NULL OR difference_minor = 0) = (difference_decision IS NULL)",
}


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch copy of the table: on SQLite a copy would drop the payments' append-only
    # triggers (see the initial revision). Existing payments were all in the grant's currency: every new column
    # stays empty for them.
    op.add_column('payments', sa.Column('paid_amount_minor', sa.BigInteger(), nullable=True))
    op.add_column('payments', sa.Column('paid_currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True))
    op.add_column('payments', sa.Column('fx_rate', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
    op.add_column('payments', sa.Column('fx_source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    op.add_column('payments', sa.Column('converted_minor', sa.BigInteger(), nullable=True))
    op.add_column('payments', sa.Column('difference_minor', sa.BigInteger(), nullable=True))
    op.add_column('payments', sa.Column('difference_decision', sqlmodel.sql.sqltypes.AutoString(length=8),
                                        nullable=True))
    if op.get_bind().dialect.name == "postgresql":  # SQLite adds no CHECK to an existing table without copying it
        for name, condition in CHECKS.items():
            op.create_check_constraint(name, 'payments', condition)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in CHECKS:
            op.drop_constraint(name, 'payments', type_='check')
        for column in reversed(COLUMNS):
            op.drop_column('payments', column)
    else:
        # SQLite (3.35+) drops a plain column in place; a batch copy would drop the append-only triggers.
        for column in reversed(COLUMNS):
            op.execute(f"ALTER TABLE payments DROP COLUMN {column}")
