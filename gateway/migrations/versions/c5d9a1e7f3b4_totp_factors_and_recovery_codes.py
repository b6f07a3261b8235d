"""the second factor: TOTP secrets (sealed) and single-use recovery codes (keyed hashes)

Revision ID: c5d9a1e7f3b4
Revises: b3a8e5f1c7d2
Create Date: 2026-12-02 17:30:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'c5d9a1e7f3b4'
down_revision: Union[str, None] = 'b3a8e5f1c7d2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'totp_factors',
        sa.Column('user_id', AutoString(length=36), nullable=False),
        sa.Column('secret_sealed', AutoString(length=400), nullable=False),
        sa.Column('confirmed_at', UTCDateTime(), nullable=True),
        sa.Column('last_step', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('user_id'),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('code_hash', AutoString(length=64), nullable=False),
        sa.Column('user_id', AutoString(length=36), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('code_hash'),
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_table('recovery_codes')
    op.drop_table('totp_factors')
