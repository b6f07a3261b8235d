"""users.activation_hash: an account another admin approved is set up with that admin's activation code too

Revision ID: e4a6c8d0f2b5
Revises: d8e2f4a6b1c3
Create Date: 2026-12-05 05:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'e4a6c8d0f2b5'
down_revision: Union[str, None] = 'd8e2f4a6b1c3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activation_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('activation_hash')
