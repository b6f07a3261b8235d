"""users.must_choose_password: a password set by someone else is replaced by the person's own

Revision ID: d8e2f4a6b1c3
Revises: c5d9a1e7f3b4
Create Date: 2026-12-05 04:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = 'd8e2f4a6b1c3'
down_revision: Union[str, None] = 'c5d9a1e7f3b4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Whoever exists already may hold a password an admin set: each chooses their own at their next sign-in with a
    # second factor (or before setting one up).
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('must_choose_password', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('must_choose_password')
