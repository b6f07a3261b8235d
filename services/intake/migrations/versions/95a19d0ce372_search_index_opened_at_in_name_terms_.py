"""search index: opened_at in name terms, pair terms, list indexes

- `case_name_terms.opened_at`, the case's own, filled here from `cases`, and the index `(kind, term, opened_at,
  case_id)` in place of `(kind, term)`: a search reads a term's cases newest first, a page at a time.
- Pair terms (kind `pair`) for searches of two words or more. They are keyed hashes of the names' word keys, which
  only the names give: a migration cannot compute them for the cases already there. When there are such cases,
  the row `name_index_pending('pair')` says so; searches then do without pair terms (the rarest word drives, the
  same answers) until `rehab names reindex` has decrypted each case's names, written its terms and deleted the row.
- The case list's indexes `(opened_at, id)` and `(status, opened_at, id)` in place of `(opened_at)` and `(status)`.

Revision ID: 95a19d0ce372
Revises: 83c5cdeb03de
Create Date: 2026-12-02 01:27:43.389944
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision: str = '95a19d0ce372'
down_revision: Union[str, None] = '83c5cdeb03de'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pending = op.create_table('name_index_pending',
    sa.Column('part', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('part')
    )
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM case_name_terms LIMIT 1")).first() is not None:
        op.bulk_insert(pending, [{"part": "pair", "since": datetime.now(UTC)}])

    # Drop the old index first: on SQLite the NOT NULL below copies the table, and need not copy it too.
    op.drop_index('ix_case_name_terms_kind_term', table_name='case_name_terms')
    with op.batch_alter_table('case_name_terms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    if bind.dialect.name == "postgresql":
        op.execute("UPDATE case_name_terms AS t SET opened_at = c.opened_at FROM cases AS c WHERE c.id = t.case_id")
    else:
        op.execute("UPDATE case_name_terms SET opened_at = "
                   "(SELECT c.opened_at FROM cases AS c WHERE c.id = case_name_terms.case_id)")
    with op.batch_alter_table('case_name_terms', schema=None) as batch_op:
        batch_op.alter_column('opened_at', existing_type=sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False)
    op.create_index('ix_case_name_terms_search', 'case_name_terms', ['kind', 'term', 'opened_at', 'case_id'],
                    unique=False)

    op.drop_index('ix_cases_opened_at', table_name='cases')
    op.drop_index('ix_cases_status', table_name='cases')
    op.create_index('ix_cases_opened_at_id', 'cases', ['opened_at', 'id'], unique=False)
    op.create_index('ix_cases_status_opened_at_id', 'cases', ['status', 'opened_at', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cases_status_opened_at_id', table_name='cases')
    op.drop_index('ix_cases_opened_at_id', table_name='cases')
    op.create_index('ix_cases_status', 'cases', ['status'], unique=False)
    op.create_index('ix_cases_opened_at', 'cases', ['opened_at'], unique=False)

    op.execute("DELETE FROM case_name_terms WHERE kind = 'pair'")
    op.drop_index('ix_case_name_terms_search', table_name='case_name_terms')
    with op.batch_alter_table('case_name_terms', schema=None) as batch_op:
        batch_op.drop_column('opened_at')
    op.create_index('ix_case_name_terms_kind_term', 'case_name_terms', ['kind', 'term'], unique=False)

    op.drop_table('name_index_pending')
