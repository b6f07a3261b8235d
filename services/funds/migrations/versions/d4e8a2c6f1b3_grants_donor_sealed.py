"""grants: the donor sealed under a data key of the grant's own (donor_sealed, donor_kid, donor_key); donor in clear
stays only until funds seals the grants made before (services/funds/donors.py)

Revision ID: d4e8a2c6f1b3
Revises: b7d3e9f1a2c4
Create Date: 2026-12-05 11:30:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'd4e8a2c6f1b3'
down_revision: Union[str, None] = 'b7d3e9f1a2c4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = ('donor_sealed', 'donor_kid', 'donor_key')


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch copy: other tables refer to grants, and SQLite would rebuild it under them.
    op.add_column('grants', sa.Column('donor_sealed', sa.LargeBinary(), nullable=True))
    op.add_column('grants', sa.Column('donor_kid', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    op.add_column('grants', sa.Column('donor_key', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # A sealed donor has no clear one to go back to: the downgrade refuses rather than lose it.
    if op.get_bind().execute(sa.text("SELECT 1 FROM grants WHERE donor_sealed IS NOT NULL LIMIT 1")).first():
        raise RuntimeError("grants hold sealed donors; downgrading would lose them")
    for column in reversed(COLUMNS):
        if op.get_bind().dialect.name == "postgresql":
            op.drop_column('grants', column)
        else:  # SQLite (3.35+) drops a plain column in place
            op.execute(f"ALTER TABLE grants DROP COLUMN {column}")
