"""name index: double-barrelled names also under each of their parts

The whole-name terms (`name`, `name_dob`) of a name with words joined by a hyphen (Сідарэнка-Баранава) now include
the name written with one of those words (Вольга Сідарэнка, Ольга Баранова), so that the duplicate check flags the
same person written with one part of a double-barrelled surname (`names.name_keys`). The terms are keyed hashes of
the names, which only the names give: when there are cases, the row `name_index_pending('double-barrelled')` says
so, the service warns at start, and `rehab names reindex` rewrites every case's terms and deletes it. Until then a
case opened before this revision meets a new one as before, and also where the new one's name is the longer (a new
"Вольга Сідарэнка-Баранава" meets an older "Вольга Сідарэнка"); an older double-barrelled name is not yet met by a
new one written with one of its parts. No table changes.

Revision ID: b3e8d1f4a6c2
Revises: 5c0d7e2a9b41
Create Date: 2026-12-04 10:00:00.000000
"""
from datetime import UTC, datetime
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b3e8d1f4a6c2'
down_revision: Union[str, None] = '5c0d7e2a9b41'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PENDING = "double-barrelled"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM case_name_terms LIMIT 1")).first() is None:
        return  # no case yet: every case will be written with its terms
    if bind.execute(sa.text("SELECT 1 FROM name_index_pending WHERE part = :part"), {"part": PENDING}).first() is None:
        pending = sa.table('name_index_pending', sa.column('part', sa.String), sa.column('since', sa.DateTime))
        op.bulk_insert(pending, [{"part": PENDING, "since": datetime.now(UTC)}])


def downgrade() -> None:
    # The extra terms of double-barrelled names stay until the next reindex: they find nothing the names do not say.
    op.execute(f"DELETE FROM name_index_pending WHERE part = '{PENDING}'")
