"""api_clients.activated_at, activation_hash: a client's setup secret is exchanged for its own before any token

Revision ID: f1b3d5e7a9c2
Revises: e4a6c8d0f2b5
Create Date: 2026-12-06 09:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'f1b3d5e7a9c2'
down_revision: Union[str, None] = 'e4a6c8d0f2b5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

UTCDateTime = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activated_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('activation_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    # The clients that could take tokens keep working: a partner's system in use must not stop at an upgrade. One
    # still waiting for approval has never worked and its issuing admin holds its secret: it is activated as a new one
    # is, with the code its approving admin will be shown.
    clients = sa.table('api_clients', sa.column('activated_at', UTCDateTime()), sa.column('created_at', UTCDateTime()),
                       sa.column('pending_approval', sa.Boolean()))
    op.execute(clients.update().where(clients.c.pending_approval == sa.false())
               .values(activated_at=clients.c.created_at))


def downgrade() -> None:
    with op.batch_alter_table('api_clients', schema=None) as batch_op:
        batch_op.drop_column('activation_hash')
        batch_op.drop_column('activated_at')
