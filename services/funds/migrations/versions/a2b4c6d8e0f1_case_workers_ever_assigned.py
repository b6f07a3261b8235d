"""case_workers: everyone ever assigned to a case, as funds heard of it; none of them approves or pays its aid
(filled from case_assignees, who is assigned now)

Revision ID: a2b4c6d8e0f1
Revises: f7a9c3e5b1d8
Create Date: 2026-12-06 22:40:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'a2b4c6d8e0f1'
down_revision: Union[str, None] = 'f7a9c3e5b1d8'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('case_workers',
                    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
                    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
                    sa.PrimaryKeyConstraint('case_id', 'user_id'))
    # Who was assigned before is not known here; who is assigned now is.
    op.execute("INSERT INTO case_workers (case_id, user_id) SELECT case_id, user_id FROM case_assignees")


def downgrade() -> None:
    op.drop_table('case_workers')
