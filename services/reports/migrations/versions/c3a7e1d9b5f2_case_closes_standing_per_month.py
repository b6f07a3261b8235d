"""case closes: "cases closed" counts the cases whose close stands at the month's end, not close actions

- `case_closes`: per case and month it was closed or reopened in, whether its last such event in the month was a
  close; the case a keyed hash of the month and the case id together (`handlers.PersonIndex.case_in_month`), deleted
  with the case's erasure.

Counts made before this revision counted every close and no reopening: `rehab reports rebuild` counts them again.

Revision ID: c3a7e1d9b5f2
Revises: 89ad535f5883
Create Date: 2026-12-06 10:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'c3a7e1d9b5f2'
down_revision: Union[str, None] = '89ad535f5883'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('case_closes',
    sa.Column('case_key', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('closed', sa.Boolean(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('case_key', 'month')
    )


def downgrade() -> None:
    op.drop_table('case_closes')
