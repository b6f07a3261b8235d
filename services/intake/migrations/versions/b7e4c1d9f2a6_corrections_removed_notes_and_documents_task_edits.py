"""corrections: notes and documents removed in error, tasks changed or cancelled

- `notes` and `documents`: `removed_at`, `removed_by` (a staff handle) and `removal_reason` (a fixed word:
  `wrong_case`, `duplicate`, `mistake`). A removed row stays as a tombstone, its sealed text (a note) or name, hash
  and pieces (a document) gone.
- `tasks`: `status` takes `cancelled` (16 characters, was 8), with `cancelled_at` and `cancelled_by`; `version`
  (existing tasks: 1), bumped by every change of a task, from which its ETag is derived.

Nothing to fill in: no note or document was removed before, and every task is at its first version.

Revision ID: b7e4c1d9f2a6
Revises: b3e8d1f4a6c2
Create Date: 2026-12-10 10:00:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'b7e4c1d9f2a6'
down_revision: Union[str, None] = 'b3e8d1f4a6c2'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

REMOVABLE = ('notes', 'documents')


def upgrade() -> None:
    for table in REMOVABLE:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
            batch_op.add_column(sa.Column('removed_by', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
            batch_op.add_column(sa.Column('removal_reason', sqlmodel.sql.sqltypes.AutoString(length=16),
                                          nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sqlmodel.sql.sqltypes.AutoString(length=8),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=16), existing_nullable=False)
        batch_op.add_column(sa.Column('cancelled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))


def downgrade() -> None:
    # A cancelled task has no place in the older schema: it goes back to being open, as it was before it was
    # cancelled (its title is still sealed with the case).
    op.execute("UPDATE tasks SET status = 'open' WHERE status = 'cancelled'")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('cancelled_at')
        batch_op.alter_column('status', existing_type=sqlmodel.sql.sqltypes.AutoString(length=16),
                              type_=sqlmodel.sql.sqltypes.AutoString(length=8), existing_nullable=False)
    # In place (SQLite 3.35+), not batch's copy-and-drop: `document_chunks` points at `documents`.
    for table in REMOVABLE:
        with op.batch_alter_table(table, schema=None, recreate='never') as batch_op:
            batch_op.drop_column('removal_reason')
            batch_op.drop_column('removed_by')
            batch_op.drop_column('removed_at')
