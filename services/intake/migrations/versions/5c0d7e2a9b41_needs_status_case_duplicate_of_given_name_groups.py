"""needs status, case duplicate_of, name-only and given-name-group terms of the name index

- `needs.status` (open, in_progress, met, dropped; existing needs are open), with who moved it last and when.
- `cases.duplicate_of`: the case kept when a case is marked a duplicate (status `duplicate`).
- The name index gains `name` terms (whole names without the date of birth: `name_only` duplicates), and given
  names become the keys of their name groups (`given_names.tsv`: short and familiar forms meet their full forms),
  which changes the `token`, `pair` and `name_dob` terms of names holding one. Both are keyed hashes of the names,
  which only the names give: when there are cases, the rows `name_index_pending('name')` and
  `name_index_pending('given-names')` say so, the service warns at start, and `rehab names reindex` rewrites every
  case's terms and deletes them.

Revision ID: 5c0d7e2a9b41
Revises: 0d4da13f6ac6
Create Date: 2026-12-03 02:40:00.000000
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '5c0d7e2a9b41'
down_revision: Union[str, None] = '0d4da13f6ac6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PENDING = ("name", "given-names")


def upgrade() -> None:
    with op.batch_alter_table('needs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='open',
                                      nullable=False))
        batch_op.add_column(sa.Column('status_changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('status_changed_by', sqlmodel.sql.sqltypes.AutoString(length=100),
                                      nullable=True))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duplicate_of', sa.String(length=36), nullable=True))

    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM case_name_terms LIMIT 1")).first() is not None:
        pending = sa.table('name_index_pending', sa.column('part', sa.String), sa.column('since', sa.DateTime))
        now = datetime.now(UTC)
        for part in PENDING:
            if bind.execute(sa.text("SELECT 1 FROM name_index_pending WHERE part = :part"), {"part": part}).first() is None:
                op.bulk_insert(pending, [{"part": part, "since": now}])


def downgrade() -> None:
    op.execute("DELETE FROM case_name_terms WHERE kind = 'name'")
    op.execute("DELETE FROM name_index_pending WHERE part IN ('name', 'given-names')")
    # `ALTER TABLE … DROP COLUMN` in place (SQLite 3.35+), not batch's copy-and-drop: with foreign keys on, SQLite
    # refuses to drop `cases` while needs, keys and terms point at it, and none of these columns is indexed.
    with op.batch_alter_table('cases', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('duplicate_of')
    with op.batch_alter_table('needs', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('status_changed_by')
        batch_op.drop_column('status_changed_at')
        batch_op.drop_column('status')
