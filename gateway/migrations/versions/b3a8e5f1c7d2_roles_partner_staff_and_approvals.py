"""partner staff, pending approval, and the approvals of separation of duties

Revision ID: b3a8e5f1c7d2
Revises: 9d4f6b2c8e31
Create Date: 2026-12-02 17:20:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'b3a8e5f1c7d2'
down_revision: Union[str, None] = '9d4f6b2c8e31'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('partner_id', AutoString(length=36), nullable=True))
        batch_op.add_column(sa.Column('pending_approval', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_approval', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'approvals',
        sa.Column('id', AutoString(length=36), nullable=False),
        sa.Column('action', AutoString(length=40), nullable=False),
        sa.Column('target_id', AutoString(length=64), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=True),
        sa.Column('status', AutoString(length=20), nullable=False),
        sa.Column('requested_by', AutoString(length=64), nullable=False),
        sa.Column('requested_at', UTCDateTime(), nullable=False),
        sa.Column('decided_by', AutoString(length=64), nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('approvals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_approvals_target_id'), ['target_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_approvals_status'), ['status'], unique=False)


def downgrade() -> None:
    op.drop_table('approvals')
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('pending_approval')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('pending_approval')
        batch_op.drop_column('partner_id')
