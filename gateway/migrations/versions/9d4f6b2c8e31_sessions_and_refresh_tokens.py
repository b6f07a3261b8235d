"""sessions and refresh tokens (rotation, reuse detection, revocation)

Revision ID: 9d4f6b2c8e31
Revises: 7c1e2a9d4b10
Create Date: 2026-12-02 17:10:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '9d4f6b2c8e31'
down_revision: Union[str, None] = '7c1e2a9d4b10'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

AutoString = sqlmodel.sql.sqltypes.AutoString
UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'sessions',
        sa.Column('id', AutoString(length=36), nullable=False),
        sa.Column('user_id', AutoString(length=36), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('ends_at', UTCDateTime(), nullable=False),
        sa.Column('revoked_at', UTCDateTime(), nullable=True),
        sa.Column('revoked_why', AutoString(length=40), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sessions_revoked_at'), ['revoked_at'], unique=False)
    op.create_table(
        'refresh_tokens',
        sa.Column('token_hash', AutoString(length=64), nullable=False),
        sa.Column('session_id', AutoString(length=36), nullable=False),
        sa.Column('issued_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    with op.batch_alter_table('refresh_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refresh_tokens_session_id'), ['session_id'], unique=False)


def downgrade() -> None:
    op.drop_table('refresh_tokens')
    op.drop_table('sessions')
