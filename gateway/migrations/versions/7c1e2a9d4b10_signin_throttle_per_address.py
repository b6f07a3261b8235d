"""sign-in throttle per user name and address (replaces users.failed_attempts / locked_until)

Revision ID: 7c1e2a9d4b10
Revises: 450ddc00e8fb
Create Date: 2026-12-02 16:45:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '7c1e2a9d4b10'
down_revision: Union[str, None] = '450ddc00e8fb'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        'signin_throttle',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('everywhere', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('wait_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('counting_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    with op.batch_alter_table('signin_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signin_throttle_everywhere'), ['everywhere'], unique=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('failed_attempts')
        batch_op.drop_column('locked_until')


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_attempts', sa.Integer(), nullable=False, server_default='0'))
    with op.batch_alter_table('signin_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signin_throttle_everywhere'))
    op.drop_table('signin_throttle')
