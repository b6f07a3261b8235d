"""need-to-know: case assignees, the staff directory, break-glass openings

- `case_assignees`: who holds each case (user id, the handle at assignment, the order given), with the case's
  `opened_at` for the index `(user_id, opened_at, case_id)` a caseworker's own list pages through.
- `staff`: the staff directory kept from the gateway's `rehab.gateway.user.*` events (durable `intake-gateway`).
- `break_glass_openings`: a case opened by a caseworker it is not assigned to, the reason sealed under the case's
  key.

Cases opened before this revision get their creator (the actor of the audit trail's `case.create` entry) as their
assignee, named by user id until the staff directory knows the handle; a case with no such entry stays unassigned
until a supervisor assigns it (`PUT /cases/{id}/assignees`).

Revision ID: a70d1da0aee4
Revises: 03288c403fd9
Create Date: 2026-12-02 17:30:00.000000
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = 'a70d1da0aee4'
down_revision: Union[str, None] = '03288c403fd9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('staff',
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('partner_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('profile_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('enabled_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_username'), ['username'], unique=False)

    op.create_table('case_assignees',
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('assigned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('case_id', 'user_id')
    )
    with op.batch_alter_table('case_assignees', schema=None) as batch_op:
        batch_op.create_index('ix_case_assignees_user_opened', ['user_id', 'opened_at', 'case_id'], unique=False)

    op.create_table('break_glass_openings',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('case_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('username', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reason_sealed', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('break_glass_openings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_break_glass_openings_case_id'), ['case_id'], unique=False)

    # Each case's creator, from the audit trail, as its first assignee (named by user id until the directory knows).
    op.execute(
        "INSERT INTO case_assignees (case_id, user_id, username, position, opened_at, assigned_at) "
        "SELECT c.id, MIN(a.actor), MIN(a.actor), 0, c.opened_at, c.opened_at "
        "FROM cases AS c JOIN audit_log AS a ON a.target_id = c.id AND a.action = 'case.create' "
        "GROUP BY c.id, c.opened_at"
    )


def downgrade() -> None:
    with op.batch_alter_table('break_glass_openings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_break_glass_openings_case_id'))
    op.drop_table('break_glass_openings')
    with op.batch_alter_table('case_assignees', schema=None) as batch_op:
        batch_op.drop_index('ix_case_assignees_user_opened')
    op.drop_table('case_assignees')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_username'))
    op.drop_table('staff')
