"""grants: a code is unique whatever its letter case (the database's own wall behind the check in create_grant)

Revision ID: b3c5d7e9f1a2
Revises: a2b4c6d8e0f1
Create Date: 2026-12-07 02:30:00.000000
"""
import logging
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b3c5d7e9f1a2'
down_revision: Union[str, None] = 'a2b4c6d8e0f1'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Grants made before the check may already differ by letter case alone: they are kept (aid was booked to them),
    # said, and the index waits until they are told apart (the check in create_grant refuses new ones meanwhile).
    twins = op.get_bind().execute(sa.text(
        "SELECT lower(code) FROM grants GROUP BY lower(code) HAVING count(*) > 1")).scalars().all()
    if twins:
        logging.getLogger("alembic.runtime.migration").warning(
            "funds: %d grant code(s) differ from another only by letter case; the unique index "
            "ux_grants_code_any_case is not made until they are told apart", len(twins))
        return
    op.create_index('ux_grants_code_any_case', 'grants', [sa.text('lower(code)')], unique=True)


def downgrade() -> None:
    op.drop_index('ux_grants_code_any_case', table_name='grants', if_exists=True)
