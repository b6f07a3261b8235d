"""notes and tasks: sealed text and titles, my open tasks by due date

- `notes`: a caseworker's note on a case, its text sealed under the case's key; `(case_id, at, id)` pages a case's
  notes newest first.
- `tasks`: a task for one of a case's assignees, due on a date, its title sealed under the case's key;
  `(assignee_id, status, due_on, id)` is "my open tasks, soonest first" as one index range, `(case_id, due_on, id)`
  a case's tasks.

Both are deleted with the case at its erasure. Nothing to fill in for existing cases.

Revision ID: 0d4da13f6ac6
Revises: 03fc3e509511
Create Date: 2026-12-03 02:10:13.263181
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '0d4da13f6ac6'
down_revision: Union[str, None] = '03fc3e509511'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('notes',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('author_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('text_sealed', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.create_index('ix_notes_case_at', ['case_id', 'at', 'id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('title_sealed', sa.LargeBinary(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('assignee_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('done_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('done_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_assignee_status_due', ['assignee_id', 'status', 'due_on', 'id'], unique=False)
        batch_op.create_index('ix_tasks_case_due', ['case_id', 'due_on', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_case_due')
        batch_op.drop_index('ix_tasks_assignee_status_due')

    op.drop_table('tasks')
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_index('ix_notes_case_at')

    op.drop_table('notes')